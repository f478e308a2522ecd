"""``tickwire agent``: run one or more agents of a class against a server."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from tickwire.protocol import AgentError, ConfigError, TransportError
from tickwire.protocol.loading import load_object

from .agent import Agent
from .runtime import AgentConfig, run

log = logging.getLogger(__name__)

DEFAULT_AGENT = "tickwire.agents.examples.greedy_agent:GreedyAgent"


def env(name: str, default: str | None = None) -> str | None:
    """A TICKWIRE_* environment variable (flags win over these, these over defaults)."""
    return os.environ.get(f"TICKWIRE_{name}", default)


def load_agent_class(spec: str) -> type[Agent]:
    cls = load_object(spec, "agent")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ConfigError(f"{spec!r} is not a subclass of agents.Agent")
    return cls


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect", default=env("CONNECT"),
                   help="server base address, e.g. tcp://HOST:5555 or ipc:///tmp/tw "
                        "[env TICKWIRE_CONNECT]")
    p.add_argument("--agent", default=env("AGENT", DEFAULT_AGENT),
                   help="agent class as pkg.module:Class or path/file.py:Class "
                        f"[env TICKWIRE_AGENT; default {DEFAULT_AGENT}]")
    p.add_argument("--name", default=env("NAME"), help="player name [env TICKWIRE_NAME]")
    p.add_argument("--count", type=int, default=env("COUNT", "1"),
                   help="host this many agents (players) in this one process [env TICKWIRE_COUNT]")
    p.add_argument("--slot", type=int, default=None, help="ask for this player slot")
    p.add_argument("--join-timeout", type=float, default=env("JOIN_TIMEOUT", "60"),
                   help="seconds to keep trying to reach the server [env TICKWIRE_JOIN_TIMEOUT]")
    p.add_argument("--server-timeout", type=float, default=env("SERVER_TIMEOUT", "10"),
                   help="exit when the server is silent this long [env TICKWIRE_SERVER_TIMEOUT]")


def run_from_args(args: argparse.Namespace) -> int:
    """Run agents as the parsed flags say; return a process exit code."""
    if not args.connect:
        print("tickwire agent: no server address; pass --connect tcp://HOST:PORT or set "
              "TICKWIRE_CONNECT", file=sys.stderr)
        return 2
    try:
        if args.count < 1:
            raise ConfigError(f"--count must be at least 1, got {args.count}")
        cls = load_agent_class(args.agent)
        agents = [cls() for _ in range(args.count)]
        for i, a in enumerate(agents):
            if args.name:
                a.name = args.name if args.count == 1 else f"{args.name}-{i}"
        results = run(agents, config=AgentConfig(
            connect=args.connect, slot=args.slot, join_timeout_s=args.join_timeout,
            server_timeout_s=args.server_timeout))
    except ConfigError as e:
        print(f"tickwire agent: {e}", file=sys.stderr)
        return 2
    except AgentError as e:
        print(f"tickwire agent: {e}", file=sys.stderr)
        return 3
    except TransportError as e:
        print(f"tickwire agent: {e}", file=sys.stderr)
        return 4
    for r in results:
        log.info("%s (player %s): acted on %d ticks, skipped %d; %s", r.name, r.player,
                 r.ticks, r.skipped, r.reason)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tickwire agent", description="Run agents against a "
                                "tickwire world server.")
    add_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return run_from_args(args)
