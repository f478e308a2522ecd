"""Runs agents against a tickwire server: the I/O loop around the agent's rules.

The rules (join retry, ready, act on the newest state, end, server silence) live in
:mod:`tickwire.protocol.agent_rules`, which never touches a socket or a clock; this module
owns the sockets (set up by :mod:`tickwire.plumbing.sockets`), reads the clock, calls the
user's code and carries out the rules' decisions.

One process can host several agents (each its own player): they share one SUB socket,
so each state is received and decoded once, and one PUSH socket; each has its own DEALER
(its control identity). Each turn waits for any of them at once and reads only those
with a message (:class:`~tickwire.plumbing.readiness.ReadySet`: one selector over the
sockets' descriptors, not a poll of every DEALER), the state socket first; so a tick's
work for K hosted players does not grow with K, except where the world gives each player
a private view (an OBSERVATION arrives on every control socket each tick).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import zmq
from tickwire.plumbing.readiness import ReadySet, has_message
from tickwire.plumbing.sockets import open_socket
from tickwire.protocol import (
    Action,
    ActionArray,
    Actions,
    End,
    Observation,
    ProtocolError,
    Refused,
    State,
    TransportError,
    Welcome,
    decode,
    derive,
    encode,
)
from tickwire.protocol.action_encoder import ActionArrayEncoder, check_action_frames
from tickwire.protocol.agent_rules import (
    Act,
    AgentResult,
    AgentRules,
    Decision,
    Ended,
    Finish,
    GiveUp,
    Send,
    ServerComplained,
    Setup,
    Socket,
    Subscribe,
    Waiting,
)
from tickwire.protocol.limits import ACTION_LIMITS, MAX_ACTION_FRAME

from .agent import Agent, space_object
from .batch import BatchAgent, Seat, check_seats, stack
from .config import AgentConfig

__all__ = ["AgentConfig", "AgentResult", "run"]

log = logging.getLogger(__name__)

POLL_S = 0.1  #: longest blocking wait, so a stop request is seen within this
MAX_DRAIN = 1000  #: most messages read from the state socket in one turn (its HWM)


class AgentSockets:
    """The sockets of one agent process: one SUB and one PUSH shared, one DEALER per player."""

    def __init__(self, connect: str, players: int, curve: tuple[bytes, bytes, bytes] | None = None) -> None:
        self.endpoints = derive(connect)
        self.curve = curve  #: (own public, own secret, server public): CURVE on every socket
        self.ctx = zmq.Context()
        # one DEALER per player: past libzmq's default of 1,023 sockets a context refuses more
        self.ctx.max_sockets = max(self.ctx.max_sockets, players + 8)
        self.state = self._connect(zmq.SUB, self.endpoints.state, linger=0)
        self.state.setsockopt(zmq.SUBSCRIBE, b"")
        self.actions = self._connect(zmq.PUSH, self.endpoints.actions, immediate=True)
        self.controls = [
            self._connect(zmq.DEALER, self.endpoints.control, immediate=True, identity=uuid.uuid4().bytes)
            for _ in range(players)
        ]
        #: which sockets have a message: controls[i] is i, the state socket is len(controls)
        self.watch = ReadySet([*self.controls, self.state])
        self.poller = zmq.Poller()  # every socket (for callers that poll them themselves)
        for s in (self.state, *self.controls):
            self.poller.register(s, zmq.POLLIN)
        self._encoder: ActionArrayEncoder | None = None  # the last ACTION_ARRAY columns, packed

    def _connect(
        self, kind: int, addr: str, linger: int = 500, immediate: bool = False, identity: bytes | None = None
    ) -> zmq.Socket:
        # immediate: never queue to a server that is not (or no longer) there
        s = open_socket(
            self.ctx, kind, linger_ms=linger, immediate=immediate, identity=identity, curve=self.curve
        )
        try:
            s.connect(addr)
        except zmq.ZMQError as e:
            self.ctx.destroy(linger=0)
            raise TransportError(
                f"cannot connect to {addr}: {e}; check the address "
                "(tcp://HOST:PORT, ipc:///path/prefix or inproc://name)"
            ) from e
        return s

    def send(self, send: Send) -> bool:
        """Send without blocking; False if the socket has no connected peer."""
        if send.socket is Socket.ACTIONS:
            sock, frames = self.actions, self._action_frames(send.message)
        else:
            sock, frames = self.controls[send.agent], encode(send.message)
            self.watch.touched(send.agent)  # a send may take in what the socket was told
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        return True

    def _action_frames(self, msg: Any) -> list[Any]:
        """The frames of an action message, checked against the server's limits. An
        ACTION_ARRAY with the columns of the last one (the usual: every tick, the same
        players) reuses their packed form and is checked without being decoded again."""
        if type(msg) is not ActionArray:
            frames = encode(msg)
            check_action_size(frames, msg)
            return frames
        encoder = self._encoder
        if encoder is None or not encoder.fits(msg):
            encoder = self._encoder = ActionArrayEncoder(msg.run, msg.players, msg.tokens)
        try:
            return encoder.encode(msg)
        except ProtocolError as e:
            raise _too_big(msg, e) from None

    def close(self) -> None:
        self.watch.close()
        for s in (self.state, self.actions, *self.controls):
            s.close()
        self.ctx.term()


def check_action_size(frames: Sequence[Any], msg: Any) -> None:
    """Raise :class:`ProtocolError` if the server would refuse this action message for its
    size. It would cut the connection, and the player would miss the tick with nothing said
    on either side; here the agent stops with the reason. Small messages (one short header:
    all the usual ones) cannot break a limit and are not decoded again."""
    try:
        check_action_frames(list(frames), ACTION_LIMITS, MAX_ACTION_FRAME)
    except ProtocolError as e:
        raise _too_big(msg, e) from None


def _too_big(msg: Any, e: ProtocolError) -> ProtocolError:
    """The error that stops an agent whose action message the server would refuse."""
    return ProtocolError(
        "oversized",
        f"the action(s) for tick {msg.tick} cannot be sent: {e}; "
        f"the server accepts at most {MAX_ACTION_FRAME // 1024} KiB per "
        f"array and {ACTION_LIMITS.max_header_bytes // 1024} KiB for the "
        "rest of an action message: return a smaller action (big data "
        "belongs in the world's state)",
    )


def curve_keys(cfg: AgentConfig) -> tuple[bytes, bytes, bytes] | None:
    """(own public, own secret, server public) from ``--key``/``--server-key``, or None."""
    from tickwire.plumbing.keys import client_keys

    return client_keys(cfg.key_path, cfg.server_key_path)


class AgentLoop:
    """Carries out the rules for the agents hosted in this process, over :class:`AgentSockets`."""

    def __init__(self, agents: Sequence[Agent], cfg: AgentConfig, batch: BatchAgent | None = None) -> None:
        self.agents = list(agents)
        #: acts for every seat in one call (the agents are then its seats)
        self.batch = batch
        self._batch_ready = False
        self._ids = np.zeros(0, np.int64)
        self.sockets = AgentSockets(cfg.connect, len(self.agents), curve_keys(cfg))
        self.rules = AgentRules(
            [a.name or type(a).__name__ for a in self.agents],
            self.sockets.endpoints,
            now=time.monotonic(),
            slot=cfg.slot,
            join_timeout_s=cfg.join_timeout_s,
            server_timeout_s=cfg.server_timeout_s,
        )
        self.stop_reason: str | None = None  #: set (by a signal handler) to stop cleanly
        self.before_stop = lambda: None  #: called when the loop takes up a stop request
        self.in_user_code: str | None = None  #: the user callback running now, for the signal log
        self._unsent_tick: int | None = None  # the last tick whose action could not be sent

    @property
    def results(self) -> list[AgentResult]:
        return self.rules.results

    def serve(self) -> None:
        """Join, play until the run ends or a stop is requested; raise if the rules give up."""
        self.carry_out(self.rules.due(time.monotonic()))
        while not self.rules.finished:
            if self.stop_reason is not None:
                self.before_stop()
                self.stop(self.stop_reason)
            elif self.rules.playing:
                self._play_turn()
            else:
                self._join_turn()

    def stop(self, reason: str) -> None:
        """Stop cleanly: LEAVE for every joined player (best effort, never blocks)."""
        self.carry_out(self.rules.stop(reason))

    # ------------------------------------------------------------------ turns
    def _join_turn(self) -> None:
        timeout = min(POLL_S, self.rules.next_due(time.monotonic()))
        self._read_ready(timeout)
        self.carry_out(self.rules.due(time.monotonic()))

    def _play_turn(self) -> None:
        """The hot path: wait for the next state (or a control message) and read what came.
        Its cost does not grow with the hosted players: only the sockets with a message are
        asked (see :class:`~tickwire.plumbing.readiness.ReadySet`)."""
        if self.rules.private:  # each tick also brings an OBSERVATION on the control sockets
            self._join_turn()
        elif not self._read_ready(POLL_S):
            self.carry_out(self.rules.due(time.monotonic()))

    def _read_ready(self, timeout_s: float) -> bool:
        """Read every socket with a message waiting (waiting up to ``timeout_s`` for one):
        the state socket first, then the control sockets; True if states came."""
        ready = self.sockets.watch.ready(timeout_s)
        states = bool(ready) and ready[-1] == len(self.sockets.controls)
        if states:
            ready.pop()
            self._read_states()
        for i in ready:
            self._read_control(i)
        return states

    def _read_states(self) -> None:
        """Everything queued on the state socket (bounded) goes to the rules at once, so they
        can act on the newest state. Called only when a poll said a message is there."""
        sub, msgs = self.sockets.state, []
        for _ in range(MAX_DRAIN):
            frames = sub.recv_multipart(copy=False)
            try:
                msgs.append(decode(frames))
            except ProtocolError as e:
                log.warning("undecodable message on the state socket: %s", e)
            if not has_message(sub):
                self.sockets.watch.settled(len(self.sockets.controls))
                break
        self.carry_out(self.rules.states_received(msgs, time.monotonic()))

    def _read_control(self, i: int) -> None:
        dealer = self.sockets.controls[i]
        while not self.rules.finished:
            if not has_message(dealer):
                self.sockets.watch.settled(i)
                return
            try:
                msg = decode(dealer.recv_multipart())
            except ProtocolError as e:
                log.warning("undecodable message on the control socket: %s", e)
                continue
            self.carry_out(self.rules.control_received(i, msg, time.monotonic()))

    # ------------------------------------------------------------------ decisions
    def carry_out(self, decisions: list[Decision]) -> None:
        """Do what the rules decided, in order (the most frequent decisions first)."""
        for d in decisions:  # isinstance (which mypy narrows on) costs the same as type(d) is
            if isinstance(d, Act):
                if d.observations is None:
                    self._act(d.state)
                else:
                    self._act_private(d.state, d.observations)
            elif isinstance(d, Send):
                self._send(d)
            elif isinstance(d, Setup):
                self._setup(d.agent, d.welcome, d.again)
            elif isinstance(d, Subscribe):
                self.sockets.state.setsockopt(zmq.SUBSCRIBE, d.topic)
                self.sockets.watch.touched(len(self.sockets.controls))
            elif isinstance(d, ServerComplained):
                log.error(
                    "server error for %s: %s (%s)", self.results[d.agent].name, d.error.text, d.error.code
                )
            elif isinstance(d, Waiting):
                log.warning(
                    "%s: the server is full for now: %s; joining again by itself until "
                    "the join timeout (%g s)",
                    self.results[d.agent].name,
                    d.error.text,
                    self.rules.join_timeout_s,
                )
            elif isinstance(d, Ended):
                self._call_on_end(d.end)
            elif isinstance(d, GiveUp):
                raise self._with_key_hint(d.error)
            elif not isinstance(d, Finish):
                raise AssertionError(f"unknown decision {d!r}")

    def _with_key_hint(self, error: Exception) -> Exception:
        """A failed handshake looks like silence to a client: say what to check about keys
        (only if some player never got a WELCOME: a welcomed agent got through)."""
        if not isinstance(error, TransportError) or not self.rules.never_welcomed:
            return error
        hint = (
            " With keys: is --server-key the server's public key, and is this agent's "
            "public key in the server's --allow directory?"
            if self.sockets.curve
            else " If the server uses keys, pass --key and --server-key (README: Keys)."
        )
        text = str(error)
        return type(error)(text + ("" if text.endswith((".", "?")) else ".") + hint)

    def _send(self, send: Send) -> None:
        if not self.sockets.send(send):
            if (
                send.socket is Socket.ACTIONS
                and isinstance(send.message, (Action, Actions))  # not READY: no tick
                and send.message.tick != self._unsent_tick
            ):  # once a tick: it is retried
                self._unsent_tick = send.message.tick
                log.warning(
                    "could not send the action(s) for tick %d (server unreachable); "
                    "trying again while it is the newest tick",
                    send.message.tick,
                )
            self.carry_out(self.rules.send_failed(send, time.monotonic()))

    def _setup(self, i: int, welcome: Welcome, again: bool = False) -> None:
        agent = self.agents[i]
        agent.player_id, agent.info = welcome.player, welcome
        if again:  # the server's run changed and we joined it again: setup() already ran
            log.warning(
                "%s rejoined as player %d in run %s (the server's run changed)",
                self.results[i].name,
                welcome.player,
                welcome.run,
            )
            return
        agent.rng = np.random.default_rng(welcome.seed)
        agent.observation_space = space_object(welcome.observation_space)
        agent.action_space = space_object(welcome.action_space)
        log.info("%s joined run %s as player %d", self.results[i].name, welcome.run, welcome.player)
        self.in_user_code = "setup()"
        agent.setup(welcome)
        self.in_user_code = None
        if self.batch is not None and all(a.player_id >= 0 for a in self.agents):
            self._setup_batch()

    def _setup_batch(self) -> None:
        """Every seat joined: check they can be batched, then the BatchAgent's setup."""
        batch, seats = self.batch, self.agents
        assert batch is not None
        welcomes = [a.info for a in seats]
        check_seats(batch, welcomes)
        self._ids = np.array([a.player_id for a in seats], dtype=np.int64)
        batch.player_ids, batch.info, batch.rng = self._ids, welcomes, seats[0].rng
        batch.observation_space, batch.action_space = seats[0].observation_space, seats[0].action_space
        self.in_user_code = "setup()"
        batch.setup(welcomes)
        self.in_user_code = None
        self._batch_ready = True

    def _act_batch(self, tick: int, observations: Any, acting: list[int] | None = None) -> None:
        """The BatchAgent acts for the seats ``acting`` (indexes; default all) in one call."""
        batch = self.batch
        assert batch is not None
        if not self._batch_ready:  # a rejoin's new ids, or a tick before every seat's setup
            self._setup_batch()
        batch.tick = tick
        batch.player_ids = self._ids if acting is None else self._ids[acting]
        self.in_user_code = "act_batch()"
        actions = np.asarray(batch.act_batch(observations))
        self.in_user_code = None
        k = len(batch.player_ids)
        if actions.ndim == 0 or len(actions) != k:
            raise ValueError(
                f"{type(batch).__name__}.act_batch returned {actions.shape and list(actions.shape)} "
                f"for {k} seats: return one action per seat (first axis {k})"
            )
        send = self.rules.acted_array(tick, actions, acting)
        if send is not None:
            self._send(send)

    def _act(self, state: State) -> None:
        if self.batch is not None:
            self._act_batch(state.tick, state.payload)
            return
        tick, payloads = state.tick, []
        self.in_user_code = "act()"
        for agent in self.agents:
            agent.tick = tick
            payloads.append(agent.act(state.payload))
        self.in_user_code = None
        send = self.rules.acted(tick, payloads)
        if send is not None:  # None only without hosted players
            self._send(send)

    def _act_private(self, state: State, observations: list[Observation]) -> None:
        """Private views: each player acts on its own observation unless its view says done."""
        if self.batch is not None:
            self._act_private_batch(state, observations)
            return
        tick, payloads, acting = state.tick, [], []
        for i, (agent, obs) in enumerate(zip(self.agents, observations)):
            agent.tick, agent.shared, agent.reward = tick, state.payload, obs.reward
            agent.terminated, agent.truncated, agent.step_info = (obs.terminated, obs.truncated, obs.info)
            if obs.terminated or obs.truncated:
                self.in_user_code = "on_done()"
                agent.on_done(obs.payload)
            else:
                self.in_user_code = "act()"
                payloads.append(agent.act(obs.payload))
                acting.append(i)
            self.in_user_code = None
        send = self.rules.acted(tick, payloads, acting)
        if send is not None:
            self._send(send)

    def _act_private_batch(self, state: State, observations: list[Observation]) -> None:
        """Private views, batched: the seats not done act in one call on their stacked views."""
        batch = self.batch
        assert batch is not None
        acting = [i for i, o in enumerate(observations) if not (o.terminated or o.truncated)]
        for i, obs in enumerate(observations):
            if obs.terminated or obs.truncated:
                self.in_user_code = "on_done()"
                batch.on_done(self.agents[i].player_id, obs.payload)
                self.in_user_code = None
        batch.shared = state.payload
        batch.rewards = np.array([observations[i].reward for i in acting], dtype=np.float64)
        batch.step_infos = [observations[i].info for i in acting]
        if acting:
            self._act_batch(state.tick, stack([observations[i].payload for i in acting]), acting)

    def _call_on_end(self, end: End) -> None:
        self.in_user_code = "on_end()"
        for agent in [self.batch] if self.batch is not None else self.agents:
            agent.on_end(end)
        self.in_user_code = None

    def close(self) -> None:
        self.sockets.close()


class StopSignals:
    """SIGINT/SIGTERM while :func:`run` is in control of the main thread.

    The first signal asks the loop to stop cleanly (LEAVE, return); the loop sees it within
    :data:`POLL_S` whenever it has control. If user code (``act()`` spinning) keeps control
    for ``grace_s`` after that, or a second signal comes, the signal raises where the main
    thread is: ``KeyboardInterrupt`` for SIGINT, ``SystemExit(143)`` for SIGTERM (exit code
    128 + signal number), so the process ends promptly instead of waiting for SIGKILL.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, loop: AgentLoop, grace_s: float) -> None:
        self.loop = loop
        self.grace_s = grace_s
        self.received: int | None = None
        self._previous: dict[int, Any] = {}  # what signal.signal returned: handler, SIG_DFL, None

    def install(self) -> StopSignals:
        """Install the handlers (main thread only; elsewhere signals are left alone)."""
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.received is not None:
            self._interrupt(
                signum, f"a second {signal.Signals(signum).name} arrived while {self._running()} is running"
            )
        self.received = signum
        self.loop.stop_reason = f"signal {signal.Signals(signum).name}"
        if self.grace_s > 0 and hasattr(signal, "setitimer"):
            self._previous.setdefault(signal.SIGALRM, signal.signal(signal.SIGALRM, self._on_grace))
            signal.setitimer(signal.ITIMER_REAL, self.grace_s)

    def _on_grace(self, signum: int, frame: object) -> None:
        assert self.received is not None  # the grace timer is armed after the first signal
        self._interrupt(
            self.received,
            f"{self._running()} is still running {self.grace_s:g} s "
            f"after {signal.Signals(self.received).name}",
        )

    def _running(self) -> str:
        return self.loop.in_user_code or "the agent"

    def _interrupt(self, signum: int, why: str) -> None:
        self.disarm()
        code = 128 + signum
        log.error("%s: interrupting it; the process exits with code %d", why, code)
        raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(code)

    def disarm(self) -> None:
        """Cancel the grace timer: the loop has control and stops cleanly by itself."""
        if signal.SIGALRM in self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def restore(self) -> None:
        self.disarm()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@overload
def run(
    agents: Agent, connect: str | None = None, *, config: AgentConfig | None = None, **options: Any
) -> AgentResult: ...
@overload
def run(
    agents: Sequence[Agent],
    connect: str | None = None,
    *,
    config: AgentConfig | None = None,
    **options: Any,
) -> list[AgentResult]: ...
@overload
def run(
    agents: BatchAgent,
    connect: str | None = None,
    *,
    config: AgentConfig | None = None,
    count: int = 1,
    **options: Any,
) -> list[AgentResult]: ...
def run(
    agents: Agent | Sequence[Agent] | BatchAgent,
    connect: str | None = None,
    *,
    config: AgentConfig | None = None,
    count: int = 1,
    **options: Any,
) -> AgentResult | list[AgentResult]:
    """Join the server at ``connect`` (a base address) and play until the run ends.

    Pass one agent (returns one :class:`AgentResult`; ``print`` it for a one-line report)
    or several (one process, several players; returns a list), or a :class:`BatchAgent` for
    ``count`` players acting in one call (returns a list). ``options`` are
    :class:`AgentConfig` fields. Raises :class:`~tickwire.protocol.Refused` if refused,
    :class:`~tickwire.protocol.ServerUnreachable` if no server answers within the join timeout,
    :class:`~tickwire.protocol.ServerGone` if it goes silent (or restarts without this agent).
    On SIGINT/SIGTERM it LEAVEs and returns; see :class:`StopSignals` for user code that
    does not return.
    """
    batch = agents if isinstance(agents, BatchAgent) else None
    single = isinstance(agents, Agent)
    if batch is not None:
        if count < 1:
            raise ValueError(f"run() needs count >= 1 seats for a BatchAgent, got {count}")
        agent_list: list[Agent] = [Seat() for _ in range(count)]
        base = batch.name or type(batch).__name__
        for i, seat in enumerate(agent_list):
            seat.name = base if count == 1 else f"{base}-{i}"
    else:
        agent_list = [agents] if isinstance(agents, Agent) else list(agents)  # type: ignore[arg-type]
    if not agent_list:
        raise ValueError("run() needs at least one agent")
    cfg = config or AgentConfig(connect=connect or "", **options)
    loop = AgentLoop(agent_list, cfg, batch)
    signals = StopSignals(loop, cfg.stop_grace_s)
    if cfg.handle_signals:
        signals.install()
        loop.before_stop = signals.disarm
    try:
        loop.serve()
        signals.disarm()
    except BaseException as e:
        signals.disarm()
        if not isinstance(e, (Refused, TransportError)):
            loop.stop(_stop_reason(e, loop))
        raise
    finally:
        signals.restore()
        loop.close()
    return loop.results[0] if single else loop.results


def _stop_reason(e: BaseException, loop: AgentLoop) -> str:
    """The LEAVE reason when an exception ends the loop."""
    if isinstance(e, (KeyboardInterrupt, SystemExit)):
        return (
            f"{loop.stop_reason or type(e).__name__}; interrupted in {loop.in_user_code or 'the agent loop'}"
        )
    return f"agent error: {type(e).__name__}: {e}"
