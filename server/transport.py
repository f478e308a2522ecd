"""The server's sockets: the only module of ``server`` that talks to ZeroMQ (with PlayerPool's).

* ``state``   XPUB  — STATE/HEARTBEAT/END fan-out; sees each player's readiness topic.
* ``actions`` PULL  — READY and ACTION fan-in.
* ``control`` ROUTER — JOIN/WELCOME/LEAVE/END/ERROR, addressed by the agent's identity.

With keys (:class:`~tickwire.server.security.ServerKeys`) all three are CURVE servers behind
the allow-list authenticator, started before they bind; received messages then carry the
sender's key name (ZAP User-Id), read by :meth:`ServerSockets.recv_action_keyed` and
:meth:`ServerSockets.recv_control`, and failed handshakes arrive as ``auth`` events.
Every inbound size is capped per socket (a frame over the cap disconnects its sender).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import zmq
from tickwire.protocol import TransportError
from tickwire.protocol.endpoints import Endpoints, derive, with_port

from .security import HANDSHAKE_FAILED, AllowList, ServerKeys, describe_failure, make_curve_server

log = logging.getLogger(__name__)

#: Events :meth:`ServerSockets.poll` reports.
STATE, ACTIONS, CONTROL, AUTH = "state", "actions", "control", "auth"


@dataclass(frozen=True)
class SocketOptions:
    """Socket tuning; the defaults suit both local and remote agents."""
    heartbeat_ivl_ms: int = 1000      #: ZMTP ping interval on the state socket
    heartbeat_timeout_ms: int = 4000  #: a peer silent this long is disconnected (→ dead)
    linger_ms: int = 200              #: bounded flush at close; never hang at exit
    #: per-frame caps (libzmq's MAXMSGSIZE): a peer sending a bigger frame is cut off. Each
    #: subscribed byte costs ~80 bytes in the XPUB's trie, and a JOIN is a few hundred bytes.
    max_action_frame: int = 256 * 1024
    max_control_frame: int = 64 * 1024
    max_subscription: int = 1024
    sndhwm: int = 10_000


class ServerSockets:
    """Binds the three endpoints and moves frames; knows nothing about messages."""

    def __init__(self, base: str, options: SocketOptions = SocketOptions(),
                 context: zmq.Context | None = None, keys: ServerKeys | None = None) -> None:
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self.opts = options
        self.keyed = keys is not None
        self.last_user: str | None = None  #: key name of the last keyed action received
        self._auth: AllowList | None = None
        self._monitors: list[zmq.Socket] = []
        self.state = self._socket(zmq.XPUB)
        self.actions = self._socket(zmq.PULL)
        self.control = self._socket(zmq.ROUTER)
        self.state.setsockopt(zmq.SNDHWM, options.sndhwm)
        self.state.setsockopt(zmq.HEARTBEAT_IVL, options.heartbeat_ivl_ms)
        self.state.setsockopt(zmq.HEARTBEAT_TIMEOUT, options.heartbeat_timeout_ms)
        for s, cap in ((self.state, options.max_subscription),
                       (self.actions, options.max_action_frame),
                       (self.control, options.max_control_frame)):
            s.setsockopt(zmq.MAXMSGSIZE, cap)
        try:
            if keys is not None:
                self._secure(keys)
            self.endpoints = self._bind(base)
        except BaseException:
            self.close()
            raise
        self._poller = zmq.Poller()
        self._names = {self.state: STATE, self.actions: ACTIONS, self.control: CONTROL}
        self._names.update((m, AUTH) for m in self._monitors)
        for s in self._names:
            self._poller.register(s, zmq.POLLIN)

    def _secure(self, keys: ServerKeys) -> None:
        """Start the authenticator, then make every socket a monitored CURVE server."""
        self._auth = AllowList(self.ctx, keys.allowed)
        self._auth.start()
        for s in (self.state, self.actions, self.control):
            make_curve_server(s, keys)
            self._monitors.append(s.get_monitor_socket(HANDSHAKE_FAILED))

    def _socket(self, kind: int) -> zmq.Socket:
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, self.opts.linger_ms)
        return s

    def _bind(self, base: str) -> Endpoints:
        eps = derive(base)
        if not base.startswith("tcp://") or not base.endswith(":0"):
            for sock, addr in zip((self.state, self.actions, self.control),
                                  (eps.state, eps.actions, eps.control)):
                try:
                    sock.bind(addr)
                except zmq.ZMQError as e:
                    raise TransportError(f"cannot bind {addr}: {e}; is another server using "
                                         "it? choose another --bind address") from e
            return eps
        host_url = base.rpartition(":")[0]
        for _ in range(50):  # port 0: find three consecutive free ports
            port = self.state.bind_to_random_port(host_url)
            url = self.state.getsockopt_string(zmq.LAST_ENDPOINT)
            if port > 65533:
                self.state.unbind(url)
                continue
            eps = derive(with_port(base, port))
            try:
                self.actions.bind(eps.actions)
            except zmq.ZMQError:
                self.state.unbind(url)
                continue
            try:
                self.control.bind(eps.control)
            except zmq.ZMQError:
                self.state.unbind(url)
                self.actions.unbind(eps.actions)
                continue
            return eps
        raise TransportError(f"found no three consecutive free ports for {base}")

    def poll(self, timeout_ms: float) -> list[str]:
        """Wait up to ``timeout_ms`` and return which sockets have input."""
        return [self._names[s] for s, _ in self._poller.poll(max(0, int(timeout_ms)))]

    def publish(self, frames: Sequence) -> None:
        self.state.send_multipart(frames, copy=False)

    # Input is tested with EVENTS (no syscall, no exception) before each receive.
    def recv_subscription(self) -> bytes | None:
        """The next subscription event (``b"\\x01"+topic`` / ``b"\\x00"+topic``) or None."""
        if self.state.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return self.state.recv(zmq.NOBLOCK)
        return None

    def recv_action(self) -> list[bytes] | None:
        if self.actions.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return self.actions.recv_multipart(zmq.NOBLOCK)
        return None

    def recv_action_keyed(self) -> list[bytes] | None:
        """Like :meth:`recv_action`; also sets :attr:`last_user` to the sender's key name
        (only the first frame is received as a zmq.Frame, to read its User-Id)."""
        sock = self.actions
        if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return None
        first = sock.recv(zmq.NOBLOCK, copy=False)
        self.last_user = first.get("User-Id")
        frames = [first.bytes]
        while sock.getsockopt(zmq.RCVMORE):
            frames.append(sock.recv(zmq.NOBLOCK))
        return frames

    def recv_control(self) -> tuple[bytes, list[bytes], str | None] | None:
        """(identity, frames, key name or None without keys) of the next control message."""
        if not self.control.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return None
        if not self.keyed:
            identity, *frames = self.control.recv_multipart(zmq.NOBLOCK)
            return identity, frames, None
        identity, *frames = self.control.recv_multipart(zmq.NOBLOCK, copy=False)
        user = frames[-1].get("User-Id") if frames else None
        return identity.bytes, [f.bytes for f in frames], user

    def recv_auth_failures(self, limit: int) -> list[str]:
        """Up to ``limit`` failed handshakes reported since the last call, as text."""
        out: list[str] = []
        for m in self._monitors:
            while len(out) < limit and m.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                out.append(describe_failure(m.recv_multipart(zmq.NOBLOCK)))
        return out

    def send_control(self, identity: bytes, frames: Sequence) -> None:
        """Send to one agent; silently dropped if it is gone (ROUTER semantics)."""
        try:
            self.control.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.debug("control queue to %r is full; message dropped", identity)

    def close(self) -> None:
        for s, m in zip((self.state, self.actions, self.control), self._monitors):
            s.disable_monitor()
            m.close(0)
        for s in (self.state, self.actions, self.control):
            s.close()
        if self._auth is not None:
            self._auth.stop()
        if self._own_ctx:
            self.ctx.term()
