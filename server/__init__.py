"""The tickwire world server, one sub-package per subsystem: ``world_server`` (the I/O loop,
sockets, keys, the local launcher), ``observers`` (events, summary, progress, metrics),
``worlds`` (World, GridWorld, PettingZoo, the loader, check-world), ``record`` (the run log,
replay, the replay page) and ``work`` (PlayerPool, Chief and their hub).

The server's rules (barrier, roster, status table, join/ready/action rules) are pure and live
in :mod:`tickwire.protocol`; the names below re-export the ones users met here before. They
load on first use (PEP 562), so that ``python -m tickwire.server.work.pool_host`` (a PlayerPool
host) imports no more of the server than it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tickwire.plumbing.lazy import lazy_exports

#: short name → module that defines it
_EXPORTS = {
    "Offer": "tickwire.protocol",
    "TickBarrier": "tickwire.protocol",
    "TickResult": "tickwire.protocol",
    "Roster": "tickwire.protocol",
    "Status": "tickwire.protocol",
    "GridWorld": "tickwire.server.worlds.grid_world",
    "InvalidAction": "tickwire.server.worlds.world",
    "World": "tickwire.server.worlds.world",
    "ServerConfig": "tickwire.server.world_server.loop",
    "WorldServer": "tickwire.server.world_server.loop",
    "PlayerPool": "tickwire.server.work.pool",
    "PlayerError": "tickwire.server.work.pool",
    "PlayerDied": "tickwire.server.work.pool",
    "Chief": "tickwire.server.work.chief",
    "Item": "tickwire.server.work.chief",
    "WorkerStats": "tickwire.server.work.chief",
}

__all__ = [
    "Chief",
    "GridWorld",
    "InvalidAction",
    "Item",
    "Offer",
    "PlayerDied",
    "PlayerError",
    "PlayerPool",
    "Roster",
    "ServerConfig",
    "Status",
    "TickBarrier",
    "TickResult",
    "WorkerStats",
    "World",
    "WorldServer",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from tickwire.protocol import Offer, Roster, Status, TickBarrier, TickResult

    from .work.chief import Chief, Item, WorkerStats
    from .work.pool import PlayerDied, PlayerError, PlayerPool
    from .world_server.loop import ServerConfig, WorldServer
    from .worlds.grid_world import GridWorld
    from .worlds.world import InvalidAction, World


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
