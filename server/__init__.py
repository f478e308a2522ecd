"""The tickwire world server: the I/O loop, worlds, the local launcher, PlayerPool and Chief.

The server's rules (barrier, roster, status table, join/ready/action rules) are pure and live
in :mod:`tickwire.protocol`; the names below re-export the ones users met here before.
"""
from tickwire.protocol import Offer, Roster, Status, TickBarrier, TickResult

from .chief import Chief, Item, WorkerStats
from .grid_world import GridWorld
from .loop import ServerConfig, WorldServer
from .pool import PlayerDied, PlayerError, PlayerPool
from .world import InvalidAction, World

__all__ = ["Offer", "TickBarrier", "TickResult", "GridWorld", "ServerConfig", "WorldServer",
           "Roster", "Status", "InvalidAction", "World",
           "PlayerPool", "PlayerError", "PlayerDied", "Chief", "Item", "WorkerStats"]
