"""A world launched for a trainer: ``tickwire server`` and scripted opponents as child processes.

:func:`launch_world` starts the server on an ``ipc://`` address in a fresh temporary
directory and one ``tickwire agent`` process per group of bots, each in its own slots after
the trainer's seats (slots ``0 .. seats-1``). :meth:`LaunchedWorld.close` stops them all
(the server ends the run, the bots see its END; anything still running after a grace period
is terminated, then killed), waits for every one, and removes the directory.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tickwire.plumbing.process import die_with_parent, stop_popens
from tickwire.protocol import ConfigError, TransportError

log = logging.getLogger(__name__)

GREEDY = "tickwire.agents.examples.greedy_agent:GreedyAgent"
RANDOM = "tickwire.agents.examples.random_agent:RandomAgent"
STOP_GRACE_S = 5.0  #: how long close() lets the processes end by themselves


class LaunchedWorld:
    """A server and its bots, run as child processes (see :func:`launch_world`).

    ``connect`` is the server's base address; :meth:`check` raises if a process already
    died (the environments call it while they wait); :meth:`close` stops everything.
    """

    def __init__(self, server: list[str], bots: Sequence[list[str]], directory: Path, connect: str) -> None:
        self.connect = connect
        self.directory = directory
        self.procs: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []
        self.closed = False
        try:
            self._start("server", server)
            for i, cmd in enumerate(bots):
                self._start(f"bots-{i}", cmd)
        except BaseException:
            self.close()
            raise

    def _start(self, name: str, cmd: list[str]) -> None:
        log_file = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 (closed below)
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                preexec_fn=die_with_parent,  # no orphans if the trainer is killed
            )
        finally:
            log_file.close()
        self.procs.append(proc)
        self.names.append(name)

    def log_tail(self, name: str, chars: int = 2000) -> str:
        """The end of a process's stderr (``server``, ``bots-0``, ...)."""
        try:
            return (self.directory / f"{name}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check(self) -> None:
        """Raise :class:`TransportError` (with its stderr) if the server or a bot exited."""
        for name, proc in zip(self.names, self.procs):
            if proc.poll() is not None:
                raise TransportError(
                    f"the launched {name} process exited with code {proc.returncode}:\n{self.log_tail(name)}"
                )

    def close(self) -> None:
        """Stop the server (it ends the run; the bots get its END), then the bots; wait for
        every process (terminate, then kill, what outlives the grace period); remove the files."""
        if self.closed:
            return
        self.closed = True
        if self.procs and self.procs[0].poll() is None:
            self.procs[0].terminate()  # SIGTERM: the server ends the run cleanly
        stopped = stop_popens(self.procs, STOP_GRACE_S)
        for proc in stopped:
            log.warning("launched process %s had to be stopped", proc.args)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LaunchedWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def launch_world(
    world: str = "tickwire.server.worlds.grid_world:GridWorld",
    *,
    seats: int = 1,
    bots: Mapping[str, int] | None = None,
    ticks: int = 1_000_000,
    seed: int = 0,
    mode: str = "strict",
    deadline_ms: int | None = None,
    server_args: Sequence[str] = (),
    python: str = sys.executable,
) -> LaunchedWorld:
    """Start ``tickwire server --world WORLD`` for ``seats`` trainer seats plus ``bots``
    (agent spec → how many players, each group one ``tickwire agent --count N`` process).

    The players are ``seats + sum(bots.values())``; a PettingZoo world fixes that number
    (its agent count). ``server_args`` are passed on (e.g. ``["--strikes", "0"]``). Give
    the result to :class:`~tickwire.agents.env.SeatEnv` and the others as ``connect``;
    they close it when they close.
    """
    bots = dict(bots or {})
    if seats < 1 or any(n < 1 for n in bots.values()):
        raise ConfigError(f"launch_world needs seats >= 1 and every bot count >= 1; got {seats}, {bots}")
    if mode not in ("strict", "deadline"):
        raise ConfigError(f"mode must be 'strict' or 'deadline', got {mode!r}")
    directory = Path(tempfile.mkdtemp(prefix="tickwire-world-"))
    if len(str(directory)) > 80:  # ipc paths are limited to about 100 characters
        directory.rmdir()
        directory = Path(tempfile.mkdtemp(prefix="tickwire-world-", dir="/tmp"))
    connect = f"ipc://{directory}/w"
    players = seats + sum(bots.values())
    server = [python, "-m", "tickwire", "server", "--bind", connect, "--world", world]
    server += ["--players", str(players), "--ticks", str(ticks), "--seed", str(seed), "--mode", mode]
    if deadline_ms is not None:
        server += ["--deadline-ms", str(deadline_ms)]
    server += ["-q", *server_args]
    commands, slot = [], seats
    for spec, count in bots.items():
        commands.append(
            [python, "-m", "tickwire", "agent", "--connect", connect, "--agent", spec]
            + ["--count", str(count), "--slot", str(slot), "-q"]
        )
        slot += count
    try:
        return LaunchedWorld(server, commands, directory, connect)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
