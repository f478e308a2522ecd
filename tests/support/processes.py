"""Child processes a test starts: output to files, bounded waits, nothing left behind."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from support.paths import TESTS


def with_tests_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with tests/ first on PYTHONPATH, so a child imports ``support.*`` (specs such as
    ``support.sample_agents:CountingAgent``) as the tests do."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))}


class Proc:
    """A child process whose stdout/stderr go to files (never a pipe that can fill up)."""

    def __init__(self, args: list[str], workdir: Path, name: str, env: dict | None = None) -> None:
        self.name = name
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        full_env = with_tests_on_path({**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
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


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (VmRSS) or its peak so far (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def stderr_on_a_terminal(args: list[str], timeout: float = 120) -> str:
    """Run ``python ARGS`` with stderr on a real pseudo-terminal; return what it drew there
    (progress lines are drawn only on a terminal)."""
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
