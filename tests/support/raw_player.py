"""A player built from raw ZeroMQ sockets and the protocol module only, as PROTOCOL.md says."""

from __future__ import annotations

import zmq
from tickwire.protocol import Action, Join, Ready, Welcome, decode, derive, encode


class RawPlayer:
    def __init__(
        self, ctx: zmq.Context, base: str, name: str = "raw", curve=None, identity: bytes | None = None
    ) -> None:
        """``curve``: (public, secret, server public) to connect with CURVE."""
        eps = derive(base)
        self.name = name
        self.sub = ctx.socket(zmq.SUB)
        self.sub.subscribe(b"")
        self.push = ctx.socket(zmq.PUSH)
        self.dealer = ctx.socket(zmq.DEALER)
        for s, addr in ((self.sub, eps.state), (self.push, eps.actions), (self.dealer, eps.control)):
            s.linger = 0
            if curve is not None:
                s.curve_publickey, s.curve_secretkey, s.curve_serverkey = curve
            if identity is not None and s is self.dealer:
                s.routing_id = identity
            s.connect(addr)
        self.welcome: Welcome | None = None
        self.seq = 0

    def _recv(self, sock: zmq.Socket, timeout_s: float) -> list:
        if not sock.poll(int(timeout_s * 1000)):
            raise AssertionError(f"{self.name}: nothing received within {timeout_s} s")
        return sock.recv_multipart()

    def join(self, timeout_s: float = 30, ready: bool = True) -> Welcome:
        """JOIN; then, if ``ready``, prove readiness (subscribe to the topic, send READY)."""
        self.dealer.send_multipart(encode(Join(self.name)))
        msg = decode(self._recv(self.dealer, timeout_s))
        assert isinstance(msg, Welcome), msg
        self.welcome = msg
        if not ready:
            return msg
        self.sub.subscribe(msg.topic)
        self.push.send_multipart(encode(Ready(msg.run, msg.player, msg.token)))
        return msg

    def next_state(self, timeout_s: float = 30):
        """The next STATE or END (heartbeats skipped)."""
        while True:
            msg = decode(self._recv(self.sub, timeout_s))
            if msg.KIND in ("state", "end"):
                return msg

    def control(self, timeout_s: float = 30):
        """The next control message; HEARTBEATs (the server's probes of a player that has
        not subscribed yet, PROTOCOL.md) are skipped."""
        while True:
            msg = decode(self._recv(self.dealer, timeout_s))
            if msg.KIND != "heartbeat":
                return msg

    def action(self, tick: int, payload, *, run=None, player=None, token=None) -> list:
        w = self.welcome
        self.seq += 1
        return encode(
            Action(
                run or w.run,
                tick,
                w.player if player is None else player,
                self.seq,
                token or w.token,
                payload,
            )
        )

    def act(self, tick: int, payload) -> None:
        self.push.send_multipart(self.action(tick, payload))
