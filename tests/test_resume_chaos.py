"""Resume gaps, with real processes and SIGKILL: ``--on-missing repeat`` across a resume,
and a server killed while it writes its record (a half-written checkpoint, a short log write).

The reference for each is an uninterrupted run with the same seed and agents; the agents
are pure functions of the observation, so fresh processes after a resume act the same.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.big_world import PADDING
from support.events import event, wait_event
from support.servers import replay_json
from tickwire.server.record.log import read_frames, read_run

AGENT = "support.sample_agents:SlowOnceAgent"
SEED = "7"


def _misses(record) -> list[tuple[int, int]]:
    """(tick, player) of every filled-in action in the record."""
    return [(t.tick, pid) for t in read_run(record) for pid in sorted(t.missing)]


# ---------------------------------------------------------------------------- repeat
REPEAT = ["--mode", "deadline", "--deadline-ms", "1500", "--on-missing", "repeat"]


def test_on_missing_repeat_repeats_the_action_from_before_the_resume(procs, ipc_base, tmp_path):
    """Player 1 is slow at tick 12, the first tick after the server is killed and resumed:
    the world must step with its tick-11 action (recorded by the killed epoch), as in an
    uninterrupted run, not with the noop."""
    ticks, kill_at = 24, 12
    env = {"TW_SLOW_AT": str(kill_at), "TW_SLOW_S": "2.25"}  # 1.5 deadlines
    ref = procs(
        [
            "-m",
            "tickwire",
            "run",
            "--agents",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--agent",
            AGENT,
            "--record",
            str(tmp_path / "ref"),
            *REPEAT,
            "--json",
            "-q",
        ],
        name="reference",
        env=env,
    )
    reference = ref.json(120)
    record = tmp_path / "rec"
    server = _repeat_server(procs, ipc_base, ticks, "--record", str(record))
    agents = _repeat_agents(procs, ipc_base, server.pid, {**env, "TW_KILL_AT": str(kill_at)}, 0)
    assert server.wait(60) == -signal.SIGKILL, server.stderr[-2000:]
    for a in agents:
        a.kill()
    resumed = _repeat_server(procs, ipc_base, ticks, "--resume", str(record), name="resumed")
    _repeat_agents(procs, ipc_base, resumed.pid, env, 1)
    summary = resumed.json(120)
    assert summary["resumed_from"] == kill_at and summary["resume"]["remembered_players"] == [0, 1]
    # player 1 missed exactly the slow tick in both runs (else the timing margins failed)
    assert _misses(record) == _misses(tmp_path / "ref") == [(kill_at, 1)]
    recorded = {t.tick: t.actions for t in read_run(record)}
    before = recorded[kill_at - 1][1]
    assert recorded[kill_at][1] == before != 0  # repeated, and not the noop (0)
    assert summary["state_hash"] == reference["state_hash"]
    report = replay_json(record)
    assert report["identical"] and report["epochs"] == 2
    assert report["final_hash"] == reference["state_hash"]


def _repeat_server(procs, ipc_base, ticks, *extra, name="server"):
    return procs(
        [
            "-m",
            "tickwire",
            "server",
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            *REPEAT,
            "--lobby-timeout",
            "60",
            "--json",
            "-q",
            *extra,
        ],
        name=name,
    )


def _repeat_agents(procs, ipc_base, server_pid, env, epoch):
    """One process per player (a slow player must not hold up the other)."""
    return [
        procs(
            [
                "-m",
                "tickwire",
                "agent",
                "--connect",
                ipc_base,
                "--agent",
                AGENT,
                "--slot",
                str(slot),
                "--server-timeout",
                "30",
                "-q",
            ],
            name=f"agent{slot}-{epoch}",
            env={"TW_SERVER_PID": str(server_pid), **env},
        )
        for slot in (0, 1)
    ]


# ---------------------------------------------------------------------------- mid-write kills
BIG = ["--world", "support.big_world:BigCheckpointWorld", "--players", "2", "--seed", SEED]
GREEDY = "support.sample_agents:ServerKillerAgent"
TMP = re.compile(r"^checkpoint-(\d{12})\.tmp$")


def _kill_mid_checkpoint(server, record: Path, after: int, timeout: float = 60) -> str | None:
    """SIGKILL ``server`` while it writes the checkpoint of a tick >= ``after``: as soon as
    such a ``checkpoint-*.tmp`` holds some but not all of its bytes (bounded polling of the
    directory, 1 ms apart). Returns that file's name (None: the server exited first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.scandir(record) if record.is_dir() else ():
            m = TMP.match(entry.name)
            if m and int(m.group(1)) >= after:
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:  # complete and renamed meanwhile
                    continue
                if 0 < size < PADDING:
                    os.kill(server.pid, signal.SIGKILL)
                    return entry.name
        try:
            server.popen.wait(0.001)
            return None
        except subprocess.TimeoutExpired:
            pass
    raise AssertionError(
        f"no checkpoint of tick >= {after} was seen being written in "
        f"{timeout} s; stderr:\n{server.stderr[-2000:]}"
    )


def _half_written(record: Path, name: str | None) -> bool:
    """True if ``name`` was left in ``record`` with a frame that runs past its end."""
    if name is None or not (record / name).exists():
        return False
    _, damage = read_frames(record / name, last=True)
    return damage is not None and damage.torn and (record / name).stat().st_size < PADDING


def test_a_server_killed_while_writing_a_checkpoint_resumes_past_it(procs, ipc_base, tmp_path):
    """Checkpoints of tens of MB every tick; the server is SIGKILLed while one is half on
    disk. --resume reports the temp file, restores the checkpoint before it plus the log,
    and the run ends with the uninterrupted run's hash."""
    ticks, record = 40, tmp_path / "rec"
    reference = procs(
        [
            "-m",
            "tickwire",
            "run",
            *BIG[:2],
            "--agents",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--agent",
            GREEDY,
            "--json",
            "-q",
        ],
        name="reference",
    )
    reference_hash = reference.json(120)["state_hash"]
    extra = ["--record", str(record)]
    for attempt in range(3):  # a kill that lands just after the write retries on a resume
        server = _big_server(
            procs, ipc_base, ticks, *extra, "--checkpoint-every", "1", name=f"server{attempt}"
        )
        agents = _greedy_agents(procs, ipc_base, f"agents{attempt}")
        name = _kill_mid_checkpoint(server, record, after=10)
        assert server.wait(60) == -signal.SIGKILL, server.stderr[-2000:]
        agents.kill()
        extra = ["--resume", str(record)]
        if _half_written(record, name):
            break
    else:
        raise AssertionError("three kills in a row landed after the checkpoint write")
    size, done = (record / name).stat().st_size, int(TMP.match(name).group(1))
    print(f"killed on attempt {attempt + 1} with {size} bytes of {name} written")
    events = tmp_path / "events.jsonl"
    resumed = _big_server(procs, ipc_base, ticks, *extra, "--events", str(events), name="resumed")
    _greedy_agents(procs, ipc_base, "agents-last")
    note = wait_event(events, event("resumed"), resumed)
    summary = resumed.json(120)
    assert note["incomplete_checkpoints"] == [{"file": name, "bytes": size}]
    assert summary["resume"]["incomplete_checkpoints"] == note["incomplete_checkpoints"]
    # the log was complete up to the checkpointed tick; the checkpoint before it was used
    assert summary["resumed_from"] == done and summary["resume"]["checkpoint"] == done - 1
    assert summary["resume"]["repaired"] is None and not (record / name).exists()
    assert summary["state_hash"] == reference_hash and summary["ticks"] == ticks
    report = replay_json(record)
    assert report["identical"] and report["final_hash"] == reference_hash


@pytest.mark.slow
def test_a_server_killed_mid_checkpoint_three_times_resumes_to_the_uninterrupted_hash(
    procs, ipc_base, tmp_path
):
    """Three kills in a row, each while a checkpoint is half written; each resume reports
    the temp file the kill before it left, and the run ends with the uninterrupted hash."""
    ticks, record = 60, tmp_path / "rec"
    reference = procs(
        [
            "-m",
            "tickwire",
            "run",
            *BIG[:2],
            "--agents",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--agent",
            GREEDY,
            "--json",
            "-q",
        ],
        name="reference",
    )
    reference_hash = reference.json(120)["state_hash"]
    extra, left, kills = ["--record", str(record)], None, 0
    for attempt in range(8):
        server = _big_server(
            procs, ipc_base, ticks, *extra, "--checkpoint-every", "1", name=f"server{attempt}"
        )
        agents = _greedy_agents(procs, ipc_base, f"agents{attempt}")
        name = _kill_mid_checkpoint(server, record, after=10 + 15 * kills)
        assert server.wait(60) == -signal.SIGKILL, server.stderr[-2000:]
        agents.kill()
        extra = ["--resume", str(record)]
        kills += 1 if _half_written(record, name) else 0
        left = name if _half_written(record, name) else None
        if kills == 3:
            break
    assert kills == 3, f"only {kills} of {attempt + 1} kills landed mid-write"
    resumed = _big_server(procs, ipc_base, ticks, *extra, name="resumed")
    _greedy_agents(procs, ipc_base, "agents-last")
    summary = resumed.json(120)
    assert [c["file"] for c in summary["resume"]["incomplete_checkpoints"]] == [left]
    assert summary["state_hash"] == reference_hash and summary["ticks"] == ticks
    report = replay_json(record)
    assert report["identical"] and report["final_hash"] == reference_hash


def _big_server(procs, ipc_base, ticks, *extra, name):
    return procs(
        [
            "-m",
            "tickwire",
            "server",
            "--bind",
            ipc_base,
            *BIG,
            "--ticks",
            str(ticks),
            "--fsync-every",
            "0",
            "--lobby-timeout",
            "60",
            "--json",
            "-q",
            *extra,
        ],
        name=name,
    )


def _greedy_agents(procs, ipc_base, name):
    return procs(
        [
            "-m",
            "tickwire",
            "agent",
            "--connect",
            ipc_base,
            "--agent",
            GREEDY,
            "--count",
            "2",
            "--slot",
            "0",
            "--server-timeout",
            "30",
            "-q",
        ],
        name=name,
    )


def test_a_log_write_cut_short_leaves_a_torn_tail_that_resume_truncates(procs, ipc_base, tmp_path):
    """A file-size limit (RLIMIT_FSIZE, a full disk) cuts one tick's log write short: the
    server stops with exit 7 leaving part of a frame; resumed without the limit, the torn
    tail is truncated and reported, and the run ends with the uninterrupted run's hash."""
    ticks, limit, record = 400, 20_000, tmp_path / "rec"
    reference = procs(
        [
            "-m",
            "tickwire",
            "run",
            "--agents",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--agent",
            GREEDY,
            "--json",
            "-q",
        ],
        name="reference",
    )
    reference_hash = reference.json(120)["state_hash"]
    grid = [
        "--players",
        "2",
        "--seed",
        SEED,
        "--ticks",
        str(ticks),
        "--checkpoint-every",
        "50",
        "--fsync-every",
        "0",
        "--lobby-timeout",
        "60",
        "--json",
        "-q",
    ]
    limited = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "sys.argv = ['tickwire', *sys.argv[1:]]; "
        "runpy.run_module('tickwire', run_name='__main__')"
    )
    server = procs(
        ["-c", limited, "server", "--bind", ipc_base, *grid, "--record", str(record)], name="server"
    )
    _greedy_agents(procs, ipc_base, "agents")
    assert server.wait(120) == 7, server.stderr[-2000:]
    log = record / "log-000000.twr"
    records, damage = read_frames(log, last=True)
    assert log.stat().st_size == limit and damage.torn and damage.size > 0  # part of a frame
    done = records[-1]["tick"] + 1
    resumed = procs(
        ["-m", "tickwire", "server", "--bind", ipc_base, *grid, "--resume", str(record)], name="resumed"
    )
    _greedy_agents(procs, ipc_base, "agents2")
    summary = resumed.json(120)
    assert summary["resume"]["repaired"] == {**damage.as_dict(), "after_tick": done}
    assert summary["resumed_from"] == done and summary["resume"]["checkpoint"] == done // 50 * 50
    assert log.stat().st_size == damage.offset  # truncated to the last complete frame
    assert summary["state_hash"] == reference_hash and summary["ticks"] == ticks
    report = replay_json(record)
    assert report["identical"] and report["final_hash"] == reference_hash
    assert report["torn_tail"] is None and report["epochs"] == 2


# ---------------------------------------------------------------------------- damage
def _files(record: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(record.iterdir())}


def _recorded_run(procs, record: Path, ticks: int) -> str:
    """A complete ``tickwire run --record`` (checkpoint every 50 ticks); its final hash."""
    run = procs(
        [
            "-m",
            "tickwire",
            "run",
            "--agents",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--agent",
            GREEDY,
            "--record",
            str(record),
            "--checkpoint-every",
            "50",
            "--json",
            "-q",
        ],
        name="recorded",
    )
    return run.json(120)["state_hash"]


def _tick_offset(log: Path, tick: int) -> int:
    """The byte offset of tick ``tick``'s frame in ``log``."""
    data, off, n = log.read_bytes(), 0, -1  # the header frame comes first
    while n < tick:
        off += 8 + int.from_bytes(data[off : off + 4], "little")
        n += 1
    return off


def test_resume_refuses_damage_with_good_records_after_it_and_changes_nothing(procs, ipc_base, tmp_path):
    """Two bytes overwritten inside the log (not at its end): the ticks after them are still
    good, so this is damage, not a torn tail: ``--resume`` exits 8 naming the file and the
    byte offset, and leaves every file of DIR as it was (the old code truncated the log
    there and went back to that tick, and replay then called the shortened run identical)."""
    record = tmp_path / "rec"
    _recorded_run(procs, record, 200)
    log = record / "log-000000.twr"
    bad = _tick_offset(log, 80)
    with open(log, "r+b") as f:
        f.seek(bad + 20)
        f.write(b"ZZ")
    before = _files(record)
    resumed = procs(
        [
            "-m",
            "tickwire",
            "server",
            "--bind",
            ipc_base,
            "--resume",
            str(record),
            "--lobby-timeout",
            "2",
            "--json",
            "-q",
        ],
        name="resumed",
    )
    assert resumed.wait(60) == 8, resumed.stderr[-2000:]
    out = json.loads(resumed.stdout)
    assert out["outcome"] == "replay_differs"
    message = out["error"]["message"]
    assert f"{log} is damaged at byte {bad} (CRC mismatch)" in message
    assert f"a good record follows at byte {_tick_offset(log, 81)}" in message
    assert "Nothing in" in message and "tickwire replay" in message and "--resume COPY" in message
    assert _files(record) == before  # not truncated, no new epoch, checkpoints kept
    replay = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay", str(record), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(replay.stdout)
    assert replay.returncode == 8 and report["ticks"] == 80 and report["torn_tail"] is None
    assert report["damage"]["offset"] == bad and not report["damage"]["torn"]


def test_a_torn_tail_resume_that_times_out_leaves_no_epoch_and_no_orphan_checkpoint(
    procs, ipc_base, tmp_path
):
    """The log cut inside tick 160's frame (a crash mid-write, nothing valid after it): a
    resume whose lobby times out truncates the torn tail and removes checkpoint 200 (no log
    leads to it any more) but writes no empty epoch log; replay calls the 160 ticks
    identical; a second resume with players finishes the run with the recorded hash."""
    record = tmp_path / "rec"
    final = _recorded_run(procs, record, 200)
    log = record / "log-000000.twr"
    cut = _tick_offset(log, 160)
    with open(log, "r+b") as f:
        f.truncate(cut + 5)
    timed_out = procs(
        [
            "-m",
            "tickwire",
            "server",
            "--bind",
            ipc_base,
            "--resume",
            str(record),
            "--lobby-timeout",
            "1",
            "--json",
            "-q",
        ],
        name="timed_out",
    )
    assert timed_out.wait(60) == 3, timed_out.stderr[-2000:]
    assert sorted(_files(record)) == [
        "checkpoint-000000000100.twc",
        "checkpoint-000000000150.twc",
        "log-000000.twr",
    ]
    assert log.stat().st_size == cut and "removing checkpoint-000000000200" in timed_out.stderr
    lobby = json.loads(timed_out.stdout)  # the summary says what the resume did to DIR
    assert lobby["reason"] == "lobby timeout" and lobby["resumed_from"] == 160
    assert lobby["resume"]["repaired"]["torn"] and lobby["resume"]["repaired"]["offset"] == cut
    assert lobby["resume"]["dropped_checkpoints"] == ["checkpoint-000000000200.twc"]
    report = replay_json(record)
    assert report["ticks"] == 160 and report["epochs"] == 1 and report["torn_tail"] is None
    resumed = procs(
        [
            "-m",
            "tickwire",
            "server",
            "--bind",
            ipc_base,
            "--resume",
            str(record),
            "--checkpoint-every",
            "50",
            "--lobby-timeout",
            "60",
            "--json",
            "-q",
        ],
        name="resumed",
    )
    _greedy_agents(procs, ipc_base, "agents")
    summary = resumed.json(120)
    assert (summary["resumed_from"], summary["resume"]["checkpoint"]) == (160, 150)
    assert summary["state_hash"] == final and summary["record"]["epoch"] == 1
    report = replay_json(record)
    assert report["identical"] and report["final_hash"] == final and report["epochs"] == 2
