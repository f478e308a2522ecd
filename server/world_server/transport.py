"""The server's sockets and how frames move on them (their set-up: :mod:`tickwire.plumbing.sockets`).

* ``state``   XPUB  — STATE/HEARTBEAT/END fan-out; sees each player's readiness topic.
* ``actions`` PULL  — READY and ACTION fan-in.
* ``control`` ROUTER — JOIN/WELCOME/LEAVE/END/ERROR, addressed by the agent's identity
  (``ROUTER_MANDATORY``: a send to an identity with no connection reports it).

With keys (:class:`~tickwire.server.world_server.security.ServerKeys`) all three are CURVE servers behind
the allow-list authenticator, started before they bind; received messages then carry the
sender's key name (ZAP User-Id), read by :meth:`ServerSockets.recv_action_keyed` and
:meth:`ServerSockets.recv_control`.
Every inbound size is capped per socket (a frame over the cap disconnects its sender).

Monitors: libzmq allows one monitor per socket (a second ``get_monitor_socket`` replaces the
first), so each socket has at most one, watching the union of what is wanted of it:
``actions`` always watches accepted connections and disconnects (a cut connection loses what
was queued), and with keys every socket also watches failed handshakes.
:meth:`ServerSockets.poll` reads the monitors and sorts their events by type: failed
handshakes are reported as ``auth`` (:meth:`~ServerSockets.recv_auth_failures`), lost
players' actions connections as ``monitor`` (:meth:`~ServerSockets.recv_disconnects`).

Which actions connections are players': each is known by its file descriptor (the value of
libzmq's ACCEPTED and DISCONNECTED events, and a received frame's ``SRCFD``). While some
accepted connection has not yet carried a player's message, the first frame of each message
is received as a :class:`zmq.Frame` to read its descriptor (:attr:`ServerSockets.unproven`);
the loop asks the rules whether the message came from a player and says so with
:meth:`ServerSockets.settle`. Once every open connection is a player's, messages are received
as plain bytes again. Only players' connections are reported when they go away: a stranger's
connection that comes and goes, a refused joiner's, or one that failed the CURVE handshake
(already counted as an auth failure) is not a lost actions connection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import zmq
from tickwire.plumbing.keys import HANDSHAKE_FAILED
from tickwire.plumbing.sockets import bind_endpoints, open_monitor, open_socket
from tickwire.protocol.limits import MAX_ACTION_FRAME

from .security import AllowList, ServerKeys, describe_failure, secure

log = logging.getLogger(__name__)

#: Events :meth:`ServerSockets.poll` reports (AUTH: failed handshakes, with keys;
#: MONITOR: an actions connection went away).
STATE, ACTIONS, CONTROL, AUTH, MONITOR = "state", "actions", "control", "auth", "monitor"
#: At most this many monitor events are read per monitor socket per poll.
MONITOR_BATCH = 128


@dataclass(frozen=True)
class SocketOptions:
    """Socket tuning; the defaults suit both local and remote agents."""

    heartbeat_ivl_ms: int = 1000  #: ZMTP ping interval on the state socket
    heartbeat_timeout_ms: int = 4000  #: a peer silent this long is disconnected (→ dead)
    linger_ms: int = 200  #: bounded flush at close; never hang at exit
    #: per-frame caps (libzmq's MAXMSGSIZE): a peer sending a bigger frame is cut off. Each
    #: subscribed byte costs ~80 bytes in the XPUB's trie, and a JOIN is a few hundred bytes.
    max_action_frame: int = MAX_ACTION_FRAME
    max_control_frame: int = 64 * 1024
    max_subscription: int = 1024
    #: messages queued per peer (libzmq's SNDHWM; a message of many frames counts once).
    #: Agents act on the newest state only, so a few suffice; a subscriber that does not
    #: read (a stranger, a stuck agent, a slow link) then pins a few states, not 10,000 of
    #: them (2.5 GB of 256 KiB observations), and newer ones are dropped for it alone
    #: (``state``: XPUB drops). ``control`` carries per-player OBSERVATIONs of worlds with
    #: private views: a full queue drops the message for that player alone (ROUTER_MANDATORY
    #: with NOBLOCK says EAGAIN); END also goes to each player by control and by ``state``.
    sndhwm: int = 8
    control_sndhwm: int = 8


class ServerSockets:
    """Binds the three endpoints and moves frames; knows nothing about messages."""

    def __init__(
        self,
        base: str,
        options: SocketOptions = SocketOptions(),
        context: zmq.Context | None = None,
        keys: ServerKeys | None = None,
    ) -> None:
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self.opts = options
        self.keyed = keys is not None
        self.last_user: str | None = None  #: key name of the last keyed action received
        self._auth: AllowList | None = None
        self._monitors: dict[zmq.Socket, zmq.Socket] = {}  #: socket → its one monitor
        self._failures: list[str] = []  #: failed handshakes read, not yet reported
        self._disconnects = 0  #: lost players' actions connections, not yet reported
        #: actions connections (fds) accepted that have not carried a player's message yet,
        #: and those that have
        self._fresh: set[int] = set()
        self._players: set[int] = set()
        #: the last message received came on a connection in ``_fresh`` (its fd: ``_last_fd``)
        self.unproven = False
        self._last_fd = -1
        #: ipc socket files this server bound, with the (device, inode) each had after bind
        self._ipc_files: list[tuple[str, tuple[int, int]]] = []
        o = options
        self.state = open_socket(
            self.ctx,
            zmq.XPUB,
            linger_ms=o.linger_ms,
            sndhwm=o.sndhwm,
            max_frame=o.max_subscription,
            heartbeat_ms=(o.heartbeat_ivl_ms, o.heartbeat_timeout_ms),
        )
        self.actions = open_socket(self.ctx, zmq.PULL, linger_ms=o.linger_ms, max_frame=o.max_action_frame)
        # router_mandatory: a send to a control identity with no connection fails
        # (EHOSTUNREACH) instead of vanishing: that is how a JOINed player gone before it
        # subscribed is found
        self.control = open_socket(
            self.ctx,
            zmq.ROUTER,
            linger_ms=o.linger_ms,
            sndhwm=o.control_sndhwm,
            max_frame=o.max_control_frame,
            router_mandatory=True,
        )
        try:
            if keys is not None:
                self._auth = secure(self.ctx, keys, (self.state, self.actions, self.control))
            self._monitor()
            self.endpoints = bind_endpoints((self.state, self.actions, self.control), base)
            for addr in (self.endpoints.state, self.endpoints.actions, self.endpoints.control):
                self._note_ipc_file(addr)
        except BaseException:
            self.close()
            raise
        self._poller = zmq.Poller()
        self._names = {self.state: STATE, self.actions: ACTIONS, self.control: CONTROL}
        for s in (*self._names, *self._monitors.values()):
            self._poller.register(s, zmq.POLLIN)

    def _monitor(self) -> None:
        """One monitor per socket, with the union of the events wanted of it."""
        auth = HANDSHAKE_FAILED if self.keyed else 0
        actions = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | auth
        for s, events in ((self.state, auth), (self.actions, actions), (self.control, auth)):
            if events:
                self._monitors[s] = open_monitor(s, events)

    def poll(self, timeout_ms: float) -> list[str]:
        """Wait up to ``timeout_ms`` and return which sockets have input (monitor events
        are read here and reported as AUTH / MONITOR; one that reports nothing, such as an
        accepted connection, may end the wait with an empty list)."""
        if self._failures or self._disconnects:
            timeout_ms = 0  # events read but not yet handed out
        names = []
        for s, _ in self._poller.poll(max(0, int(timeout_ms))):
            name = self._names.get(s)
            if name is None:
                self._read_monitor(s)
            else:
                names.append(name)
        if self._failures:
            names.append(AUTH)
        if self._disconnects:
            names.append(MONITOR)
        return names

    def _read_monitor(self, m: zmq.Socket) -> None:
        """Sort up to MONITOR_BATCH events of monitor ``m``: failed handshakes, and the
        actions connections accepted and lost (by fd; only players' losses are reported)."""
        for _ in range(MONITOR_BATCH):
            if len(self._failures) >= MONITOR_BATCH or not m.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # type: ignore[arg-type,operator]  # EVENTS is an int option
                return
            raw = m.recv_multipart(zmq.NOBLOCK)
            event = int.from_bytes(raw[0][:2], "little")
            fd = int.from_bytes(raw[0][2:6], "little")
            if event & HANDSHAKE_FAILED:
                self._failures.append(describe_failure(raw))
            elif event == zmq.EVENT_ACCEPTED:  # a new connection (maybe on a reused fd)
                self._players.discard(fd)
                self._fresh.add(fd)
            elif event == zmq.EVENT_DISCONNECTED:
                if fd in self._players:
                    self._players.discard(fd)
                    self._disconnects += 1
                else:  # a stranger's, a refused joiner's, a failed handshake: not counted
                    self._fresh.discard(fd)
                    log.debug("an actions connection (fd %d) that carried no player's message closed", fd)

    def publish(self, frames: Sequence) -> None:
        self.state.send_multipart(frames, copy=False)

    # Input is tested with EVENTS (no syscall, no exception) before each receive.
    def recv_subscription(self) -> bytes | None:
        """The next subscription event (``b"\\x01"+topic`` / ``b"\\x00"+topic``) or None."""
        if self.state.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # type: ignore[arg-type,operator]  # EVENTS is an int option
            return self.state.recv(zmq.NOBLOCK)
        return None

    # A PULL socket's EVENTS may say POLLIN while no message is complete: with keys, libzmq
    # queues a connection's credentials (its User-Id) ahead of its first message, and they
    # count as input but are skipped by a receive. So a receive may still find nothing
    # (zmq.Again) — e.g. while an allowed agent's message of many frames is arriving.
    def recv_action(self) -> list[bytes] | None:
        """The next actions message's frames, or None. While a connection is not yet known
        to carry a player, sets :attr:`unproven` for a message that came on one."""
        sock = self.actions
        if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # type: ignore[arg-type,operator]  # EVENTS is an int option
            return None
        if self._fresh:
            return self._recv_traced()
        try:
            return sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    def recv_action_keyed(self) -> list[bytes] | None:
        """Like :meth:`recv_action`; also sets :attr:`last_user` to the sender's key name
        (only the first frame is received as a zmq.Frame, to read its User-Id)."""
        if not self.actions.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # type: ignore[arg-type,operator]  # EVENTS is an int option
            return None
        return self._recv_traced()

    def _recv_traced(self) -> list[bytes] | None:
        """Receive the first frame as a zmq.Frame (its User-Id, its connection's fd), the
        others as bytes."""
        sock = self.actions
        try:
            first = sock.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:  # only credentials were queued (see above)
            return None
        if self.keyed:
            self.last_user = first.get("User-Id")  # type: ignore[assignment]  # a str property
        if self._fresh:
            try:
                fd = first.get(zmq.SRCFD)
            except zmq.ZMQError:  # no fd (inproc)
                fd = -1
            if fd in self._fresh:
                self.unproven, self._last_fd = True, fd
        frames = [first.bytes]
        while sock.getsockopt(zmq.RCVMORE):
            frames.append(sock.recv(zmq.NOBLOCK))
        return frames

    def settle(self, from_player: bool) -> None:
        """Say whether the last message (:attr:`unproven`) came from a player; if so its
        connection is a player's from now on: its loss will be reported."""
        self.unproven = False
        if from_player and self._last_fd in self._fresh:
            self._fresh.discard(self._last_fd)
            self._players.add(self._last_fd)

    def recv_control(self) -> tuple[bytes, list[bytes], str | None] | None:
        """(identity, frames, key name or None without keys) of the next control message."""
        if not self.control.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # type: ignore[arg-type,operator]  # EVENTS is an int option
            return None
        if not self.keyed:
            identity, *frames = self.control.recv_multipart(zmq.NOBLOCK)
            return identity, frames, None
        ident, *parts = self.control.recv_multipart(zmq.NOBLOCK, copy=False)
        user = parts[-1].get("User-Id") if parts else None
        return ident.bytes, [f.bytes for f in parts], user  # type: ignore[return-value]  # User-Id is a str

    def recv_auth_failures(self, limit: int) -> list[str]:
        """Up to ``limit`` failed handshakes read since the last call, as text."""
        out, self._failures = self._failures[:limit], self._failures[limit:]
        return out

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
        """How many players' actions connections went away since the last call (connections
        that never carried a player's message not included)."""
        n, self._disconnects = self._disconnects, 0
        return n

    def _note_ipc_file(self, addr: str) -> None:
        """Remember an ipc socket file just bound, by inode (abstract ``ipc://@…`` has none)."""
        path = addr.partition("://")[2]
        if addr.startswith("ipc://") and path and not path.startswith("@"):
            path = os.path.abspath(path)
            try:
                st = os.stat(path)
            except OSError:
                return
            self._ipc_files.append((path, (st.st_dev, st.st_ino)))

    def _remove_ipc_files(self) -> None:
        """Remove the ipc socket files this server bound (libzmq 4.3.5 leaves them behind),
        each only if it is still ours: a newer server that rebound the path keeps its file."""
        for path, inode in self._ipc_files:
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == inode:
                    os.unlink(path)
            except OSError as e:  # gone already, or not ours to remove
                log.debug("ipc socket file %s not removed: %s", path, e)
        self._ipc_files = []

    def close(self) -> None:
        for s, m in self._monitors.items():
            s.disable_monitor()
            m.close(0)
        for s in (self.state, self.actions, self.control):
            s.close()
        if self._auth is not None:
            self._auth.stop()
        if self._own_ctx:
            self.ctx.term()
        self._remove_ipc_files()
