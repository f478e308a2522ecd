"""Fixtures that own every process and socket a test starts; every wait is bounded.

Only fixtures and hooks live here; the helpers tests import are in support/."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import zmq
from support.processes import Proc, children_of


@pytest.fixture
def procs(tmp_path: Path):
    """``procs(args, name=..., env=...)`` starts a python child; all are killed at teardown."""
    started: list[Proc] = []

    def start(args: list[str], name: str | None = None, env: dict | None = None) -> Proc:
        p = Proc(args, tmp_path, name or f"proc{len(started)}", env)
        started.append(p)
        return p

    yield start
    for p in started:
        kids = children_of(p.pid)
        p.kill()
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def ipc_base():
    """A fresh ipc base address in a short /tmp path (ipc paths are limited to ~100 chars)."""
    d = tempfile.mkdtemp(prefix="twt-", dir="/tmp")
    yield f"ipc://{d}/run"
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def zctx():
    """A ZeroMQ context for raw test sockets; every socket closed with linger 0 at the end."""
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)
