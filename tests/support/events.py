"""Reading a server's events file (``--events``) while it runs; every wait is bounded."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from support.processes import Proc


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
