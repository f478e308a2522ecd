"""tickwire: many agents in their own processes or containers around one lockstep world.

The short imports are the documented way in::

    from tickwire import Agent, World, PlayerPool, run

They are resolved lazily (PEP 562), so ``import tickwire.protocol`` stays free of pyzmq
and of the server: the protocol package is pure and importable anywhere.

Subpackages: ``tickwire.protocol`` (wire and rules, no I/O), ``tickwire.server``
(world-side roles), ``tickwire.agents`` (player side), ``tickwire.cli`` (the command),
``tickwire.bench`` (the benchmark harness).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: short name → module that defines it
_EXPORTS = {
    "Agent": "tickwire.agents.agent",
    "AgentConfig": "tickwire.agents.config",
    "AgentResult": "tickwire.agents.runtime",
    "run": "tickwire.agents.runtime",
    "Worker": "tickwire.agents.worker",
    "World": "tickwire.server.world",
    "InvalidAction": "tickwire.server.world",
    "PlayerView": "tickwire.server.world",
    "GridWorld": "tickwire.server.grid_world",
    "WorldServer": "tickwire.server.loop",
    "ServerConfig": "tickwire.server.config",
    "PlayerPool": "tickwire.server.pool",
    "PlayerError": "tickwire.server.pool",
    "PlayerDied": "tickwire.server.pool",
    "PlayerStartError": "tickwire.server.pool",
    "PoolStateError": "tickwire.server.pool",
    "NotSubmitted": "tickwire.server.pool",
    "AlreadySubmitted": "tickwire.server.pool",
    "Chief": "tickwire.server.chief",
    "Item": "tickwire.server.chief",
    "TickwireError": "tickwire.protocol.errors",
    "ProtocolError": "tickwire.protocol.errors",
    "ConfigError": "tickwire.protocol.errors",
    "TransportError": "tickwire.protocol.errors",
    "AgentError": "tickwire.protocol.errors",
    "LobbyTimeout": "tickwire.protocol.errors",
    "Refused": "tickwire.protocol.errors",
    "BindError": "tickwire.protocol.errors",
    "ServerUnreachable": "tickwire.protocol.errors",
    "ServerGone": "tickwire.protocol.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from tickwire.agents.agent import Agent
    from tickwire.agents.config import AgentConfig
    from tickwire.agents.runtime import AgentResult, run
    from tickwire.agents.worker import Worker
    from tickwire.protocol.errors import (
        AgentError,
        BindError,
        ConfigError,
        LobbyTimeout,
        ProtocolError,
        Refused,
        ServerGone,
        ServerUnreachable,
        TickwireError,
        TransportError,
    )
    from tickwire.server.chief import Chief, Item
    from tickwire.server.config import ServerConfig
    from tickwire.server.grid_world import GridWorld
    from tickwire.server.loop import WorldServer
    from tickwire.server.pool import (
        AlreadySubmitted,
        NotSubmitted,
        PlayerDied,
        PlayerError,
        PlayerPool,
        PlayerStartError,
        PoolStateError,
    )
    from tickwire.server.world import InvalidAction, PlayerView, World


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tickwire' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
