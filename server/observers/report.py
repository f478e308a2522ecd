"""The one record the world server's loop hands its observers (the progress line, the
``--metrics`` endpoint, the pytest plugin, a ``progress=`` callback): a frozen snapshot, so an
observer never reads the server's internals and a reader on another thread (a Prometheus
scrape) never sees them change under it.

The loop builds one :class:`TickReport` after every tick, one when the run starts, and one in
the lobby whenever who joined (or their status) changed; only when an observer is attached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tickwire.protocol.server_rules import Rejection
from tickwire.protocol.server_status import PLAYING, Status


@dataclass(frozen=True, slots=True)
class PlayerReport:
    """One player's status and counters at the report's time."""

    id: int
    name: str
    status: Status
    answered: int
    missed: int
    late: int


@dataclass(frozen=True, slots=True)
class TickReport:
    """Where the run is: ``tick`` ticks are done of ``ticks``; ``tick_s`` is the wall time of
    the tick that just ended (None for a report that ends no tick: lobby, start); ``now`` is
    the loop's monotonic clock when it was built (rates are measured from it)."""

    run: str
    tick: int
    ticks: int
    players_wanted: int
    running: bool
    now: float
    tick_s: float | None
    players: tuple[PlayerReport, ...]
    rejected: Mapping[Rejection, int]

    @property
    def answered(self) -> int:
        return sum(p.answered for p in self.players)

    @property
    def missed(self) -> int:
        return sum(p.missed for p in self.players)

    @property
    def late(self) -> int:
        return sum(p.late for p in self.players)

    @property
    def live(self) -> int:
        """Players the barrier waits for (their status is one that plays)."""
        return sum(p.status in PLAYING for p in self.players)

    @property
    def ready(self) -> int:
        """Players ready in the lobby."""
        return sum(p.status is Status.READY for p in self.players)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())
