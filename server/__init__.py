"""The tickwire world server: the world loop, the tick barrier, membership, worlds, the CLI."""
from .barrier import Offer, TickBarrier, TickResult
from .chief import Chief, Item, WorkerStats
from .grid_world import GridWorld
from .loop import ServerConfig, WorldServer
from .pool import PlayerDied, PlayerError, PlayerPool
from .roster import Roster, Status
from .world import InvalidAction, World

__all__ = ["Offer", "TickBarrier", "TickResult", "GridWorld", "ServerConfig", "WorldServer",
           "Roster", "Status", "InvalidAction", "World",
           "PlayerPool", "PlayerError", "PlayerDied", "Chief", "Item", "WorkerStats"]
