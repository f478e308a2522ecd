"""The one ZeroMQ seam of PlayerPool and Chief: an XPUB to talk out, a PULL to listen.

Both bind (their processes connect), on a private temporary ipc directory unless an
address is given. The XPUB carries ``[topic, *frames]`` out and reports each
subscriber's (un)subscription: a peer's own topic appearing is the proof its link is up,
and disappearing is the sign it left. The PULL carries the peers' messages in; they are
decoded and validated as :mod:`tickwire.protocol.work` messages here, so the roles above
see typed messages or a counted rejection, never raw frames.

Safe by default, like the server: a non-loopback tcp address needs keys
(:class:`~tickwire.server.world_server.security.ServerKeys`: both sockets become CURVE servers behind the
allow-list authenticator, started before they bind; failed handshakes are counted as
``auth_failed``) unless the caller says ``insecure``. Each inbound frame is capped
(MAXMSGSIZE: a bigger one cuts its sender's connection): ``max_in_frame`` on the PULL, and a
subscription (the XPUB's only inbound) at the server's ``max_subscription``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import zmq
from tickwire.plumbing.keys import HANDSHAKE_FAILED
from tickwire.plumbing.sockets import bind_endpoints, configure, hub_bind_refused, is_public, open_monitor
from tickwire.protocol import ConfigError, Endpoints, ProtocolError, derive
from tickwire.protocol.limits import DEFAULT_LIMITS, Limits
from tickwire.protocol.work import (
    HEARTBEAT_IVL_MS,
    HEARTBEAT_TIMEOUT_MS,
    MAX_ITEM_BYTES,
    WorkMessage,
    decode_work,
    encode_work,
)

from ..world_server.security import AllowList, ServerKeys, describe_failure, secure
from ..world_server.transport import MONITOR_BATCH, SocketOptions

log = logging.getLogger(__name__)

#: A subscription is a topic of a few dozen bytes: the XPUB's per-frame cap (the server's).
MAX_SUBSCRIPTION = SocketOptions.max_subscription
AUTH_FAILED = "auth_failed"
#: What to do when a peer fails the handshake (logged with each counted failure).
AUTH_HINT = (
    "a peer failed the CURVE handshake ({}): an unlisted key, a plaintext client or a "
    "wrong server key; a worker needs key= its own NAME.key_secret, whose NAME.key is "
    "in the chief's allow= directory, and server_key= the chief's public key"
)
#: The same for a PlayerPool, whose keys are its own (made for its processes): a stranger.
POOL_AUTH_HINT = (
    "a peer failed the CURVE handshake ({}): not one of this PlayerPool's own "
    "processes (they get keys made for them); someone else is connecting to its "
    "address"
)


def item_limits(max_frame: int, base: Limits = DEFAULT_LIMITS) -> Limits:
    """``base`` with no array or header bigger than the socket's frame cap."""
    return replace(
        base,
        max_array_bytes=min(base.max_array_bytes, max_frame),
        max_header_bytes=min(base.max_header_bytes, max_frame),
    )


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
    ``keys``: CURVE and the allow-list; without them a non-loopback tcp ``address`` is
    refused (:class:`ConfigError` naming the fix, ``role`` the class to pass keys to) unless
    ``insecure``. ``max_in_frame``: the PULL's per-frame cap; ``limits`` (default: the
    default limits within that cap) bound the decoding.
    """

    def __init__(
        self,
        address: str | None,
        prefix: str,
        *,
        unlimited_out: bool = False,
        heartbeat: bool = False,
        limits: Limits | None = None,
        keys: ServerKeys | None = None,
        insecure: bool = False,
        max_in_frame: int = MAX_ITEM_BYTES,
        role: str = "Chief",
    ) -> None:
        if keys is None and address and is_public(address) and not insecure:
            raise hub_bind_refused(address, role)
        self._role = role
        self._tmp = None if address else tempfile.mkdtemp(prefix=f"tw{prefix}-")
        self.endpoints: Endpoints = derive(address or f"ipc://{self._tmp}/{prefix}")
        self.limits = limits or item_limits(max_in_frame)
        self.keyed = keys is not None
        #: dropped input by reason: a decode error's reason, ``auth_failed``, ...
        self.rejections: Counter[str] = Counter()
        self._auth: AllowList | None = None
        self._monitors: list[zmq.Socket] = []
        self._ctx = zmq.Context()
        self._pub = self._ctx.socket(zmq.XPUB)
        self._pull = self._ctx.socket(zmq.PULL)
        # what close() frees, also when a hub is dropped unclosed (a reference cycle after an
        # exception): then the context's own socket list is already empty, and terminating
        # it with a socket open would wait forever
        self._parts: dict[str, Any] = {
            "ctx": self._ctx,
            "socks": [self._pub, self._pull],
            "auth": None,
            "tmp": self._tmp,
        }
        self._release = weakref.finalize(self, _release, self._parts)
        # linger 0: the peers go away with us, nothing to flush at close; xpub_verbose: report
        # every subscription, not only new topics
        configure(
            self._pub,
            linger_ms=0,
            sndhwm=0 if unlimited_out else None,
            max_frame=MAX_SUBSCRIPTION,
            heartbeat_ms=(HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS) if heartbeat else None,
            xpub_verbose=True,
        )
        configure(self._pull, linger_ms=0, max_frame=max_in_frame)
        try:
            if keys is not None:
                self._secure(keys)
            self.endpoints = bind_endpoints((self._pub, self._pull), self.endpoints.base)
        except BaseException:
            self.close()
            raise
        self._poller = zmq.Poller()
        for s in (self._pull, self._pub, *self._monitors):
            self._poller.register(s, zmq.POLLIN)

    def _secure(self, keys: ServerKeys) -> None:
        """The allow-list and CURVE on both sockets (before they bind), and a monitor of
        failed handshakes on each."""
        self._auth = self._parts["auth"] = secure(self._ctx, keys, (self._pub, self._pull))
        for s in (self._pub, self._pull):
            m = open_monitor(s, HANDSHAKE_FAILED)
            self._monitors.append(m)
            self._parts["socks"].append(m)

    def allow(self, public: bytes, name: str) -> None:
        """Let one more CURVE key (z85) in, e.g. the chief's own spawned workers' key."""
        if self._auth is None:
            raise ConfigError("allow() needs a hub with keys")
        self._auth.allowed[public] = name

    @property
    def rejected(self) -> int:
        """How many inbound messages and handshakes were refused, in all."""
        return sum(self.rejections.values())

    def reject(self, reason: str, text: str) -> None:
        """Count one refused input; log it (the 1st, 10th, 100th, ... of each reason, so a
        flood of junk cannot flood the log)."""
        self.rejections[reason] += 1
        n = self.rejections[reason]
        if n == 10 ** (len(str(n)) - 1):
            log.warning("%s (%s #%d on %s)", text, reason, n, self.endpoints.base)

    @property
    def address(self) -> str:
        """The base address peers connect to."""
        return self.endpoints.base

    def publish(self, topic: bytes, msg: WorkMessage, block: bool = False) -> bool:
        """Send ``msg`` on ``topic``; False if it was dropped (a peer at its limit)."""
        frames = encode_work(msg)
        try:  # zero-copy only pays for array frames; a lone header is cheaper copied
            self._pub.send_multipart([topic, *frames], 0 if block else zmq.NOBLOCK, copy=len(frames) == 1)
            return True
        except zmq.Again:
            return False

    def poll(self, timeout_ms: float) -> tuple[bool, bool]:
        """Wait up to ``timeout_ms``; (a message is waiting, a subscription event is waiting)."""
        events = dict(self._poller.poll(max(0, int(timeout_ms))))
        for m in self._monitors:
            if m in events:
                self._read_failures(m)
        return self._pull in events, self._pub in events

    def _read_failures(self, m: zmq.Socket) -> None:
        """Count up to MONITOR_BATCH failed handshakes reported by monitor ``m``."""
        for _ in range(MONITOR_BATCH):
            if not m.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # type: ignore[arg-type,operator]  # EVENTS is an int option
                return
            raw = m.recv_multipart(zmq.NOBLOCK)
            if int.from_bytes(raw[0][:2], "little") & HANDSHAKE_FAILED:
                hint = AUTH_HINT if self._role == "Chief" else POOL_AUTH_HINT
                self.reject(AUTH_FAILED, hint.format(describe_failure(raw)))

    def messages(self, budget: int | None = None) -> Iterator[WorkMessage]:
        """Yield the queued incoming messages (at most ``budget``) without waiting; a
        malformed one is counted in :attr:`rejections` (by reason), logged and skipped."""
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
                self.reject(e.reason, f"rejected a message on {self.endpoints.actions}: {e}")

    def subscriptions(self) -> list[Subscription]:
        """Every queued (un)subscription event, without waiting."""
        out = []
        while self._pub.poll(0):
            event = self._pub.recv()
            if event[:1] in (b"\x00", b"\x01"):
                out.append(Subscription(event[:1] == b"\x01", event[1:]))
        return out

    def close(self) -> None:
        """Close both sockets at once, stop the authenticator, remove the temporary directory."""
        self._release()  # once: later calls do nothing
        self._auth = self._tmp = None


def _release(parts: dict[str, Any]) -> None:
    """Free a hub: monitors off, authenticator stopped, every socket closed by name (linger
    0), the context terminated, the temporary directory removed."""
    pub, pull, *monitors = parts["socks"]
    for s in (pub, pull) if monitors else ():
        with contextlib.suppress(zmq.ZMQError):
            s.disable_monitor()
    if parts["auth"] is not None:
        parts["auth"].stop()
    for s in parts["socks"]:
        s.close(0)
    parts["ctx"].term()
    if parts["tmp"]:
        shutil.rmtree(parts["tmp"], ignore_errors=True)
