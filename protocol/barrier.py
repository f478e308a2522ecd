"""The tick barrier: who answered tick t, who is still awaited, when the tick may close.

Sans-IO: times are passed in (``now``), nothing here reads a clock or touches a socket,
so every rule is testable without sleeping. Set algebra, in the spirit of ipyparallel's
heart monitor: ``accepting`` (may answer this tick) ⊇ ``awaited`` (the tick waits for
them) and ``answered``.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


class Offer(str, enum.Enum):
    """What happened to one offered action; every value but ACCEPTED is a rejection reason."""

    ACCEPTED = "accepted"
    STALE = "stale"  #: for a tick that has already closed
    FUTURE = "future_tick"  #: for a tick that has not been published
    DUPLICATE = "duplicate"  #: a second action from the same player for the same tick
    UNKNOWN = "unknown_player"  #: not a player of this tick


class TickColumns(NamedTuple):
    """A closed tick's accepted actions as columns, ids ascending: the same actions and
    response times as :class:`TickResult`'s dicts, for numpy readers (the roster's counts,
    a world that steps on arrays)."""

    ids: np.ndarray  #: int64, ascending
    actions: np.ndarray  #: first axis aligned with ``ids``
    response_s: np.ndarray  #: float64, aligned with ``ids``


@dataclass(frozen=True)
class TickResult:
    """The outcome of one tick: the accepted actions and who missed it. ``columns``: the
    same accepted actions as arrays, when every one of them was offered in columns
    (:meth:`TickBarrier.offer_batch` with ``columns``); else None."""

    tick: int
    actions: dict[int, Any]
    missing: frozenset[int]
    response_s: dict[int, float]
    timed_out: bool
    columns: TickColumns | None = None


class TickBarrier:
    """Collects exactly one action per (player, tick) and says when the tick may close.

    ``strict`` ticks (``deadline=None``) close only when every awaited player answered;
    deadline ticks also close when ``now >= deadline``. A deadline tick that awaits nobody
    (every player inactive) waits for all its accepting players instead, until the deadline:
    closing it at once would leave them no time to answer and come back.
    """

    def __init__(self) -> None:
        self.tick = -1
        self._open = False
        self._accepting: frozenset[int] = frozenset()
        self._awaited: set[int] = set()
        self._actions: dict[int, Any] = {}
        self._response: dict[int, float] = {}
        #: the open tick's accepted actions offered in columns: (ids, actions, response)
        self._chunks: list[tuple[np.ndarray, np.ndarray, float]] = []
        self._columnar = True  #: every accepted action of the open tick is in ``_chunks``
        #: the last (id arrays, order, sorted ids) of :meth:`_order`
        self._last_order: tuple[list[np.ndarray], np.ndarray | None, np.ndarray] | None = None
        self._started = 0.0
        self._deadline: float | None = None

    def begin(
        self,
        tick: int,
        accepting: Iterable[int],
        awaited: Iterable[int],
        *,
        now: float,
        deadline: float | None = None,
    ) -> None:
        """Open ``tick``: ``accepting`` may answer, the tick waits for ``awaited`` ones (for
        every accepting one if ``awaited`` is empty and the tick has a ``deadline``)."""
        if self._open:
            raise RuntimeError(f"tick {self.tick} is still open: close() it before begin()")
        if tick <= self.tick:
            raise ValueError(f"tick {tick} does not follow tick {self.tick}")
        self.tick = tick
        self._open = True
        self._accepting = frozenset(accepting)
        self._awaited = set(awaited) & self._accepting
        if not self._awaited and deadline is not None:
            self._awaited = set(self._accepting)
        self._actions = {}
        self._response = {}
        self._chunks = []
        self._columnar = True
        self._started = now
        self._deadline = deadline

    def offer(self, player: int, tick: int, action: Any, *, now: float) -> Offer:
        """Offer one action; only ACCEPTED ones will be in the tick's result."""
        if tick < self.tick or (tick == self.tick and not self._open):
            return Offer.STALE
        if tick > self.tick:
            return Offer.FUTURE
        if player not in self._accepting:
            return Offer.UNKNOWN
        if player in self._actions:
            return Offer.DUPLICATE
        self._actions[player] = action
        self._response[player] = now - self._started
        self._awaited.discard(player)
        self._columnar = False
        return Offer.ACCEPTED

    def offer_batch(
        self,
        players: list[int],
        tick: int,
        actions: list[Any],
        *,
        now: float,
        columns: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[tuple[int, Offer]]:
        """Offer the actions of several ``players`` at once (``actions[i]`` is
        ``players[i]``'s); return only the ones not ACCEPTED, each with its reason (in
        order). The same outcome as :meth:`offer` per entry, with the set work done once.
        ``columns``: the same ids (int64) and actions as arrays, kept for the result's
        :attr:`TickResult.columns` when every entry is accepted."""
        if tick != self.tick or not self._open:
            reason = Offer.FUTURE if tick > self.tick else Offer.STALE
            return [(pid, reason) for pid in players]
        accepting, taken = self._accepting, self._actions
        distinct = set(players)
        if len(distinct) == len(players) and distinct <= accepting and distinct.isdisjoint(taken):
            taken.update(zip(players, actions))  # the usual case: set algebra, no Python loop
            self._response.update(dict.fromkeys(players, now - self._started))
            self._awaited.difference_update(players)
            if columns is None:
                self._columnar = False
            elif self._columnar:
                self._chunks.append((columns[0], columns[1], now - self._started))
            return []
        self._columnar = False
        refused = []
        response = now - self._started
        for pid, action in zip(players, actions):  # entry by entry, in order, as offer() does
            if pid not in accepting:
                refused.append((pid, Offer.UNKNOWN))
            elif pid in taken:
                refused.append((pid, Offer.DUPLICATE))
            else:
                taken[pid] = action
                self._response[pid] = response
                self._awaited.discard(pid)
        return refused

    def admit(self, player: int) -> None:
        """Let ``player`` answer the open tick too (not awaited): it became able to play
        after the tick was opened (a rejoin or a late join)."""
        if self._open:
            self._accepting = self._accepting | {player}

    def drop(self, player: int) -> None:
        """Stop waiting for ``player`` (it died or left); an action it already sent stays."""
        self._awaited.discard(player)

    @property
    def is_open(self) -> bool:
        """True between begin() and close()."""
        return self._open

    @property
    def waiting_for(self) -> frozenset[int]:
        return frozenset(self._awaited)

    @property
    def complete(self) -> bool:
        """True when no awaited player is missing."""
        return not self._awaited

    def expired(self, now: float) -> bool:
        return self._deadline is not None and now >= self._deadline

    def time_left(self, now: float) -> float | None:
        """Seconds until the deadline (None in strict ticks)."""
        return None if self._deadline is None else max(0.0, self._deadline - now)

    def close(self) -> TickResult:
        """Close the tick; later offers for it are STALE."""
        if not self._open:
            raise RuntimeError("close() called with no tick open")
        self._open = False
        # handed over, not copied: begin() starts new dicts and nothing changes these meanwhile
        return TickResult(
            tick=self.tick,
            actions=self._actions,
            missing=self._accepting - self._actions.keys(),
            response_s=self._response,
            timed_out=bool(self._awaited),
            columns=self._columns() if self._columnar and self._chunks else None,
        )

    def _columns(self) -> TickColumns | None:
        """The accepted actions as columns (all were offered in columns), ids ascending; None
        if the chunks' actions differ in dtype or shape (they cannot share one array)."""
        chunks = self._chunks
        first = chunks[0][1]
        if any(c[1].dtype != first.dtype or c[1].shape[1:] != first.shape[1:] for c in chunks):
            return None
        if len(chunks) == 1:
            ids, actions = chunks[0][0], first
        else:
            actions = np.concatenate([c[1] for c in chunks])
        response = np.repeat(np.array([c[2] for c in chunks]), [len(c[0]) for c in chunks])
        order, ids = self._order([c[0] for c in chunks])
        if order is not None:
            actions, response = actions[order], response[order]
        return TickColumns(ids, actions, response)

    def _order(self, parts: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray]:
        """(the order that sorts the ids of ``parts`` put end to end (None: sorted already),
        the sorted ids). The same read-only id arrays in the same order (the same hosting
        processes' groups, as usually every tick) reuse the last answer."""
        cached = self._last_order
        if cached is not None and len(cached[0]) == len(parts) and all(map(operator.is_, cached[0], parts)):
            return cached[1], cached[2]
        ids = parts[0] if len(parts) == 1 else np.concatenate(parts)
        order = None
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
        if all(not p.flags.writeable for p in parts):  # kept alive here, so no id is reused
            self._last_order = (parts, order, ids)
        return order, ids
