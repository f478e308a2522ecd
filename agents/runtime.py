"""Runs agents against a tickwire server: the only module of ``agents`` that talks to ZeroMQ.

One process can host several agents (each its own player): they share one SUB socket,
so each state is received and decoded once, and one PUSH socket; each has its own DEALER
(its control identity). Joining retries until the server is there; the agent gives up
only after ``join_timeout_s``, and exits when the server ends the run or goes silent for
``server_timeout_s`` (it publishes a heartbeat every second when idle).
"""
from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import zmq
from tickwire.protocol import (
    Action,
    Actions,
    AgentError,
    End,
    Error,
    Heartbeat,
    Join,
    Leave,
    ProtocolError,
    Ready,
    State,
    TransportError,
    Welcome,
    decode,
    derive,
    encode,
)

from .agent import Agent
from .config import AgentConfig

log = logging.getLogger(__name__)

JOIN_RETRY_S = 0.5
POLL_MS = 100
CONTROL_EVERY = 16  #: read control sockets at least every this many states


@dataclass
class AgentResult:
    """How one agent's run went."""
    name: str
    player: int | None = None
    ticks: int = 0          #: ticks it acted on
    skipped: int = 0        #: states it never saw or skipped because it was behind
    end: End | None = None  #: the server's END, if one arrived
    reason: str = ""
    errors: list[str] = field(default_factory=list)  #: ERROR texts the server sent


class _Host:
    """The sockets and loop for one or more agents in this process."""

    def __init__(self, agents: Sequence[Agent], cfg: AgentConfig) -> None:
        self.agents = list(agents)
        self.cfg = cfg
        self.eps = derive(cfg.connect)
        self.results = [AgentResult(a.name or type(a).__name__) for a in self.agents]
        self.welcomes: list[Welcome | None] = [None] * len(self.agents)
        self.seq = 0
        self.stop_reason: str | None = None
        self.end: End | None = None
        self.ctx = zmq.Context()
        self.sub = self._socket(zmq.SUB, self.eps.state, linger=0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.push = self._socket(zmq.PUSH, self.eps.actions, immediate=True)
        self.dealers = []
        for _ in self.agents:
            d = self.ctx.socket(zmq.DEALER)
            d.setsockopt(zmq.ROUTING_ID, uuid.uuid4().bytes)
            self.dealers.append(self._socket_setup(d, self.eps.control, immediate=True))
        self.poller = zmq.Poller()
        for s in (self.sub, *self.dealers):
            self.poller.register(s, zmq.POLLIN)

    def _socket(self, kind: int, addr: str, **kw: object) -> zmq.Socket:
        return self._socket_setup(self.ctx.socket(kind), addr, **kw)

    @staticmethod
    def _socket_setup(s: zmq.Socket, addr: str, linger: int = 500,
                      immediate: bool = False) -> zmq.Socket:
        s.setsockopt(zmq.LINGER, linger)
        if immediate:  # never queue to a server that is not (or no longer) there
            s.setsockopt(zmq.IMMEDIATE, 1)
        try:
            s.connect(addr)
        except zmq.ZMQError as e:
            raise TransportError(f"cannot connect to {addr}: {e}") from e
        return s

    def close(self) -> None:
        for s in (self.sub, self.push, *self.dealers):
            s.close()
        self.ctx.term()

    # ---------------------------------------------------------------- joining
    def join(self) -> bool:
        """JOIN every agent, wait for WELCOMEs, subscribe, send READY. False if stopped."""
        deadline = time.monotonic() + self.cfg.join_timeout_s
        pending = set(range(len(self.agents)))
        next_send = 0.0
        while pending:
            now = time.monotonic()
            if self.stop_reason:
                return False
            if now >= deadline:
                raise TransportError(
                    f"no WELCOME from a tickwire server at {self.eps.base} after "
                    f"{self.cfg.join_timeout_s:.0f} s: is the server running, and is the "
                    "address (and its next two ports) reachable from here?")
            if now >= next_send:
                for i in pending:
                    slot = None if self.cfg.slot is None else self.cfg.slot + i
                    try:
                        self.dealers[i].send_multipart(
                            encode(Join(self.results[i].name, slot)), zmq.NOBLOCK)
                    except zmq.Again:
                        pass  # not connected yet: retried below
                next_send = now + JOIN_RETRY_S
            for sock, _ in self.poller.poll(POLL_MS):
                if sock is not self.sub:
                    i = self.dealers.index(sock)
                    if self._on_control(i) and i in pending:
                        pending.discard(i)
                        self._welcomed(i)
                else:
                    self._drain_sub_quietly()
        return self._send_ready(deadline)

    def _welcomed(self, i: int) -> None:
        w = self.welcomes[i]
        agent, result = self.agents[i], self.results[i]
        agent.player_id, agent.info, agent.rng = w.player, w, np.random.default_rng(w.seed)
        result.player = w.player
        log.info("%s joined run %s as player %d", result.name, w.run, w.player)
        agent.setup(w)
        self.sub.setsockopt(zmq.SUBSCRIBE, w.topic)  # proves to the server we hear the state

    def _send_ready(self, deadline: float) -> bool:
        for w in self.welcomes:
            frames = encode(Ready(w.run, w.player, w.token))
            while True:
                if self.stop_reason:
                    return False
                try:
                    self.push.send_multipart(frames, zmq.NOBLOCK)
                    break
                except zmq.Again:  # actions socket not connected yet
                    if time.monotonic() >= deadline:
                        raise TransportError(f"could not reach the actions endpoint "
                                             f"{self.eps.actions} before the join timeout")
                    self.poller.poll(10)
        return True

    def _drain_sub_quietly(self) -> None:
        while True:
            try:
                self.sub.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return

    # ---------------------------------------------------------------- playing
    def _on_control(self, i: int) -> bool:
        """Handle one control message for agent ``i``; True if it was a WELCOME."""
        try:
            msg = decode(self.dealers[i].recv_multipart())
        except ProtocolError as e:
            log.warning("undecodable control message from the server: %s", e)
            return False
        if isinstance(msg, Welcome):
            self.welcomes[i] = msg
            return True
        if isinstance(msg, Error):
            if self.welcomes[i] is None:
                raise AgentError(msg.code, f"the server refused {self.results[i].name}: {msg.text}")
            log.error("server error for %s: %s (%s)", self.results[i].name, msg.text, msg.code)
            self.results[i].errors.append(msg.text)
        elif isinstance(msg, End):
            self._finish(msg)
        return False

    def play(self) -> None:
        """Act on each state until END. Blocks on the state socket alone (the hot path);
        control sockets (ERROR; END is also published) are read when idle and every
        CONTROL_EVERY states."""
        run = self.welcomes[0].run
        last_heard = time.monotonic()
        last_tick = -1
        states = 0
        while self.end is None:
            if self.stop_reason:
                self._leave(self.stop_reason)
                return
            if self.sub.poll(POLL_MS):
                last_heard = time.monotonic()
                state = self._latest_state(run)
                if state is not None:
                    if last_tick >= 0 and state.tick > last_tick + 1:
                        for r in self.results:
                            r.skipped += state.tick - last_tick - 1
                    last_tick = state.tick
                    self._act(state)
                    states += 1
                    if states % CONTROL_EVERY:
                        continue
            elif time.monotonic() - last_heard > self.cfg.server_timeout_s:
                raise TransportError(f"the server at {self.eps.base} has been silent for "
                                     f"{self.cfg.server_timeout_s:.0f} s; it is gone or "
                                     "unreachable, so this agent stops")
            for i, d in enumerate(self.dealers):
                while d.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self._on_control(i)

    def _latest_state(self, run: str) -> State | None:
        """Drain the state socket; return the newest STATE (older ones are too late now)."""
        latest = None
        while self.sub.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = self.sub.recv_multipart(copy=False)
            try:
                msg = decode(frames)
            except ProtocolError as e:
                log.warning("undecodable message on the state socket: %s", e)
                continue
            if getattr(msg, "run", run) != run or isinstance(msg, Heartbeat):
                continue
            if isinstance(msg, End):
                self._finish(msg)
                return None
            if isinstance(msg, State):
                latest = msg
        return latest

    def _act(self, state: State) -> None:
        """Every hosted agent acts; one ACTION, or one ACTIONS batch for several players."""
        entries = []
        for agent, w in zip(self.agents, self.welcomes):
            agent.tick = state.tick
            entries.append([w.player, w.token, agent.act(state.payload)])
        self.seq += 1
        run = self.welcomes[0].run
        if len(entries) == 1:
            msg = Action(run, state.tick, entries[0][0], self.seq, entries[0][1], entries[0][2])
        else:
            msg = Actions(run, state.tick, self.seq, entries)
        try:
            self.push.send_multipart(encode(msg), zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.warning("could not send the action(s) for tick %d (server unreachable)", state.tick)
            return
        for result in self.results:
            result.ticks += 1

    def _finish(self, end: End) -> None:
        if self.end is None:
            self.end = end
            for agent, result in zip(self.agents, self.results):
                result.end, result.reason = end, f"end: {end.reason}"
                agent.on_end(end)

    def _leave(self, reason: str) -> None:
        for d, w, result in zip(self.dealers, self.welcomes, self.results):
            result.reason = reason
            if w is not None:
                try:
                    d.send_multipart(encode(Leave(w.run, w.player, reason)), zmq.NOBLOCK)
                except zmq.Again:
                    pass


def run(agents: Agent | Sequence[Agent], connect: str | None = None, *,
        config: AgentConfig | None = None, **options: object) -> AgentResult | list[AgentResult]:
    """Join the server at ``connect`` (a base address) and play until the run ends.

    Pass one agent (returns one :class:`AgentResult`) or several (one process, several
    players; returns a list). ``options`` are :class:`AgentConfig` fields.
    Raises :class:`~protocol.AgentError` if refused, :class:`~protocol.TransportError`
    if the server cannot be reached or goes away.
    """
    single = isinstance(agents, Agent)
    agent_list = [agents] if single else list(agents)
    if not agent_list:
        raise ValueError("run() needs at least one agent")
    cfg = config or AgentConfig(connect=connect or "", **options)  # type: ignore[arg-type]
    host = _Host(agent_list, cfg)
    restore = _install_signals(host) if cfg.handle_signals else {}
    try:
        if host.join():
            host.play()
        else:
            host._leave(host.stop_reason or "stopped")
    except BaseException as e:
        if not isinstance(e, (AgentError, TransportError)):
            host._leave(f"agent error: {type(e).__name__}: {e}")
        raise
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
        host.close()
    return host.results[0] if single else host.results


def _install_signals(host: _Host) -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}

    def handler(signum: int, frame: object) -> None:
        host.stop_reason = f"signal {signal.Signals(signum).name}"

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous
