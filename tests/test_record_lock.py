"""One writer per record directory: the lock a recording server holds on DIR.

Real processes: ``tickwire server`` recording or resuming DIR, ``tickwire agent`` players,
``tickwire replay``. A second server on a DIR that is being written must exit 7 naming the
holder before it changes a byte of DIR (the old code mixed two servers' ticks into one record,
or died with a bare AssertionError reading a log being written); a holder killed with -9
must not block the next ``--resume``.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support.events import event, wait_event

TICKS = 60
LOCK_NAME = "tickwire.lock"  # server/record/log.py LOCK_NAME, spelled out: what users see
GRID = ["--players", "2", "--ticks", str(TICKS), "--seed", "7"]


@pytest.fixture
def ipc_other():
    """A second ipc base: the refused server must fail on the lock, not on the address."""
    d = tempfile.mkdtemp(prefix="twt-", dir="/tmp")
    yield f"ipc://{d}/run"
    import shutil

    shutil.rmtree(d, ignore_errors=True)


def _server(procs, bind, *extra, name):
    return procs(["-m", "tickwire", "server", "--bind", bind, *GRID, "--json", "-q", *extra], name=name)


def _agents(procs, bind, env, name, agent="support.lock_agents:ServerStopperAgent"):
    return procs(
        [
            "-m",
            "tickwire",
            "agent",
            "--connect",
            bind,
            "--agent",
            agent,
            "--count",
            "2",
            "--slot",
            "0",
            "--server-timeout",
            "60",
            "-q",
        ],
        name=name,
        env=env,
    )


def _files(record: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(record.iterdir())}


def _replay(record: Path) -> tuple[int, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay", str(record), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.returncode, json.loads(out.stdout)


def _wait_stopped(proc, timeout: float = 60) -> None:
    """Wait (bounded) until ``proc`` is stopped by SIGSTOP (state T in /proc)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert proc.popen.poll() is None, f"{proc.name} exited: {proc.stderr[-2000:]}"
        assert time.monotonic() < deadline, f"{proc.name} was not stopped within {timeout} s"
        try:
            proc.popen.wait(0.05)  # the poll interval
        except subprocess.TimeoutExpired:
            pass


def _refused(proc, holder_pid: int, events: Path) -> str:
    """``proc`` exited 7 (record_failed) naming the holder, before it bound a socket (its
    ``--events`` file was never written); its message."""
    assert proc.wait(60) == 7, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    message = out["error"]["message"]
    assert out["outcome"] == "record_failed" and out["error"]["type"] == "RecordLocked"
    assert (
        f"is being recorded by another tickwire server (pid {holder_pid} on host "
        f"{socket.gethostname()}" in message
    )
    assert "nothing in" in message and "--resume" in message
    assert not events.exists()
    return message


def test_a_second_server_on_a_dir_being_recorded_is_refused_and_changes_nothing(
    procs, ipc_base, ipc_other, tmp_path
):
    """--record then --record (in the lobby) and --resume (mid-run, the holder stopped with
    20 ticks on disk): both exit 7 naming the holder; replay reads the 20 complete ticks and
    says DIR is being written; the holder then finishes a record that replays identically."""
    record, events = tmp_path / "rec", tmp_path / "events.jsonl"
    first = _server(procs, ipc_base, "--record", str(record), "--events", str(events), name="first")
    wait_event(events, event("listening"), first)
    loser_events = tmp_path / "loser.jsonl"
    _refused(
        _server(
            procs,
            ipc_other,
            "--record",
            str(record),
            "--lobby-timeout",
            "5",
            "--events",
            str(loser_events),
            name="second_record",
        ),
        first.pid,
        loser_events,
    )
    agents = _agents(procs, ipc_base, {"TW_SERVER_PID": str(first.pid), "TW_STOP_AT": "20"}, "agents")
    _wait_stopped(first)
    try:
        before = _files(record)
        resumed = _server(
            procs,
            ipc_other,
            "--resume",
            str(record),
            "--lobby-timeout",
            "5",
            "--events",
            str(loser_events),
            name="resume",
        )
        _refused(resumed, first.pid, loser_events)
        assert _files(record) == before  # byte for byte: not truncated, no new epoch
        code, live = _replay(record)
        assert code == 0 and live["identical"] and live["ticks"] == 20
        assert live["live"]["pid"] == first.pid and live["torn_tail"] is None
    finally:
        first.popen.send_signal(signal.SIGCONT)
    summary = first.json(120)
    assert summary["ticks"] == TICKS and agents.wait(60) == 0
    code, report = _replay(record)
    assert code == 0 and report["identical"] and report["ticks"] == TICKS
    assert report["epochs"] == 1 and report["live"] is None
    assert report["final_hash"] == summary["state_hash"]
    assert not (record / LOCK_NAME).exists()  # a clean end removes the lock file


def test_two_resumes_at_once_the_second_is_refused_and_a_killed_holder_blocks_nobody(
    procs, ipc_base, ipc_other, tmp_path
):
    """A record cut at tick 15 (server kill -9'd); one --resume waits in its lobby, a second
    exits 7 naming it and leaves DIR byte-identical (the old code let both restore it, and
    the loser failed with "File exists ... free disk space"); the first is kill -9'd, and a
    third --resume takes the record over and plays it to the end."""
    record = tmp_path / "rec"
    first = _server(procs, ipc_base, "--record", str(record), name="first")
    killer = _agents(
        procs,
        ipc_base,
        {"TW_SERVER_PID": str(first.pid), "TW_KILL_AT": "15"},
        "killer",
        agent="support.sample_agents:ServerKillerAgent",
    )
    assert first.wait(60) == -signal.SIGKILL, first.stderr[-2000:]
    killer.kill()
    events = tmp_path / "events1.jsonl"
    holder = _server(
        procs,
        ipc_base,
        "--resume",
        str(record),
        "--events",
        str(events),
        "--lobby-timeout",
        "60",
        name="holder",
    )
    wait_event(events, event("listening"), holder)  # restored, locked, waiting for players
    before = _files(record)
    loser_events = tmp_path / "loser.jsonl"
    _refused(
        _server(
            procs,
            ipc_other,
            "--resume",
            str(record),
            "--lobby-timeout",
            "5",
            "--events",
            str(loser_events),
            name="loser",
        ),
        holder.pid,
        loser_events,
    )
    assert json.loads(before[LOCK_NAME])["pid"] == holder.pid
    assert _files(record) == before
    holder.kill()  # SIGKILL: the kernel drops its lock; its lock file stays behind
    assert (record / LOCK_NAME).exists()
    third = _server(procs, ipc_other, "--resume", str(record), name="third")
    agents = _agents(procs, ipc_other, {}, "agents", agent="support.sample_agents:ServerKillerAgent")
    summary = third.json(120)
    assert summary["resumed_from"] == 15 and summary["ticks"] == TICKS
    assert agents.wait(60) == 0
    code, report = _replay(record)
    assert code == 0 and report["identical"] and report["epochs"] == 2
