"""tickwire: many agents in their own processes or containers around one lockstep world.

The short imports are the documented way in::

    from tickwire import Agent, World, PlayerPool, run

They are resolved lazily (PEP 562), so ``import tickwire.protocol`` stays free of pyzmq
and of the server: the protocol package is pure and importable anywhere.

Subpackages, each importing only those before it: ``tickwire.protocol`` (wire and rules, no
I/O), ``tickwire.plumbing`` (the shared I/O pieces: keys, child processes),
``tickwire.agents`` (player side), ``tickwire.server`` (world-side roles); then the entry
points here: ``tickwire.cli`` (the command), the pytest plugin, ``tickwire.bench`` (the
benchmark harness).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tickwire.plumbing.lazy import lazy_exports

__version__ = "0.2.0"

#: short name → module that defines it
_EXPORTS = {
    "Agent": "tickwire.agents.agent",
    "BatchAgent": "tickwire.agents.batch",
    "AgentConfig": "tickwire.agents.config",
    "AgentResult": "tickwire.agents.runtime",
    "run": "tickwire.agents.runtime",
    "Worker": "tickwire.agents.worker",
    "SeatEnv": "tickwire.agents.env",
    "ParallelSeats": "tickwire.agents.env",
    "make_vector_env": "tickwire.agents.env",
    "launch_world": "tickwire.agents.env_launch",
    "World": "tickwire.server.worlds.world",
    "InvalidAction": "tickwire.server.worlds.world",
    "PlayerView": "tickwire.server.worlds.world",
    "ActionBatch": "tickwire.server.worlds.world",
    "GridWorld": "tickwire.server.worlds.grid_world",
    "WorldServer": "tickwire.server.world_server.loop",
    "ServerConfig": "tickwire.server.world_server.config",
    "PlayerPool": "tickwire.server.work.pool",
    "PlayerError": "tickwire.protocol.errors",
    "PlayerDied": "tickwire.protocol.errors",
    "PlayerStartError": "tickwire.protocol.errors",
    "PoolStateError": "tickwire.protocol.errors",
    "NotSubmitted": "tickwire.protocol.errors",
    "AlreadySubmitted": "tickwire.protocol.errors",
    "Chief": "tickwire.server.work.chief",
    "Item": "tickwire.server.work.chief",
    "TickwireError": "tickwire.protocol.errors",
    "ProtocolError": "tickwire.protocol.errors",
    "ConfigError": "tickwire.protocol.errors",
    "TransportError": "tickwire.protocol.errors",
    "LobbyTimeout": "tickwire.protocol.errors",
    "RunEnded": "tickwire.protocol.errors",
    "Refused": "tickwire.protocol.errors",
    "BindError": "tickwire.protocol.errors",
    "ServerUnreachable": "tickwire.protocol.errors",
    "ServerGone": "tickwire.protocol.errors",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 (a list, built from the lazy-export table)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from tickwire.agents.agent import Agent
    from tickwire.agents.batch import BatchAgent
    from tickwire.agents.config import AgentConfig
    from tickwire.agents.env import ParallelSeats, SeatEnv, make_vector_env
    from tickwire.agents.env_launch import launch_world
    from tickwire.agents.runtime import AgentResult, run
    from tickwire.agents.worker import Worker
    from tickwire.protocol.errors import (
        AlreadySubmitted,
        BindError,
        ConfigError,
        LobbyTimeout,
        NotSubmitted,
        PlayerDied,
        PlayerError,
        PlayerStartError,
        PoolStateError,
        ProtocolError,
        Refused,
        RunEnded,
        ServerGone,
        ServerUnreachable,
        TickwireError,
        TransportError,
    )
    from tickwire.server.work.chief import Chief, Item
    from tickwire.server.work.pool import PlayerPool
    from tickwire.server.world_server.config import ServerConfig
    from tickwire.server.world_server.loop import WorldServer
    from tickwire.server.worlds.grid_world import GridWorld
    from tickwire.server.worlds.world import ActionBatch, InvalidAction, PlayerView, World


_lazy_getattr, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


def __getattr__(name: str) -> object:
    """The short imports, loaded on first use; ``AgentError`` (the old name of ``Refused``)
    still works for one release and warns."""
    if name in _EXPORTS:
        return _lazy_getattr(name)
    from tickwire.protocol.errors import deprecated

    return deprecated(__name__, name)
