"""The world loop: lobby → lockstep ticks → end, around a World, a TickBarrier and a Roster."""
from __future__ import annotations

import logging
import resource
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tickwire.protocol import (
    ACTION_LIMITS,
    Action,
    Actions,
    End,
    Error,
    Heartbeat,
    Join,
    Leave,
    LobbyTimeout,
    ProtocolError,
    Ready,
    State,
    Welcome,
    decode,
    encode,
)

from .barrier import Offer, TickBarrier
from .config import MODES, ON_MISSING, ServerConfig  # noqa: F401  (re-exported)
from .roster import PLAYING, Player, Roster, Status
from .transport import ACTIONS, CONTROL, STATE, ServerSockets, SocketOptions
from .world import InvalidAction, World

log = logging.getLogger(__name__)

class WorldServer:
    """Runs one world with remote players over three ZeroMQ sockets.

    ``run()`` blocks until the run ends (ticks done, world done, ``stop()`` or all players
    gone) and returns the summary dict. ``stop()`` may be called from a signal handler.
    """

    def __init__(self, world: World, config: ServerConfig,
                 progress: Callable[[int, "WorldServer"], None] | None = None,
                 socket_options: SocketOptions = SocketOptions()) -> None:
        self.world = world
        self.config = config
        self.run_id = secrets.token_hex(6)
        # Strikes are a deadline-mode policy: strict mode always waits for every live player.
        strikes = config.strikes if config.mode == "deadline" else 0
        self.roster = Roster(self.run_id, config.seed, config.players, strikes)
        self.barrier = TickBarrier()
        self.rejected: Counter[str] = Counter()
        self._progress = progress
        self._stop_reason: str | None = None
        self._running = False
        self._last_publish = 0.0
        self._warned: set[tuple[str, int | None]] = set()
        self.tick = 0
        self.final_state: Any = None
        self.lobby_s = 0.0
        self.sockets = ServerSockets(config.bind, socket_options)
        self.endpoints = self.sockets.endpoints
        log.info("run %s listening on %s (state %s, actions %s, control %s)", self.run_id,
                 self.endpoints.base, self.endpoints.state, self.endpoints.actions,
                 self.endpoints.control)

    # ------------------------------------------------------------------ public
    @property
    def running(self) -> bool:
        """True once the lobby is over and ticks are being played."""
        return self._running

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end after the current wait (signal-safe: sets a field)."""
        self._stop_reason = self._stop_reason or reason

    def run(self) -> dict[str, Any]:
        """Lobby, ticks, END; returns the summary. Sockets are closed on return."""
        started = time.monotonic()
        state, reason = None, "not started"
        try:
            initial = self.world.reset(self.config.seed, self.config.players)  # fail early
            if self._lobby():
                self.lobby_s = time.monotonic() - started
                state, reason = self._play(initial)
            else:
                reason = f"stopped in the lobby ({self._stop_reason})"
                self.lobby_s = time.monotonic() - started
            self.final_state = state
        finally:
            self._end(state, reason)
            self.sockets.close()
        return self._summary(state, reason, time.monotonic() - started - self.lobby_s)

    # ------------------------------------------------------------------ phases
    def _lobby(self) -> bool:
        """Wait until the players are ready; False if stopped first."""
        cfg = self.config
        t0 = time.monotonic()
        log.info("waiting for %d player(s) (lobby timeout %.0f s)", cfg.players, cfg.lobby_timeout_s)
        while len(self.roster.ready()) < cfg.players:
            if self._stop_reason:
                return False
            now = time.monotonic()
            if now - t0 >= cfg.lobby_timeout_s:
                if cfg.min_players and len(self.roster.ready()) >= cfg.min_players:
                    log.warning("lobby timeout: starting with %d of %d players",
                                len(self.roster.ready()), cfg.players)
                    break
                raise LobbyTimeout(self._lobby_report())
            self._pump(min(100.0, (t0 + cfg.lobby_timeout_s - now) * 1e3))
        self.roster.start()
        self._running = True
        log.info("all set: %d player(s) ready, starting run %s", len(self.roster.awaited()), self.run_id)
        return True

    def _lobby_report(self) -> str:
        cfg = self.config
        ready = self.roster.ready()
        pending = [p for p in self.roster.players.values() if p.status is Status.JOINED]
        need = cfg.min_players or cfg.players
        lines = [f"only {len(ready)} of {need} needed player(s) were ready after "
                 f"{cfg.lobby_timeout_s:.0f} s (address {self.endpoints.base})."]
        for p in pending:
            missing = [w for w, ok in (("state subscription", p.subscribed),
                                       ("READY on the actions socket", p.ready_sent)) if not ok]
            lines.append(f"  player {p.id} {p.name!r} joined but never proved its "
                         f"{' and '.join(missing)}: can it reach {self.endpoints.state} and "
                         f"{self.endpoints.actions}?")
        never = cfg.players - len(self.roster.players)
        if never:
            lines.append(f"  {never} slot(s) were never joined: start more agents, connect them "
                         f"to {self.endpoints.base}, or lower --players / set --min-players.")
        return "\n".join(lines)

    def _play(self, state: Any) -> tuple[Any, str]:
        cfg, world, barrier = self.config, self.world, self.barrier
        deadline_s = cfg.deadline_ms / 1e3 if cfg.mode == "deadline" else None
        if self._progress:
            self._progress(0, self)
        for tick in range(cfg.ticks):
            self.tick = tick
            if self._stop_reason:
                return state, self._stop_reason
            if world.done(state):
                return state, "world done"
            accepting = self.roster.accepting()
            if not accepting:
                return state, "no players left"
            frames = encode(State(self.run_id, tick, world.observe(state)))
            now = time.monotonic()
            barrier.begin(tick, accepting, self.roster.awaited(), now=now,
                          deadline=None if deadline_s is None else now + deadline_s)
            self.sockets.publish(frames)
            self._last_publish = now
            while not barrier.complete and not self._stop_reason:
                now = time.monotonic()
                if barrier.expired(now):
                    break
                left = barrier.time_left(now)
                self._pump(100.0 if left is None else min(100.0, left * 1e3))
            result = barrier.close()
            for p in self.roster.apply(result):
                log.warning("player %d %r missed %d ticks in a row: inactive until it answers "
                            "again (the barrier no longer waits for it)", p.id, p.name, p.streak)
            state = world.step(state, self._fill(result.actions, result.missing))
            self.tick = tick + 1
            if self._progress:
                self._progress(tick + 1, self)
        return state, self._stop_reason or "ticks done"

    def _fill(self, actions: dict[int, Any], missing: frozenset[int]) -> dict[int, Any]:
        """Replace missing actions by the noop (or the player's last action)."""
        noop = self.world.noop()
        for pid in missing:
            last = self.roster.players[pid].last_action
            actions[pid] = last if self.config.on_missing == "repeat" and last is not None else noop
        return actions

    def _end(self, state: Any, reason: str) -> None:
        scores = self.world.scores(state) if state is not None else []
        frames = encode(End(self.run_id, self.tick, reason, list(scores)))
        self.sockets.publish(frames)
        for p in self.roster.players.values():
            self.sockets.send_control(p.identity, frames)
        log.info("run %s ended at tick %d: %s", self.run_id, self.tick, reason)

    # ------------------------------------------------------------------ input
    def _pump(self, timeout_ms: float) -> None:
        """Wait for input up to ``timeout_ms``, handle all of it, keep agents' server clock."""
        for event in self.sockets.poll(timeout_ms):
            if event == ACTIONS:
                self._drain_actions()
            elif event == CONTROL:
                self._drain_control()
            elif event == STATE:
                self._drain_subscriptions()
        now = time.monotonic()
        if now - self._last_publish >= self.config.heartbeat_s:
            self.sockets.publish(encode(Heartbeat(self.run_id, self.tick)))
            self._last_publish = now

    def _reject(self, reason: str, text: str, player: int | None = None) -> None:
        self.rejected[reason] += 1
        key = (reason, player)
        if key not in self._warned:  # once per reason (and player): never flood the log
            self._warned.add(key)
            log.warning("rejected a message (%s): %s", reason, text)
        else:
            log.debug("rejected a message (%s): %s", reason, text)

    def _drain_actions(self) -> None:
        while (frames := self.sockets.recv_action()) is not None:
            try:
                msg = decode(frames, ACTION_LIMITS)
            except ProtocolError as e:
                self._reject(e.reason, f"on the actions socket: {e}")
                continue
            if isinstance(msg, Action):
                self._on_action(msg)
            elif isinstance(msg, Actions):
                self._on_actions(msg)
            elif isinstance(msg, Ready):
                self._on_ready(msg)
            else:
                self._reject("wrong_kind", f"{msg.KIND} message on the actions socket (only "
                             "ready and action belong there)")

    def _check_sender(self, msg: Action | Ready) -> Player | None:
        """The player a READY/ACTION claims to be from, if run, player and token all match."""
        if msg.run != self.run_id:
            self._reject("wrong_run", f"{msg.KIND} for run {msg.run!r}, this run is "
                         f"{self.run_id!r} (a message from an earlier server?)")
            return None
        p = self.roster.players.get(msg.player)
        if p is None:
            self._reject("unknown_player", f"{msg.KIND} from unknown player {msg.player}")
            return None
        if not secrets.compare_digest(msg.token, p.token):
            self._reject("bad_token", f"{msg.KIND} claiming to be player {p.id} with a wrong "
                         "token (use the token from your WELCOME)", p.id)
            return None
        return p

    def _on_ready(self, msg: Ready) -> None:
        p = self._check_sender(msg)
        if p is not None:
            p.ready_sent = True
            if self.roster.mark_ready_if_proven(p):
                log.debug("player %d %r is ready", p.id, p.name)

    def _on_action(self, msg: Action) -> None:
        p = self._check_sender(msg)
        if p is None:
            return
        try:
            action = self.world.validate_action(msg.payload)
        except InvalidAction as e:
            if msg.tick == self.barrier.tick:
                self.barrier.drop(p.id)  # it answered, badly: don't stall the tick for it
            first = ("invalid_action", p.id) not in self._warned
            self._reject("invalid_action", f"player {p.id} tick {msg.tick}: {e}", p.id)
            if first:  # tell the agent once; later ones are only counted
                self.sockets.send_control(p.identity, encode(Error(
                    "invalid_action", f"tick {msg.tick}: {e}; the action spec is "
                    f"{self.world.action_spec}", self.run_id)))
            return
        outcome = self.barrier.offer(p.id, msg.tick, action, now=time.monotonic())
        if outcome is Offer.ACCEPTED:
            return
        if outcome is Offer.STALE and self.roster.heard_late(p):
            log.info("player %d %r is answering again (late); the barrier waits for it again",
                     p.id, p.name)
        self._reject(outcome.value, f"action from player {p.id} for tick {msg.tick} during "
                     f"tick {self.barrier.tick}", p.id)

    def _on_actions(self, msg: Actions) -> None:
        """A batch from a process hosting several players: each entry is an ACTION."""
        for entry in msg.actions:
            if (entry.__class__ is not list or len(entry) != 3 or entry[0].__class__ is not int
                    or entry[1].__class__ is not str):
                self._reject("malformed", "an actions entry must be [player: int, token: str, "
                             f"payload], got {entry!r:.80}")
                continue
            self._on_action(Action(msg.run, msg.tick, entry[0], msg.seq, entry[1], entry[2]))

    def _drain_control(self) -> None:
        while (got := self.sockets.recv_control()) is not None:
            identity, frames = got
            try:
                msg = decode(frames)
            except ProtocolError as e:
                self._reject(e.reason, f"on the control socket: {e}")
                self.sockets.send_control(identity, encode(Error(e.reason, str(e), self.run_id)))
                continue
            if isinstance(msg, Join):
                self._on_join(identity, msg)
            elif isinstance(msg, Leave):
                self._on_leave(identity, msg)
            else:
                self._refuse(identity, "wrong_kind", f"{msg.KIND} message on the control socket "
                             "(only join and leave belong there)")

    def _welcome(self, p: Player) -> Welcome:
        cfg = self.config
        return Welcome(run=self.run_id, player=p.id, name=p.name, seed=p.seed, token=p.token,
                       topic=p.topic, mode=cfg.mode,
                       deadline_ms=int(cfg.deadline_ms) if cfg.mode == "deadline" else None,
                       ticks=cfg.ticks, players=cfg.players, world=self.world.describe())

    def _on_join(self, identity: bytes, msg: Join) -> None:
        known = self.roster.by_identity(identity)
        if known is not None:  # a retried JOIN: same answer
            self.sockets.send_control(identity, encode(self._welcome(known)))
            return
        if self._running:
            self._refuse(identity, "run_in_progress", f"run {self.run_id} is already at tick "
                         f"{self.tick}; players must join before it starts")
            return
        slot = self.roster.free_slot(msg.slot)
        if slot is None:
            if msg.slot is not None and len(self.roster.players) < self.config.players:
                self._refuse(identity, "slot_taken", f"slot {msg.slot} is taken or out of range "
                             f"0..{self.config.players - 1}; ask for another or none")
            else:
                self._refuse(identity, "full", f"all {self.config.players} player slots are "
                             "taken; start the server with a larger --players")
            return
        p = self.roster.add(slot, msg.name, identity)
        log.debug("player %d %r joined", p.id, p.name)
        self.sockets.send_control(identity, encode(self._welcome(p)))

    def _refuse(self, identity: bytes, code: str, text: str) -> None:
        self._reject(code, text)
        self.sockets.send_control(identity, encode(Error(code, text, self.run_id)))

    def _on_leave(self, identity: bytes, msg: Leave) -> None:
        p = self.roster.by_identity(identity)
        if p is None or p.id != msg.player:
            self._reject("unknown_player", f"LEAVE for player {msg.player} from a peer that "
                         "is not that player")
            return
        log.info("player %d %r left: %s", p.id, p.name, msg.reason or "no reason given")
        self._gone(p, Status.LEFT)

    def _drain_subscriptions(self) -> None:
        while (event := self.sockets.recv_subscription()) is not None:
            p = self.roster.by_topic(event[1:])
            if p is None:
                continue  # the shared b"" subscription, or noise
            if event[:1] == b"\x01":
                p.subscribed = True
                if p.status is Status.DEAD and self._running:
                    p.status = Status.ACTIVE
                    log.warning("player %d %r reconnected", p.id, p.name)
                elif self.roster.mark_ready_if_proven(p):
                    log.debug("player %d %r is ready", p.id, p.name)
            elif p.status not in (Status.LEFT, Status.DEAD):
                p.subscribed = False
                log.warning("player %d %r disconnected (process exited, froze or its link "
                            "dropped)", p.id, p.name)
                self._gone(p, Status.DEAD)

    def _gone(self, p: Player, status: Status) -> None:
        was_playing = p.status in PLAYING
        p.status = status
        if was_playing:
            self.barrier.drop(p.id)
        elif not self._running:
            self.roster.remove(p)  # free the lobby slot for someone else

    # ------------------------------------------------------------------ output
    def _summary(self, state: Any, reason: str, elapsed: float) -> dict[str, Any]:
        scores = self.world.scores(state) if state is not None else []
        players = self.roster.summary()
        for p in players:
            p["score"] = scores[p["id"]] if p["id"] < len(scores) else None
        return {
            "run": self.run_id, "world": type(self.world).__name__, "seed": self.config.seed,
            "mode": self.config.mode, "reason": reason, "ticks": self.tick,
            "elapsed_s": round(elapsed, 4), "lobby_s": round(self.lobby_s, 4),
            "ticks_per_s": round(self.tick / elapsed, 2) if elapsed > 0 else None,
            "state_hash": self.world.digest(state) if state is not None else None,
            "players": players, "rejected": dict(sorted(self.rejected.items())),
            # peak resident memory of this (server) process; Linux reports KiB
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
