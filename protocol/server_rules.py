"""The world server's rules as a sans-IO state machine: events and ``now`` in, decisions out.

In the spirit of h11's ``_connection.py``: nothing here touches a socket, reads a clock or
logs. The server's I/O loop (:mod:`tickwire.server.world_server.loop`) decodes frames, feeds
them in with the time it read once per loop turn (every event takes ``now``, as the agent's
rules do), and carries out what comes back: the records of
:mod:`tickwire.protocol.server_outputs` (:class:`SendTo`, :class:`Publish`,
:class:`Republish`, :class:`Probe`, :data:`ACCEPTED`, :class:`Rejected`,
:class:`StatusChange`; :class:`TickClosed` when a tick closes).

:class:`ServerRules` is the façade; the rules live in focused modules:

* :mod:`~tickwire.protocol.seats`: JOIN/WELCOME/refusal, rejoin and late join, the readiness
  proof, the sender check, LEAVE, lost subscriptions, probes, each player's spaces;
* :mod:`~tickwire.protocol.connection_ledger`: lost actions connections, what explains them,
  ``dropped_connection``, the memory guard's cuts;
* :mod:`~tickwire.protocol.lobby`: when the lobby starts the run or gives up, unready slots;
* :mod:`~tickwire.protocol.pacing` (``--tick-rate``) and :mod:`~tickwire.protocol.barrier`.

Here: action acceptance and every rejection of one, the tick (open, close, drop, the
missing-action policy and strikes), heartbeats, the next timeout, END, and with nobody playing
whether to wait for a dead player to come back or end the run (:meth:`ServerRules.next_tick`).
"""

from __future__ import annotations

import enum
import math
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .barrier import Offer, TickBarrier, TickResult
from .connection_ledger import LOST_ACTION_GRACE_S, ConnectionLedger
from .endpoints import Endpoints
from .errors import ProtocolError
from .lobby import Lobby, LobbyPolicy
from .messages import Action, ActionArray, Actions, End, Error, Heartbeat, Message, Observation, Ready
from .pacing import Pacer
from .roster import Player, Roster
from .seats import PROBE_EVERY_S, RuleSettings, Seats, Spaces, token_matches
from .server_outputs import (
    ACCEPTED,
    ACCEPTED_ONLY,
    NOTHING,
    Accepted,
    InvalidAction,
    Output,
    Probe,
    Publish,
    Rejected,
    Rejection,
    Republish,
    SendTo,
    StatusChange,
    StopReason,
    TickClosed,
    lobby_stop_reason,
    signal_reason,
)
from .server_status import PLAYING, PlayerEvent, Status
from .spaces import BatchChecker, SpaceError, batch_checker

__all__ = [
    "ACCEPTED",
    "ACCEPTED_ONLY",
    "LOST_ACTION_GRACE_S",
    "NOBODY_PLAYING_GRACE_S",
    "PROBE_EVERY_S",
    "Accepted",
    "InvalidAction",
    "Lobby",
    "NextTick",
    "Output",
    "Probe",
    "Publish",
    "Rejected",
    "Rejection",
    "Republish",
    "RuleSettings",
    "SendTo",
    "ServerRules",
    "Spaces",
    "StatusChange",
    "StopReason",
    "TickClosed",
    "View",
    "lobby_stop_reason",
    "signal_reason",
    "token_matches",
]

#: How long a run with nobody playing waits for a dead player to come back (a reconnected
#: subscription or a rejoin) before it ends: the state socket's heartbeat timeout (4 s), the
#: longest a link may be silent before its player is declared dead. A blip that resets every
#: agent's link at once is over within ~0.1 s (libzmq reconnects); a frozen link gets as long
#: to return as it got before it was declared dead.
NOBODY_PLAYING_GRACE_S = 4.0

_OFFER_REJECTION = {
    Offer.STALE: Rejection.STALE,
    Offer.FUTURE: Rejection.FUTURE_TICK,
    Offer.DUPLICATE: Rejection.DUPLICATE,
    Offer.UNKNOWN: Rejection.UNKNOWN_PLAYER,
}
#: Statuses of players not playing now that may still play in this run: dead (it may
#: reconnect or a new process rejoin its slot) and joined (rejoining, or a late joiner,
#: proving readiness). LEFT is final.
_MAY_COME_BACK = frozenset({Status.DEAD, Status.JOINED})
_OFFER_ACCEPTED = Offer.ACCEPTED
_ACTIVE = Status.ACTIVE


class NextTick(enum.Enum):
    """Whether the run plays its next tick now (see :meth:`ServerRules.next_tick`)."""

    PLAY = "play"  #: someone is playing: open the tick
    WAIT = "wait"  #: nobody plays, but a dead player may come back within the grace
    GIVE_UP = "give up"  #: nobody plays and nobody is coming back: the run ends


class View(Protocol):
    """One player's private view of a tick (``tickwire.server.worlds.world.PlayerView`` is one)."""

    observation: Any
    reward: float
    terminated: bool
    truncated: bool
    info: dict | None


def _accept_any(action: Any) -> Any:
    return action


#: The dtype a 1-D column of actions has once its entries went through Python (``tolist``)
#: and back into an array (``np.asarray``), by dtype kind: what a world stepping on arrays
#: gets from the dict of actions, so the columns give it the same.
_LISTED_DTYPE = {"b": np.dtype(np.bool_), "i": np.dtype(np.int64), "f": np.dtype(np.float64)}


def _as_stepped(values: np.ndarray) -> np.ndarray | None:
    """``values`` (checked actions) as :meth:`ActionBatch.of` would rebuild them from their
    Python form, or None when that is not sure (other kinds, unsigned 64-bit)."""
    if values.ndim > 1:
        return values  # rows stay arrays in the dict: stacked again, the same dtype
    kind = values.dtype.kind
    if kind == "u" and values.dtype.itemsize < 8:
        kind = "i"
    listed = _LISTED_DTYPE.get(kind)
    return None if listed is None else values.astype(listed, copy=False)


#: Most verified ACTION_ARRAY groups remembered (one per hosting process is the usual case).
MAX_GROUPS = 256


@dataclass(frozen=True)
class _Group:
    """The K players of an ACTION_ARRAY, verified once (run, players, tokens, key, all
    ACTIVE and distinct) and valid while the roster's ``version`` stays ``version``."""

    players: list[Player]
    tokens: str  #: the K tokens joined by newlines, compared in constant time
    version: int
    check: BatchChecker | None  #: one check for the K actions (None: entry by entry)
    ids: np.ndarray  #: the K player ids (int64), for the barrier's columns


class ServerRules:
    """Everything the world server decides, for one run; feed it events, do what it returns.

    ``describe`` gives the world description sent in WELCOME (asked per WELCOME: it may depend
    on ``World.reset``); ``validate`` returns the action or raises :class:`InvalidAction`;
    ``noop`` gives the action used for a player that missed a tick. ``private``: the world
    gives each player its own view (:meth:`begin_tick` is passed a ``view`` function).
    ``spaces`` gives a player's spaces for its WELCOME; a described action space replaces
    ``validate`` for that player's actions.
    """

    def __init__(
        self,
        settings: RuleSettings,
        run_id: str | None = None,
        *,
        describe: Callable[[], dict] = dict,
        validate: Callable[[Any], Any] = _accept_any,
        noop: Callable[[], Any] = lambda: None,
        endpoints: Endpoints | None = None,
        fixed_slots: dict[str, int] | None = None,
        private: bool = False,
        spaces: Spaces | None = None,
        batch_validate: BatchChecker | None = None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id or secrets.token_hex(6)
        self.barrier = TickBarrier()
        self.rejected: Counter[Rejection] = Counter()
        self._deadline_s = settings.deadline_ms / 1e3 if settings.mode == "deadline" else None
        rate = getattr(settings, "tick_rate", None)
        #: the fixed tick clock with --tick-rate (None: each tick starts when the last closed)
        self.pacer = Pacer(rate) if rate else None
        #: lost actions connections and what explains them
        self.ledger = ConnectionLedger(self.rejected, self.barrier)
        #: the players, their slots and statuses; the run's tick and whether it runs
        self.seats = Seats(
            settings,
            self.run_id,
            self.barrier,
            self.ledger,
            self.rejected,
            describe=describe,
            deadline_ms=self._deadline_ms_told(),
            fixed_slots=fixed_slots,
            private=private,
            spaces=spaces,
        )
        self.roster: Roster = self.seats.roster
        self._lobby = LobbyPolicy(self.seats, endpoints)
        self._describe = describe
        self._validate = validate
        #: ``validate`` for K actions at once (ACTION_ARRAY), if the world's allows it
        self._batch_validate = batch_validate
        self._groups: dict[tuple[bytes, str | None], _Group] = {}
        self._space_checks: dict[int, BatchChecker | None] = {}  #: by id of a space map
        self._noop = noop
        self._checks = self.seats.checks  # the same dict: per-player action checkers
        self._last_publish = -math.inf
        self._told_invalid: set[int] = set()
        self._done: frozenset[int] = frozenset()  #: out of the open tick by their own view
        self._late: dict[int, int] = {}  #: late arrivals since the last tick closed (TickClosed)
        self._nobody_since: float | None = None  #: when nobody was left playing (next_tick)

    @property
    def running(self) -> bool:
        """The lobby is over and ticks are being played."""
        return self.seats.running

    @property
    def tick(self) -> int:
        """The tick being played (or, between ticks, the number of ticks done)."""
        return self.seats.tick

    def _deadline_ms_told(self) -> int | None:
        """The deadline WELCOME announces: --deadline-ms, or the period when paced."""
        if self._deadline_s is None:
            return None
        return int(self.pacer.period * 1e3 if self.pacer else self.settings.deadline_ms)

    # ------------------------------------------------------------------ control socket
    def receive_control(
        self, identity: bytes, msg: Message | ProtocolError, now: float, key: str | None = None
    ) -> list[Output]:
        """A decoded message (or the decoding error) from ``identity`` on the control socket
        (JOIN, LEAVE); ``key`` is the sender's authenticated key name (None without keys)."""
        return self.seats.receive_control(identity, msg, now, key)

    def receive_auth_failure(self, detail: str, now: float) -> Sequence[Output]:
        """A peer failed the CURVE handshake; nothing of it was delivered. Counted (once: the
        disconnect that ends the failed connection is not a lost actions connection)."""
        outs: list[Output] = []
        self.seats.reject(
            Rejection.AUTH_FAILED,
            f"a peer failed the CURVE handshake ({detail}): an "
            "unlisted key, a plaintext client or a wrong --server-key",
            None,
            outs,
        )
        return outs

    def probe(self, now: float) -> Sequence[Output]:
        """Every :data:`PROBE_EVERY_S`: check the control connection of each player that
        JOINed but has not subscribed (its process may be gone, e.g. killed in ``setup()``)."""
        return self.seats.probe(now)

    def control_lost(self, identity: bytes, now: float) -> list[Output]:
        """A :class:`Probe` found no control connection for ``identity``: the player is dead
        (in the lobby its slot is free again)."""
        return self.seats.control_lost(identity, now)

    # ------------------------------------------------------------------ state socket
    def receive_subscription(self, topic: bytes, subscribed: bool, now: float) -> Sequence[Output]:
        """The state socket saw ``topic`` subscribed (True) or its last subscriber go (False)."""
        return self.seats.receive_subscription(topic, subscribed, now)

    # ------------------------------------------------------------------ actions socket
    def receive_action(
        self, msg: Message | ProtocolError, now: float, key: str | None = None
    ) -> Sequence[Output]:
        """A decoded message (or the decoding error) from the actions socket; ``key`` is the
        sender's authenticated key name (None without keys)."""
        if isinstance(msg, Action):  # narrows for mypy; ~10 ns more than __class__ is (measured)
            return self._action(msg.KIND, msg.run, msg.tick, msg.player, msg.token, msg.payload, now, key)
        outs: list[Output] = []
        if isinstance(msg, Actions):
            self._actions(msg, now, outs, key)
        elif isinstance(msg, ActionArray):
            self._action_array(msg, now, outs, key)
        elif isinstance(msg, Ready):
            self.seats.ready(msg, outs, key)
        elif isinstance(msg, ProtocolError):
            self.seats.reject(Rejection.of(msg), f"on the actions socket: {msg}", None, outs)
        else:
            self.seats.reject(
                Rejection.WRONG_KIND,
                f"{msg.KIND} message on the actions socket "
                "(only ready, action, actions and action_array belong there)",
                None,
                outs,
            )
        return outs

    def _actions(self, msg: Actions, now: float, outs: list[Output], key: str | None) -> None:
        """A batch from a process hosting several players: each entry is checked as an ACTION."""
        for entry in msg.actions:
            if (
                entry.__class__ is not list
                or len(entry) != 3
                or entry[0].__class__ is not int
                or entry[1].__class__ is not str
            ):
                self.seats.reject(
                    Rejection.MALFORMED,
                    f"an actions entry must be [player: int, token: str, payload], got {entry!r:.80}",
                    None,
                    outs,
                )
                continue
            outs.extend(self._action(msg.KIND, msg.run, msg.tick, entry[0], entry[1], entry[2], now, key))

    def _action_array(self, msg: ActionArray, now: float, outs: list[Output], key: str | None) -> None:
        """K players' actions as columns: verified, checked and offered per batch. Anything
        unusual (an unverified group, a player not ACTIVE, a rejected offer) goes entry by
        entry through :meth:`_action`, so every rejection is the one an ACTIONS entry gets."""
        if msg.run != self.run_id:
            self.seats.reject(
                Rejection.WRONG_RUN,
                f"action_array for run {msg.run!r}, this run is {self.run_id!r} "
                "(a message from an earlier server?)",
                None,
                outs,
            )
            return
        pids, tokens, actions, k = self._columns(msg)
        if pids is None:
            self.seats.reject(Rejection.MALFORMED, f"action_array: {tokens}", None, outs)
            return
        players_column = msg.players if isinstance(msg.players, np.ndarray) else None
        group = self._group(pids, tokens, key, players_column)
        if group is None or group.check is None:
            self._entries(msg, pids, tokens, actions, now, outs, key)
            return
        tick, players = msg.tick, group.players
        try:
            values, ok = group.check(actions)
        except SpaceError as e:
            for p in players:
                self._invalid(p, tick, e, outs)
            return
        payloads = values.tolist() if values.ndim == 1 else list(values)
        ids, column = group.ids, _as_stepped(values)
        if not ok.all():
            for i in np.flatnonzero(~ok).tolist():
                bad = values[i].tolist() if values.ndim > 1 else payloads[i]
                self._invalid(
                    players[i], tick, SpaceError(f"action {bad!r:.60} does not fit the action space"), outs
                )
            keep = ok.tolist()
            pids = [pid for pid, good in zip(pids, keep) if good]
            payloads = [a for a, good in zip(payloads, keep) if good]
            ids, column = ids[ok], None if column is None else column[ok]
        refused = self.barrier.offer_batch(
            pids, tick, payloads, now=now, columns=None if column is None else (ids, column)
        )
        if refused:  # rare: entry by entry, for exactly the rejection (or the rejoin) an ACTION gets
            index = {pid: i for i, pid in enumerate(pids)}
            for pid, _ in refused:
                i = index[pid]
                outs.extend(
                    self._action(msg.KIND, msg.run, tick, pid, tokens[k.index(pid)], payloads[i], now, key)
                )

    def _columns(self, msg: ActionArray) -> tuple[Any, Any, Any, list[int]]:
        """(player ids, tokens, actions, ids) if the three columns have one length K of
        the right kinds; else (None, why, None, [])."""
        players, tokens, actions = msg.players, msg.tokens, msg.actions
        if isinstance(players, np.ndarray):
            if players.ndim != 1 or players.dtype.kind not in "iu":
                return (
                    None,
                    f"players must be a 1-D int array, got {players.dtype} {list(players.shape)}",
                    None,
                    [],
                )
            pids = players.tolist()
        elif players.__class__ is list and all(p.__class__ is int for p in players):
            pids = players
        else:
            return None, f"players must be a list or array of ints, got {type(players).__name__}", None, []
        k = len(pids)
        n = len(actions) if isinstance(actions, (np.ndarray, list)) and np.ndim(actions) > 0 else -1
        if k == 0 or len(tokens) != k or n != k:
            return (
                None,
                f"{k} players, {len(tokens)} tokens and {n} actions: "
                "the three columns must have one length K >= 1",
                None,
                [],
            )
        if k > self.roster.capacity:
            return None, f"{k} entries for a run of {self.roster.capacity} players", None, []
        return pids, tokens, actions, pids

    def _group(
        self, pids: list[int], tokens: list, key: str | None, column: np.ndarray | None = None
    ) -> _Group | None:
        """The verified group these K players and tokens make, from the cache or verified now
        (nothing is counted here); None if any entry would not pass the sender check.
        ``column``: the same ids as the message's int array (a cheaper cache key)."""
        try:
            joined = "\n".join(tokens)
            ids = np.asarray(pids if column is None else column).astype(np.int64, copy=False)
            cache_key = (ids.tobytes(), key)
            group = self._groups.get(cache_key)
            version = self.roster.version
            if group is not None and group.version == version:
                return group if secrets.compare_digest(joined, group.tokens) else None
        except (TypeError, OverflowError):  # a non-str or non-ASCII token, an id out of range
            return None
        roster = self.roster.players
        players = [roster.get(pid) for pid in pids]
        if len(set(pids)) != len(pids) or not all(
            p is not None and p.status is _ACTIVE and p.key == key and token_matches(t, p)
            for p, t in zip(players, tokens)
        ):
            return None
        if len(self._groups) >= MAX_GROUPS:
            self._groups.clear()
        ids = np.asarray(pids, np.int64)
        ids.flags.writeable = False
        group = _Group(players, joined, version, self._group_check(players), ids)  # type: ignore[arg-type]
        self._groups[cache_key] = group
        return group

    def _group_check(self, players: list[Player]) -> BatchChecker | None:
        """One check for the group's K actions: its players share one described action space,
        or none has one and the world allows a batch check; else None (entry by entry)."""
        if not self._checks:
            return self._batch_validate
        spaces = [self.seats.action_space(p.id) for p in players]
        first = spaces[0]
        if first is None or any(s != first for s in spaces):
            return None
        if id(first) not in self._space_checks:
            self._space_checks[id(first)] = batch_checker(first)
        return self._space_checks[id(first)]

    def _entries(
        self,
        msg: ActionArray,
        pids: list[int],
        tokens: list,
        actions: Any,
        now: float,
        outs: list[Output],
        key: str | None,
    ) -> None:
        """ACTION_ARRAY entry by entry, each checked as an ACTION (the slow, exact path)."""
        rows = actions.tolist() if isinstance(actions, np.ndarray) and actions.ndim == 1 else list(actions)
        for pid, token, payload in zip(pids, tokens, rows):
            outs.extend(self._action(msg.KIND, msg.run, msg.tick, pid, token, payload, now, key))

    def _action(
        self,
        kind: str,
        run: str,
        tick: int,
        pid: int,
        token: str,
        payload: Any,
        now: float,
        key: str | None = None,
    ) -> Sequence[Output]:
        """One action (or batch entry): the hot path, so the accepted case allocates nothing."""
        outs: list[Output] = []
        seats = self.seats
        p = seats.sender(kind, run, pid, token, outs, key)
        if p is None:
            return outs
        try:
            check = self._checks.get(pid) if self._checks else None
            action = self._validate(payload) if check is None else check(payload)
        except (InvalidAction, SpaceError) as e:
            self._invalid(p, tick, e, outs)
            return outs
        offer = self.barrier.offer(p.id, tick, action, now=now)
        if offer is Offer.UNKNOWN and p.status is _ACTIVE and seats.absent.pop(p.id, None) is not None:
            self.barrier.admit(p.id)  # back (rejoin, late join) after the tick opened: counts
            offer = self.barrier.offer(p.id, tick, action, now=now)
        if offer is _OFFER_ACCEPTED:
            if p.status is _ACTIVE:
                return ACCEPTED_ONLY
            seats.change(p, PlayerEvent.ANSWERED, "answering again", outs)  # an inactive one is back
            outs.append(ACCEPTED)
            return outs
        if tick == self.ledger.asked_again and offer in (Offer.DUPLICATE, Offer.STALE):
            return outs  # a resend we asked for (Republish), maybe after the tick closed
        if offer is Offer.STALE:
            if p.answered_late(tick):  # late only for a tick counted as missed for it
                self._late[p.id] = self._late.get(p.id, 0) + 1
            seats.change(
                p, PlayerEvent.ANSWERED, "answering again (late); the barrier waits for it again", outs
            )
        when = (
            f"after tick {tick} closed"
            if tick == self.barrier.tick and not self.barrier.is_open
            else f"during tick {self.barrier.tick}"
        )
        seats.reject(_OFFER_REJECTION[offer], f"action from player {p.id} for tick {tick} {when}", p.id, outs)
        return outs

    def _invalid(self, p: Player, tick: int, error: ProtocolError, outs: list[Output]) -> None:
        """Reject it; release the player's place in the open tick; tell the agent once."""
        if tick == self.barrier.tick:
            self.barrier.drop(p.id)  # it answered, badly: don't stall the tick for it
        self.seats.reject(Rejection.INVALID_ACTION, f"player {p.id} tick {tick}: {error}", p.id, outs)
        if p.id not in self._told_invalid:
            self._told_invalid.add(p.id)
            space = self.seats.action_space(p.id)
            spec = (
                f"your action space is {space}"
                if space is not None
                else f"the action spec is {self._describe().get('action_spec', {})}"
            )
            outs.append(
                SendTo(
                    p.identity,
                    Error(Rejection.INVALID_ACTION.value, f"tick {tick}: {error}; {spec}", self.run_id),
                )
            )

    # ------------------------------------------------------------------ lost connections
    def from_player(self, msg: Message | ProtocolError, key: str | None = None) -> bool:
        """True if ``msg`` (from the actions socket) would pass the sender check of READY and
        ACTION (this run, a known player, its token and, with keys, its key); for a batch, if
        one entry would. Nothing is counted: the loop asks this only for a message on an
        actions connection not yet known to carry a player, and only such connections' losses
        go to :meth:`actions_connection_lost` (a stranger's connection that comes and goes,
        or a refused joiner exiting, republishes nothing and is not counted)."""
        return self.seats.from_player(msg, key)

    def actions_connection_lost(self, now: float) -> Sequence[Output]:
        """A player's actions connection went away (the loop reports only connections that
        carried a message :meth:`from_player` accepted). While a tick is open, ask for its
        actions again (:class:`Republish`); if no death or LEAVE explains the loss within
        :data:`LOST_ACTION_GRACE_S`, the server cut it and the open tick stops waiting."""
        if not self.running:
            return NOTHING
        return self.ledger.lost(now)

    def memory_guard_cut(self, socket: str, now: float) -> None:
        """The memory guard cut a connection of ``socket``: counted once, under
        ``memory_guard`` (an actions connection's loss is explained by it: not also a
        ``dropped_connection``). Like any cut, it releases the open tick after
        :data:`LOST_ACTION_GRACE_S` if it is still waiting: the guard may have cut an honest
        player's connection with its action, and a strict tick must not wait for it forever."""
        self.ledger.memory_guard_cut(socket, now, self.running)

    # ------------------------------------------------------------------ lobby
    def open_lobby(self, now: float) -> None:
        """The lobby opens now; the lobby timeout counts from here."""
        self._lobby.open(now)

    def lobby(self, now: float) -> Lobby:
        """Start when every slot is ready, or with ``min_players`` once the timeout passed."""
        return self._lobby.verdict(now)

    def release_unready(self, now: float) -> list[Output]:
        """Free the slots of players that joined but did not prove readiness within
        ``ready_timeout_s`` (a squatter, or an agent that cannot reach the other ports)."""
        return self._lobby.release_unready(now)

    def lobby_report(self) -> str:
        """Who is missing and what to do about it (for the lobby-timeout error)."""
        return self._lobby.report()

    def start(self, now: float) -> list[Output]:
        """The run begins: ready players become active; the others stay out of it."""
        outs: list[Output] = []
        seats = self.seats
        for p in list(self.roster.players.values()):
            seats.change(p, PlayerEvent.START, "playing", outs)
        seats.running = True
        seats.first_tick = seats.tick
        return outs

    # ------------------------------------------------------------------ ticks
    def resume_at(self, tick: int, last_actions: dict[int, Any], names: dict[int, str] | None = None) -> None:
        """A resumed run continues at ``tick`` (ticks done before it) with each player's last
        answered action from before the restart (``--on-missing repeat`` repeats it) and
        its recorded name (kept by whoever takes the slot back under the same name). Set-up,
        before the lobby opens (not an event)."""
        self.seats.tick = tick
        self.roster.remember(last_actions, names)

    def anyone_playing(self) -> bool:
        """Some player is active or inactive: its actions are accepted in a tick."""
        return any(p.status in PLAYING for p in self.roster.players.values())

    def next_tick(self, now: float) -> NextTick:
        """Whether the next tick may open now (asked before each tick, and again while
        waiting). With nobody playing, the run does not end at once: a dead player may come
        back (a network blip reset every agent's link at once) or rejoin, so it waits up to
        :data:`NOBODY_PLAYING_GRACE_S` from the moment nobody was left, and no tick opens
        meanwhile (no tick is played, so none is counted for anyone). It gives up at once if
        nobody could come back: every player LEFT (a LEAVE is final)."""
        if self.anyone_playing():
            self._nobody_since = None
            return NextTick.PLAY
        if not any(p.status in _MAY_COME_BACK for p in self.roster.players.values()):
            return NextTick.GIVE_UP
        if self._nobody_since is None:
            self._nobody_since = now
        if now - self._nobody_since >= NOBODY_PLAYING_GRACE_S:
            return NextTick.GIVE_UP
        return NextTick.WAIT

    def until_tick(self, now: float) -> float:
        """Seconds until the next tick may start: 0 unless paced (``--tick-rate``)."""
        return 0.0 if self.pacer is None else self.pacer.wait(now)

    def begin_tick(
        self, tick: int, now: float, view: Callable[[int], View] | None = None
    ) -> Sequence[Output]:
        """Open ``tick`` (its STATE is about to be published): who may answer, who is awaited.

        With ``view`` (a world with per-player views): each playing player's view is asked
        for, sent to that player alone as an OBSERVATION (returned as ``SendTo`` outputs, by
        control identity), and a view saying terminated/truncated keeps that player out of
        the tick (counted ``done``). Paced, a deadline-mode tick's deadline is the end of its
        period (``--deadline-ms`` is not used); a strict tick still waits for everyone and the
        next one starts on the grid.
        """
        seats = self.seats
        seats.tick = tick
        self.ledger.tick_opened()
        outs = self._views(tick, view) if view is not None else NOTHING
        accepting, awaited, seats.absent = self.roster.split(self._done)
        deadline = None if self._deadline_s is None else now + self._deadline_s
        if self.pacer is not None:
            period_end = self.pacer.started(now)
            deadline = None if deadline is None else period_end
        self.barrier.begin(tick, accepting, awaited, now=now, deadline=deadline)
        return outs

    def _views(self, tick: int, view: Callable[[int], View]) -> list[Output]:
        outs: list[Output] = []
        done = []
        for p in self.roster.players.values():
            if p.status not in PLAYING:
                continue
            v = view(p.id)
            over = bool(v.terminated) or bool(v.truncated)
            if over:
                done.append(p.id)
            outs.append(
                SendTo(
                    p.identity,
                    Observation(
                        self.run_id,
                        tick,
                        p.id,
                        v.observation,
                        float(v.reward),
                        bool(v.terminated),
                        bool(v.truncated),
                        dict(v.info or {}),
                    ),
                )
            )
        self._done = frozenset(done)
        return outs

    def may_close(self, now: float) -> bool:
        """Every awaited player answered, the deadline passed, or an actions connection was
        cut during the tick (its action is lost: the tick must not wait for it forever)."""
        ledger = self.ledger
        if ledger.pending:
            ledger.expire(now)
        return self.barrier.complete or self.barrier.expired(now) or ledger.cut_off

    def close_tick(self, now: float) -> TickClosed:
        """Close the open tick: count it, strike repeat missers, fill in missing actions."""
        result = self.barrier.close()
        missed = self.roster.count(result, self.seats.absent, self._done)
        changes: list[StatusChange] = []
        strikes = self.roster.strikes
        for p in missed:
            if strikes and p.status is Status.ACTIVE and p.streak >= strikes:
                self.seats.change(
                    p,
                    PlayerEvent.STRUCK,
                    f"missed {p.streak} ticks in a row: inactive "
                    "until it answers again (the barrier no longer waits for it)",
                    changes,  # type: ignore[arg-type]
                )
        self.seats.tick = result.tick + 1
        late, self._late = self._late, {}
        return TickClosed(self._fill(result), result, changes, late)

    def drop_tick(self, now: float) -> None:
        """The run stops while the open tick has not closed: drop it, as a crash would. It is
        not counted for anyone, not stepped and not recorded, and ``tick`` stays the number
        of ticks done, so a resume plays it again with the answers it would have had (in
        strict mode, counting the players not yet in as missed and stepping with noops gave
        a state no uninterrupted run reaches)."""
        self.barrier.close()

    def _fill(self, result: TickResult) -> dict[int, Any]:
        """The tick's actions with missing ones replaced by the noop (or the last action)."""
        if not result.missing:
            return result.actions
        actions = dict(result.actions)
        noop = self._noop()
        repeat = self.settings.on_missing == "repeat"
        for pid in result.missing:
            last = self.roster.players[pid].last_action
            actions[pid] = last if repeat and last is not None else noop
        return actions

    # ------------------------------------------------------------------ time
    def published(self, now: float) -> None:
        """Something was published now: no heartbeat is needed for ``heartbeat_s``."""
        self._last_publish = now

    def heartbeat(self, now: float) -> Sequence[Output]:
        """A HEARTBEAT to publish if nothing was published for ``heartbeat_s``."""
        if now - self._last_publish < self.settings.heartbeat_s:
            return NOTHING
        self._last_publish = now
        return (Publish(Heartbeat(self.run_id, self.tick)),)

    def next_timeout(self, now: float) -> float:
        """Seconds until something is due by time alone: heartbeat, tick deadline, lobby end,
        the end of the wait for a player to come back."""
        due = self._last_publish + self.settings.heartbeat_s
        if not self.running:
            due = min(due, self._lobby.due(now))
        else:
            left = self.barrier.time_left(now) if self.barrier.is_open else None
            if left is not None:
                due = min(due, now + left)
            elif not self.barrier.is_open and self.pacer is not None:
                due = min(due, self.pacer.due(now))
            cut = self.ledger.due()
            if cut is not None:
                due = min(due, cut)
            if self._nobody_since is not None:  # waiting for a player to come back
                due = min(due, self._nobody_since + NOBODY_PLAYING_GRACE_S)
        return max(0.0, due - now)

    # ------------------------------------------------------------------ end
    def end(self, reason: str, scores: list, now: float) -> list[Output]:
        """END for everyone: published, and sent to each player's control identity."""
        self.ledger.end()
        msg = End(self.run_id, self.tick, str(reason), list(scores))
        return [Publish(msg), *(SendTo(p.identity, msg) for p in self.roster.players.values())]
