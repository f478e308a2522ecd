"""``python -m tickwire.health [BASE]``: a container healthcheck that never connects.

A connection to a keyed server that does not complete a CURVE handshake is counted as
``rejected["auth_failed"]``, the signal that someone without a key is knocking; a healthcheck
that connected every 2 s would drown it (1,800 an hour). So this check reads the kernel's
tables instead: the server is healthy when a socket LISTENs on its control port
(``/proc/net/tcp`` and ``tcp6``), a process holds that socket (``/proc/PID/fd``), and that
process is neither stopped (SIGSTOP, a debugger) nor a zombie. A plain TCP connect told less:
the kernel completes the handshake for a stopped process too. Neither tells a main loop stuck
inside ``World.step`` from a working one.

BASE is the server's base address (default ``$TICKWIRE_BIND``, else tcp://127.0.0.1:5555);
the control port is PORT+2. Exit 0 healthy, else 1 with the reason on stderr (also for a
BASE it cannot check: Docker reserves exit code 2).
Linux only, and run as the server's user (or root) to see its file descriptors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from tickwire.protocol.endpoints import derive
from tickwire.protocol.errors import ConfigError

DEFAULT_BASE = "tcp://127.0.0.1:5555"
#: ``st`` of a listening TCP socket in /proc/net/tcp (TCP_LISTEN).
TCP_LISTEN = "0A"
#: /proc/PID/stat states of a process that cannot serve: stopped, traced, zombie, dead.
NOT_SERVING = {"T": "stopped", "t": "stopped by a debugger", "Z": "a zombie", "X": "dead"}


def control_port(base: str) -> int:
    """The control port (PORT+2) of a ``tcp://HOST:PORT`` base address; ConfigError else."""
    control = derive(base).control
    if not control.startswith("tcp://"):
        raise ConfigError(
            f"the healthcheck reads TCP sockets only; {base!r} is not "
            "tcp://HOST:PORT (set TICKWIRE_BIND or pass the address)"
        )
    port = int(control.rpartition(":")[2])
    if port == 2:
        raise ConfigError(
            f"{base!r} binds free ports (port 0): pass the address the server logged as 'listening on …'"
        )
    return port


def listening_inodes(table: str, port: int) -> set[int]:
    """Inodes of the sockets in a /proc/net/tcp(6) ``table`` that LISTEN on ``port`` (pure)."""
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        if int(fields[1].rpartition(":")[2], 16) == port:
            inodes.add(int(fields[9]))
    return inodes


def process_state(stat: str) -> str:
    """The state letter of a /proc/PID/stat line (pure; the name in parentheses may hold
    spaces and parentheses, so the state is the first field after the last ')')."""
    return stat.rpartition(")")[2].split()[0]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def holders(inodes: set[int], proc: Path = Path("/proc")) -> Iterable[int]:
    """PIDs of the processes holding one of the socket ``inodes``."""
    wanted = {f"socket:[{i}]" for i in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue  # gone, or another user's
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    yield int(entry.name)
                    break
            except OSError:
                continue


def check(base: str, proc: Path = Path("/proc")) -> str | None:
    """None when the server at ``base`` is healthy, else what is wrong and what to do."""
    port = control_port(base)
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        inodes |= listening_inodes(_read(proc / "net" / table), port)
    if not inodes:
        return (
            f"nothing listens on control port {port} ({base}): the server has not bound "
            "it yet, or it exited; see its log"
        )
    pids = list(holders(inodes, proc))
    if not pids:
        return (
            f"port {port} listens but no process visible to uid {os.getuid()} holds it: "
            "run the check as the server's user"
        )
    for pid in pids:
        stat = _read(proc / str(pid) / "stat")
        state = process_state(stat) if stat else "X"  # exited since it was listed
        if state not in NOT_SERVING:
            return None
    return (
        f"the server (pid {', '.join(map(str, pids))}) holding control port {port} is "
        f"{NOT_SERVING[state]}: it answers no one; continue it (SIGCONT) or restart it"
    )


def main(argv: list[str] | None = None) -> int:
    """Exit 0 healthy, else 1 (Docker's "unhealthy") with the reason on stderr."""
    args = sys.argv[1:] if argv is None else argv
    base = args[0] if args else os.environ.get("TICKWIRE_BIND") or DEFAULT_BASE
    try:
        problem = check(base)
    except ConfigError as e:
        print(f"tickwire.health: cannot check: {e}", file=sys.stderr)
        return 1
    if problem:
        print(f"tickwire.health: unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
