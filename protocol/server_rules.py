"""The world server's rules as a sans-IO state machine: events and ``now`` in, decisions out.

In the spirit of h11's ``_connection.py``: nothing here touches a socket, reads a clock or
logs. The server's I/O loop (:mod:`tickwire.server.world_server.loop`) decodes frames, feeds them in with
the time it read once per loop turn, and carries out what comes back:

* :class:`Send` a message to one control identity, :class:`Publish` one on ``state``;
* :data:`ACCEPTED` (a shared constant) or :class:`Rejected` (with a :class:`Rejection`
  reason) for each action;
* :class:`StatusChange` whenever a player's status changes (decided by the one table in
  :mod:`tickwire.protocol.server_status`).

What it covers: JOIN/WELCOME/refusal, rejoin of a dead slot and late join (:meth:`_claim`
is the one place a JOIN is bound to a slot), the readiness proof (subscription seen + READY
seen), the end of the lobby, action acceptance and every rejection, the missing-action
policy, strikes, death and reconnection, LEAVE, lost actions connections (:class:`Republish`,
``dropped_connection``), probes of players gone before they subscribed (:class:`Probe`),
when a heartbeat is due, with ``--tick-rate`` when the next tick may start
(:mod:`tickwire.protocol.pacing`), and with nobody playing whether to wait for a dead player
to come back or end the run (:meth:`ServerRules.next_tick`).
"""

from __future__ import annotations

import enum
import math
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, Union

from .barrier import Offer, TickBarrier, TickResult
from .endpoints import Endpoints, connectable
from .errors import ConfigError, ProtocolError
from .messages import (
    VERSION,
    Action,
    Actions,
    End,
    Error,
    Heartbeat,
    Join,
    Leave,
    Message,
    Observation,
    Ready,
    Welcome,
)
from .pacing import Pacer
from .roster import Player, Roster
from .server_status import PLAYING, PlayerEvent, Status, TextEnum
from .spaces import Checker, SpaceError, action_checker


class InvalidAction(ProtocolError, ValueError):
    """An action does not fit the world's action spec; the message says why.

    Raised by ``World.validate_action``; the server rejects the action (``invalid_action``)
    and tells the agent once.
    """

    def __init__(self, text: str) -> None:
        super().__init__("invalid_action", text)


class Rejection(TextEnum):
    """Why a message was not applied; the value is the key counted under ``rejected``.

    Which ones are answered: everything refused on the control socket gets an ERROR there
    (undecodable, wrong kind, full, slot_taken, run_in_progress), except a LEAVE naming
    another player (``unknown_player``, only counted); on the actions socket only
    the first ``invalid_action`` of each player gets an ERROR (on its control socket). All
    the others are only counted: a peer that sends junk to the fan-in socket gets no echo.
    """

    # the codec could not decode it (ProtocolError.reason)
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    BAD_DTYPE = "bad_dtype"
    BAD_SHAPE = "bad_shape"
    BAD_EXT = "bad_ext"
    VERSION = "version"
    # decoded, but against the rules
    WRONG_KIND = "wrong_kind"
    WRONG_RUN = "wrong_run"
    UNKNOWN_PLAYER = "unknown_player"
    BAD_TOKEN = "bad_token"
    INVALID_ACTION = "invalid_action"
    STALE = "stale"
    FUTURE_TICK = "future_tick"
    DUPLICATE = "duplicate"
    # the server cut an actions connection (oversized or undecodable frames) that no
    # player's death or LEAVE explains: what was queued behind it on that connection is lost
    DROPPED_CONNECTION = "dropped_connection"
    # the memory guard (--memory-budget-mb) cut a connection that was filling the server's
    # memory (a message of many frames is held until its last frame arrives)
    MEMORY_GUARD = "memory_guard"
    # a JOIN that was refused
    FULL = "full"
    SLOT_TAKEN = "slot_taken"
    RUN_IN_PROGRESS = "run_in_progress"
    # with keys: a peer failed the CURVE handshake (unknown key, plaintext, wrong server key),
    # or an allowed key sent a READY/ACTION/JOIN for a slot bound to another key
    AUTH_FAILED = "auth_failed"
    WRONG_KEY = "auth_wrong_key"

    @classmethod
    def of(cls, error: ProtocolError) -> Rejection:
        """The rejection for a decoding error (an unknown codec reason counts as malformed)."""
        try:
            return cls(error.reason)
        except ValueError:
            return cls.MALFORMED


_OFFER_REJECTION = {
    Offer.STALE: Rejection.STALE,
    Offer.FUTURE: Rejection.FUTURE_TICK,
    Offer.DUPLICATE: Rejection.DUPLICATE,
    Offer.UNKNOWN: Rejection.UNKNOWN_PLAYER,
}


class StopReason(TextEnum):
    """Why a run ended (the summary's ``reason``); a signal gives ``"signal SIGINT"`` etc."""

    TICKS_DONE = "ticks done"
    WORLD_DONE = "world done"
    NO_PLAYERS_LEFT = "no players left"
    NOT_STARTED = "not started"
    LOBBY_TIMEOUT = "lobby timeout"
    STOPPED = "stopped"


def signal_reason(name: str) -> str:
    """The stop reason for a signal, e.g. ``"signal SIGTERM"``."""
    return f"signal {name}"


def lobby_stop_reason(why: str) -> str:
    """The summary reason when the run was stopped before it started."""
    return f"stopped in the lobby ({why})"


class Lobby(enum.Enum):
    """What the lobby should do now."""

    WAIT = "wait"  #: keep waiting for players
    START = "start"  #: start the run (everyone ready, or --min-players after the timeout)
    GIVE_UP = "give up"  #: timed out without enough ready players: see lobby_report()


class NextTick(enum.Enum):
    """Whether the run plays its next tick now (see :meth:`ServerRules.next_tick`)."""

    PLAY = "play"  #: someone is playing: open the tick
    WAIT = "wait"  #: nobody plays, but a dead player may come back within the grace
    GIVE_UP = "give up"  #: nobody plays and nobody is coming back: the run ends


# ---------------------------------------------------------------------------- outputs
class Send(NamedTuple):
    """Send ``message`` to one agent on the control socket."""

    identity: bytes
    message: Message


class Publish(NamedTuple):
    """Publish ``message`` to everyone on the state socket."""

    message: Message


class Republish(NamedTuple):
    """Publish the open tick's STATE again: an actions connection was lost, and agents that
    already answered this tick send their action again (a duplicate is rejected harmlessly)."""

    tick: int


class Probe(NamedTuple):
    """Check that ``identity`` still has a control connection; if it has none, tell
    :meth:`ServerRules.control_lost` (a player gone before it subscribed)."""

    identity: bytes


class Accepted:
    """The action (or batch entry) was accepted for the open tick; nothing else to do.

    One shared instance, :data:`ACCEPTED`: acceptance is the hot path, so it allocates nothing.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "ACCEPTED"


ACCEPTED = Accepted()
#: What :meth:`ServerRules.receive_action` returns for an accepted ACTION with nothing else to
#: report (a shared constant: the I/O loop may test for it with ``is``).
ACCEPTED_ONLY: tuple[Accepted] = (ACCEPTED,)


class Rejected(NamedTuple):
    """A message was not applied; ``text`` says what was wrong (for the log)."""

    reason: Rejection
    text: str
    player: int | None = None


class StatusChange(NamedTuple):
    """Player ``player`` went from ``old`` (None: it just joined) to ``new`` during ``tick``."""

    player: int
    name: str
    old: Status | None
    new: Status
    tick: int
    detail: str = ""


Output = Union[Send, Publish, Republish, Probe, Accepted, Rejected, StatusChange]

#: A lost actions connection that no death or LEAVE explains within this many seconds was
#: cut by the server (oversized or undecodable frames); then a strict tick stops waiting.
LOST_ACTION_GRACE_S = 2.0
#: How often players that JOINed but never subscribed are checked for a live connection.
PROBE_EVERY_S = 1.0
#: How long a run with nobody playing waits for a dead player to come back (a reconnected
#: subscription or a rejoin) before it ends: the state socket's heartbeat timeout (4 s), the
#: longest a link may be silent before its player is declared dead. A blip that resets every
#: agent's link at once is over within ~0.1 s (libzmq reconnects); a frozen link gets as long
#: to return as it got before it was declared dead.
NOBODY_PLAYING_GRACE_S = 4.0


class TickClosed(NamedTuple):
    """A closed tick: the actions to step with (missing ones filled in) and what changed.

    ``late``: players whose action for an earlier (closed) tick arrived since the previous
    tick closed, with how many; the same arrivals the summary's ``late`` counts."""

    actions: dict[int, Any]
    result: TickResult
    changes: list[StatusChange]
    late: dict[int, int] = {}


class RuleSettings(Protocol):
    """The settings the rules read (``tickwire.server.ServerConfig`` provides them)."""

    players: int
    ticks: int
    seed: int
    mode: str
    deadline_ms: float
    on_missing: str
    strikes: int
    min_players: int | None
    lobby_timeout_s: float
    heartbeat_s: float
    late_join: bool
    ready_timeout_s: float


_NOTHING: tuple[Output, ...] = ()
#: Statuses of players not playing now that may still play in this run: dead (it may
#: reconnect or a new process rejoin its slot) and joined (rejoining, or a late joiner,
#: proving readiness). LEFT is final.
_MAY_COME_BACK = frozenset({Status.DEAD, Status.JOINED})
_OFFER_ACCEPTED = Offer.ACCEPTED
_ACTIVE = Status.ACTIVE


def _accept_any(action: Any) -> Any:
    return action


class View(Protocol):
    """One player's private view of a tick (``tickwire.server.worlds.world.PlayerView`` is one)."""

    observation: Any
    reward: float
    terminated: bool
    truncated: bool
    info: dict | None


#: ``spaces(player) -> (observation space, action space)`` as wire maps (None: not described).
Spaces = Callable[[int], "tuple[dict | None, dict | None]"]


def token_matches(token: Any, p: Player) -> bool:
    """``token`` is ``p``'s token, compared in constant time. Tokens are ASCII hex; anything
    else (a non-ASCII string, which ``compare_digest`` refuses with a TypeError, or not a
    string at all) is simply a wrong token, never an exception."""
    return token.__class__ is str and token.isascii() and secrets.compare_digest(token, p.token)


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
    ) -> None:
        self.settings = settings
        #: {key name: slot}: that key always gets that slot (and its name); no other key may
        self._fixed = dict(fixed_slots or {})
        self._reserved = frozenset(self._fixed.values())
        for name, slot in self._fixed.items():
            if not 0 <= slot < settings.players:
                raise ConfigError(
                    f"--allow: key {name!r} is given slot {slot}, but there are "
                    f"only {settings.players} players (0..{settings.players - 1}):"
                    " fix the slot in its metadata, or raise --players",
                    "--allow",
                )
        self.run_id = run_id or secrets.token_hex(6)
        # Strikes are a deadline-mode policy: strict mode always waits for every live player.
        strikes = settings.strikes if settings.mode == "deadline" else 0
        self.roster = Roster(self.run_id, settings.seed, settings.players, strikes)
        self.barrier = TickBarrier()
        self.rejected: Counter[Rejection] = Counter()
        self.running = False
        self.tick = 0
        self._describe = describe
        self._validate = validate
        self._noop = noop
        self._endpoints = endpoints
        self._deadline_s = settings.deadline_ms / 1e3 if settings.mode == "deadline" else None
        rate = getattr(settings, "tick_rate", None)
        #: the fixed tick clock with --tick-rate (None: each tick starts when the last closed)
        self.pacer = Pacer(rate) if rate else None
        self._lobby_opened = 0.0
        self._last_now = 0.0  # the latest ``now`` seen (for events that carry none)
        self._last_publish = -math.inf
        self._told_invalid: set[int] = set()
        self._absent: dict[int, Status] = {}
        self._drops: list[tuple[float, int]] = []  # unexplained actions-connection losses (time, tick)
        self._credits: list[float] = []  # deaths and LEAVEs not yet matched with a loss
        self._cut_off = False  # the open tick stops waiting (a connection was cut)
        self._guard_cuts: list[tuple[float, int]] = []  # memory guard cuts on actions (time, tick)
        self._asked_again = -1  # the tick whose actions were asked for again
        self._next_probe = 0.0
        self._now = 0.0  #: the latest time the lobby was asked about (JOIN times)
        self._first_tick = 0  #: the tick the run started at (a resumed run starts later)
        self._joined_at: dict[int, float] = {}
        self._private = private
        self._spaces = spaces
        self._checks: dict[int, Checker] = {}  #: per-player action checkers (spaces given)
        self._wire_spaces: dict[int, tuple[dict | None, dict | None]] = {}
        self._done: frozenset[int] = frozenset()  #: out of the open tick by their own view
        self._late: dict[int, int] = {}  #: late arrivals since the last tick closed (TickClosed)
        self._nobody_since: float | None = None  #: when nobody was left playing (next_tick)

    # ------------------------------------------------------------------ control socket
    def receive_control(
        self, identity: bytes, msg: Message | ProtocolError, key: str | None = None
    ) -> list[Output]:
        """A decoded message (or the decoding error) from ``identity`` on the control socket;
        ``key`` is the sender's authenticated key name (None without keys)."""
        outs: list[Output] = []
        if isinstance(msg, ProtocolError):
            self._refuse(
                identity,
                Rejection.of(msg),
                f"could not decode your message "
                f"({msg.reason}): {str(msg) or 'no detail'}; send one msgpack map per message "
                f"with 'v': {VERSION}, 'kind' and that kind's fields as PROTOCOL.md "
                "describes, e.g. {'v': 1, 'kind': 'join', 'name': 'me'}",
                outs,
            )
        elif isinstance(msg, Join):
            self._join(identity, msg, outs, key)
        elif isinstance(msg, Leave):
            self._leave(identity, msg, outs)
        else:
            self._refuse(
                identity,
                Rejection.WRONG_KIND,
                f"{msg.KIND} message on the control "
                "socket: only join and leave belong there (ready and action go to the "
                "actions socket)",
                outs,
            )
        return outs

    def _join(self, identity: bytes, msg: Join, outs: list[Output], key: str | None) -> None:
        known = self.roster.by_identity(identity)
        if known is not None and known.key != key:
            self._refuse(
                identity,
                Rejection.WRONG_KEY,
                f"this connection's identity holds player {known.id}, which is bound to another key",
                outs,
            )
            return
        if known is not None:  # a retried JOIN: the same answer
            outs.append(Send(identity, self._welcome(known)))
            return
        wanted, name = msg.slot, msg.name
        if key is not None and key in self._fixed:  # the allow-list decides slot and name
            wanted, name = self._fixed[key], key
        claim = self._claim(wanted, key)
        if isinstance(claim, Player):
            was = claim.name
            self.roster.rejoin(claim, identity, name)
            renamed = f", was {was!r}" if claim.name != was else ""
            self._change(
                claim,
                PlayerEvent.REJOINED,
                f"rejoining at tick {self.tick} (rejoin {claim.rejoins}{renamed})",
                outs,
            )
            outs.append(Send(identity, self._welcome(claim)))
        elif isinstance(claim, int):
            # a late joiner missed the ticks this run (epoch) played so far; none in the lobby
            late_by = self.tick - self._first_tick if self.running else 0
            p = self.roster.add(claim, name, identity, ticks_before=late_by)
            p.key = key
            self._joined_at[p.id] = self._now
            if self.running and self.barrier.is_open:
                # the open tick is counted like a rejoined dead slot's: not_joined, unless it
                # proves readiness and answers it before it closes (see _action)
                self._absent[p.id] = p.status
            outs.append(
                StatusChange(
                    p.id, p.name, None, p.status, self.tick, "joined late" if self.running else "joined"
                )
            )
            outs.append(Send(identity, self._welcome(p)))
        else:
            self._refuse(identity, claim[0], claim[1], outs, *claim[2:])

    def _claim(
        self, wanted: int | None, key: str | None = None
    ) -> Player | int | tuple[Rejection, str] | tuple[Rejection, str, int]:
        """Which slot a JOIN gets: a dead player to take back (rejoin), a free slot, or why not.

        The one place that binds a JOIN to a slot. Mid-run, a JOIN naming slot K takes K
        back if its player is dead; a JOIN naming no slot takes the lowest dead slot (a
        restarted container that does not know its slot). With keys, a slot stays bound to
        the key that joined it, also after its player died: only that key may take it back
        (``key`` is the JOIN's key name, None without keys). A free slot mid-run needs
        ``late_join``; slots the allow-list keeps for other keys are never free. A live or
        left player's slot is never taken. A lobby that is ``full`` while some slots are held
        by players not ready yet (squatters, or agents still connecting) adds ``retry_ms``:
        :meth:`release_unready` may free one by then.
        """
        cfg, roster = self.settings, self.roster
        if self.running:
            dead = [
                p
                for p in roster.players.values()
                if p.status is Status.DEAD and (wanted is None or p.id == wanted)
            ]
            mine = [p for p in dead if p.key == key]
            if mine:
                return mine[0]
            if wanted is not None and dead:
                return (
                    Rejection.WRONG_KEY,
                    f"slot {wanted} is bound to key {dead[0].key!r}; "
                    "only that key may take it back; ask for another slot or none",
                )
        if wanted is not None and wanted in roster.players:
            p = roster.players[wanted]
            return (
                Rejection.SLOT_TAKEN,
                f"slot {wanted} belongs to player {p.name!r}, who is "
                f"{p.status.value}; only a dead player's slot can be taken back; ask "
                "for another or none",
            )
        if self.running and not cfg.late_join:
            why = (
                f"slot {wanted} was never joined"
                if wanted is not None
                else ("no player is dead" if key is None else f"no dead player is bound to key {key!r}")
            )
            return (
                Rejection.RUN_IN_PROGRESS,
                f"run {self.run_id} is already at tick "
                f"{self.tick} and {why}; players must join before it starts (unless the "
                "server allows late joins: --late-join)",
            )
        reserved = self._reserved.difference((wanted,)) if key in self._fixed else self._reserved
        slot = roster.free_slot(wanted, reserved)
        if slot is not None:
            return slot
        if wanted is not None and len(roster.players) < cfg.players:
            return (
                Rejection.SLOT_TAKEN,
                f"slot {wanted} is kept for a key or out of range "
                f"0..{cfg.players - 1}; ask for another or none",
            )
        unready = [p for p in roster.players.values() if p.status is Status.JOINED]
        if unready and not self.running:
            first = min(self._joined_at.get(p.id, self._now) for p in unready)
            wait_s = max(0.0, first + cfg.ready_timeout_s - self._now)
            return (
                Rejection.FULL,
                f"all {cfg.players} player slots are taken, {len(unready)} "
                "of them by players that joined but have not proved readiness yet (no "
                "state subscription or READY); a slot whose player is not ready within "
                f"{cfg.ready_timeout_s:g} s (--ready-timeout) is freed: JOIN again in "
                f"{wait_s:.1f} s (retry_ms; the tickwire agent retries by itself until its "
                "--join-timeout), or if more players are coming, start the server with a "
                "larger --players",
                math.ceil(wait_s * 1e3),
            )
        return (
            Rejection.FULL,
            f"all {cfg.players} player slots are taken; start the server with a larger --players",
        )

    def _welcome(self, p: Player) -> Welcome:
        cfg = self.settings
        obs_space, act_space = self._player_spaces(p.id)
        return Welcome(
            run=self.run_id,
            player=p.id,
            name=p.name,
            seed=p.seed,
            token=p.token,
            topic=p.topic,
            mode=cfg.mode,
            deadline_ms=self._deadline_ms_told(),
            ticks=cfg.ticks,
            players=cfg.players,
            world=self._describe(),
            private=self._private,
            observation_space=obs_space,
            action_space=act_space,
        )

    def _player_spaces(self, pid: int) -> tuple[dict | None, dict | None]:
        """A player's spaces, asked once; a described action space becomes its checker."""
        if self._spaces is None:
            return None, None
        if pid not in self._wire_spaces:
            spaces = self._wire_spaces[pid] = self._spaces(pid)
            if spaces[1] is not None:
                self._checks[pid] = action_checker(spaces[1])
        return self._wire_spaces[pid]

    def _deadline_ms_told(self) -> int | None:
        """The deadline WELCOME announces: --deadline-ms, or the period when paced."""
        if self._deadline_s is None:
            return None
        return int(self.pacer.period * 1e3 if self.pacer else self.settings.deadline_ms)

    def _refuse(
        self, identity: bytes, reason: Rejection, text: str, outs: list[Output], retry_ms: int | None = None
    ) -> None:
        self._reject(reason, text, None, outs)
        outs.append(Send(identity, Error(reason.value, text, self.run_id, retry_ms)))

    def _leave(self, identity: bytes, msg: Leave, outs: list[Output]) -> None:
        p = self.roster.by_identity(identity)
        if p is None or p.id != msg.player:
            self._reject(
                Rejection.UNKNOWN_PLAYER,
                f"LEAVE for player {msg.player} from a peer that is not that player",
                None,
                outs,
            )
            return
        self._gone(p, PlayerEvent.LEAVE, f"left: {msg.reason or 'no reason given'}", outs)

    # ------------------------------------------------------------------ state socket
    def receive_subscription(self, topic: bytes, subscribed: bool) -> Sequence[Output]:
        """The state socket saw ``topic`` subscribed (True) or its last subscriber go (False)."""
        p = self.roster.by_topic(topic)
        if p is None:
            return _NOTHING  # the shared b"" subscription, or noise
        outs: list[Output] = []
        if subscribed:
            p.subscribed = True
            self._change(p, PlayerEvent.SUBSCRIBED, "reconnected", outs)
            self._prove(p, outs)
        else:
            p.subscribed = False
            self._gone(
                p, PlayerEvent.UNSUBSCRIBED, "disconnected (process exited, froze or its link dropped)", outs
            )
        return outs

    # ------------------------------------------------------------------ actions socket
    def receive_action(
        self, msg: Message | ProtocolError, now: float, key: str | None = None
    ) -> Sequence[Output]:
        """A decoded message (or the decoding error) from the actions socket; ``key`` is the
        sender's authenticated key name (None without keys)."""
        cls = msg.__class__
        if cls is Action:
            return self._action(msg.KIND, msg.run, msg.tick, msg.player, msg.token, msg.payload, now, key)
        outs: list[Output] = []
        if cls is Actions:
            self._actions(msg, now, outs, key)
        elif cls is Ready:
            self._ready(msg, outs, key)
        elif isinstance(msg, ProtocolError):
            self._reject(Rejection.of(msg), f"on the actions socket: {msg}", None, outs)
        else:
            self._reject(
                Rejection.WRONG_KIND,
                f"{msg.KIND} message on the actions socket (only ready, action and actions belong there)",
                None,
                outs,
            )
        return outs

    def _sender(
        self, kind: str, run: str, pid: int, token: str, outs: list[Output], key: str | None
    ) -> Player | None:
        """The player a READY/ACTION claims to be from, if run, player, token and (with keys)
        the sender's key all match."""
        if run != self.run_id:
            self._reject(
                Rejection.WRONG_RUN,
                f"{kind} for run {run!r}, this run is {self.run_id!r} (a message from an earlier server?)",
                None,
                outs,
            )
            return None
        p = self.roster.players.get(pid)
        if p is None:
            self._reject(Rejection.UNKNOWN_PLAYER, f"{kind} from unknown player {pid}", None, outs)
            return None
        if not token_matches(token, p):
            self._reject(
                Rejection.BAD_TOKEN,
                f"{kind} claiming to be player {p.id} with a wrong token (use the token from your WELCOME)",
                p.id,
                outs,
            )
            return None
        if p.key is not key and p.key != key:
            self._reject(
                Rejection.WRONG_KEY,
                f"{kind} for player {p.id} from key {key!r}; that player is bound to key {p.key!r}",
                None,
                outs,
            )
            return None
        return p

    def _ready(self, msg: Ready, outs: list[Output], key: str | None) -> None:
        p = self._sender(msg.KIND, msg.run, msg.player, msg.token, outs, key)
        if p is not None:
            p.ready_sent = True
            self._prove(p, outs)

    def _prove(self, p: Player, outs: list[Output]) -> None:
        """JOINED → READY once both the subscription and the READY were seen; mid-run (a
        rejoin or a late join) straight on to ACTIVE: it plays from the next tick."""
        if p.status is Status.JOINED and p.subscribed and p.ready_sent:
            self._change(p, PlayerEvent.PROVEN, "ready", outs)
            if self.running:
                self._change(p, PlayerEvent.START, f"playing from tick {self.tick + 1}", outs)

    def _actions(self, msg: Actions, now: float, outs: list[Output], key: str | None) -> None:
        """A batch from a process hosting several players: each entry is checked as an ACTION."""
        for entry in msg.actions:
            if (
                entry.__class__ is not list
                or len(entry) != 3
                or entry[0].__class__ is not int
                or entry[1].__class__ is not str
            ):
                self._reject(
                    Rejection.MALFORMED,
                    f"an actions entry must be [player: int, token: str, payload], got {entry!r:.80}",
                    None,
                    outs,
                )
                continue
            outs.extend(self._action(msg.KIND, msg.run, msg.tick, entry[0], entry[1], entry[2], now, key))

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
        p = self._sender(kind, run, pid, token, outs, key)
        if p is None:
            return outs
        try:
            check = self._checks.get(pid) if self._checks else None
            action = self._validate(payload) if check is None else check(payload)
        except (InvalidAction, SpaceError) as e:
            self._invalid(p, tick, e, outs)
            return outs
        offer = self.barrier.offer(p.id, tick, action, now=now)
        if offer is Offer.UNKNOWN and p.status is _ACTIVE and self._absent.pop(p.id, None):
            self.barrier.admit(p.id)  # back (rejoin, late join) after the tick opened: counts
            offer = self.barrier.offer(p.id, tick, action, now=now)
        if offer is _OFFER_ACCEPTED:
            if p.status is _ACTIVE:
                return ACCEPTED_ONLY
            self._change(p, PlayerEvent.ANSWERED, "answering again", outs)  # an inactive one is back
            outs.append(ACCEPTED)
            return outs
        if tick == self._asked_again and offer in (Offer.DUPLICATE, Offer.STALE):
            return outs  # a resend we asked for (Republish), maybe after the tick closed
        if offer is Offer.STALE:
            if p.answered_late(tick):  # late only for a tick counted as missed for it
                self._late[p.id] = self._late.get(p.id, 0) + 1
            self._change(
                p, PlayerEvent.ANSWERED, "answering again (late); the barrier waits for it again", outs
            )
        when = (
            f"after tick {tick} closed"
            if tick == self.barrier.tick and not self.barrier.is_open
            else f"during tick {self.barrier.tick}"
        )
        self._reject(_OFFER_REJECTION[offer], f"action from player {p.id} for tick {tick} {when}", p.id, outs)
        return outs

    def _invalid(self, p: Player, tick: int, error: ProtocolError, outs: list[Output]) -> None:
        """Reject it; release the player's place in the open tick; tell the agent once."""
        if tick == self.barrier.tick:
            self.barrier.drop(p.id)  # it answered, badly: don't stall the tick for it
        self._reject(Rejection.INVALID_ACTION, f"player {p.id} tick {tick}: {error}", p.id, outs)
        if p.id not in self._told_invalid:
            self._told_invalid.add(p.id)
            space = self._wire_spaces.get(p.id, (None, None))[1]
            spec = (
                f"your action space is {space}"
                if space is not None
                else f"the action spec is {self._describe().get('action_spec', {})}"
            )
            outs.append(
                Send(
                    p.identity,
                    Error(Rejection.INVALID_ACTION.value, f"tick {tick}: {error}; {spec}", self.run_id),
                )
            )

    def receive_auth_failure(self, detail: str) -> Sequence[Output]:
        """A peer failed the CURVE handshake; nothing of it was delivered. Counted (once: the
        disconnect that ends the failed connection is not a lost actions connection)."""
        outs: list[Output] = []
        self._reject(
            Rejection.AUTH_FAILED,
            f"a peer failed the CURVE handshake ({detail}): an "
            "unlisted key, a plaintext client or a wrong --server-key",
            None,
            outs,
        )
        return outs

    # ------------------------------------------------------------------ lost connections
    def from_player(self, msg: Message | ProtocolError, key: str | None = None) -> bool:
        """True if ``msg`` (from the actions socket) would pass the sender check of READY and
        ACTION (this run, a known player, its token and, with keys, its key); for a batch, if
        one entry would. Nothing is counted: the loop asks this only for a message on an
        actions connection not yet known to carry a player, and only such connections' losses
        go to :meth:`actions_connection_lost` (a stranger's connection that comes and goes,
        or a refused joiner exiting, republishes nothing and is not counted)."""
        cls = msg.__class__
        if cls is Action or cls is Ready:
            claims: Sequence[Any] = ((msg.player, msg.token),)  # type: ignore[union-attr]
        elif cls is Actions:
            claims = [
                e
                for e in msg.actions  # type: ignore[union-attr]
                if e.__class__ is list and len(e) == 3 and e[0].__class__ is int
            ]
        else:
            return False
        if msg.run != self.run_id:  # type: ignore[union-attr]
            return False
        players = self.roster.players
        for pid, token, *_ in claims:
            p = players.get(pid) if pid.__class__ is int else None
            if p is not None and p.key == key and token_matches(token, p):
                return True
        return False

    def actions_connection_lost(self, now: float) -> Sequence[Output]:
        """A player's actions connection went away (the loop reports only connections that
        carried a message :meth:`from_player` accepted). While a tick is open, ask for its
        actions again (:class:`Republish`); if no death or LEAVE explains the loss within
        :data:`LOST_ACTION_GRACE_S`, the server cut it and the open tick stops waiting."""
        self._last_now = now
        if not self.running:
            return _NOTHING
        self._credits = [t for t in self._credits if now - t <= LOST_ACTION_GRACE_S]
        if self._credits:
            self._credits.pop(0)  # a player died or left just now: that was its connection
        else:
            self._drops.append((now, self.barrier.tick))
        if not self.barrier.waiting_for:
            return _NOTHING
        self._asked_again = self.barrier.tick
        return (Republish(self.barrier.tick),)

    def memory_guard_cut(self, socket: str, now: float) -> None:
        """The memory guard cut a connection of ``socket``: counted once, under
        ``memory_guard`` (an actions connection's loss is explained by it: not also a
        ``dropped_connection``). Like any cut, it releases the open tick after
        :data:`LOST_ACTION_GRACE_S` if it is still waiting: the guard may have cut an honest
        player's connection with its action, and a strict tick must not wait for it forever."""
        self.rejected[Rejection.MEMORY_GUARD] += 1
        if socket == "actions" and self.running:
            self._explained(now)
            self._guard_cuts.append((now, self.barrier.tick))

    def _explained(self, now: float) -> None:
        """A player died or left: that explains one lost actions connection (or a later one)."""
        if self._drops:
            self._drops.pop(0)
        else:
            self._credits.append(now)

    def _expire_drops(self, now: float) -> None:
        """Losses unexplained for the grace period were cuts: count them, release the tick
        (so do the memory guard's cuts, counted when they happened)."""
        while self._drops and now - self._drops[0][0] >= LOST_ACTION_GRACE_S:
            _, tick = self._drops.pop(0)
            self.rejected[Rejection.DROPPED_CONNECTION] += 1
            self._cut_off = self._cut_off or tick == self.barrier.tick
        while self._guard_cuts and now - self._guard_cuts[0][0] >= LOST_ACTION_GRACE_S:
            _, tick = self._guard_cuts.pop(0)
            self._cut_off = self._cut_off or tick == self.barrier.tick

    def probe(self, now: float) -> Sequence[Output]:
        """Every :data:`PROBE_EVERY_S`: check the control connection of each player that
        JOINed but has not subscribed (its process may be gone, e.g. killed in ``setup()``)."""
        self._last_now = now
        if now < self._next_probe:
            return _NOTHING
        self._next_probe = now + PROBE_EVERY_S
        return [
            Probe(p.identity)
            for p in self.roster.players.values()
            if p.status is Status.JOINED and not p.subscribed
        ]

    def control_lost(self, identity: bytes) -> list[Output]:
        """A :class:`Probe` found no control connection for ``identity``: the player is dead
        (in the lobby its slot is free again)."""
        outs: list[Output] = []
        p = self.roster.by_identity(identity)
        if p is not None and p.status is Status.JOINED and not p.subscribed:
            self._gone(p, PlayerEvent.LOST, "its process went away before it subscribed", outs)
        return outs

    # ------------------------------------------------------------------ status
    def _reject(self, reason: Rejection, text: str, player: int | None, outs: list[Output]) -> None:
        self.rejected[reason] += 1
        outs.append(Rejected(reason, text, player))

    def _change(self, p: Player, event: PlayerEvent, detail: str, outs: list[Output]) -> None:
        old = self.roster.transition(p, event)
        if p.status is not old:
            outs.append(StatusChange(p.id, p.name, old, p.status, self.tick, detail))

    def _gone(self, p: Player, event: PlayerEvent, detail: str, outs: list[Output]) -> None:
        """It died or left: stop waiting for it; in the lobby, free its slot."""
        was_playing = p.status in PLAYING
        self._change(p, event, detail, outs)
        if self.running:
            self._explained(self._last_now)
        if was_playing:
            self.barrier.drop(p.id)
        elif not self.running:
            self.roster.remove(p)

    # ------------------------------------------------------------------ lobby
    def open_lobby(self, now: float) -> None:
        """The lobby opens now; the lobby timeout counts from here."""
        self._lobby_opened = now

    def lobby(self, now: float) -> Lobby:
        """Start when every slot is ready, or with ``min_players`` once the timeout passed."""
        cfg = self.settings
        self._now = now
        ready = len(self.roster.ready())
        if ready >= cfg.players:
            return Lobby.START
        if now - self._lobby_opened < cfg.lobby_timeout_s:
            return Lobby.WAIT
        if cfg.min_players and ready >= cfg.min_players:
            return Lobby.START
        return Lobby.GIVE_UP

    def release_unready(self, now: float) -> list[Output]:
        """Free the slots of players that joined but did not prove readiness within
        ``ready_timeout_s`` (a squatter, or an agent that cannot reach the other ports)."""
        outs: list[Output] = []
        limit = self.settings.ready_timeout_s
        for p in list(self.roster.players.values()):
            if p.status is Status.JOINED and now - self._joined_at.get(p.id, now) > limit:
                self._gone(
                    p,
                    PlayerEvent.UNSUBSCRIBED,
                    f"joined but not ready within {limit:g} "
                    "s: slot released (can it reach the state and actions ports?)",
                    outs,
                )
        return outs

    def lobby_report(self) -> str:
        """Who is missing and what to do about it (for the lobby-timeout error)."""
        cfg, eps = self.settings, self._endpoints
        base = eps.base if eps else "the server's address"
        state, actions = (
            (connectable(eps.state), connectable(eps.actions))
            if eps
            else ("its state", "its actions endpoint")
        )
        lines = [
            f"only {len(self.roster.ready())} of {cfg.min_players or cfg.players} needed "
            f"player(s) were ready after {cfg.lobby_timeout_s:.0f} s (address {base})."
        ]
        for p in self.roster.players.values():
            if p.status is Status.JOINED:
                missing = [
                    w
                    for w, ok in (
                        ("state subscription", p.subscribed),
                        ("READY on the actions socket", p.ready_sent),
                    )
                    if not ok
                ]
                lines.append(
                    f"  player {p.id} {p.name!r} joined but never proved its "
                    f"{' and '.join(missing)}: can it reach {state} and {actions}?"
                )
        never = cfg.players - len(self.roster.players)
        if never:
            lines.append(
                f"  {never} slot(s) were never joined: start more agents, connect them "
                f"to {self._connect_to()}, or lower --players / set --min-players."
            )
        return "\n".join(lines)

    def _connect_to(self) -> str:
        """The address agents connect to: a wildcard bind (``0.0.0.0``, ``*``) is no address
        to connect to, so name the local one and say what agents elsewhere use."""
        if self._endpoints is None:
            return "the server's address"
        base = self._endpoints.base
        local = connectable(base)
        if local == base:
            return base
        return f"{local} (agents on other hosts: tcp://THIS-HOST'S-ADDRESS:{local.rpartition(':')[2]})"

    def start(self) -> list[Output]:
        """The run begins: ready players become active; the others stay out of it."""
        outs: list[Output] = []
        for p in list(self.roster.players.values()):
            self._change(p, PlayerEvent.START, "playing", outs)
        self.running = True
        self._first_tick = self.tick
        return outs

    # ------------------------------------------------------------------ ticks
    def resume_at(self, tick: int, last_actions: dict[int, Any], names: dict[int, str] | None = None) -> None:
        """A resumed run continues at ``tick`` (ticks done before it) with each player's last
        answered action from before the restart (``--on-missing repeat`` repeats it) and
        its recorded name (kept by whoever takes the slot back under the same name)."""
        self.tick = tick
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
        for, sent to that player alone as an OBSERVATION (returned as ``Send`` outputs, by
        control identity), and a view saying terminated/truncated keeps that player out of
        the tick (counted ``done``). Paced, a deadline-mode tick's deadline is the end of its
        period (``--deadline-ms`` is not used); a strict tick still waits for everyone and the
        next one starts on the grid.
        """
        self.tick = tick
        self._cut_off = False
        outs = self._views(tick, view) if view is not None else _NOTHING
        accepting, awaited, self._absent = self.roster.split(self._done)
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
                Send(
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
        if self._drops or self._guard_cuts:
            self._expire_drops(now)
        return self.barrier.complete or self.barrier.expired(now) or self._cut_off

    def close_tick(self) -> TickClosed:
        """Close the open tick: count it, strike repeat missers, fill in missing actions."""
        result = self.barrier.close()
        missed = self.roster.count(result, self._absent, self._done)
        changes: list[StatusChange] = []
        strikes = self.roster.strikes
        for p in missed:
            if strikes and p.status is Status.ACTIVE and p.streak >= strikes:
                self._change(
                    p,
                    PlayerEvent.STRUCK,
                    f"missed {p.streak} ticks in a row: inactive "
                    "until it answers again (the barrier no longer waits for it)",
                    changes,
                )
        self.tick = result.tick + 1
        late, self._late = self._late, {}
        return TickClosed(self._fill(result), result, changes, late)

    def drop_tick(self) -> None:
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
        self._last_now = now
        if now - self._last_publish < self.settings.heartbeat_s:
            return _NOTHING
        self._last_publish = now
        return (Publish(Heartbeat(self.run_id, self.tick)),)

    def next_timeout(self, now: float) -> float:
        """Seconds until something is due by time alone: heartbeat, tick deadline, lobby end,
        the end of the wait for a player to come back."""
        due = self._last_publish + self.settings.heartbeat_s
        if not self.running:
            due = min(due, self._lobby_opened + self.settings.lobby_timeout_s)
            joined = [
                self._joined_at.get(p.id, now)
                for p in self.roster.players.values()
                if p.status is Status.JOINED
            ]
            if joined:
                due = min(due, min(joined) + self.settings.ready_timeout_s)
        else:
            left = self.barrier.time_left(now) if self.barrier.is_open else None
            if left is not None:
                due = min(due, now + left)
            elif not self.barrier.is_open and self.pacer is not None:
                due = min(due, self.pacer.due(now))
            for cuts in (self._drops, self._guard_cuts):
                if cuts:
                    due = min(due, cuts[0][0] + LOST_ACTION_GRACE_S)
            if self._nobody_since is not None:  # waiting for a player to come back
                due = min(due, self._nobody_since + NOBODY_PLAYING_GRACE_S)
        return max(0.0, due - now)

    # ------------------------------------------------------------------ end
    def end(self, reason: str, scores: list) -> list[Output]:
        """END for everyone: published, and sent to each player's control identity."""
        while self._drops:  # unexplained at the end: count them as what they most likely were
            self._drops.pop(0)
            self.rejected[Rejection.DROPPED_CONNECTION] += 1
        self._guard_cuts.clear()
        msg = End(self.run_id, self.tick, str(reason), list(scores))
        return [Publish(msg), *(Send(p.identity, msg) for p in self.roster.players.values())]
