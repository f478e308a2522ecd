"""The ``tickwire`` command: ``run`` (server + local agents), ``server``, ``agent``.

Every flag has a ``TICKWIRE_*`` environment variable (for containers); a flag on the
command line wins over the variable, the variable over the default.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from tickwire.agents import cli as agent_cli
from tickwire.agents.cli import DEFAULT_AGENT, env
from tickwire.agents.process import reap_resource_tracker
from tickwire.protocol import ConfigError, LobbyTimeout, TickwireError
from tickwire.protocol.loading import load_object
from tickwire.server.grid_world import write_png
from tickwire.server.launcher import LocalRun
from tickwire.server.loop import MODES, ON_MISSING, ServerConfig, WorldServer
from tickwire.server.progress import Progress
from tickwire.server.summary import format_summary, to_json
from tickwire.server.world import World

log = logging.getLogger(__name__)

DEFAULT_WORLD = "tickwire.server.grid_world:GridWorld"
EXIT_INTERRUPTED = 130


def _world_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--world", default=env("WORLD", DEFAULT_WORLD),
                   help=f"World class, pkg.module:Class or file.py:Class [env TICKWIRE_WORLD; "
                        f"default {DEFAULT_WORLD}]")
    p.add_argument("--ticks", type=int, default=env("TICKS", "1000"),
                   help="ticks to run [env TICKWIRE_TICKS; default 1000]")
    p.add_argument("--seed", type=int, default=env("SEED", "0"),
                   help="world seed; agents get per-player seeds from it [env TICKWIRE_SEED]")
    p.add_argument("--mode", choices=MODES, default=env("MODE", "strict"),
                   help="strict: wait for every live player (deterministic); deadline: close "
                        "each tick at --deadline-ms [env TICKWIRE_MODE; default strict]")
    p.add_argument("--deadline-ms", type=float, default=env("DEADLINE_MS", "100"),
                   help="tick deadline in deadline mode [env TICKWIRE_DEADLINE_MS; default 100]")
    p.add_argument("--on-missing", choices=ON_MISSING, default=env("ON_MISSING", "noop"),
                   help="action for a player that missed a tick [env TICKWIRE_ON_MISSING]")
    p.add_argument("--strikes", type=int, default=env("STRIKES", "3"),
                   help="deadline mode: consecutive misses before a player is no longer waited "
                        "for until it answers again (0 = never) [env TICKWIRE_STRIKES; default 3]")
    p.add_argument("--lobby-timeout", type=float, default=env("LOBBY_TIMEOUT", "60"),
                   help="seconds to wait for players [env TICKWIRE_LOBBY_TIMEOUT; default 60]")
    p.add_argument("--json", action="store_true", default=env("JSON", "") == "1",
                   help="print the summary as one JSON object on stdout [env TICKWIRE_JSON=1]")
    p.add_argument("--events", metavar="FILE", default=env("EVENTS"),
                   help="append one JSON object per line for listening, started, player status "
                        "changes and end to FILE [env TICKWIRE_EVENTS]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickwire", description="Lockstep worlds with agents "
                                     "in their own processes or containers, over ZeroMQ.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a world with N local agent processes")
    run.add_argument("--agents", type=int, default=env("AGENTS", "4"),
                     help="number of local agents (players) [env TICKWIRE_AGENTS; default 4]")
    run.add_argument("--agent", default=env("AGENT", DEFAULT_AGENT),
                     help=f"agent class [env TICKWIRE_AGENT; default {DEFAULT_AGENT}]")
    run.add_argument("--per-process", type=int, default=1,
                     help="agents hosted by each agent process (default 1)")
    run.add_argument("--pin-cpus", action="store_true",
                     help="pin agent process i to core i mod cores and run it as a "
                          "SCHED_BATCH task (Linux): steadier ticks when agents compute")
    run.add_argument("--transport", choices=("ipc", "tcp"), default="ipc",
                     help="ipc (default, fastest locally) or tcp on 127.0.0.1")
    run.add_argument("--render", metavar="PNG", help="write the final grid as a PNG image")
    _world_arguments(run)

    srv = sub.add_parser("server", help="run the world server; agents connect to it")
    srv.add_argument("--bind", default=env("BIND", "tcp://0.0.0.0:5555"),
                     help="base address: tcp://HOST:PORT uses PORT, PORT+1, PORT+2; "
                          "ipc:///path/prefix uses three paths [env TICKWIRE_BIND]")
    srv.add_argument("--players", type=int, default=env("PLAYERS", "2"),
                     help="players to wait for [env TICKWIRE_PLAYERS; default 2]")
    srv.add_argument("--min-players", type=int, default=env("MIN_PLAYERS"),
                     help="after --lobby-timeout, start with at least this many "
                          "[env TICKWIRE_MIN_PLAYERS]")
    _world_arguments(srv)

    sub.add_parser("bench", help="benchmark tickwire against the alternatives "
                   "(tickwire bench --help)", add_help=False)
    agent = sub.add_parser("agent", help="run agents against a server")
    agent_cli.add_arguments(agent)
    agent.add_argument("-v", "--verbose", action="store_true")
    return parser


def _config(args: argparse.Namespace, **over: Any) -> ServerConfig:
    return ServerConfig(
        bind=getattr(args, "bind", "ipc://unused"), players=getattr(args, "players", 1),
        ticks=args.ticks, seed=args.seed, mode=args.mode, deadline_ms=args.deadline_ms,
        on_missing=args.on_missing, strikes=args.strikes,
        min_players=getattr(args, "min_players", None), lobby_timeout_s=args.lobby_timeout,
        events_path=args.events, **over)


def _load_world(spec: str) -> World:
    cls = load_object(spec, "world")
    world = cls() if isinstance(cls, type) else cls
    if not isinstance(world, World):
        raise ConfigError(f"world {spec!r} is not a server.World (subclass it)")
    return world


def _serve(args: argparse.Namespace) -> int:
    world = _load_world(args.world)
    progress = None if args.quiet else Progress(args.ticks)
    if getattr(args, "render", None) and not hasattr(world, "render"):
        raise ConfigError(f"--render: world {args.world!r} has no render(state) method")
    if args.command == "run":
        if args.agents < 1 or args.per_process < 1:
            raise ConfigError("--agents and --per-process must be at least 1")
        agent_cli.load_agent_class(args.agent)  # fail here, not in N child processes
        runner = LocalRun(world, _config(args), args.agent, args.agents, args.transport,
                          args.per_process, progress,
                          logging.DEBUG if args.verbose else logging.WARNING,
                          pin_cpus=args.pin_cpus)
        server = runner.server
        run = runner.run
    else:
        server = WorldServer(world, _config(args), progress)
        run = server.run
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: server.stop(f"signal {signal.Signals(signum).name}"))
    try:
        summary = run()
    finally:
        if progress:
            progress.close()
    if getattr(args, "render", None) and server.final_state is not None:
        write_png(args.render, world.render(server.final_state))  # type: ignore[attr-defined]
    print(to_json(summary) if args.json else format_summary(summary), flush=True)
    return EXIT_INTERRUPTED if summary["reason"].startswith(("signal", "stopped in the lobby (signal")) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own parser: many flags that only it has
        from tickwire.bench import main as bench_main
        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "agent":
        return agent_cli.run_from_args(args)
    try:
        return _serve(args)
    except LobbyTimeout as e:
        print(f"tickwire: lobby timeout: {e}", file=sys.stderr)
        return 3
    except TickwireError as e:
        print(f"tickwire: {e}", file=sys.stderr)
        return 2
    finally:
        reap_resource_tracker()
