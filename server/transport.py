"""The server's sockets: the only module of ``server`` that talks to ZeroMQ (with PlayerPool's).

* ``state``   XPUB  — STATE/HEARTBEAT/END fan-out; sees each player's readiness topic.
* ``actions`` PULL  — READY and ACTION fan-in.
* ``control`` ROUTER — JOIN/WELCOME/LEAVE/END/ERROR, addressed by the agent's identity
  (``ROUTER_MANDATORY``: a send to an identity with no connection reports it).
* a monitor of ``actions`` reports its disconnects (a cut connection loses what was queued).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import zmq
from tickwire.protocol import TransportError
from tickwire.protocol.endpoints import Endpoints, derive, with_port

log = logging.getLogger(__name__)

#: Events :meth:`ServerSockets.poll` reports (MONITOR: an actions connection went away).
STATE, ACTIONS, CONTROL, MONITOR = "state", "actions", "control", "monitor"


@dataclass(frozen=True)
class SocketOptions:
    """Socket tuning; the defaults suit both local and remote agents."""
    heartbeat_ivl_ms: int = 1000      #: ZMTP ping interval on the state socket
    heartbeat_timeout_ms: int = 4000  #: a peer silent this long is disconnected (→ dead)
    linger_ms: int = 200              #: bounded flush at close; never hang at exit
    max_message_bytes: int = 64 * 1024 * 1024  #: hard cap; peers sending more are cut off
    sndhwm: int = 10_000


class ServerSockets:
    """Binds the three endpoints and moves frames; knows nothing about messages."""

    def __init__(self, base: str, options: SocketOptions = SocketOptions(),
                 context: zmq.Context | None = None) -> None:
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self.opts = options
        self.state = self._socket(zmq.XPUB)
        self.actions = self._socket(zmq.PULL)
        self.control = self._socket(zmq.ROUTER)
        self.state.setsockopt(zmq.SNDHWM, options.sndhwm)
        self.state.setsockopt(zmq.HEARTBEAT_IVL, options.heartbeat_ivl_ms)
        self.state.setsockopt(zmq.HEARTBEAT_TIMEOUT, options.heartbeat_timeout_ms)
        for s in (self.actions, self.control):
            s.setsockopt(zmq.MAXMSGSIZE, options.max_message_bytes)
        # a send to a control identity with no connection fails (EHOSTUNREACH) instead of
        # vanishing: that is how a JOINed player gone before it subscribed is found
        self.control.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # disconnects on the actions socket: a connection cut for an oversized or
        # undecodable message loses whatever was queued behind it
        self.monitor = self.actions.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.monitor.setsockopt(zmq.LINGER, 0)
        try:
            self.endpoints = self._bind(base)
        except BaseException:
            self.close()
            raise
        self._poller = zmq.Poller()
        for s in (self.state, self.actions, self.control, self.monitor):
            self._poller.register(s, zmq.POLLIN)
        self._names = {self.state: STATE, self.actions: ACTIONS, self.control: CONTROL,
                       self.monitor: MONITOR}

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

    def recv_control(self) -> tuple[bytes, list[bytes]] | None:
        if not self.control.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return None
        identity, *frames = self.control.recv_multipart(zmq.NOBLOCK)
        return identity, frames

    def send_control(self, identity: bytes, frames: Sequence) -> bool:
        """Send to one agent; False (message dropped) if it has no connection."""
        try:
            self.control.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.debug("control queue to %r is full; message dropped", identity)
        except zmq.ZMQError as e:
            if e.errno != zmq.EHOSTUNREACH:
                raise
            return False
        return True

    def recv_disconnects(self) -> int:
        """How many actions connections went away since the last call."""
        n = 0
        while self.monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            if int.from_bytes(frames[0][:2], "little") == zmq.EVENT_DISCONNECTED:
                n += 1
        return n

    def close(self) -> None:
        monitor = getattr(self, "monitor", None)
        if monitor is not None:
            self.actions.disable_monitor()
            monitor.close()
        for s in (self.state, self.actions, self.control):
            s.close()
        if self._own_ctx:
            self.ctx.term()
