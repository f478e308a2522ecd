"""CURVE on the server's sockets: the allow-list authenticator and handshake-failure monitors.

The authenticator (pyzmq's ZAP handler thread) must run before any socket binds: a CURVE
server without a ZAP handler accepts every client key. A client is allowed when its public
key is one of the ``--allow`` directory's ``*.key`` files; its ZAP User-Id is that file's
name, which the server reads from each received message to bind player slots to keys.
Handshakes that fail (unknown key, plaintext client, wrong server key) are reported by a
socket monitor, so the loop can count them under ``rejected["auth_failed"]``.

The same pieces secure the hub of the Chief and of PlayerPool (:mod:`tickwire.server.work.hub`).
:func:`~tickwire.plumbing.sockets.is_public` (re-exported here) is the one rule for "this bind
needs keys" (server, Chief, PlayerPool).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import zmq
from tickwire.plumbing.keys import allowed_keys, fixed_slots, load_secret
from tickwire.plumbing.sockets import LOOPBACK, curve_server, is_public
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

log = logging.getLogger(__name__)

__all__ = [
    "LOOPBACK",
    "AllowList",
    "ServerKeys",
    "describe_failure",
    "is_public",
    "load_server_keys",
    "secure",
]


@dataclass(frozen=True, slots=True)
class ServerKeys:
    """The server's key pair, the agents it allows ({z85 public key: name}) and the slots
    some of them are given ({name: slot}, from ``slot = N`` in a key file's metadata)."""

    public: bytes
    secret: bytes
    allowed: dict[bytes, str]
    slots: dict[str, int] = field(default_factory=dict)


def load_server_keys(key_path: str | os.PathLike, allow_dir: str | os.PathLike) -> ServerKeys:
    """Read ``--key`` and ``--allow``; ConfigError (saying what to do) if either is unusable."""
    public, secret = load_secret(key_path, "--key")
    return ServerKeys(public, secret, allowed_keys(allow_dir, "--allow"), fixed_slots(allow_dir))


class AllowList(ThreadAuthenticator):
    """A ZAP handler that allows exactly the listed CURVE keys; the User-Id is the key's name."""

    def __init__(self, context: zmq.Context, allowed: dict[bytes, str]) -> None:
        super().__init__(context, log=logging.getLogger(__name__ + ".zap"))
        self.allowed = dict(allowed)

    def start(self) -> None:
        super().start()
        self.configure_curve_callback("*", credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the ZAP thread with the client's z85 public key."""
        return key in self.allowed

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self.allowed[z85.encode(client_public_key)]


def secure(ctx: zmq.Context, keys: ServerKeys, sockets: Sequence[zmq.Socket]) -> AllowList:
    """Start the allow-list authenticator, then make every socket a CURVE server; call before
    any of them binds (a CURVE server without a running ZAP handler lets every key in)."""
    auth = AllowList(ctx, keys.allowed)
    auth.start()
    for s in sockets:
        curve_server(s, keys.public, keys.secret)
    return auth


def describe_failure(raw: list[bytes]) -> str:
    """A monitor message as text: which event, on which endpoint."""
    ev = parse_monitor_message(raw)
    try:
        name = zmq.Event(ev["event"]).name
    except ValueError:
        name = str(ev["event"])
    return f"{name} on {ev['endpoint'].decode(errors='replace')} (errno/value {ev['value']})"
