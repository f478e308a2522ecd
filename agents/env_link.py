"""The wire side of :mod:`tickwire.agents.env`: K hosted players driven from the caller's loop.

:func:`tickwire.agents.run` owns its loop and calls the user's ``act``; a trainer owns its
loop instead and calls ``step``. :class:`SeatsLink` is the same machinery turned inside out:
the rules of :mod:`tickwire.protocol.agent_rules` and the sockets of
:class:`~tickwire.agents.runtime.AgentSockets`, pumped whenever the trainer waits for a tick,
handing out the newest :class:`~tickwire.protocol.agent_rules.Act` instead of calling user code.
Every OBSERVATION of a hosted player is also kept by tick (bounded), so that rewards of ticks
the trainer missed (deadline mode) are not lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import zmq
from tickwire.protocol import End, Observation, ProtocolError, TransportError, Welcome, decode
from tickwire.protocol.agent_rules import (
    Act,
    AgentRules,
    Decision,
    Ended,
    Finish,
    GiveUp,
    Send,
    ServerComplained,
    Setup,
    Subscribe,
    Waiting,
)

from .runtime import MAX_DRAIN, POLL_S, AgentSockets

log = logging.getLogger(__name__)

#: Views kept per hosted player (ticks not yet handed to the trainer); older ones are dropped.
MAX_VIEWS = 4096


class SeatsLink:
    """K players of one server, hosted in the caller's process and pumped on demand.

    ``alive`` (optional) is called while waiting; it raises if something the link depends on
    died (a launched server process), so a wait never outlasts its cause.
    """

    def __init__(
        self,
        connect: str,
        names: Sequence[str],
        *,
        slot: int | None = None,
        join_timeout_s: float = 60.0,
        server_timeout_s: float = 10.0,
        curve: tuple[bytes, bytes, bytes] | None = None,
        alive: Callable[[], None] | None = None,
    ) -> None:
        self.sockets = AgentSockets(connect, len(names), curve)
        self.rules = AgentRules(
            list(names),
            self.sockets.endpoints,
            now=time.monotonic(),
            slot=slot,
            join_timeout_s=join_timeout_s,
            server_timeout_s=server_timeout_s,
        )
        self.alive = alive or (lambda: None)
        self.welcomes: list[Welcome | None] = [None] * len(names)
        self.act: Act | None = None  #: the newest tick to act on (taken by :meth:`take_act`)
        self.end: End | None = None  #: the run's END, once it came
        self.views: list[dict[int, Observation]] = [{} for _ in names]  #: private views by tick
        self.closed = False
        self._carry_out(self.rules.due(time.monotonic()))

    # ------------------------------------------------------------------ waiting
    def wait(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Pump the sockets until ``ready()`` (or END, or the rules give up); TimeoutError
        naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        self.pump(0.0)
        while not ready() and self.end is None:
            if self.rules.finished:
                raise TransportError("the players stopped: " + (self.rules.results[0].reason or "?"))
            self.alive()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"no {what} within {timeout_s:g} s from {self.sockets.endpoints.base}: the world "
                    "waits for other players that are not there or not acting (strict mode), or "
                    "is very slow; check its players, or raise step_timeout_s"
                )
            self.pump(min(left, POLL_S, self.rules.next_due(time.monotonic()) or POLL_S))

    def pump(self, timeout_s: float) -> None:
        """Read whatever is there (waiting up to ``timeout_s`` for something), then do what is due."""
        events = dict(self.sockets.poller.poll(int(timeout_s * 1e3)))
        if self.sockets.state in events:
            self._read_states()
        for i, dealer in enumerate(self.sockets.controls):
            if dealer in events or _readable(dealer):
                self._read_control(i)
        self._carry_out(self.rules.due(time.monotonic()))

    def take_act(self) -> Act | None:
        """The newest tick to act on, if one came since the last call."""
        act, self.act = self.act, None
        return act

    # ------------------------------------------------------------------ acting
    def send(self, tick: int, payloads: Sequence[Any], acting: Sequence[int]) -> None:
        """The actions of hosted players ``acting`` (indexes) for ``tick``."""
        send = self.rules.acted(tick, list(payloads), list(acting))
        if send is not None:
            self._carry_out([send])

    def close(self, reason: str = "closed") -> None:
        """LEAVE for every welcomed player (best effort, never blocks), close the sockets."""
        if self.closed:
            return
        self.closed = True
        try:
            self._carry_out(self.rules.stop(reason))
        finally:
            self.sockets.close()

    # ------------------------------------------------------------------ reading
    def _read_states(self) -> None:
        sub, msgs = self.sockets.state, []
        for _ in range(MAX_DRAIN):
            if not _readable(sub):
                break
            try:
                msgs.append(decode(sub.recv_multipart(copy=False)))
            except ProtocolError as e:
                log.warning("undecodable message on the state socket: %s", e)
        self._carry_out(self.rules.states_received(msgs, time.monotonic()))

    def _read_control(self, i: int) -> None:
        dealer = self.sockets.controls[i]
        while not self.rules.finished and _readable(dealer):
            try:
                msg = decode(dealer.recv_multipart())
            except ProtocolError as e:
                log.warning("undecodable message on the control socket: %s", e)
                continue
            if isinstance(msg, Observation) and msg.run == self.rules.run:
                views = self.views[i]
                views[msg.tick] = msg
                if len(views) > MAX_VIEWS:
                    del views[min(views)]
            self._carry_out(self.rules.control_received(i, msg, time.monotonic()))

    def _carry_out(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Act):
                self.act = d
            elif isinstance(d, Send):
                if not self.sockets.send(d):
                    self._carry_out(self.rules.send_failed(d, time.monotonic()))
            elif isinstance(d, Setup):
                self.welcomes[d.agent] = d.welcome
                if d.again:
                    log.warning("seat rejoined as player %d in run %s", d.welcome.player, d.welcome.run)
                    self.views[d.agent].clear()
            elif isinstance(d, Subscribe):
                self.sockets.state.setsockopt(zmq.SUBSCRIBE, d.topic)
            elif isinstance(d, ServerComplained):
                log.error("server error for seat %d: %s (%s)", d.agent, d.error.text, d.error.code)
            elif isinstance(d, Waiting):
                log.warning("seat %d: the server is full for now: %s; joining again", d.agent, d.error.text)
            elif isinstance(d, Ended):
                self.end = d.end
            elif isinstance(d, GiveUp):
                raise d.error
            elif not isinstance(d, Finish):
                raise AssertionError(f"unknown decision {d!r}")


def _readable(sock: zmq.Socket) -> bool:
    """A message is queued on ``sock`` (without blocking)."""
    return bool(int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)
