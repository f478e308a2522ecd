"""The scripted server's sockets and the agent process under test, with what it sent.

:class:`Session` binds the three endpoints a real server binds (XPUB state, PULL actions,
ROUTER control, with the real server's frame caps and, with keys, CURVE behind an
allow-list), starts the agent command with the endpoint in its environment, and records
everything the agent sends: JOINs, READYs, ACTIONs, topic subscriptions, messages that did
not decode, connections cut by a cap, failed CURVE handshakes. The scenarios in
:mod:`.checks` publish what they script and wait on these records with bounded timeouts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq
from tickwire.plumbing.keys import new_keypair
from tickwire.protocol import Action, Join, Ready, decode, encode
from tickwire.protocol.endpoints import connectable
from tickwire.protocol.errors import ProtocolError
from tickwire.protocol.limits import ACTION_LIMITS, CONTROL_LIMITS, MAX_ACTION_FRAME
from zmq.utils.monitor import recv_monitor_message

from ..world_server.security import ServerKeys, secure
from ..world_server.transport import SocketOptions, bind_endpoints

log = logging.getLogger(__name__)

#: The user id the scripted server's allow-list gives the agent's key.
AGENT_KEY = "agent"
POLL_MS = 20
#: Cut connections and failed handshakes seen on a server socket's monitor.
_CUT = zmq.EVENT_DISCONNECTED
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


@dataclass
class Keys:
    """A fresh server key pair and agent key pair in ``directory``; the agent's files are
    what its command gets as ``TICKWIRE_KEY`` and ``TICKWIRE_SERVER_KEY``."""

    directory: str
    server: ServerKeys = field(init=False)
    agent_secret: str = field(init=False)
    server_public: str = field(init=False)

    def __post_init__(self) -> None:
        from tickwire.plumbing.keys import allowed_keys, load_secret

        server_pub, server_sec = new_keypair("server", os.path.join(self.directory, "server"))
        agent_pub, agent_sec = new_keypair(AGENT_KEY, os.path.join(self.directory, "allow"))
        public, secret = load_secret(server_sec)
        self.server = ServerKeys(public, secret, allowed_keys(os.path.dirname(agent_pub)))
        self.agent_secret, self.server_public = str(agent_sec), str(server_pub)


@dataclass
class Received:
    """One message the agent sent: when, on which socket, decoded, the CURVE User-Id."""

    at: float
    socket: str
    message: Any
    user_id: str | None
    size: int


class Session:
    """One run of the agent command against the scripted server's sockets."""

    def __init__(
        self,
        command: Sequence[str],
        workdir: str,
        name: str,
        keys: Keys | None = None,
        env: dict[str, str | None] | None = None,
    ) -> None:
        self.name = name
        self.ctx = zmq.Context()
        opts = SocketOptions()
        self.state = self.ctx.socket(zmq.XPUB)
        self.state.setsockopt(zmq.SNDHWM, 1000)  # a burst of states must reach the agent whole
        self.state.setsockopt(zmq.MAXMSGSIZE, opts.max_subscription)
        self.actions = self.ctx.socket(zmq.PULL)
        self.actions.setsockopt(zmq.MAXMSGSIZE, MAX_ACTION_FRAME)
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.MAXMSGSIZE, opts.max_control_frame)
        self.sockets = (self.state, self.actions, self.control)
        for s in self.sockets:
            s.setsockopt(zmq.LINGER, 0)
        self.auth = secure(self.ctx, keys.server, self.sockets) if keys else None
        self.monitors = {
            "actions": self.actions.get_monitor_socket(_CUT | _HANDSHAKE_FAILED),
            "control": self.control.get_monitor_socket(_CUT | _HANDSHAKE_FAILED),
            "state": self.state.get_monitor_socket(_HANDSHAKE_FAILED),
        }
        eps = bind_endpoints(self.sockets, "tcp://127.0.0.1:0")
        self.address = connectable(eps.base)
        self.poller = zmq.Poller()
        for s in (*self.sockets, *self.monitors.values()):
            self.poller.register(s, zmq.POLLIN)
        # what the agent did
        self.received: list[Received] = []
        self.identity: bytes | None = None  #: the DEALER identity of the newest JOIN
        self.subscriptions: list[bytes] = []
        self.undecodable: list[str] = []
        self.cut: list[str] = []  #: connections cut while the agent played (a cap, a reset)
        self.ended = False  #: END was sent: connections closing now are the agent leaving
        self.auth_failures: list[str] = []
        # the agent process
        environ = dict(os.environ)
        for k, v in (env or {}).items():  # None: not set for the agent
            environ.pop(k, None) if v is None else environ.__setitem__(k, v)
        environ["TICKWIRE_CONNECT"] = self.address
        if keys:
            environ.update(TICKWIRE_KEY=keys.agent_secret, TICKWIRE_SERVER_KEY=keys.server_public)
        self.output_path = os.path.join(workdir, f"{name}.log")
        self._output = open(self.output_path, "wb")  # noqa: SIM115 - closed in close()
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                list(command),
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: paused, resumed, killed whole
            )
        except BaseException:  # not found, not executable: nothing of this session stays open
            self._close_sockets()
            raise

    # ------------------------------------------------------------------ receiving
    def pump(self, timeout_s: float) -> None:
        """Read whatever arrives within ``timeout_s`` (at least one poll)."""
        for sock, _ in self.poller.poll(max(0, int(timeout_s * 1000))):
            if sock is self.state:
                self._on_subscription(sock.recv())
            elif sock is self.actions:
                self._on_message("actions", sock.recv_multipart(copy=False), ACTION_LIMITS)
            elif sock is self.control:
                ident, *frames = sock.recv_multipart(copy=False)
                if frames and self._on_message("control", frames, CONTROL_LIMITS):
                    if isinstance(self.received[-1].message, Join):
                        self.identity = ident.bytes
            else:
                which = next(k for k, m in self.monitors.items() if m is sock)
                self._on_event(which, recv_monitor_message(sock))

    def wait_for(self, done: Callable[[], Any], timeout_s: float, while_alive: bool = True) -> Any:
        """Pump until ``done()`` is truthy (returned) or ``timeout_s`` passes (its last value).
        With ``while_alive``, stop early once the agent process has exited."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = done()
            left = deadline - time.monotonic()
            if value or left <= 0 or (while_alive and self.exit_code is not None):
                return value
            self.pump(min(left, POLL_MS / 1000))

    def idle(self, seconds: float) -> None:
        """Keep reading for ``seconds`` (the scripted pauses: heartbeats, "must not act")."""
        self.wait_for(lambda: False, seconds, while_alive=False)

    def _on_subscription(self, frame: bytes) -> None:
        if frame[:1] == b"\x01":
            self.subscriptions.append(frame[1:])

    def _on_message(self, socket: str, frames: list[zmq.Frame], limits: Any) -> bool:
        user_id = None
        with contextlib.suppress(zmq.ZMQError, KeyError):
            user_id = str(frames[0].get("User-Id"))  # a str property (typed int | str)
        try:
            msg = decode(frames, limits)
        except ProtocolError as e:
            self.undecodable.append(f"{socket}: {e.reason}: {e}")
            return False
        size = sum(len(f.bytes) for f in frames)
        self.received.append(Received(time.monotonic(), socket, msg, user_id, size))
        return True

    def _on_event(self, socket: str, event: dict) -> None:
        if event["event"] == _CUT:
            if not self.ended and self.exit_code is None:
                self.cut.append(f"{socket} connection cut while the agent ran")
        else:
            self.auth_failures.append(f"{zmq.Event(event['event']).name} on {socket}")

    # ------------------------------------------------------------------ queries
    def of(self, kind: type, since: float = 0.0) -> list[Any]:
        """Messages of ``kind`` the agent sent, oldest first (after ``since``)."""
        return [r.message for r in self.received if isinstance(r.message, kind) and r.at >= since]

    def records(self, kind: type) -> list[Received]:
        return [r for r in self.received if isinstance(r.message, kind)]

    def actions_for(self, tick: int, since: float = 0.0) -> list[Action]:
        return [a for a in self.of(Action, since) if a.tick == tick]

    def ready_with(self, run: str, player: int, token: str) -> Ready | None:
        return next(
            (r for r in self.of(Ready) if (r.run, r.player, r.token) == (run, player, token)),
            None,
        )

    # ------------------------------------------------------------------ sending
    def publish(self, msg: Any) -> None:
        self.state.send_multipart(encode(msg))

    def tell(self, msg: Any) -> None:
        """Send on control to the agent's DEALER (the identity of its JOIN)."""
        if self.identity is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.control.send_multipart([self.identity, *encode(msg)], zmq.NOBLOCK)

    # ------------------------------------------------------------------ the process
    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the agent's process group; False if it is gone."""
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def wait_exit(self, timeout_s: float) -> int | None:
        """The agent's exit code once it exits within ``timeout_s`` (None: still running)."""
        self.wait_for(lambda: self.exit_code is not None, timeout_s, while_alive=False)
        return self.exit_code

    def output_tail(self, lines: int = 3) -> str:
        """The last lines the agent printed (stdout and stderr), for a failure's detail."""
        self._output.flush()
        try:
            with open(self.output_path, "rb") as f:
                text = f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail)

    def close(self) -> None:
        """Stop the agent's process group (if still running), close every socket."""
        if self.exit_code is None:
            self.signal_group(signal.SIGCONT)
            self.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self.signal_group(signal.SIGKILL)  # children it left behind
        self._close_sockets()

    def _close_sockets(self) -> None:
        self._output.close()
        for m in self.monitors.values():
            m.close(linger=0)
        for s in self.sockets:
            with contextlib.suppress(zmq.ZMQError):
                s.disable_monitor()
            s.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()
