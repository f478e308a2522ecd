"""Seats: which player holds which slot, in what status, and how slots are claimed and freed.

Part of the world server's rules (:mod:`tickwire.protocol.server_rules`), sans-IO like them:
JOIN/WELCOME/refusal, rejoin of a dead slot and late join (:meth:`Seats.claim` is the one
place a JOIN is bound to a slot), the readiness proof (subscription seen + READY seen),
the sender check of READY and ACTION (run, player, token, key), LEAVE, death by a lost
subscription, probes of players gone before they subscribed (:class:`Probe`), and each
player's spaces. Every status change goes through :meth:`Seats.change`, every death or
LEAVE through :meth:`Seats.gone`.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .barrier import TickBarrier
from .connection_ledger import ConnectionLedger
from .errors import ConfigError, ProtocolError
from .messages import VERSION, Action, ActionArray, Actions, Error, Join, Leave, Message, Ready, Welcome
from .roster import Player, Roster, short_reason
from .server_outputs import NOTHING, Output, Probe, Rejected, Rejection, SendTo, StatusChange
from .server_status import PLAYING, PlayerEvent, Status
from .spaces import Checker, action_checker

#: How often players that JOINed but never subscribed are checked for a live connection.
PROBE_EVERY_S = 1.0

#: ``spaces(player) -> (observation space, action space)`` as wire maps (None: not described).
Spaces = Callable[[int], "tuple[dict | None, dict | None]"]


class RuleSettings(Protocol):
    """The settings the rules read (``tickwire.server.ServerConfig`` provides them; read-only)."""

    @property
    def players(self) -> int: ...
    @property
    def ticks(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def mode(self) -> str: ...
    @property
    def deadline_ms(self) -> float: ...
    @property
    def on_missing(self) -> str: ...
    @property
    def strikes(self) -> int: ...
    @property
    def min_players(self) -> int | None: ...
    @property
    def lobby_timeout_s(self) -> float: ...
    @property
    def heartbeat_s(self) -> float: ...
    @property
    def late_join(self) -> bool: ...
    @property
    def ready_timeout_s(self) -> float: ...


def token_matches(token: Any, p: Player) -> bool:
    """``token`` is ``p``'s token, compared in constant time. Tokens are ASCII hex; anything
    else (a non-ASCII string, which ``compare_digest`` refuses with a TypeError, or not a
    string at all) is simply a wrong token, never an exception."""
    return token.__class__ is str and token.isascii() and secrets.compare_digest(token, p.token)


class Seats:
    """The players of one run and their slots, and the run facts a status change is
    stamped with (``run_id``, ``tick``, ``running``).

    ``describe`` gives the world description sent in WELCOME (asked per WELCOME);
    ``deadline_ms`` is the deadline WELCOME announces; ``fixed_slots`` maps a key name to the
    slot it always gets; ``spaces`` gives a player's spaces for its WELCOME (a described
    action space becomes that player's action checker, in :attr:`checks`).
    """

    def __init__(
        self,
        settings: RuleSettings,
        run_id: str,
        barrier: TickBarrier,
        ledger: ConnectionLedger,
        rejected: Counter[Rejection],
        *,
        describe: Callable[[], dict],
        deadline_ms: int | None,
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
        self.run_id = run_id
        # Strikes are a deadline-mode policy: strict mode always waits for every live player.
        strikes = settings.strikes if settings.mode == "deadline" else 0
        self.roster = Roster(run_id, settings.seed, settings.players, strikes)
        self.barrier = barrier
        self.ledger = ledger
        self.rejected = rejected
        self.running = False
        self.tick = 0
        self.first_tick = 0  #: the tick the run started at (a resumed run starts later)
        #: players not playing when the open tick began, by status (counted not_joined/dead)
        self.absent: dict[int, Status] = {}
        self.joined_at: dict[int, float] = {}  #: when each player JOINed (the ready timeout)
        self.checks: dict[int, Checker] = {}  #: per-player action checkers (spaces given)
        self._describe = describe
        self._deadline_ms = deadline_ms
        self._private = private
        self._spaces = spaces
        self._wire_spaces: dict[int, tuple[dict | None, dict | None]] = {}
        self._next_probe = 0.0

    # ------------------------------------------------------------------ status
    def reject(self, reason: Rejection, text: str, player: int | None, outs: list[Output]) -> None:
        """Count a rejection and report it."""
        self.rejected[reason] += 1
        outs.append(Rejected(reason, text, player))

    def change(self, p: Player, event: PlayerEvent, detail: str, outs: list[Output]) -> None:
        """Apply ``event`` to ``p``; report the change if its status changed."""
        old = self.roster.transition(p, event)
        if p.status is not old:
            outs.append(StatusChange(p.id, p.name, old, p.status, self.tick, detail))

    def gone(self, p: Player, event: PlayerEvent, detail: str, now: float, outs: list[Output]) -> None:
        """It died or left: stop waiting for it; in the lobby, free its slot."""
        was_playing = p.status in PLAYING
        self.change(p, event, detail, outs)
        if self.running:
            self.ledger.explained(now)
        if was_playing:
            self.barrier.drop(p.id)
        elif not self.running:
            self.roster.remove(p)

    def refuse(
        self, identity: bytes, reason: Rejection, text: str, outs: list[Output], retry_ms: int | None = None
    ) -> None:
        """Count the refusal and answer it with an ERROR on the control socket."""
        self.reject(reason, text, None, outs)
        outs.append(SendTo(identity, Error(reason.value, text, self.run_id, retry_ms)))

    # ------------------------------------------------------------------ control socket
    def receive_control(
        self, identity: bytes, msg: Message | ProtocolError, now: float, key: str | None
    ) -> list[Output]:
        """A decoded message (or the decoding error) from ``identity`` on the control socket."""
        outs: list[Output] = []
        if isinstance(msg, ProtocolError):
            self.refuse(
                identity,
                Rejection.of(msg),
                f"could not decode your message "
                f"({msg.reason}): {str(msg) or 'no detail'}; send one msgpack map per message "
                f"with 'v': {VERSION}, 'kind' and that kind's fields as PROTOCOL.md "
                "describes, e.g. {'v': 1, 'kind': 'join', 'name': 'me'}",
                outs,
            )
        elif isinstance(msg, Join):
            self._join(identity, msg, now, outs, key)
        elif isinstance(msg, Leave):
            self._leave(identity, msg, now, outs)
        else:
            self.refuse(
                identity,
                Rejection.WRONG_KIND,
                f"{msg.KIND} message on the control "
                "socket: only join and leave belong there (ready and action go to the "
                "actions socket)",
                outs,
            )
        return outs

    def _join(self, identity: bytes, msg: Join, now: float, outs: list[Output], key: str | None) -> None:
        known = self.roster.by_identity(identity)
        if known is not None and known.key != key:
            self.refuse(
                identity,
                Rejection.WRONG_KEY,
                f"this connection's identity holds player {known.id}, which is bound to another key",
                outs,
            )
            return
        if known is not None:  # a retried JOIN: the same answer
            outs.append(SendTo(identity, self.welcome(known)))
            return
        wanted, name = msg.slot, msg.name
        if key is not None and key in self._fixed:  # the allow-list decides slot and name
            wanted, name = self._fixed[key], key
        claim = self.claim(wanted, key, now)
        if isinstance(claim, Player):
            was = claim.name
            self.roster.rejoin(claim, identity, name)
            renamed = f", was {was!r}" if claim.name != was else ""
            self.change(
                claim,
                PlayerEvent.REJOINED,
                f"rejoining at tick {self.tick} (rejoin {claim.rejoins}{renamed})",
                outs,
            )
            outs.append(SendTo(identity, self.welcome(claim)))
        elif isinstance(claim, int):
            # a late joiner missed the ticks this run (epoch) played so far; none in the lobby
            late_by = self.tick - self.first_tick if self.running else 0
            p = self.roster.add(claim, name, identity, ticks_before=late_by)
            p.key = key
            self.joined_at[p.id] = now
            if self.running and self.barrier.is_open:
                # the open tick is counted like a rejoined dead slot's: not_joined, unless it
                # proves readiness and answers it before it closes (see ServerRules._action)
                self.absent[p.id] = p.status
            outs.append(
                StatusChange(
                    p.id, p.name, None, p.status, self.tick, "joined late" if self.running else "joined"
                )
            )
            outs.append(SendTo(identity, self.welcome(p)))
        else:
            self.refuse(identity, claim[0], claim[1], outs, *claim[2:])

    def claim(
        self, wanted: int | None, key: str | None, now: float
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
        ``ServerRules.release_unready`` may free one by then.
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
        unready = roster.joined  # in the lobby: in the order they joined
        if unready and not self.running:
            first = self.joined_at.get(next(iter(unready)), now)
            wait_s = max(0.0, first + cfg.ready_timeout_s - now)
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

    def welcome(self, p: Player) -> Welcome:
        """The WELCOME for ``p`` (the same for a retried JOIN)."""
        cfg = self.settings
        obs_space, act_space = self.player_spaces(p.id)
        return Welcome(
            run=self.run_id,
            player=p.id,
            name=p.name,
            seed=p.seed,
            token=p.token,
            topic=p.topic,
            mode=cfg.mode,
            deadline_ms=self._deadline_ms,
            ticks=cfg.ticks,
            players=cfg.players,
            world=self._describe(),
            private=self._private,
            observation_space=obs_space,
            action_space=act_space,
            action_array=True,
        )

    def player_spaces(self, pid: int) -> tuple[dict | None, dict | None]:
        """A player's spaces, asked once; a described action space becomes its checker."""
        if self._spaces is None:
            return None, None
        if pid not in self._wire_spaces:
            spaces = self._wire_spaces[pid] = self._spaces(pid)
            if spaces[1] is not None:
                self.checks[pid] = action_checker(spaces[1])
        return self._wire_spaces[pid]

    def action_space(self, pid: int) -> dict | None:
        """The action space told to player ``pid`` in its WELCOME (None: not described)."""
        return self._wire_spaces.get(pid, (None, None))[1]

    def _leave(self, identity: bytes, msg: Leave, now: float, outs: list[Output]) -> None:
        p = self.roster.by_identity(identity)
        if p is None or p.id != msg.player:
            self.reject(
                Rejection.UNKNOWN_PLAYER,
                f"LEAVE for player {msg.player} from a peer that is not that player",
                None,
                outs,
            )
            return
        if p.leave_reason is None:  # a retried LEAVE keeps the first reason
            p.leave_reason = short_reason(msg.reason)
        self.gone(p, PlayerEvent.LEAVE, f"left: {msg.reason or 'no reason given'}", now, outs)

    # ------------------------------------------------------------------ state socket
    def receive_subscription(self, topic: bytes, subscribed: bool, now: float) -> Sequence[Output]:
        """The state socket saw ``topic`` subscribed (True) or its last subscriber go (False)."""
        p = self.roster.by_topic(topic)
        if p is None:
            return NOTHING  # the shared b"" subscription, or noise
        outs: list[Output] = []
        if subscribed:
            p.subscribed = True
            self.change(p, PlayerEvent.SUBSCRIBED, "reconnected", outs)
            self.prove(p, outs)
        else:
            p.subscribed = False
            self.gone(
                p,
                PlayerEvent.UNSUBSCRIBED,
                "disconnected (process exited, froze or its link dropped)",
                now,
                outs,
            )
        return outs

    # ------------------------------------------------------------------ actions socket
    def sender(
        self, kind: str, run: str, pid: int, token: str, outs: list[Output], key: str | None
    ) -> Player | None:
        """The player a READY/ACTION claims to be from, if run, player, token and (with keys)
        the sender's key all match; else None (the rejection is in ``outs``)."""
        if run != self.run_id:
            self.reject(
                Rejection.WRONG_RUN,
                f"{kind} for run {run!r}, this run is {self.run_id!r} (a message from an earlier server?)",
                None,
                outs,
            )
            return None
        p = self.roster.players.get(pid)
        if p is None:
            self.reject(Rejection.UNKNOWN_PLAYER, f"{kind} from unknown player {pid}", None, outs)
            return None
        if not token_matches(token, p):
            self.reject(
                Rejection.BAD_TOKEN,
                f"{kind} claiming to be player {p.id} with a wrong token (use the token from your WELCOME)",
                p.id,
                outs,
            )
            return None
        if p.key is not key and p.key != key:
            self.reject(
                Rejection.WRONG_KEY,
                f"{kind} for player {p.id} from key {key!r}; that player is bound to key {p.key!r}",
                None,
                outs,
            )
            return None
        return p

    def ready(self, msg: Ready, outs: list[Output], key: str | None) -> None:
        """A READY: half of the readiness proof."""
        p = self.sender(msg.KIND, msg.run, msg.player, msg.token, outs, key)
        if p is not None:
            p.ready_sent = True
            self.prove(p, outs)

    def prove(self, p: Player, outs: list[Output]) -> None:
        """JOINED → READY once both the subscription and the READY were seen; mid-run (a
        rejoin or a late join) straight on to ACTIVE: it plays from the next tick."""
        if p.status is Status.JOINED and p.subscribed and p.ready_sent:
            self.change(p, PlayerEvent.PROVEN, "ready", outs)
            if self.running:
                self.change(p, PlayerEvent.START, f"playing from tick {self.tick + 1}", outs)

    def from_player(self, msg: Message | ProtocolError, key: str | None = None) -> bool:
        """True if ``msg`` (from the actions socket) would pass :meth:`sender` (this run, a
        known player, its token and, with keys, its key); for a batch, if one entry would.
        Nothing is counted."""
        cls = msg.__class__
        if cls is Action or cls is Ready:
            claims: Sequence[Any] = ((msg.player, msg.token),)  # type: ignore[union-attr]
        elif cls is Actions:
            claims = [
                e
                for e in msg.actions  # type: ignore[union-attr]
                if e.__class__ is list and len(e) == 3 and e[0].__class__ is int
            ]
        elif cls is ActionArray:
            players, tokens = msg.players, msg.tokens  # type: ignore[union-attr]
            ids = players.tolist() if isinstance(players, np.ndarray) and players.ndim == 1 else players
            claims = list(zip(ids, tokens)) if isinstance(ids, list) else []
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

    # ------------------------------------------------------------------ probes
    def probe(self, now: float) -> Sequence[Output]:
        """Every :data:`PROBE_EVERY_S`: a :class:`Probe` of the control connection of each
        player that JOINed but has not subscribed (its process may be gone)."""
        if now < self._next_probe:
            return NOTHING
        self._next_probe = now + PROBE_EVERY_S
        players = self.roster.players
        return [Probe(players[pid].identity) for pid in self.roster.joined if not players[pid].subscribed]

    def control_lost(self, identity: bytes, now: float) -> list[Output]:
        """A :class:`Probe` found no control connection for ``identity``: the player is dead
        (in the lobby its slot is free again)."""
        outs: list[Output] = []
        p = self.roster.by_identity(identity)
        if p is not None and p.status is Status.JOINED and not p.subscribed:
            self.gone(p, PlayerEvent.LOST, "its process went away before it subscribed", now, outs)
        return outs
