"""Fixtures that own every process and socket a test starts; every wait is bounded."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


class Proc:
    """A child process whose stdout/stderr go to files (never a pipe that can fill up)."""

    def __init__(self, args: list[str], workdir: Path, name: str, env: dict | None = None) -> None:
        self.name = name
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), full_env.get("PYTHONPATH")]))
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(
                [sys.executable, *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=workdir,
            )
        self.pid = self.popen.pid

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout} s; stderr:\n{self.stderr[-3000:]}"
            ) from None

    def json(self, timeout: float = 60) -> dict:
        code = self.wait(timeout)
        assert code == 0, f"{self.name} exited {code}; stderr:\n{self.stderr[-3000:]}"
        return json.loads(self.stdout)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        """Wait (bounded) until ``pattern`` appears in stderr; fail if the process exits first.

        For a test script's own output only: wait for a server with :func:`wait_event`."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.stderr)
            if m:
                return m
            if self.popen.poll() is not None:
                m = rx.search(self.stderr)
                if m:
                    return m
                raise AssertionError(
                    f"{self.name} exited ({self.popen.returncode}) before "
                    f"printing {pattern!r}; stderr:\n{self.stderr[-3000:]}"
                )
            try:
                self.popen.wait(0.05)  # wakes at once if it exits
            except subprocess.TimeoutExpired:
                pass
        raise AssertionError(
            f"{self.name} did not print {pattern!r} within {timeout} s; stderr:\n{self.stderr[-3000:]}"
        )

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)


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


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc; no psutil needed)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry.name))
    return kids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def read_events(path: Path) -> list[dict]:
    """The complete lines of a server's events file (``--events``) so far, decoded."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # the part after the last newline may be half written
    return [json.loads(line) for line in lines]


def wait_event(path: Path, match: Callable[[dict], bool], proc: Proc, timeout: float = 30) -> dict:
    """Wait (bounded) for the first event in ``path`` that ``match``es; fail if ``proc``
    (the server writing it) exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        for event in read_events(path):
            if match(event):
                return event
        if proc.popen.poll() is not None or time.monotonic() >= deadline:
            why = f"exited ({proc.popen.returncode})" if proc.popen.poll() is not None else f"ran {timeout} s"
            raise AssertionError(
                f"{proc.name} {why} without writing the awaited event; events:\n"
                f"{read_events(path)}\nstderr:\n{proc.stderr[-3000:]}"
            )
        try:
            proc.popen.wait(0.05)  # the poll interval; returns at once if the server exits
        except subprocess.TimeoutExpired:
            pass


def event(kind: str, **fields) -> Callable[[dict], bool]:
    """A matcher for :func:`wait_event`: ``event("player", name="a0", new="dead")``."""
    return lambda e: e["event"] == kind and all(e.get(k) == v for k, v in fields.items())


def accounted(p: dict) -> int:
    """Ticks a player's summary accounts for: each tick is exactly one of these."""
    return p["answered"] + p["missed"] + p["dead"] + p["left"] + p["not_joined"] + p.get("done", 0)


def player(summary: dict, pid: int) -> dict:
    return next(p for p in summary["players"] if p["id"] == pid)


def stderr_on_a_terminal(args: list[str], timeout: float = 120) -> str:
    """Run ``python ARGS`` with stderr on a real pseudo-terminal; return what it drew there
    (progress lines are drawn only on a terminal)."""
    import pty

    controller, terminal = pty.openpty()
    try:
        out = subprocess.run(
            [sys.executable, *args], stderr=terminal, stdout=subprocess.DEVNULL, timeout=timeout
        )
        assert out.returncode == 0
        os.close(terminal)
        terminal = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the writer side is closed and everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    return drawn.decode()
