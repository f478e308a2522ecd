"""Membership: who joined, who is ready, live, inactive or gone, and per-player statistics.

Pure bookkeeping for the server's rules (:mod:`tickwire.protocol.server_rules`): statuses
change only through :meth:`Roster.transition`, which consults the one table in
:mod:`tickwire.protocol.server_status`.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .barrier import TickResult
from .digest import player_seed
from .server_status import PLAYING, PlayerEvent, Status, next_status

#: How many missed ticks per player a late answer may still be counted against (the most
#: recent ones): bounds the memory a player that never answers can cost.
MISSES_KEPT = 256
#: A LEAVE's reason is kept (for the summary) up to this many characters.
LEAVE_REASON_CHARS = 500
#: How many players that left in the lobby the summary names (the most recent ones).
LOBBY_LEAVES_KEPT = 16


def short_reason(reason: str) -> str:
    """A LEAVE's reason as the summary keeps it: at most :data:`LEAVE_REASON_CHARS` characters."""
    reason = reason or "no reason given"
    return reason if len(reason) <= LEAVE_REASON_CHARS else reason[: LEAVE_REASON_CHARS - 1] + "…"


class LogHistogram:
    """Response times in log-spaced buckets, one row of counts per player slot: quantiles
    over a whole run in fixed memory (:data:`BUCKETS` 4-byte counts, about 2 KB per slot
    that ever answered: ``np.zeros`` leaves a row's pages untouched until then; with 10,000
    players that is 20 MB, half of what 8-byte counts took). The counts become 8-byte ones
    before any could pass 2**32 - 1 (once that many values were counted in all).

    A bucket's width is a fixed ratio, so a quantile is within :data:`RELATIVE_ERROR` of
    numpy's percentile of the same values, or within ``MIN_S`` (1 µs) for values below it;
    values above :data:`MAX_S` count as ``MAX_S``. Bucket ``i`` >= 1 holds
    ``(MIN_S * G**(i-1), MIN_S * G**i]`` and reads as the point within RELATIVE_ERROR of
    both ends (as DDSketch does); bucket 0 holds everything up to ``MIN_S`` and reads as 0.
    New values wait in a buffer (folded once it holds :data:`FOLD_EVERY` or more: at most
    that plus one closed tick's) and are counted together with numpy: the hot path pays two
    list appends per closed tick, not per value.
    """

    RELATIVE_ERROR = 0.02
    MIN_S = 1e-6
    MAX_S = 1e3
    G = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
    BUCKETS = math.ceil(math.log(MAX_S / MIN_S) / math.log(G)) + 1
    FOLD_EVERY = 4096

    def __init__(self, rows: int) -> None:
        self.counts = np.zeros((rows, self.BUCKETS), dtype=np.uint32)
        self._counted = 0  #: values counted in all: no bucket can hold more
        self._rows: list[np.ndarray] = []
        self._seconds: list[np.ndarray] = []
        self._buffered = 0

    def add(self, seconds: dict[int, float]) -> None:
        """Count ``seconds[row]`` in each ``row`` (a closed tick's response times by player)."""
        n = len(seconds)
        if n:
            self.add_arrays(
                np.fromiter(seconds.keys(), np.intp, n), np.fromiter(seconds.values(), np.float64, n)
            )

    def add_arrays(self, rows: np.ndarray, seconds: np.ndarray) -> None:
        """Count ``seconds[i]`` in row ``rows[i]`` (``rows``: intp, ``seconds``: float64)."""
        self._rows.append(rows)
        self._seconds.append(seconds)
        self._buffered += len(rows)
        if self._buffered >= self.FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        """Count the buffered values into their rows' buckets; empty the buffer."""
        if not self._rows:
            return
        rows = self._rows[0] if len(self._rows) == 1 else np.concatenate(self._rows)
        seconds = self._seconds[0] if len(self._seconds) == 1 else np.concatenate(self._seconds)
        times = np.maximum(seconds, self.MIN_S)
        buckets = np.ceil(np.log(times * (1 / self.MIN_S)) * (1 / math.log(self.G)))
        flat = rows * self.BUCKETS + np.minimum(buckets, self.BUCKETS - 1).astype(np.intp)
        self._counted += len(flat)
        if self._counted > np.iinfo(self.counts.dtype).max:  # a bucket might wrap: widen first
            self.counts = self.counts.astype(np.uint64)
        np.add.at(self.counts.reshape(-1), flat, self.counts.dtype.type(1))  # flat: ~4x faster than 2-D
        self._rows.clear()
        self._seconds.clear()
        self._buffered = 0

    def clear_row(self, row: int) -> None:
        """Forget row ``row``'s values (its slot has a new player)."""
        self._fold()
        self.counts[row] = 0

    def quantile(self, row: int, q: float) -> float | None:
        """Row ``row``'s ``q`` quantile (0..1), with numpy's linear interpolation between the
        two values around it, each read as its bucket's point; None if it has no values."""
        self._fold()
        cum = np.cumsum(self.counts[row])
        n = int(cum[-1])
        if n == 0:
            return None
        pos = q * (n - 1)
        lo = math.floor(pos)
        below, above = np.searchsorted(cum, [lo, min(lo + 1, n - 1)], side="right")
        v_lo, v_hi = self._point(int(below)), self._point(int(above))
        return v_lo + (pos - lo) * (v_hi - v_lo)

    def _point(self, i: int) -> float:
        return 0.0 if i == 0 else self.MIN_S * self.G**i * 2 / (self.G + 1)


def secret_topic() -> bytes:
    """A new readiness topic. It is secret (only WELCOME carries it) and random: a stranger
    who subscribed to it would keep it alive at the XPUB and hide this player's death."""
    return f"tw.{secrets.token_hex(16)}".encode()


class PlayerColumns:
    """The per-player counters of a roster as columns indexed by slot (numpy ``int64``, the
    response-time sum ``float64``) and each slot's last answered action: a closed tick is
    counted with a few numpy operations for all its players (:meth:`Roster.count`), not a
    Python loop over them. :class:`Player` reads and writes its slot's entries."""

    def __init__(self, capacity: int) -> None:
        def zeros() -> np.ndarray:
            return np.zeros(capacity, dtype=np.int64)

        self.answered, self.missed, self.late, self.dead = zeros(), zeros(), zeros(), zeros()
        self.left, self.not_joined, self.done = zeros(), zeros(), zeros()
        self.streak = zeros()  #: consecutive missed ticks
        self.rt_sum = np.zeros(capacity, dtype=np.float64)
        #: {slot: its player's last answered action} (``--on-missing repeat``)
        self.last_actions: dict[int, Any] = {}

    def reset(self, slot: int) -> None:
        """Zero ``slot``'s counters (a new player takes it)."""
        for column in (
            self.answered,
            self.missed,
            self.late,
            self.dead,
            self.left,
            self.not_joined,
            self.done,
            self.streak,
            self.rt_sum,
        ):
            column[slot] = 0
        self.last_actions.pop(slot, None)


class _Counter:
    """A :class:`Player` counter kept in its roster's :class:`PlayerColumns` (a Python int
    to its readers)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, player: Player, owner: type | None = None) -> int:
        return int(getattr(player.columns, self.name)[player.id])

    def __set__(self, player: Player, value: int) -> None:
        getattr(player.columns, self.name)[player.id] = value


@dataclass
class Player:
    """One player slot and what we know about it.

    Accounting: every tick played counts once per player, in exactly one of ``answered``,
    ``missed`` (playing, no action in time), ``dead`` (its connection was down), ``left``
    (after its LEAVE), ``not_joined`` (it was not playing yet: never proved readiness, or
    joined late) and ``done`` (playing, but its own view said terminated or truncated: out
    of that tick). Ticks spent coming back after a death (a rejoin that has not proved
    readiness yet) count as ``dead``. ``rejoins`` counts how often a new process took the
    slot back. The counters and ``last_action`` live in the roster's :class:`PlayerColumns`
    (``columns``), at index ``id``.
    """

    id: int
    name: str
    identity: bytes
    token: str
    topic: bytes
    seed: int
    columns: PlayerColumns = field(repr=False)
    status: Status = Status.JOINED
    subscribed: bool = False
    ready_sent: bool = False
    rejoins: int = 0
    key: str | None = None  #: the key name (ZAP User-Id) the slot is bound to; None without keys
    leave_reason: str | None = None  #: its LEAVE's reason (bounded), once it left
    #: ticks counted as missed and not yet answered late, oldest first (an ordered set of at
    #: most MISSES_KEPT): a late answer counts only against one of these, and only once
    _unanswered: dict = field(default_factory=dict)
    #: the roster's response-time histogram (row ``id`` is this player's), for the p99
    _times: LogHistogram | None = None

    answered = _Counter()
    missed = _Counter()
    late = _Counter()
    dead = _Counter()
    left = _Counter()
    not_joined = _Counter()
    done = _Counter()
    streak = _Counter()  #: consecutive missed ticks

    @property
    def last_action(self) -> Any:
        """The last action it answered (or the one remembered from before a resume)."""
        return self.columns.last_actions.get(self.id)

    @last_action.setter
    def last_action(self, action: Any) -> None:
        self.columns.last_actions[self.id] = action

    def record_answer(self, action: Any, response_s: float) -> None:
        """Count an answer (its response time goes to the histogram in :meth:`Roster.count`,
        for all the tick's answers at once)."""
        cols, i = self.columns, self.id
        cols.answered[i] += 1
        cols.streak[i] = 0
        cols.last_actions[i] = action
        cols.rt_sum[i] += response_s

    def record_miss(self, tick: int) -> None:
        """Count ``tick`` as missed: playing, no action in time."""
        cols, i = self.columns, self.id
        cols.missed[i] += 1
        cols.streak[i] += 1
        self._unanswered[tick] = None
        if len(self._unanswered) > MISSES_KEPT:
            del self._unanswered[next(iter(self._unanswered))]

    def answered_late(self, tick: int) -> bool:
        """An action for the closed ``tick`` arrived: count it ``late`` if that tick was
        counted as missed for this player (once per tick); False otherwise (a tick it sat out
        as not joined or dead, answered in time, or a repeat)."""
        if self._unanswered.pop(tick, 0) is None:
            self.columns.late[self.id] += 1
            return True
        return False

    def record_absence(self, status: Status) -> None:
        """Count a tick this player was not part of, by the status it had during that tick."""
        cols, i = self.columns, self.id
        if status is Status.LEFT:
            cols.left[i] += 1
        elif status is Status.DEAD or self.rejoins:  # dead, or still coming back after a death
            cols.dead[i] += 1
        else:
            cols.not_joined[i] += 1

    def stats(self) -> dict[str, Any]:
        """Counters and response times over the whole run: the mean, and the p99 within
        ``LogHistogram.RELATIVE_ERROR`` (2 %) from a fixed-size histogram."""
        p99 = None if self._times is None else self._times.quantile(self.id, 0.99)
        p99 = None if p99 is None else p99 * 1e3
        answered = self.answered
        mean = float(self.columns.rt_sum[self.id]) / answered * 1e3 if answered else None
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "answered": answered,
            "missed": self.missed,
            "late": self.late,
            "dead": self.dead,
            "left": self.left,
            "not_joined": self.not_joined,
            "rejoins": self.rejoins,
            "done": self.done,
            "leave_reason": self.leave_reason,
            "mean_ms": None if mean is None else round(mean, 3),
            "p99_ms": None if p99 is None else round(p99, 3),
        }


class Roster:
    """All player slots of one run, looked up by id, control identity or readiness topic."""

    def __init__(self, run: str, seed: int, capacity: int, strikes: int) -> None:
        self.run = run
        self.seed = seed
        self.capacity = capacity
        self.strikes = strikes
        self.players: dict[int, Player] = {}
        #: bumped whenever a status, a name or the set of players changes: a reader (the run
        #: record) rebuilds its status table only when this moved, not every tick
        self.version = 0
        #: {slot: action} remembered from before this run (a resumed run): a player added
        #: to that slot starts with it as its ``last_action``
        self.remembered: dict[int, Any] = {}
        #: {slot: name} recorded before this run (a resumed run): the slot's player keeps it
        #: if it asks for the same name, and no other slot takes it first
        self.recorded_names: dict[int, str] = {}
        self._by_identity: dict[bytes, Player] = {}
        #: {name: slot} of every player, and {name: slot} of :attr:`recorded_names`: a JOIN's
        #: name is checked in constant time, not against every other player's
        self._by_name: dict[str, int] = {}
        self._recorded_by_name: dict[str, int] = {}
        #: how many players have each status, kept by add/remove/transition (the lobby's
        #: verdict reads it per loop turn: constant time, not a pass over every player)
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)
        #: the players in status JOINED (an ordered set), in the order they became JOINED:
        #: in the lobby that is the order they joined in, the oldest first (ready timeout)
        self.joined: dict[int, None] = {}
        #: free_slot: (the reserved slots it was asked with, a slot such that every lower
        #: one is taken or reserved): the lowest free slot is found without a scan from 0
        self._free_from: tuple[frozenset, int] = (frozenset(), 0)
        #: the last :meth:`split` (version, accepting, awaited, absent): reused while no status
        #: changed, so opening a tick does not visit every player
        self._split: tuple[int, frozenset[int], frozenset[int], dict[int, Status]] | None = None
        self._by_topic: dict[bytes, Player] = {}
        self.response_times = LogHistogram(capacity)
        #: every slot's counters as columns (:meth:`count` updates them per tick with numpy)
        self.columns = PlayerColumns(capacity)
        #: (version, ids, names, statuses) of :meth:`report_columns`, reused while no status,
        #: name or player changed
        self._listing: tuple[int, np.ndarray, tuple[str, ...], tuple[Status, ...]] | None = None
        #: players that LEFT in the lobby (their slots freed): ``id``, ``name``, ``reason``;
        #: the most recent :data:`LOBBY_LEAVES_KEPT`
        self.left_in_lobby: list[dict[str, Any]] = []

    def by_identity(self, identity: bytes) -> Player | None:
        return self._by_identity.get(identity)

    def by_topic(self, topic: bytes) -> Player | None:
        return self._by_topic.get(topic)

    def free_slot(self, wanted: int | None, reserved: frozenset = frozenset()) -> int | None:
        """The requested slot if free, else the lowest free one; None if none fits.
        ``reserved`` slots (kept for other keys) are never free."""
        if wanted is not None:
            ok = 0 <= wanted < self.capacity and wanted not in self.players and (wanted not in reserved)
            return wanted if ok else None
        known, start = self._free_from
        if known != reserved:  # asked with other reserved slots: nothing known below
            start = 0
        players = self.players
        slot = next((i for i in range(start, self.capacity) if i not in players and i not in reserved), None)
        # every slot below the one found (or all, if none) is taken or reserved
        self._free_from = (reserved, self.capacity if slot is None else slot)
        return slot

    def add(self, slot: int, name: str, identity: bytes, ticks_before: int = 0) -> Player:
        """A new player in ``slot``; ``ticks_before`` ticks were played without it (late join)."""
        name = self.unique_name(name or f"player-{slot}", slot)
        player = Player(
            id=slot,
            name=name,
            identity=identity,
            token=secrets.token_hex(8),
            topic=secret_topic(),
            seed=player_seed(self.seed, slot),
            columns=self.columns,
            _times=self.response_times,
        )
        player.not_joined = ticks_before
        if slot in self.remembered:
            player.last_action = self.remembered[slot]
        self.players[slot] = player
        self.version += 1
        self.counts[player.status] += 1
        if player.status is Status.JOINED:
            self.joined[slot] = None
        self._by_name[name] = slot
        self._by_identity[identity] = player
        self._by_topic[player.topic] = player
        return player

    def unique_name(self, name: str, slot: int) -> str:
        """``name`` if no other slot's player holds it, else ``name-SLOT`` (then ``name-SLOT-2``
        …): names are for people, so keep them unique; the first holder keeps it bare. In a
        resumed run a slot keeps its recorded name when asked for by the same name, and the
        recorded names of slots not back yet are kept for them: names do not swap with the
        order in which the agents come back."""
        by_name, recorded_by_name, players = self._by_name, self._recorded_by_name, self.players

        def taken(n: str) -> bool:  # another slot's player has it, or a slot not back yet
            holder = by_name.get(n, slot)
            if holder != slot:
                return True
            kept = recorded_by_name.get(n, slot)
            return kept != slot and kept not in players

        recorded = self.recorded_names.get(slot)
        if (
            recorded is not None
            and not taken(recorded)
            and (recorded == name or recorded.startswith(f"{name}-{slot}"))
        ):
            return recorded
        candidate, n = name, 1
        while taken(candidate):
            candidate = f"{name}-{slot}" if n == 1 else f"{name}-{slot}-{n}"
            n += 1
        return candidate

    def remember(self, last_actions: dict[int, Any], names: dict[int, str] | None = None) -> None:
        """Seed each slot's last action (a resumed run: the last action each player answered
        before the server died), so ``--on-missing repeat`` repeats it as an uninterrupted
        run would until the player answers again. Players already present get it too.
        ``names``: each slot's recorded name (see :meth:`unique_name`)."""
        self.remembered = dict(last_actions)
        self.recorded_names = dict(names or {})
        self._recorded_by_name = {n: s for s, n in self.recorded_names.items()}
        for slot, player in self.players.items():
            if slot in self.remembered:
                player.last_action = self.remembered[slot]

    def rejoin(self, player: Player, identity: bytes, name: str = "") -> None:
        """A new process takes ``player``'s slot back: new control identity, token and
        readiness topic (the old process's traffic, if any still arrives, no longer counts),
        and the new process's ``name`` (de-duplicated as at a first join; empty: unchanged)."""
        new_name = self.unique_name(name, player.id) if name else player.name
        if new_name != player.name:
            if self._by_name.get(player.name) == player.id:
                del self._by_name[player.name]
            player.name = new_name
            self._by_name[new_name] = player.id
            self.version += 1
        self._by_identity.pop(player.identity, None)
        self._by_topic.pop(player.topic, None)
        player.rejoins += 1
        player.identity, player.token = identity, secrets.token_hex(8)
        self.version += 1  # a new token: verified groups of players (ACTION_ARRAY) are stale
        player.topic = secret_topic()  # new and random too: the old one may be known
        player.subscribed = player.ready_sent = False
        player.streak = 0
        self._by_identity[identity] = player
        self._by_topic[player.topic] = player

    def remove(self, player: Player) -> None:
        """Forget a player that went away in the lobby, freeing its slot; one that said
        LEAVE is remembered in :attr:`left_in_lobby` with its reason."""
        if player.leave_reason is not None:
            self.left_in_lobby.append({"id": player.id, "name": player.name, "reason": player.leave_reason})
            del self.left_in_lobby[:-LOBBY_LEAVES_KEPT]
        del self.players[player.id]
        self.columns.reset(player.id)  # the slot is free: its next player starts from zero
        self.response_times.clear_row(player.id)
        self.version += 1
        self.counts[player.status] -= 1
        self.joined.pop(player.id, None)
        if self._by_name.get(player.name) == player.id:
            del self._by_name[player.name]
        start = self._free_from
        if player.id < start[1]:
            self._free_from = (start[0], player.id)
        self._by_identity.pop(player.identity, None)
        self._by_topic.pop(player.topic, None)

    def transition(self, player: Player, event: PlayerEvent) -> Status:
        """Apply ``event`` to ``player`` as the table says; return its previous status."""
        old = player.status
        new = player.status = next_status(player.id, old, event)
        if new is not old:
            self.version += 1
            counts = self.counts
            counts[old] -= 1
            counts[new] += 1
            if old is Status.JOINED:
                self.joined.pop(player.id, None)
            elif new is Status.JOINED:
                self.joined[player.id] = None
        return old

    def ready(self) -> list[Player]:
        return [p for p in self.players.values() if p.status is Status.READY]

    def accepting(self) -> list[int]:
        return [p.id for p in self.players.values() if p.status in PLAYING]

    def awaited(self) -> list[int]:
        return [p.id for p in self.players.values() if p.status is Status.ACTIVE]

    def absent(self) -> dict[int, Status]:
        """Players not part of the tick being opened, with the status that keeps them out."""
        return {p.id: p.status for p in self.players.values() if p.status not in PLAYING}

    def split(
        self, done: frozenset[int] = frozenset()
    ) -> tuple[frozenset[int], frozenset[int], dict[int, Status]]:
        """(accepting, awaited, absent) for the tick being opened, in one pass; playing
        players in ``done`` (their view said terminated/truncated) are in none of them."""
        cached = self._split
        if not done and cached is not None and cached[0] == self.version:
            return cached[1], cached[2], dict(cached[3])  # no status changed: the same split
        accepting: list[int] = []
        awaited: list[int] = []
        absent: dict[int, Status] = {}
        for p in self.players.values():
            status = p.status
            if done and p.id in done:
                continue
            if status is Status.ACTIVE:
                accepting.append(p.id)
                awaited.append(p.id)
            elif status is Status.INACTIVE:
                accepting.append(p.id)
            else:
                absent[p.id] = status
        split = frozenset(accepting), frozenset(awaited)
        self._split = None if done else (self.version, *split, dict(absent))
        return *split, absent

    def count(
        self, result: TickResult, absent: dict[int, Status], done: frozenset[int] = frozenset()
    ) -> list[Player]:
        """Count a closed tick for everyone; return the players that missed it (in id order).
        The answers are counted as columns (a few numpy operations for all of them)."""
        players, cols = self.players, self.columns
        if done:
            cols.done[np.fromiter(done, np.intp, len(done))] += 1
        answers = result.actions
        n = len(answers)
        if n:
            columns = result.columns
            if columns is not None:  # the barrier's arrays: the same answers, no conversion
                ids = rows = columns.ids
                seconds = columns.response_s
            else:
                ids = np.fromiter(answers.keys(), np.intp, n)
                response_s = result.response_s
                m = len(response_s)
                rows = np.fromiter(response_s.keys(), np.intp, m)
                seconds = np.fromiter(response_s.values(), np.float64, m)
            cols.answered[ids] += 1  # ids are distinct: += counts each once
            cols.streak[ids] = 0
            cols.last_actions.update(answers)
            cols.rt_sum[rows] += seconds
            self.response_times.add_arrays(rows, seconds)
        missed = []
        for pid in sorted(result.missing):
            p = players[pid]
            p.record_miss(result.tick)
            missed.append(p)
        for pid, status in absent.items():
            players[pid].record_absence(status)
        return missed

    def report_columns(
        self,
    ) -> tuple[np.ndarray, tuple[str, ...], tuple[Status, ...], np.ndarray, np.ndarray, np.ndarray]:
        """(ids, names, statuses, answered, missed, late) of every player, in the roster's
        order: a snapshot (the counters are copies), for an observer's report. The ids, names
        and statuses are rebuilt only when the roster's ``version`` moved."""
        listing = self._listing
        if listing is None or listing[0] != self.version:
            ps = self.players.values()
            ids = np.fromiter((p.id for p in ps), np.intp, len(self.players))
            ids.flags.writeable = False
            listing = (self.version, ids, tuple(p.name for p in ps), tuple(p.status for p in ps))
            self._listing = listing
        _, ids, names, statuses = listing
        cols = self.columns
        return ids, names, statuses, cols.answered[ids], cols.missed[ids], cols.late[ids]

    def summary(self) -> list[dict[str, Any]]:
        return [self.players[i].stats() for i in sorted(self.players)]
