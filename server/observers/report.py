"""The one record the world server's loop hands its observers (the progress line, the
``--metrics`` endpoint, the pytest plugin, a ``progress=`` callback): a frozen snapshot, so an
observer never reads the server's internals and a reader on another thread (a Prometheus
scrape) never sees them change under it.

The loop builds one :class:`TickReport` after every tick, one when the run starts, and one in
the lobby whenever who joined (or their status) changed; only when an observer is attached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
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


class PlayerReports(Sequence[PlayerReport]):
    """A report's players as columns (the loop's cheap snapshot: three counter arrays copied
    per tick, not one object per player); reads as a sequence of :class:`PlayerReport`,
    each built when asked for. The arrays are read-only."""

    __slots__ = ("ids", "names", "statuses", "answered", "missed", "late")

    def __init__(
        self,
        ids: np.ndarray,
        names: Sequence[str],
        statuses: Sequence[Status],
        answered: np.ndarray,
        missed: np.ndarray,
        late: np.ndarray,
    ) -> None:
        for column in (answered, missed, late):
            column.flags.writeable = False
        self.ids, self.names, self.statuses = ids, names, statuses
        self.answered, self.missed, self.late = answered, missed, late

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, i: int) -> PlayerReport: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[PlayerReport, ...]: ...
    def __getitem__(self, i: int | slice) -> PlayerReport | tuple[PlayerReport, ...]:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        return PlayerReport(
            int(self.ids[i]),
            self.names[i],
            self.statuses[i],
            int(self.answered[i]),
            int(self.missed[i]),
            int(self.late[i]),
        )

    def __iter__(self) -> Iterator[PlayerReport]:
        return (self[i] for i in range(len(self)))


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
    players: Sequence[PlayerReport]  #: a tuple, or the loop's :class:`PlayerReports`
    rejected: Mapping[Rejection, int]

    def _total(self, what: str) -> int:
        players = self.players
        if isinstance(players, PlayerReports):
            return int(getattr(players, what).sum())
        return sum(getattr(p, what) for p in players)

    @property
    def answered(self) -> int:
        return self._total("answered")

    @property
    def missed(self) -> int:
        return self._total("missed")

    @property
    def late(self) -> int:
        return self._total("late")

    def _statuses(self) -> Sequence[Status]:
        players = self.players
        return players.statuses if isinstance(players, PlayerReports) else [p.status for p in players]

    @property
    def live(self) -> int:
        """Players the barrier waits for (their status is one that plays)."""
        return sum(s in PLAYING for s in self._statuses())

    @property
    def ready(self) -> int:
        """Players ready in the lobby."""
        return sum(s is Status.READY for s in self._statuses())

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())
