"""The one ZeroMQ seam of PlayerPool and Chief: an XPUB to talk out, a PULL to listen.

Both bind (their processes connect), on a private temporary ipc directory unless an
address is given. The XPUB carries ``[topic, *frames]`` out and reports each
subscriber's (un)subscription: a peer's own topic appearing is the proof its link is up,
and disappearing is the sign it left. The PULL carries the peers' messages in; they are
decoded and validated as :mod:`tickwire.protocol.work` messages here, so the roles above
see typed messages or a counted rejection, never raw frames.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import zmq
from tickwire.protocol import Endpoints, ProtocolError, derive
from tickwire.protocol.limits import DEFAULT_LIMITS, Limits
from tickwire.protocol.work import (
    HEARTBEAT_IVL_MS,
    HEARTBEAT_TIMEOUT_MS,
    WorkMessage,
    decode_work,
    encode_work,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subscription:
    """One XPUB event: ``topic`` was subscribed (``on``) or unsubscribed."""
    on: bool
    topic: bytes


class Hub:
    """Bind an XPUB and a PULL at ``address`` (default: ``ipc://`` in a fresh 0700 temp dir).

    ``unlimited_out``: never drop an outgoing message for a slow peer (the pool needs every
    host to get every call; the chief prefers to drop and repeat). ``heartbeat``: ZMTP
    pings on the XPUB, so a frozen or vanished peer unsubscribes within the timeout.
    """

    def __init__(self, address: str | None, prefix: str, *, unlimited_out: bool = False,
                 heartbeat: bool = False, limits: Limits = DEFAULT_LIMITS) -> None:
        self._tmp = None if address else tempfile.mkdtemp(prefix=f"tw{prefix}-")
        self.endpoints: Endpoints = derive(address or f"ipc://{self._tmp}/{prefix}")
        self.limits = limits
        self.rejected = 0
        self._ctx = zmq.Context()
        self._pub = self._ctx.socket(zmq.XPUB)
        self._pull = self._ctx.socket(zmq.PULL)
        for s in (self._pub, self._pull):
            s.linger = 0  # the peers go away with us: nothing to flush at close
        if unlimited_out:
            self._pub.sndhwm = 0
        if heartbeat:
            self._pub.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
            self._pub.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        self._pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # report every subscription, not only new topics
        try:
            self._pub.bind(self.endpoints.state)
            self._pull.bind(self.endpoints.actions)
        except zmq.ZMQError:
            self.close()
            raise
        self._poller = zmq.Poller()
        self._poller.register(self._pull, zmq.POLLIN)
        self._poller.register(self._pub, zmq.POLLIN)

    @property
    def address(self) -> str:
        """The base address peers connect to."""
        return self.endpoints.base

    def publish(self, topic: bytes, msg: WorkMessage, block: bool = False) -> bool:
        """Send ``msg`` on ``topic``; False if it was dropped (a peer at its limit)."""
        frames = encode_work(msg)
        try:  # zero-copy only pays for array frames; a lone header is cheaper copied
            self._pub.send_multipart([topic, *frames], 0 if block else zmq.NOBLOCK,
                                     copy=len(frames) == 1)
            return True
        except zmq.Again:
            return False

    def poll(self, timeout_ms: float) -> tuple[bool, bool]:
        """Wait up to ``timeout_ms``; (a message is waiting, a subscription event is waiting)."""
        events = dict(self._poller.poll(max(0, int(timeout_ms))))
        return self._pull in events, self._pub in events

    def messages(self, budget: int | None = None) -> Iterator[WorkMessage]:
        """Yield the queued incoming messages (at most ``budget``) without waiting; a
        malformed one is counted in :attr:`rejected`, logged and skipped."""
        while budget is None or budget > 0:
            if budget is not None:
                budget -= 1
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                yield decode_work(frames, self.limits)
            except ProtocolError as e:
                self.rejected += 1
                log.warning("rejected a message on %s: %s", self.endpoints.actions, e)

    def subscriptions(self) -> list[Subscription]:
        """Every queued (un)subscription event, without waiting."""
        out = []
        while self._pub.poll(0):
            event = self._pub.recv()
            if event[:1] in (b"\x00", b"\x01"):
                out.append(Subscription(event[:1] == b"\x01", event[1:]))
        return out

    def close(self) -> None:
        """Close both sockets at once and remove the temporary directory."""
        self._ctx.destroy(linger=0)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
