"""``tickwire run``: a world server in this process plus N local agent processes."""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tickwire.plumbing.child import agent_entry
from tickwire.plumbing.process import die_with_parent, pin_to_cpu, reap
from tickwire.protocol import connectable

from ..observers.metrics import MetricsServer
from ..observers.report import TickReport
from ..record.log import refuse_existing_record
from ..worlds.world import World
from .loop import ServerConfig, WorldServer

log = logging.getLogger(__name__)

#: What a spawned agent process runs (named, so that the child imports it only after
#: arming the parent-death signal: :func:`tickwire.plumbing.child.agent_entry`).
AGENT_TARGET = f"{__name__}:agent_process"

#: How long agents get to exit by themselves after END before they are terminated.
AGENT_EXIT_GRACE_S = 3.0


def agent_process(
    spec: str,
    connect: str,
    count: int,
    log_level: int,
    server_timeout_s: float = 10.0,
    cpu: int | None = None,
    join_timeout_s: float = 30.0,
) -> None:
    """Entry point of a spawned agent process (pinned to ``cpu`` if given); its players
    wait ``join_timeout_s`` for their WELCOMEs (the run's lobby timeout, at least 30 s)."""
    die_with_parent()
    if cpu is not None:
        pin_to_cpu(cpu, strict=True)
    logging.basicConfig(level=log_level, format="%(asctime)s agent %(levelname)s %(message)s")
    from tickwire.agents.batch import BatchAgent
    from tickwire.agents.loading import load_agent_class
    from tickwire.agents.runtime import AgentConfig, run

    cls = load_agent_class(spec)
    run(
        cls() if issubclass(cls, BatchAgent) else [cls() for _ in range(count)],
        config=AgentConfig(connect=connect, join_timeout_s=join_timeout_s, server_timeout_s=server_timeout_s),
        count=count,
    )


class LocalRun:
    """Owns the server, the agent processes and the temporary ipc directory of one run."""

    def __init__(
        self,
        world: World,
        config: ServerConfig,
        agent_spec: str,
        agents: int,
        transport: str = "ipc",
        per_process: int = 1,
        progress: Callable[[TickReport], None] | None = None,
        agent_log_level: int = logging.WARNING,
        agent_server_timeout_s: float = 10.0,
        pin_cpus: bool = False,
        metrics: MetricsServer | None = None,
        world_spec: str | None = None,
    ) -> None:
        if config.record_dir and not config.resume_dir:  # fail before any agent is spawned
            refuse_existing_record(config.record_dir)
        self._tmp = tempfile.mkdtemp(prefix="tw-") if transport == "ipc" else None
        bind = f"ipc://{self._tmp}/run" if self._tmp else "tcp://127.0.0.1:0"
        try:
            self.server = WorldServer(
                world,
                replace(config, bind=bind, players=agents),
                progress,
                metrics=metrics,
                world_spec=world_spec,
            )
        except BaseException:
            self._remove_tmp()
            raise
        connect = connectable(self.server.endpoints.base)
        ctx = mp.get_context("spawn")
        counts = [min(per_process, agents - i) for i in range(0, agents, per_process)]
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.procs = [
            ctx.Process(
                target=agent_entry,
                name=f"tickwire-agent-{i}",
                args=(
                    os.getpid(),
                    AGENT_TARGET,
                    agent_spec,
                    connect,
                    n,
                    agent_log_level,
                    agent_server_timeout_s,
                    cores[i % len(cores)] if pin_cpus and cores else None,
                    max(30.0, config.lobby_timeout_s),  # thousands of players take a while to join
                ),
            )
            for i, n in enumerate(counts)
        ]

    def run(self) -> dict[str, Any]:
        """Start the agents, run the world to its end, reap every agent process."""
        failed = True
        try:
            for p in self.procs:
                p.start()
            threading.Thread(target=self._watch, daemon=True, name="tickwire-watch").start()
            summary = self.server.run()
            failed = False
            return summary
        finally:
            try:
                self._reap(warn=not failed)
            finally:
                self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _watch(self) -> None:
        """Stop the lobby early if an agent process dies before the run starts."""
        alive = {p.sentinel: p for p in self.procs}
        while alive and not self.server.running:
            for sentinel in mp.connection.wait(list(alive), timeout=0.2):
                p = alive.pop(sentinel)  # type: ignore[arg-type]  # sentinels are ints
                # The sentinel fires as the process dies; its exit code is read by a wait.
                p.join(1.0)
                if p.exitcode and not self.server.running:
                    self.server.stop(
                        f"agent process {p.name} exited with code {p.exitcode} "
                        "before the run started (see its error above)"
                    )

    def _reap(self, warn: bool = True) -> None:
        """Give the agents a grace period to exit after END, then stop them. ``warn``: the run
        ended normally, so an agent still running is worth a warning (after a server error
        it is expected: the error itself is what the user needs to see)."""
        deadline = time.monotonic() + AGENT_EXIT_GRACE_S
        for p in self.procs:
            if p.pid is not None:
                if reap(p, max(0.0, deadline - time.monotonic())) and warn:
                    log.warning("agent process %s did not exit after the run and was stopped", p.name)
                elif not warn:
                    log.debug("agent process %s stopped after the server failed", p.name)

    @property
    def exit_codes(self) -> list[int | None]:
        return [p.exitcode for p in self.procs]
