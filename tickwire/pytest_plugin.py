"""pytest fixtures for testing your own agents and worlds with real processes and sockets.

Registered through the ``pytest11`` entry point: installing tickwire is enough::

    def test_my_agent(tickwire_run):
        summary = tickwire_run(agents=[MyAgent, "my_agent.py:Other"], ticks=200, seed=1)
        assert all(p["answered"] == 200 for p in summary["players"])

* ``tickwire_run(agents, world=None, *, ticks=100, seed=0, mode="strict", deadline_ms=100,
  timeout=60, transport="ipc", **ServerConfig fields)`` runs a local match: the world server
  in a thread of the test process (so a World *instance* works), one real agent process per
  entry (entry ``i`` is player ``i``); returns the ``tickwire run --json`` dict, with each
  process's exit code and error as attributes (:class:`RunSummary`). A crash in ``act`` or
  an exiting agent shows as a ``left``/``dead`` player; a crash in ``setup`` ends the lobby
  with the agent's error as the reason; past ``timeout`` the match is stopped and the test
  fails saying where it was. Each call reaps its processes and removes its ipc directory.
* ``tickwire_server(players=1, world=None, *, ticks=100, ...)`` starts a live server on
  free tcp ports in a background thread for tests that start their own agents:
  ``.address`` is what they connect to, ``.wait(timeout)`` the summary; stopped at teardown.

How an agent class reaches its process: by reference when it has an importable home (a
module-level class, also one defined in the test module itself): the child imports its
module by name (``spawn`` children get the test process's ``sys.path``, where pytest put the
test's directory) or, when that fails (``--import-mode=importlib``), loads the module's file
under the same name. Only classes without a home (defined inside a function, or in
``__main__``) are sent by value, with cloudpickle if it is installed. By reference keeps the
child running exactly the module's code, helpers and imports, with no extra dependency; the
price is that the agent process imports the test module (keep its top level cheap).
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:  # tickwire's server and pyzmq load only when a fixture is used
    from tickwire.agents.agent import Agent
    from tickwire.agents.batch import BatchAgent
    from tickwire.server.observers.report import TickReport
    from tickwire.server.world_server.config import ServerConfig
    from tickwire.server.world_server.loop import WorldServer
    from tickwire.server.worlds.world import World

log = logging.getLogger(__name__)

#: Defaults chosen for tests: short runs, bounded waits.
DEFAULT_TICKS = 100
DEFAULT_TIMEOUT_S = 60.0
#: How long agents get to exit by themselves after END before they are terminated.
AGENT_EXIT_GRACE_S = 3.0
#: How long a stopped server thread gets to finish its current wait and close its sockets.
SERVER_STOP_GRACE_S = 10.0
#: ipc paths must fit in sockaddr_un (~107 bytes): a long $TMPDIR falls back to /tmp.
_MAX_IPC_DIR = 80


# --------------------------------------------------------------------------- results
class RunSummary(dict):
    """The ``tickwire run --json`` dict, plus what happened to each agent process.

    Attributes, one entry per agent in the order given: ``exit_codes``, ``errors`` (the
    exception that ended the agent, e.g. ``"RuntimeError: boom"``, or None), ``pids``;
    and ``address``, the base address the run used. Entry ``i`` played as player id ``i``.
    """

    exit_codes: list[int | None]
    errors: list[str | None]
    pids: list[int]
    address: str

    #: what the fixture adds: attributes, so that the dict stays the ``--json`` object
    ATTRIBUTES = ("exit_codes", "errors", "pids", "address")

    def __missing__(self, key: object) -> Any:
        """A key the ``--json`` object lacks: a KeyError that says where an attribute is."""
        if key in self.ATTRIBUTES:
            raise KeyError(
                f"{key!r} is not a key of the run's summary (the --json object) but an "
                f"attribute: use summary.{key}"
            )
        raise KeyError(key)


def _as_json(summary: dict[str, Any]) -> dict[str, Any]:
    """Exactly what ``--json`` prints, back as Python (numpy scalars become numbers), with
    the ``outcome`` and ``exit_code`` the command would give."""
    from tickwire.exitcodes import for_summary

    def plain(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"{type(o).__name__} in the summary is not JSON serializable")

    code = for_summary(summary)
    summary = {**summary, "outcome": code.label, "exit_code": int(code)}
    return json.loads(json.dumps(summary, sort_keys=True, default=plain))


# --------------------------------------------------------------------------- loading
def _resolve_file_spec(spec: str, base_dir: Path | None) -> str:
    """``file.py:Name`` relative to the test file's directory (else the cwd) → absolute."""
    path, colon, attr = spec.partition(":")
    if not colon or not path.endswith(".py") or os.path.isabs(path):
        return spec
    for root in filter(None, (base_dir, Path.cwd())):
        candidate = (root / path).resolve()
        if candidate.exists():
            return f"{candidate}:{attr}"
    return spec  # load_object names the missing file


def _load_world(world: Any, base_dir: Path | None) -> World:
    """None → GridWorld; else what :func:`tickwire.server.worlds.loader.load_world` takes (a World
    instance or class, ``"mod:Class"``, ``"pettingzoo:MODULE"``), with ``"file.py:Class"``
    relative to the test file's directory."""
    from tickwire.server.worlds.grid_world import GridWorld
    from tickwire.server.worlds.loader import load_world

    if world is None:
        return GridWorld()
    return load_world(_resolve_file_spec(world, base_dir) if isinstance(world, str) else world)


def _home(cls: type) -> tuple[str, str | None] | None:
    """(module name, module file) if ``cls`` can be found again by name; else None."""
    module = sys.modules.get(cls.__module__)
    if module is None or cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    obj: Any = module
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return (cls.__module__, getattr(module, "__file__", None)) if obj is cls else None


def _cloudpickle(obj: Any, what: str) -> bytes:
    try:
        import cloudpickle
    except ImportError:
        raise TypeError(
            f"{what} has no importable home (it is defined inside a function or "
            "in __main__): define it at module level of the test file, or "
            "`pip install cloudpickle` to send it by value"
        ) from None
    return cloudpickle.dumps(obj)


@dataclass(frozen=True)
class AgentRecipe:
    """How an agent process rebuilds one agent: plain data, safe to unpickle before any
    user module is imported. ``module`` is imported first (by name, else from ``file``);
    then the agent is ``spec`` loaded, ``qualname`` looked up, or ``pickled`` loaded, and
    gets ``name`` as its player name."""

    name: str
    spec: str | None = None
    module: str | None = None
    file: str | None = None
    qualname: str | None = None
    pickled: bytes | None = None

    @classmethod
    def of(cls, entry: Any, base_dir: Path | None = None) -> AgentRecipe:
        """A recipe for an Agent subclass, an Agent instance or a ``"mod:Class"`` spec."""
        from tickwire.agents.agent import Agent
        from tickwire.agents.loading import load_agent_class

        if isinstance(entry, str):
            spec = _resolve_file_spec(entry, base_dir)
            agent_cls = load_agent_class(spec)  # fail here, in the test, not in a child
            return cls(agent_cls.name or agent_cls.__name__, spec=spec)
        if isinstance(entry, type) and issubclass(entry, Agent):
            name, home = entry.name or entry.__name__, _home(entry)
            if home:
                return cls(name, module=home[0], file=home[1], qualname=entry.__qualname__)
            return cls(name, pickled=_cloudpickle(entry, f"agent class {entry.__qualname__}"))
        if isinstance(entry, Agent):
            name, home = entry.name or type(entry).__name__, _home(type(entry))
            if home:
                return cls(name, module=home[0], file=home[1], pickled=pickle.dumps(entry))
            return cls(name, pickled=_cloudpickle(entry, f"{type(entry).__qualname__} instance"))
        raise TypeError(
            f"agents entries must be Agent subclasses, Agent instances or "
            f"'pkg.mod:Class' / 'file.py:Class' strings, got {entry!r}"
        )

    def named(self, name: str) -> AgentRecipe:
        return replace(self, name=name)

    def build(self) -> Agent | BatchAgent:
        """In the agent process: import, look up or unpickle, and return a fresh agent."""
        from tickwire.agents.agent import Agent
        from tickwire.agents.loading import load_agent_class

        if self.spec is not None:
            return self._named(load_agent_class(self.spec)())
        module = _import(self.module, self.file) if self.module else None
        if self.qualname is not None:
            obj: Any = module
            for part in self.qualname.split("."):
                obj = getattr(obj, part)
        else:
            obj = _Unpickler(io.BytesIO(self.pickled or b"")).load()
        agent = obj() if isinstance(obj, type) else obj
        if not isinstance(agent, Agent):
            raise TypeError(f"{self.name} is not a tickwire.Agent")
        return self._named(agent)

    def _named(self, agent: Agent | BatchAgent) -> Agent | BatchAgent:
        agent.name = self.name
        return agent


def _unique_names(recipes: list[AgentRecipe]) -> list[AgentRecipe]:
    """Player names independent of join order: a repeated name gets ``-<player id>``
    (as the server would name it, but deterministically)."""
    seen: set[str] = set()
    out = []
    for i, r in enumerate(recipes):
        out.append(r if r.name not in seen else r.named(f"{r.name}-{i}"))
        seen.add(out[-1].name)
    return out


def _import(name: str, file: str | None) -> Any:
    """Import module ``name``; if it is not importable by name, load ``file`` as ``name``."""
    import importlib
    import importlib.util

    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        if not file:
            raise
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load module {name!r} from {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Unpickler(pickle.Unpickler):
    """Finds classes in modules that were loaded from their file (not importable by name)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in sys.modules:
            obj: Any = sys.modules[module]
            for part in name.split("."):
                obj = getattr(obj, part)
            return obj
        return super().find_class(module, name)


# --------------------------------------------------------------------------- agent processes
def _agent_main(
    recipe: AgentRecipe, connect: str, slot: int, error_path: str, join_timeout_s: float, log_level: int
) -> None:
    """Entry point of one spawned agent process: build the agent, play as player ``slot``.
    The exception that ends it is written to ``error_path`` for the test's summary."""
    from tickwire.agents.runtime import AgentConfig, run
    from tickwire.plumbing.process import die_with_parent

    die_with_parent()
    logging.basicConfig(level=log_level, format="%(asctime)s agent %(levelname)s %(message)s")
    try:
        run(recipe.build(), config=AgentConfig(connect=connect, slot=slot, join_timeout_s=join_timeout_s))
    except SystemExit as e:
        if e.code not in (None, 0):
            Path(error_path).write_text(f"SystemExit: {e.code}")
        raise
    except BaseException as e:
        Path(error_path).write_text(f"{type(e).__name__}: {e}")
        traceback.print_exc()
        sys.exit(1)


class AgentProcesses:
    """One spawned process per agent recipe; entry ``i`` asks for player slot ``i``."""

    def __init__(
        self,
        recipes: Sequence[AgentRecipe],
        workdir: str,
        join_timeout_s: float,
        log_level: int = logging.WARNING,
    ) -> None:
        self.recipes = list(recipes)
        self.join_timeout_s = join_timeout_s
        self.log_level = log_level
        self._errors = [os.path.join(workdir, f"agent-{i}.error") for i in range(len(recipes))]
        self.procs: list[mp.process.BaseProcess] = []
        self.pids: list[int] = []
        self._codes: list[int | None] = [None] * len(self.recipes)
        self._texts: list[str | None] = [None] * len(self.recipes)
        self._stopped = [False] * len(self.recipes)

    def start(self, connect: str) -> None:
        """Spawn one process per recipe (fresh interpreters: no forked ZeroMQ state)."""
        ctx = mp.get_context("spawn")
        for i, r in enumerate(self.recipes):
            p = ctx.Process(
                target=_agent_main,
                name=f"tickwire-agent-{i}",
                daemon=True,
                args=(r, connect, i, self._errors[i], self.join_timeout_s, self.log_level),
            )
            self.procs.append(p)
            p.start()
            assert p.pid is not None  # set by start()
            self.pids.append(p.pid)

    def describe(self, i: int, when: str = "") -> str:
        """``agent 1 (Crashy) exited with code 1<when>: RuntimeError: boom``."""
        code = self.procs[i].exitcode if i < len(self.procs) else self._codes[i]
        if code is None or self._stopped[i]:
            return f"agent {i} ({self.recipes[i].name}) was still running (stopped at the end)"
        error = self.error(i)
        return f"agent {i} ({self.recipes[i].name}) exited with code {code}{when}" + (
            f": {error}" if error else ""
        )

    def error(self, i: int) -> str | None:
        """The exception that ended agent ``i`` (as its process wrote it), if any."""
        if self._texts[i] is None:
            try:
                self._texts[i] = Path(self._errors[i]).read_text()
            except OSError:
                return None
        return self._texts[i] or None

    def wait_exits(self, timeout: float) -> list[int]:
        """Indexes of processes that exited within ``timeout`` (and were not seen before)."""
        live = {p.sentinel: i for i, p in enumerate(self.procs) if p.exitcode is None}
        if not live:
            return []
        ready = cast(list[int], mp.connection.wait(list(live), timeout=timeout))  # what it was given
        for sentinel in ready:
            self.procs[live[sentinel]].join(1.0)  # exiting: reaped within ms; sets exitcode
        return [live[s] for s in ready]

    def reap(self, grace_s: float = AGENT_EXIT_GRACE_S) -> None:
        """Wait (bounded) for every process; terminate, then kill, the ones still running."""
        from tickwire.plumbing.process import reap

        deadline = time.monotonic() + grace_s
        for i, p in enumerate(self.procs):
            if reap(p, max(0.0, deadline - time.monotonic())):
                log.info("agent process %s did not exit after the run and was stopped", p.name)
                self._stopped[i] = True
            self._codes[i] = p.exitcode
            self.error(i)  # read it now: the directory goes away after the run
            p.close()  # releases the sentinel's file descriptor
        self.procs.clear()

    @property
    def exit_codes(self) -> list[int | None]:
        """Each agent process's exit code (after :meth:`reap`)."""
        return list(self._codes)


# --------------------------------------------------------------------------- server
class LiveServer:
    """A WorldServer on its own thread in the test process (world objects stay here).

    ``address`` is the base address agents connect to; ``wait(timeout)`` returns the
    summary (as ``--json`` prints it) or fails the test if the run has not ended in time.
    """

    def __init__(self, world: World, config: ServerConfig) -> None:
        from tickwire.protocol import connectable
        from tickwire.server.world_server.loop import WorldServer

        #: the loop's newest report (read by :meth:`progress_report`; replaced whole)
        self._report: TickReport | None = None
        self._config = config
        self.server: WorldServer = WorldServer(world, config, progress=self._observe)  # binds now
        self.address: str = connectable(self.server.endpoints.base)
        self._done = threading.Event()
        self._summary: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, daemon=True, name=f"tickwire-server-{self.server.run_id}"
        )

    def _observe(self, report: TickReport) -> None:
        self._report = report

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self._summary = self.server.run()
        except BaseException as e:  # handed to the test thread by wait()
            self._error = e
        finally:
            self._done.set()

    @property
    def running(self) -> bool:
        """True once the lobby is over and ticks are being played."""
        return self.server.running

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def stop(self, reason: str = "stopped by the test") -> None:
        self.server.stop(reason)

    def wait_done(self, timeout: float) -> bool:
        return self._done.wait(max(0.0, timeout))

    def wait(self, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The run's summary; fails the test (after stopping the server) on timeout, and
        re-raises what the server raised (a LobbyTimeout, an error in the world)."""
        if not self.wait_done(timeout):
            msg = self.progress_report(f"did not end within {timeout:g} s")
            self.close()
            pytest.fail(f"tickwire: the run {msg}", pytrace=False)
        return self.result()

    def result(self) -> dict[str, Any]:
        if self._error is not None:
            raise self._error
        assert self._summary is not None
        return _as_json(self._summary)

    def progress_report(self, what: str) -> str:
        """``<what> (tick 12 of 100; players: 0 'A' active answered 12, ...)`` from the
        loop's newest report, for error messages."""
        r, cfg = self._report, self._config
        players = (
            ", ".join(f"{p.id} {p.name!r} {p.status.value} answered {p.answered}" for p in r.players)
            if r
            else ""
        ) or "none joined"
        phase = (
            f"tick {r.tick} of {r.ticks}"
            if r and r.running
            else f"still in the lobby, {r.ready if r else 0} of {cfg.players} player(s) ready"
        )
        return f"{what} ({phase}; players: {players})"

    def close(self, grace_s: float = SERVER_STOP_GRACE_S) -> None:
        """Stop the run if it is going and wait (bounded) until the sockets are closed."""
        if not self._thread.is_alive() and not self.done:  # never started: sockets are open
            self.server.close()
            self._done.set()
            return
        if not self.done:
            self.stop("stopped at test teardown")
            if not self.wait_done(grace_s):
                log.error(
                    "the tickwire server thread did not stop within %.0f s (is a World method blocking?)",
                    grace_s,
                )


def _server_config(
    players: int,
    ticks: int,
    seed: int,
    mode: str,
    deadline_ms: float,
    bind: str,
    lobby_timeout_s: float,
    **more: Any,
) -> ServerConfig:
    from tickwire.server.world_server.config import ServerConfig

    return ServerConfig(
        bind=bind,
        players=players,
        ticks=ticks,
        seed=seed,
        mode=mode,
        deadline_ms=deadline_ms,
        lobby_timeout_s=lobby_timeout_s,
        **more,
    )


def _ipc_dir() -> str:
    d = tempfile.mkdtemp(prefix="tw-pytest-")
    if len(d) > _MAX_IPC_DIR and os.path.isdir("/tmp"):
        os.rmdir(d)
        d = tempfile.mkdtemp(prefix="tw-pytest-", dir="/tmp")
    return d


# --------------------------------------------------------------------------- fixtures
class MatchRunner:
    """The ``tickwire_run`` fixture's value: call it to run one match; see :meth:`__call__`."""

    def __init__(self, base_dir: Path | None = None) -> None:
        self.base_dir = base_dir

    def __call__(
        self,
        agents: Sequence[Any],
        world: Any = None,
        *,
        ticks: int = DEFAULT_TICKS,
        seed: int = 0,
        mode: str = "strict",
        deadline_ms: float = 100.0,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: str = "ipc",
        **config: Any,
    ) -> RunSummary:
        """Run a local match, one real agent process per entry of ``agents`` (entry ``i``
        plays as player ``i``), and return the ``tickwire run --json`` summary.

        ``agents``: Agent subclasses, Agent instances (pickled, e.g. to pass parameters),
        ``"pkg.mod:Class"`` or ``"file.py:Class"`` (relative to the test file's directory).
        ``world``: None (the grid world), a World instance or class, or a spec string.
        ``config``: further ServerConfig fields (``on_missing``, ``strikes``, ...).
        Fails the test if the match has not ended within ``timeout`` seconds.
        """
        if transport not in ("ipc", "tcp"):
            raise ValueError(f"transport must be 'ipc' or 'tcp', got {transport!r}")
        recipes = _unique_names([AgentRecipe.of(a, self.base_dir) for a in agents])
        if not recipes:
            raise ValueError("tickwire_run needs at least one agent")
        the_world = _load_world(world, self.base_dir)
        # One bound for the whole match, ours: its report says who is in the lobby.
        config.setdefault("lobby_timeout_s", timeout + 5.0)
        workdir = _ipc_dir()
        bind = f"ipc://{workdir}/run" if transport == "ipc" else "tcp://127.0.0.1:0"
        procs = AgentProcesses(recipes, workdir, join_timeout_s=timeout)
        server: LiveServer | None = None
        try:
            server = LiveServer(
                the_world, _server_config(len(recipes), ticks, seed, mode, deadline_ms, bind, **config)
            )
            server.start()
            procs.start(server.address)
            ended = self._supervise(server, procs, timeout)
            report = None if ended else server.progress_report(f"did not end within {timeout:g} s")
        finally:
            if server is not None:
                server.close()
            procs.reap()
            shutil.rmtree(workdir, ignore_errors=True)
        if report:
            pytest.fail(
                f"tickwire_run: the match {report}. Agents: "
                + "; ".join(procs.describe(i) for i in range(len(recipes)))
                + ". Raise timeout= or lower ticks=.",
                pytrace=False,
            )
        summary = RunSummary(server.result())
        summary.exit_codes = procs.exit_codes
        summary.errors = [procs.error(i) for i in range(len(recipes))]
        summary.pids = procs.pids
        summary.address = server.address
        for i, err in enumerate(summary.errors):
            if err:
                log.warning("agent %d (%s) failed: %s", i, recipes[i].name, err)
        return summary

    @staticmethod
    def _supervise(server: LiveServer, procs: AgentProcesses, timeout: float) -> bool:
        """Wait for the run's end; an agent process that exits in the lobby (a crash in
        ``setup`` or at import) ends the lobby at once. False on timeout."""
        deadline = time.monotonic() + timeout
        while not server.done:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if server.running:
                server.wait_done(left)
                continue
            for i in procs.wait_exits(min(left, 0.1)):
                if not server.running:
                    server.stop(procs.describe(i, " before the run started"))
            if not any(p.exitcode is None for p in procs.procs):
                server.wait_done(min(left, 0.1))
        return True


class ServerFactory:
    """The ``tickwire_server`` fixture's value: call it to start a live server."""

    def __init__(self, base_dir: Path | None = None) -> None:
        self.base_dir = base_dir
        self.servers: list[LiveServer] = []

    def __call__(
        self,
        players: int = 1,
        world: Any = None,
        *,
        ticks: int = DEFAULT_TICKS,
        seed: int = 0,
        mode: str = "strict",
        deadline_ms: float = 100.0,
        bind: str = "tcp://127.0.0.1:0",
        lobby_timeout_s: float = 30.0,
        **config: Any,
    ) -> LiveServer:
        """Start a server for ``players`` players on free ports (or ``bind``), running in a
        background thread; stopped at teardown. Connect agents to ``.address``."""
        server = LiveServer(
            _load_world(world, self.base_dir),
            _server_config(players, ticks, seed, mode, deadline_ms, bind, lobby_timeout_s, **config),
        )
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture
def tickwire_run(request: pytest.FixtureRequest) -> MatchRunner:
    """``summary = tickwire_run(agents=[MyAgent, "file.py:Other"], world=None, ticks=100,
    seed=0, mode="strict", deadline_ms=100, timeout=60)``: a local match with real agent
    processes; returns the ``tickwire run --json`` dict (see :class:`RunSummary`). Each call
    reaps its processes and removes its ipc directory before it returns, pass or fail."""
    return MatchRunner(Path(str(request.path)).parent)


@pytest.fixture
def tickwire_server(request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """``server = tickwire_server(players=2, ticks=100, world=None, mode="strict")``: a live
    server on free tcp ports in a background thread. Agents connect to ``server.address``;
    ``server.wait(timeout)`` returns the summary. Stopped and closed at teardown."""
    factory = ServerFactory(Path(str(request.path)).parent)
    try:
        yield factory
    finally:
        factory.close()
