"""Starting a real server process and watching what it publishes and records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import zmq
from tickwire.protocol import State, decode, derive

from support.events import event, wait_event
from support.processes import with_tests_on_path

SERVER = ["-m", "tickwire.server"]


def start_server(procs, tmp_path: Path, *args: str) -> tuple:
    """A server (``procs`` child) on a free loopback TCP port with ``args``, once it listens:
    (its process, its ``listening`` event, its events file)."""
    events = tmp_path / "events.jsonl"
    server = procs(
        [*SERVER, "--bind", "tcp://127.0.0.1:0", "--json", "-q", "--events", str(events), *args],
        name="server",
    )
    return server, wait_event(events, event("listening"), server), events


def wait_tick(ctx: zmq.Context, base: str, tick: int) -> None:
    """Watch the state socket until ``tick`` is published (bounded)."""
    watch = ctx.socket(zmq.SUB)
    watch.linger = 0
    watch.subscribe(b"")
    watch.connect(derive(base).state)
    while True:
        assert watch.poll(30_000), f"tick {tick} not published within 30 s"
        msg = decode(watch.recv_multipart())
        if isinstance(msg, State) and msg.tick >= tick:
            watch.close()
            return


def replay_json(record) -> dict:
    """``tickwire replay DIR --json`` (the test worlds importable), which must exit 0."""
    out = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay", str(record), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=with_tests_on_path(dict(os.environ)),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)
