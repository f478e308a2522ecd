"""Killing the recording server: kill -9 and resume (bit-exact), a full disk, ``tickwire replay``.

Real processes and signals: the server is ``tickwire server --record``; the agents are fresh
``tickwire agent`` processes for each epoch (asking for their old slots); player 0 of
``support.sample_agents:ServerKillerAgent`` SIGKILLs the server when it sees the chosen tick, so the
kill lands at a known tick without any sleep. The reference is an uninterrupted
``tickwire run`` with the same seed: strict mode and agents that are a pure function of the
observation make the final state hash comparable.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys

import pytest
import zmq
from support.events import event, wait_event
from support.paths import SUPPORT
from tickwire.protocol import encode
from tickwire.protocol.messages import Action
from tickwire.server.record.log import log_path, read_frames

PLAYERS = 2
AGENT = "support.sample_agents:ServerKillerAgent"


def _server(procs, ipc_base, record, ticks, *extra, name="server", file_limit=None):
    """``tickwire server`` recording to ``record`` (or resuming it: ``extra`` has --resume);
    ``file_limit``: its RLIMIT_FSIZE in bytes (a full disk for the record)."""
    args = [
        "server",
        "--bind",
        ipc_base,
        "--players",
        str(PLAYERS),
        "--ticks",
        str(ticks),
        "--seed",
        "7",
        "--lobby-timeout",
        "60",
        "--json",
        "-q",
        *extra,
    ]
    if "--resume" not in extra:
        args += ["--record", str(record)]
    if file_limit is None:
        return procs(["-m", "tickwire", *args], name=name)
    limited = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({file_limit}, {file_limit})); "
        "sys.argv = ['tickwire', *sys.argv[1:]]; "
        "runpy.run_module('tickwire', run_name='__main__')"
    )
    return procs(["-c", limited, *args], name=name)


def _agents(procs, ipc_base, server_pid, kill_at, name):
    env = {"TW_SERVER_PID": str(server_pid), "TW_KILL_AT": str(kill_at if kill_at else "")}
    return procs(
        [
            "-m",
            "tickwire",
            "agent",
            "--connect",
            ipc_base,
            "--agent",
            AGENT,
            "--count",
            str(PLAYERS),
            "--slot",
            "0",
            "--server-timeout",
            "30",
            "-q",
        ],
        name=name,
        env=env,
    )


def _reference_hash(procs, ticks):
    run = procs(
        [
            "-m",
            "tickwire",
            "run",
            "--agents",
            str(PLAYERS),
            "--ticks",
            str(ticks),
            "--seed",
            "7",
            "--agent",
            AGENT,
            "--json",
            "-q",
        ],
        name="reference",
    )
    return run.json(120)["state_hash"]


def _kill_and_resume(procs, ipc_base, record, ticks, kills):
    """Run to the end, the server SIGKILLed at each tick of ``kills``; the final summary."""
    server = _server(procs, ipc_base, record, ticks, "--fsync-every", "0")
    for i, kill_at in enumerate([*kills, None]):
        agents = _agents(procs, ipc_base, server.pid, kill_at, f"agents{i}")
        if kill_at is None:
            summary = server.json(120)
            assert agents.wait(60) == 0, agents.stderr[-2000:]
            return summary
        assert server.wait(60) == -signal.SIGKILL, server.stderr[-2000:]
        agents.kill()
        events = record.parent / f"events{i + 1}.jsonl"
        server = _server(
            procs,
            ipc_base,
            record,
            ticks,
            "--resume",
            str(record),
            "--fsync-every",
            "0",
            "--events",
            str(events),
            name=f"server{i + 1}",
        )
        if i == len(kills) - 1:
            wait_event(events, event("listening"), server)
            _send_an_old_epoch_action(ipc_base, record)


def _send_an_old_epoch_action(ipc_base, record):
    """An ACTION of the killed epoch, sent to the resumed server before anyone joins."""
    records, _ = read_frames(log_path(record, 0), last=False)
    ctx = zmq.Context()
    try:
        push = ctx.socket(zmq.PUSH)
        push.linger = 5000  # bounded: the server is listening
        push.connect(ipc_base + ".actions")
        push.send_multipart(encode(Action(records[0]["run"], 3, 0, 1, "x" * 32, 0)))
        push.close()
    finally:
        ctx.term()


def _check_resumed(summary, record, ticks, kills, reference):
    assert summary["state_hash"] == reference
    assert summary["resumed_from"] == kills[-1] and summary["ticks"] == ticks
    assert summary["rejected"].get("wrong_run", 0) >= 1
    for p in summary["players"]:  # a resumed epoch accounts for its own ticks
        assert p["answered"] + p["missed"] + p["dead"] + p["left"] + p["not_joined"] == (ticks - kills[-1])
    replay = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay", str(record), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(replay.stdout)
    assert replay.returncode == 0 and report["identical"], replay.stdout + replay.stderr
    assert report["final_hash"] == reference and report["ticks"] == ticks
    assert report["epochs"] == len(kills) + 1 and len(set(report["runs"])) == len(kills) + 1


def test_a_server_killed_twice_resumes_to_the_uninterrupted_hash(procs, ipc_base, tmp_path):
    ticks, kills = 300, sorted(random.Random(1).sample(range(20, 280), 2))
    reference = _reference_hash(procs, ticks)
    summary = _kill_and_resume(procs, ipc_base, tmp_path / "rec", ticks, kills)
    _check_resumed(summary, tmp_path / "rec", ticks, kills, reference)


@pytest.mark.slow
def test_a_server_killed_at_five_random_ticks_resumes_to_the_uninterrupted_hash(procs, ipc_base, tmp_path):
    seed = random.randrange(1 << 30)
    ticks, kills = 1000, sorted(random.Random(seed).sample(range(10, 990), 5))
    print(f"kill ticks {kills} (seed {seed})")  # shown if it fails
    reference = _reference_hash(procs, ticks)
    summary = _kill_and_resume(procs, ipc_base, tmp_path / "rec", ticks, kills)
    _check_resumed(summary, tmp_path / "rec", ticks, kills, reference)


def test_a_full_disk_stops_the_server_with_the_record_exit_code(procs, ipc_base, tmp_path):
    record = tmp_path / "rec"
    server = _server(
        procs,
        ipc_base,
        record,
        2000,
        "--fsync-every",
        "0",
        "--summary",
        str(tmp_path / "summary.json"),
        file_limit=60_000,
    )
    agents = _agents(procs, ipc_base, server.pid, None, "agents")
    assert server.wait(120) == 7, server.stderr[-2000:]
    out = json.loads(server.stdout)
    assert out["outcome"] == "record_failed" and out["error"]["type"] == "RecordError"
    # the summary (stdout and --summary FILE) still says how far the run got
    assert json.loads((tmp_path / "summary.json").read_text()) == out
    assert out["reason"] == "record failed" and out["ticks"] > 0 and out["record"]["dir"]
    assert "could not write or fsync the log" in server.stderr and "--resume" in server.stderr
    assert agents.wait(60) == 0  # they got END
    records, damage = read_frames(log_path(record, 0), last=True)
    done = records[-1]["tick"] + 1
    # resuming on a disk with room continues from the last complete tick, tail truncated
    resumed = _server(
        procs, ipc_base, record, 2000, "--resume", str(record), "--fsync-every", "0", name="resumed"
    )
    _agents(procs, ipc_base, resumed.pid, None, "agents2")
    summary = resumed.json(120)
    assert summary["resumed_from"] == done and summary["ticks"] == 2000
    repaired = summary["resume"]["repaired"]
    assert (repaired and repaired["offset"]) == (damage and damage.offset)


def test_replay_exits_non_zero_naming_the_damaged_position(procs, tmp_path):
    record = tmp_path / "rec"
    run = procs(
        ["-m", "tickwire", "run", "--agents", "2", "--ticks", "40", "--record", str(record), "--json", "-q"],
        name="run",
    )
    summary = run.json(120)
    replay = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay", str(record)], capture_output=True, text=True, timeout=60
    )
    assert replay.returncode == 0 and summary["state_hash"] in replay.stdout
    log = log_path(record, 0)
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x55
    log.write_bytes(bytes(data))
    replay = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay", str(record), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(replay.stdout)
    assert replay.returncode == 8 and report["outcome"] == "replay_differs"
    assert report["damage"]["file"] == log.name and 0 < report["damage"]["offset"] < len(data)


def test_recording_over_an_existing_record_is_refused(procs, ipc_base, tmp_path):
    record = tmp_path / "rec"
    first = procs(
        ["-m", "tickwire", "run", "--agents", "1", "--ticks", "5", "--record", str(record), "-q"],
        name="first",
    )
    assert first.wait(120) == 0, first.stderr[-2000:]
    again = _server(procs, ipc_base, record, 5, name="again")
    assert again.wait(60) == 7
    assert "already holds a record: continue it with --resume" in again.stderr


def test_replay_without_a_directory_is_a_usage_error():
    out = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "tickwire replay DIR" in out.stderr


def test_a_world_file_that_moved_is_replayed_with_world_and_an_empty_html_is_refused(procs, tmp_path):
    world = tmp_path / "my_world.py"
    world.write_text((SUPPORT / "big_world.py").read_text())
    record = tmp_path / "rec"
    run = procs(
        [
            "-m",
            "tickwire",
            "run",
            "--world",
            f"{world}:BigCheckpointWorld",
            "--agents",
            "2",
            "--ticks",
            "20",
            "--record",
            str(record),
            "--json",
            "-q",
        ],
        name="run",
    )
    final = run.json(120)["state_hash"]
    moved = world.rename(tmp_path / "moved.py")

    def replay(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tickwire", "replay", str(record), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )

    lost = replay()
    assert lost.returncode == 2 and "give --world SPEC" in lost.stderr, lost.stderr
    found = replay("--world", f"{moved}:BigCheckpointWorld", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["final_hash"] == final
    empty = replay("--world", f"{moved}:BigCheckpointWorld", "--html", "")
    assert empty.returncode == 2 and "--html (TICKWIRE_HTML) is empty" in empty.stderr
