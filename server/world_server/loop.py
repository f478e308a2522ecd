"""The world server's I/O loop: sockets and the clock around the pure rules and a World.

Every decision (who may join, which action counts, who is dead, when the lobby ends, when
a heartbeat is due) is made by :class:`tickwire.protocol.server_rules.ServerRules`. This
module reads frames, decodes them, feeds them in with ``now`` read once per loop turn, sends
what the rules return, calls ``World.step``, logs, writes the events file, and hands each
tick's :class:`~tickwire.server.observers.report.TickReport` to its observers (the progress
callback, ``--metrics``). With ``--tick-rate`` it waits for the next
tick's start time on the sockets (serving them meanwhile), never in a blind sleep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from tickwire.protocol import (
    ACTION_LIMITS,
    CONTROL_LIMITS,
    Heartbeat,
    LobbyTimeout,
    Message,
    ProtocolError,
    State,
    decode,
    encode,
)
from tickwire.protocol.server_rules import (
    ACCEPTED_ONLY,
    NOBODY_PLAYING_GRACE_S,
    Lobby,
    NextTick,
    Output,
    Probe,
    Publish,
    Rejected,
    Republish,
    SendTo,
    ServerRules,
    StatusChange,
    StopReason,
    TickClosed,
    lobby_stop_reason,
)
from tickwire.protocol.server_status import Status
from tickwire.protocol.spaces import BatchChecker, batch_checker

from ..observers.events import EventLog
from ..observers.report import PlayerReports, TickReport
from ..observers.summary import peak_rss_mb
from ..record.log import Recorder, RecordError, refuse_existing_record, run_header, world_spec_of
from ..record.replay import Restored, restore_run
from ..worlds.world import ActionBatch, World
from .config import MODES, ON_MISSING, ServerConfig  # noqa: F401  (re-exported)
from .memory_guard import MemoryGuard
from .security import ServerKeys, is_public, load_server_keys
from .transport import ACTIONS, AUTH, CONTROL, MONITOR, ServerSockets, SocketOptions

if TYPE_CHECKING:
    from ..observers.metrics import MetricsServer

log = logging.getLogger(__name__)

#: At most this many messages per socket are handled before the loop looks at the clock
#: again: a flood cannot move a tick deadline by more than one batch (DESIGN.md §10).
MAX_MESSAGES_PER_TURN = 128
#: A message this big may be costly to decode (a legal msgpack of a million empty lists):
#: after one, the loop reads the clock and ends the batch once ``MAX_TURN_WORK_S`` is spent.
BIG_MESSAGE_BYTES = 4096
MAX_TURN_WORK_S = 0.005
#: The longest single wait, so ``stop()`` (a signal) is noticed promptly.
MAX_WAIT_S = 0.1
#: In the lobby a report (a snapshot of every player, for the progress line and metrics) is
#: built at most this often: once per change made the lobby quadratic with thousands of JOINs.
LOBBY_REPORT_EVERY_S = 0.1


def _batch_validate(world: World) -> BatchChecker | None:
    """One check for K actions (ACTION_ARRAY) that accepts exactly what the world's
    ``validate_action`` accepts: the default one with a discrete ``action_spec``; else None
    (entry by entry)."""
    spec = world.action_spec or {}
    if type(world).validate_action is World.validate_action and spec.get("type") == "discrete":
        return batch_checker({"type": "discrete", "n": int(spec["n"])})
    return None


class WorldServer:
    """Runs one world with remote players over three ZeroMQ sockets.

    ``run()`` blocks until the run ends (ticks done, world done, ``stop()`` or all players
    gone: dead ones get :data:`NOBODY_PLAYING_GRACE_S` to come back) and returns the summary
    dict. ``stop()`` may be called from a signal handler. ``progress`` (and ``metrics``) get
    a :class:`TickReport` after every tick, when the run starts and when the lobby changes.
    """

    def __init__(
        self,
        world: World,
        config: ServerConfig,
        progress: Callable[[TickReport], None] | None = None,
        socket_options: SocketOptions = SocketOptions(),
        metrics: MetricsServer | None = None,
        world_spec: str | None = None,
    ) -> None:
        self.world = world
        self.metrics = metrics
        self.config = config
        self.world_spec = world_spec or world_spec_of(world)
        #: the recorded run rebuilt by ``--resume`` (before any socket is bound)
        self.resumed: Restored | None = restore_run(config.resume_dir, world) if (config.resume_dir) else None
        self._recorder: Recorder | None = None
        self._recorded_version = -1  # the roster version the record's statuses are from
        #: who gets each TickReport (none: no report is built)
        self._observers = [o for o in (metrics.observe if metrics else None, progress) if o is not None]
        self._reported_version = -1  # the roster version the last lobby report is from
        self._stop_reason: str | None = None
        self._warned: set[tuple[str, int | None]] = set()
        self._encoded: tuple[Any, list] = (None, [])
        self._tick_frames: list = []  # the open tick's STATE, for a Republish
        self.final_state: Any = None
        self.lobby_s = 0.0
        self._closed = False
        keys = self._keys(config)
        assert config.bind is not None  # ServerConfig fills it in
        self.events = EventLog(config.events_path)
        try:
            self.sockets = ServerSockets(config.bind, socket_options, keys=keys)
        except BaseException:
            self.events.close()
            raise
        self.endpoints = self.sockets.endpoints
        #: --memory-budget-mb: cuts the connection filling the memory (started with the lobby)
        self.guard = (
            MemoryGuard(config.memory_budget_mb, self.endpoints) if (config.memory_budget_mb > 0) else None
        )
        self._views = world.has_player_views
        self.rules = ServerRules(
            config,
            describe=world.describe,
            validate=world.validate_action,
            noop=world.noop,
            endpoints=self.endpoints,
            fixed_slots=keys.slots if keys else None,
            private=self._views,
            spaces=world.wire_spaces,
            batch_validate=_batch_validate(world),
        )
        self._action_array = bool(getattr(world, "accepts_action_array", False))
        self.run_id = self.rules.run_id
        self.start_tick = self.resumed.tick if self.resumed else 0
        if self.resumed:  # at its tick, with each player's last action (--on-missing repeat)
            self.rules.resume_at(self.start_tick, self.resumed.last_actions, self.resumed.names)
        self.roster = self.rules.roster
        self.barrier = self.rules.barrier
        self.rejected = self.rules.rejected
        eps = self.endpoints
        log.info(
            "run %s listening on %s (state %s, actions %s, control %s) %s",
            self.run_id,
            eps.base,
            eps.state,
            eps.actions,
            eps.control,
            f"with CURVE keys ({len(keys.allowed)} allowed)" if keys else "without keys",
        )
        self.events.emit(
            "listening",
            run=self.run_id,
            base=eps.base,
            state=eps.state,
            actions=eps.actions,
            control=eps.control,
            curve=keys is not None,
        )

    @staticmethod
    def _keys(config: ServerConfig) -> ServerKeys | None:
        """The server's keys, or None; refuse a non-loopback TCP bind without keys unless
        the user said --insecure (DESIGN.md §7)."""
        if config.key_path is not None and config.allow_dir is not None:
            return load_server_keys(config.key_path, config.allow_dir)
        assert config.bind is not None  # ServerConfig fills it in
        if is_public(config.bind) and not config.insecure:
            from tickwire.plumbing.sockets import server_bind_refused

            raise server_bind_refused(config.bind)
        return None

    # ------------------------------------------------------------------ public
    @property
    def running(self) -> bool:
        """True once the lobby is over and ticks are being played."""
        return self.rules.running

    @property
    def tick(self) -> int:
        """The tick being played (or, between ticks, the number of ticks done)."""
        return self.rules.tick

    def stop(self, reason: str = StopReason.STOPPED) -> None:
        """Ask the loop to end after the current wait (signal-safe: sets a field). A tick
        still open then is dropped, as a crash drops it (see ``ServerRules.drop_tick``)."""
        self._stop_reason = self._stop_reason or str(reason)

    def close(self) -> None:
        """Close the sockets and the events file of a server that will not run (``run()``
        closes them itself; then this does nothing)."""
        if not self._closed:
            self._closed = True
            self.sockets.close()
            self.events.close()

    def run(self) -> dict[str, Any]:
        """Lobby, ticks, END; returns the summary. Sockets and the events file are closed."""
        started = time.monotonic()
        state, reason = None, StopReason.NOT_STARTED.value
        failed: RecordError | None = None
        try:
            initial = (
                self.resumed.state
                if self.resumed
                else self.world.reset(self.config.seed, self.config.players)
            )  # fail early
            self._recorder = self._open_recorder()
            if self.guard is not None and not self.guard.start():
                self.guard = None
            try:
                playing = self._lobby()
            except LobbyTimeout as e:
                reason = StopReason.LOBBY_TIMEOUT.value
                self.lobby_s = time.monotonic() - started
                if e.summary is None:  # --json and --summary print the run's summary
                    e.summary = self._summary(None, reason, 0.0)
                raise
            self.lobby_s = time.monotonic() - started
            if playing:
                try:
                    state, reason = self._play(initial)
                except RecordError as e:
                    reason, failed = "record failed", e
                    raise
            else:
                reason = lobby_stop_reason(self._stop_reason or StopReason.STOPPED)
            self.final_state = state
        finally:
            try:
                self._end(state, reason)
            finally:
                if self.guard is not None:
                    self.guard.stop()
                    self._read_guard(time.monotonic())
                self._closed = True
                self.sockets.close()
                self.events.close()
                if self._recorder:
                    self._recorder.close()
                if failed is not None:  # --json and --summary still get the run's summary
                    failed.summary = self._summary(state, reason, time.monotonic() - started - self.lobby_s)
        return self._summary(state, reason, time.monotonic() - started - self.lobby_s)

    # ------------------------------------------------------------------ phases
    def _lobby(self) -> bool:
        """Wait until the players are ready; False if stopped first."""
        cfg, rules = self.config, self.rules
        log.info("waiting for %d player(s) (lobby timeout %.0f s)", cfg.players, cfg.lobby_timeout_s)
        now = time.monotonic()
        rules.open_lobby(now)
        next_report = now
        while not self._stop_reason:
            verdict = rules.lobby(now)
            if verdict is Lobby.START:
                if self._observers and self.roster.version != self._reported_version:
                    # the lobby's last state, whatever the throttle: observers see who became
                    # ready before the run starts
                    self._reported_version = self.roster.version
                    self._report(self.start_tick, now, None)
                self._start()
                return True
            if verdict is Lobby.GIVE_UP:
                raise LobbyTimeout(rules.lobby_report())
            now = self._turn(min(MAX_WAIT_S, rules.next_timeout(now)))
            self._carry_out(rules.release_unready(now))
            if self._observers and self.roster.version != self._reported_version and now >= next_report:
                self._reported_version = self.roster.version
                next_report = now + LOBBY_REPORT_EVERY_S
                self._report(self.start_tick, now, None)
        return False

    def _start(self) -> None:
        ready = self.roster.ready()
        if len(ready) < self.config.players:
            log.warning("lobby timeout: starting with %d of %d players", len(ready), self.config.players)
        self._carry_out(self.rules.start(time.monotonic()))
        players = [{"id": p.id, "name": p.name} for p in ready]
        log.info("all set: %d player(s) ready, starting run %s", len(players), self.run_id)
        self.events.emit("started", run=self.run_id, tick=self.start_tick, players=players)

    def _play(self, state: Any) -> tuple[Any, str]:
        world, rules = self.world, self.rules
        if self._observers:
            self._report(self.start_tick, time.monotonic(), None)
        for tick in range(self.start_tick, self.config.ticks):
            if self._stop_reason:
                return state, self._stop_reason
            if world.done(state):
                return state, StopReason.WORLD_DONE.value
            if rules.next_tick(time.monotonic()) is not NextTick.PLAY:
                if not self._wait_for_players(tick):
                    return state, self._stop_reason or StopReason.NO_PLAYERS_LEFT.value
            if rules.pacer is not None and not self._wait_for_start():
                return state, self._stop_reason or StopReason.STOPPED.value
            frames = self._tick_frames = encode(State(self.run_id, tick, world.observe(state)))
            now = began = time.monotonic()
            if self._views:  # each player's own view goes to it alone, before the STATE
                self._carry_out(rules.begin_tick(tick, now, self._viewer(state)))
            else:
                rules.begin_tick(tick, now)
            self.sockets.publish(frames)
            rules.published(now)
            while not rules.may_close(now):
                if self._stop_reason:  # the tick is dropped, as a crash drops it
                    rules.drop_tick(now)
                    log.info(
                        "stopped during tick %d: dropped it (not stepped, recorded or "
                        "counted; a --resume plays it again)",
                        tick,
                    )
                    return state, self._stop_reason
                now = self._turn(min(MAX_WAIT_S, rules.next_timeout(now)))
            closed = rules.close_tick(now)
            if closed.changes:
                self._carry_out(closed.changes)
            state = world.step(
                state,
                # a world that declares accepts_action_array takes the batch (World.step's doc)
                cast(Any, self._batch(closed)) if self._action_array else closed.actions,
            )
            if self._recorder:
                self._record_tick(tick, closed, state)
            if self._observers:
                now = time.monotonic()
                self._report(tick + 1, now, now - began)
        return state, self._stop_reason or StopReason.TICKS_DONE.value

    @staticmethod
    def _batch(closed: TickClosed) -> ActionBatch:
        """The closed tick's actions as arrays: the barrier's columns when it has them and
        nobody's action was filled in (the same actions, no conversion); else from the dict."""
        columns = closed.result.columns
        if columns is not None and not closed.result.missing:
            return ActionBatch(columns.ids, columns.actions)
        return ActionBatch.of(closed.actions)

    def _report(self, tick: int, now: float, tick_s: float | None) -> None:
        """Build one TickReport (a snapshot of the roster and rejections) for the observers."""
        report = TickReport(
            self.run_id,
            tick,
            self.config.ticks,
            self.config.players,
            self.rules.running,
            now,
            tick_s,
            PlayerReports(*self.roster.report_columns()),
            MappingProxyType(dict(self.rejected)),
        )
        for observe in self._observers:
            observe(report)

    def _record_tick(self, tick: int, closed: Any, state: Any) -> None:
        """Append the tick to the record; statuses and names only when the roster changed."""
        players = None
        if self.roster.version != self._recorded_version:
            self._recorded_version = self.roster.version
            players = self.roster.players.values()
        assert self._recorder is not None
        self._recorder.tick(
            tick,
            closed.actions,
            closed.result.missing,
            None if players is None else {p.id: p.status.value for p in players},
            state,
            closed.late,
            None if players is None else {p.id: p.name for p in players},
        )

    def _wait_for_players(self, tick: int) -> bool:
        """Nobody is playing: serve the sockets (no tick opens) while a dead player may come
        back, up to the rules' grace. True when someone plays again; False when the run ends
        (nobody came back, nobody could, or stopped)."""
        rules = self.rules
        now = time.monotonic()
        verdict = rules.next_tick(now)
        waited = verdict is NextTick.WAIT
        if waited:
            log.warning(
                "nobody is playing before tick %d (every player dead): waiting up to "
                "%g s for one to come back (its link reconnects, or a new process "
                "rejoins its slot)",
                tick,
                NOBODY_PLAYING_GRACE_S,
            )
        while verdict is NextTick.WAIT and not self._stop_reason:
            now = self._turn(min(MAX_WAIT_S, rules.next_timeout(now)))
            verdict = rules.next_tick(now)
        if verdict is NextTick.PLAY:
            log.info("a player is back: the run goes on at tick %d", tick)
        elif verdict is NextTick.GIVE_UP:
            log.warning(
                "no players left before tick %d: %s",
                tick,
                (
                    f"none came back within the {NOBODY_PLAYING_GRACE_S:g} s grace"
                    if waited
                    else "every player left"
                ),
            )
        return verdict is NextTick.PLAY

    def _wait_for_start(self) -> bool:
        """Paced runs: serve the sockets until the next tick's start time (False if stopped)."""
        rules = self.rules
        now = time.monotonic()
        while not self._stop_reason:
            if rules.until_tick(now) <= 0:
                return True
            now = self._turn(min(MAX_WAIT_S, rules.next_timeout(now)))
        return False

    def _viewer(self, state: Any) -> Callable[[int], Any]:
        observe_player = self.world.observe_player
        return lambda player: observe_player(state, player)

    def _open_recorder(self) -> Recorder | None:
        """The run record's writer (``--record`` / ``--resume``), its header written."""
        cfg, resumed = self.config, self.resumed
        if not cfg.record_to:
            return None
        epoch = resumed.epoch if resumed else 0
        if not resumed:
            refuse_existing_record(cfg.record_to)
        header = run_header(
            self.world,
            self.world_spec,
            cfg,
            self.run_id,
            epoch,
            self.start_tick,
            resumed.previous_run if resumed else None,
        )
        recorder = Recorder(cfg.record_to, header, self.world, cfg.fsync_every, cfg.checkpoint_every)
        log.info(
            "recording to %s (epoch %d, fsync every %d ticks, checkpoint every %d)",
            cfg.record_to,
            epoch,
            cfg.fsync_every,
            cfg.checkpoint_every,
        )
        if resumed:
            log.warning(
                "resumed run %s at tick %d as run %s (epoch %d); players join again",
                resumed.previous_run,
                resumed.tick,
                self.run_id,
                epoch,
            )
            self.events.emit(
                "resumed",
                run=self.run_id,
                tick=resumed.tick,
                epoch=epoch,
                previous_run=resumed.previous_run,
                repaired=resumed.repaired,
                incomplete_checkpoints=resumed.incomplete_checkpoints,
            )
        return recorder

    def _end(self, state: Any, reason: str) -> None:
        scores = self.world.scores(state) if state is not None else []
        self._carry_out(self.rules.end(reason, list(scores), time.monotonic()))
        log.info("run %s ended at tick %d: %s", self.run_id, self.tick, reason)
        self.events.emit("end", run=self.run_id, reason=reason, tick=self.tick)

    # ------------------------------------------------------------------ input
    def _turn(self, timeout_s: float) -> float:
        """One loop turn: wait for input up to ``timeout_s``, handle a bounded batch of it,
        publish a heartbeat if one is due. Returns the ``now`` the turn used."""
        ready = self.sockets.poll(timeout_s * 1e3)
        now = time.monotonic()
        for name in ready:
            if name == ACTIONS:
                self._read_actions(now)
            elif name == CONTROL:
                self._read_control(now)
            elif name == AUTH:
                self._read_auth_failures(now)
            elif name == MONITOR:
                for _ in range(self.sockets.recv_disconnects()):
                    self._carry_out(self.rules.actions_connection_lost(now))
            else:
                self._read_subscriptions(now)
        if self.guard is not None:
            self._read_guard(now)
        beat = self.rules.heartbeat(now)
        if beat:
            self._carry_out(beat)
        probes = self.rules.probe(now)
        if probes:
            self._carry_out(probes)
        return now

    def _read_actions(self, now: float) -> None:
        sockets, rules = self.sockets, self.rules
        recv = sockets.recv_action_keyed if sockets.keyed else sockets.recv_action
        for _ in range(MAX_MESSAGES_PER_TURN):
            frames = recv()
            if frames is None:
                return
            try:
                msg: Message | ProtocolError = decode(frames, ACTION_LIMITS)
            except ProtocolError as e:
                msg = e
            outs = rules.receive_action(msg, now, sockets.last_user)
            if outs is not ACCEPTED_ONLY:  # the common case: nothing to do
                self._carry_out(outs)
            if sockets.unproven:  # on a connection not yet known to carry a player
                sockets.settle(rules.from_player(msg, sockets.last_user))
            if len(frames[0]) > BIG_MESSAGE_BYTES and time.monotonic() - now > MAX_TURN_WORK_S:
                return  # decoding work, not only the count, is bounded per turn

    def _read_control(self, now: float) -> None:
        started = time.monotonic()
        for _ in range(MAX_MESSAGES_PER_TURN):
            got = self.sockets.recv_control()
            if got is None:
                return
            identity, frames, key = got
            try:
                msg: Message | ProtocolError = decode(frames, CONTROL_LIMITS)
            except ProtocolError as e:
                msg = e
            self._carry_out(self.rules.receive_control(identity, msg, now, key))
            if time.monotonic() - started > MAX_TURN_WORK_S:
                return

    def _read_auth_failures(self, now: float) -> None:
        for detail in self.sockets.recv_auth_failures(MAX_MESSAGES_PER_TURN):
            self._carry_out(self.rules.receive_auth_failure(detail, now))

    def _read_guard(self, now: float) -> None:
        """Count the connections the memory guard cut (it logged each one itself)."""
        for shot in self.guard.take() if self.guard is not None else ():
            self.rules.memory_guard_cut(shot.socket, now)
            self.events.emit(
                "memory_guard",
                run=self.run_id,
                tick=self.tick,
                socket=shot.socket,
                peer=shot.peer,
                received=shot.received,
                rss_mb=shot.rss_mb,
            )

    def _read_subscriptions(self, now: float) -> None:
        for _ in range(MAX_MESSAGES_PER_TURN):
            event = self.sockets.recv_subscription()
            if event is None:
                return
            if event:
                self._carry_out(self.rules.receive_subscription(event[1:], event[0] == 1, now))

    # ------------------------------------------------------------------ output
    def _carry_out(self, outs: Iterable[Output]) -> None:
        """Do what the rules decided: send, publish, log, record status changes."""
        for out in outs:  # isinstance narrows for mypy; ~10 ns more than __class__ is (measured)
            if isinstance(out, SendTo):
                self.sockets.send_control(out.identity, self._frames(out.message))
            elif isinstance(out, Publish):
                self.sockets.publish(self._frames(out.message))
            elif isinstance(out, Rejected):
                self._log_rejection(out)
            elif isinstance(out, StatusChange):
                self._record_change(out)
            elif isinstance(out, Republish):
                log.info(
                    "an actions connection went away during tick %d: asking for its actions again", out.tick
                )
                self.sockets.publish(self._tick_frames)
            elif isinstance(out, Probe):
                beat = Heartbeat(self.run_id, self.tick)
                if not self.sockets.send_control(out.identity, self._frames(beat)):
                    self._carry_out(self.rules.control_lost(out.identity, time.monotonic()))

    def _frames(self, msg: Any) -> list:
        """Encode ``msg``, once even if it goes to many peers (END)."""
        last, frames = self._encoded
        if msg is not last:
            frames = encode(msg)
            self._encoded = (msg, frames)
        return frames

    def _log_rejection(self, r: Rejected) -> None:
        key = (r.reason.value, r.player)
        if key not in self._warned:  # once per reason (and player): never flood the log
            self._warned.add(key)
            log.warning("rejected a message (%s): %s", r.reason.value, r.text)
        else:
            log.debug("rejected a message (%s): %s", r.reason.value, r.text)

    def _record_change(self, c: StatusChange) -> None:
        level = (
            logging.WARNING
            if c.new in (Status.DEAD, Status.INACTIVE) or (c.old is Status.DEAD)
            else logging.INFO
            if c.new is Status.LEFT
            else logging.DEBUG
        )
        log.log(
            level,
            "player %d %r: %s → %s (%s)",
            c.player,
            c.name,
            c.old.value if c.old else "-",
            c.new.value,
            c.detail,
        )
        self.events.emit(
            "player",
            run=self.run_id,
            id=c.player,
            name=c.name,
            old=c.old.value if c.old else None,
            new=c.new.value,
            tick=c.tick,
        )

    def _summary(self, state: Any, reason: str, elapsed: float) -> dict[str, Any]:
        scores = self.world.scores(state) if state is not None else []
        players = self.roster.summary()
        for p in players:
            p["score"] = scores[p["id"]] if p["id"] < len(scores) else None
        ticks = self.tick
        return {
            "run": self.run_id,
            "world": type(self.world).__name__,
            "seed": self.config.seed,
            "mode": self.config.mode,
            "reason": reason,
            "ticks": ticks,
            "elapsed_s": round(elapsed, 4),
            "lobby_s": round(self.lobby_s, 4),
            "ticks_per_s": round((ticks - self.start_tick) / elapsed, 2) if elapsed > 0 else None,
            "state_hash": self.world.digest(state) if state is not None else None,
            "players": players,
            "left_in_lobby": self.roster.left_in_lobby,  # the players that LEFT in the lobby
            **(self.world.summarize(state) if state is not None else {}),
            "rejected": {r.value: n for r, n in sorted(self.rejected.items())},
            # --tick-rate: target and achieved rate, p50/p99/max tick start error, skipped slots
            "pacing": self.rules.pacer.report() if self.rules.pacer else None,
            "max_rss_mb": peak_rss_mb(),  # of this (server) process
            **self.record_summary(),
        }

    def record_summary(self) -> dict[str, Any]:
        """``record`` and ``resumed_from`` / ``resume`` (only when recording / resumed)."""
        out: dict[str, Any] = {}
        if self._recorder:
            out["record"] = self._recorder.summary()
        if self.resumed:
            out["resumed_from"] = self.resumed.tick
            out["resume"] = self.resumed.report()
        return out
