"""Setting up ZeroMQ sockets: options, CURVE, binding, and the refusal of a public bind.

Every side that opens sockets sets them up here: the world server's
:class:`~tickwire.server.world_server.transport.ServerSockets`, the
:class:`~tickwire.server.work.hub.Hub` of Chief and PlayerPool, an agent process's sockets
(:mod:`tickwire.agents.runtime`), :class:`~tickwire.agents.worker.Worker` and the pool host
(:mod:`tickwire.server.work.pool_host`). Each caller passes every value it sets to
:func:`configure` (or :func:`open_socket`); an option not passed keeps libzmq's default, so
the values stay where the caller chose them (``SocketOptions``, :mod:`tickwire.protocol.work`).

* options: :func:`configure`, :func:`open_socket`, :func:`open_monitor`;
* CURVE: :func:`curve_server` (the allow-list authenticator that must run before such a
  socket binds is the server's, :mod:`tickwire.server.world_server.security`) and
  :func:`curve_client`;
* binding: :func:`bind_endpoints` (consecutive ports for ``tcp://HOST:0``) and
  :func:`refuse_live_ipc` (never take an ipc address over from a live process);
* a non-loopback bind without keys: :func:`is_public` decides, :func:`server_bind_refused`
  and :func:`hub_bind_refused` say what to do instead.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import zmq
from tickwire.protocol.endpoints import Endpoints, derive, with_port
from tickwire.protocol.errors import BindError, ConfigError

from .keys import MAKE_KEYS_HINT

#: (own public, own secret, server's public): the keys of a CURVE client.
ClientKeys = tuple[bytes, bytes, bytes]
#: How long a probe of an ipc socket file may wait for a connection (a full backlog).
IPC_PROBE_TIMEOUT_S = 1.0
#: Hosts that may be bound without keys: only this machine can reach them.
LOOPBACK = ("127.", "localhost", "[::1]", "::1")


# ---------------------------------------------------------------------------- options
def configure(
    sock: zmq.Socket,
    *,
    linger_ms: int,
    sndhwm: int | None = None,
    max_frame: int | None = None,
    heartbeat_ms: tuple[int, int] | None = None,
    immediate: bool = False,
    router_mandatory: bool = False,
    xpub_verbose: bool = False,
    identity: bytes | None = None,
    curve: ClientKeys | None = None,
) -> zmq.Socket:
    """Set ``sock``'s options (before it binds or connects) and return it.

    ``linger_ms``: how long close waits to hand queued messages over (always chosen by the
    caller). The others are set only when given; None / False keep libzmq's default:
    ``sndhwm`` (messages queued per peer; 0: no limit), ``max_frame`` (MAXMSGSIZE: a peer
    sending a bigger frame is cut off), ``heartbeat_ms`` (ZMTP ping interval and timeout),
    ``immediate`` (queue only to completed connections), ``router_mandatory`` (a send to an
    unknown identity fails), ``xpub_verbose`` (report every subscription), ``identity``
    (ROUTING_ID) and ``curve`` (make it a CURVE client, :func:`curve_client`).
    """
    sock.setsockopt(zmq.LINGER, linger_ms)
    if sndhwm is not None:
        sock.setsockopt(zmq.SNDHWM, sndhwm)
    if max_frame is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max_frame)
    if heartbeat_ms is not None:
        sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms[0])
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, heartbeat_ms[1])
    if immediate:
        sock.setsockopt(zmq.IMMEDIATE, 1)
    if router_mandatory:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    if xpub_verbose:
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    if identity is not None:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    if curve is not None:
        curve_client(sock, curve)
    return sock


def open_socket(ctx: zmq.Context, kind: int, **options) -> zmq.Socket:
    """A new socket of ``kind`` set up by :func:`configure` with ``options``."""
    sock = ctx.socket(kind)
    try:
        return configure(sock, **options)
    except BaseException:
        sock.close(0)
        raise


def open_monitor(sock: zmq.Socket, events: int) -> zmq.Socket:
    """A monitor of ``events`` on ``sock`` that closes at once (linger 0). libzmq allows one
    monitor per socket: a second one replaces the first."""
    m = sock.get_monitor_socket(events)
    m.setsockopt(zmq.LINGER, 0)
    return m


# ---------------------------------------------------------------------------- CURVE
def curve_server(sock: zmq.Socket, public: bytes, secret: bytes) -> None:
    """Make ``sock`` a CURVE server with this key pair (before it binds; without a running
    ZAP handler on its context a CURVE server lets every client key in)."""
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret


def curve_client(sock: zmq.Socket, keys: ClientKeys) -> None:
    """Make ``sock`` a CURVE client: (own public, own secret, the server's public key)."""
    sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = keys


# ---------------------------------------------------------------------------- binding
def bind_endpoints(socks: Sequence[zmq.Socket], base: str) -> Endpoints:
    """Bind ``socks`` in order to ``base``'s derived state, actions (and control) endpoints;
    ``tcp://HOST:0`` takes the first run of consecutive free ports (the server, the hub)."""
    if not base.startswith("tcp://") or not base.endswith(":0"):
        eps = derive(base)
        addrs = (eps.state, eps.actions, eps.control)[: len(socks)]
        for addr in addrs:  # all before binding any: a refused bind takes nothing over
            refuse_live_ipc(addr)
        for sock, addr in zip(socks, addrs):
            try:
                sock.bind(addr)
            except zmq.ZMQError as e:
                raise BindError(
                    f"cannot bind {addr}: {e}; is another server using it? choose another address (--bind)"
                ) from e
        return eps
    host_url = base.rpartition(":")[0]
    for _ in range(50):
        port = socks[0].bind_to_random_port(host_url)
        url = socks[0].getsockopt_string(zmq.LAST_ENDPOINT)
        if port + len(socks) <= 65536:  # room for the next ones
            eps = derive(with_port(base, port))
            if _bind_all(socks[1:], (eps.actions, eps.control)):
                return eps
        socks[0].unbind(url)
    raise BindError(f"found no {len(socks)} consecutive free ports for {base}: choose a port with --bind")


def refuse_live_ipc(addr: str) -> None:
    """Raise :class:`BindError` if a live socket listens at ipc ``addr``'s file.

    libzmq unlinks an ipc socket file and binds a new one at the same path, so a second
    server would silently take the address over from the one running there (new agents and
    rejoining ones would land in the second run). Over tcp the second bind fails by itself.
    A connect tells: accepted (or timed out: a full backlog) means a live listener; refused
    means a file left behind by a process that is gone, which is reused. Abstract addresses
    (``ipc://@name``) have no file: the kernel refuses a second bind itself.
    """
    path = addr.partition("://")[2]
    if not addr.startswith("ipc://") or not path or path.startswith("@"):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(IPC_PROBE_TIMEOUT_S)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError, PermissionError):
        return  # stale or absent (or not ours to test: libzmq's bind decides)
    except OSError as e:
        if not isinstance(e, (TimeoutError, BlockingIOError)):
            return
    finally:
        probe.close()
    raise BindError(
        f"cannot bind {addr}: another process is listening on {path} (a "
        "server still running there?). Stop it first, or choose another "
        "address (--bind ipc:///other/path); a socket file left behind by a "
        "process that has exited is reused"
    )


def _bind_all(socks: Sequence[zmq.Socket], addrs: Sequence[str]) -> bool:
    """Bind each socket to its address; on a failure undo the binds done, False."""
    done: list[tuple[zmq.Socket, str]] = []
    for sock, addr in zip(socks, addrs):
        try:
            sock.bind(addr)
        except zmq.ZMQError:
            for d, a in done:
                d.unbind(a)
            return False
        done.append((sock, addr))
    return True


# ---------------------------------------------------------------------------- public binds
def is_public(address: str) -> bool:
    """True for a tcp address other than loopback (``tcp://0.0.0.0:5555``, an interface, a
    host name): others on the network can reach it, so binding it needs keys or an explicit
    "insecure". ipc, inproc and 127.x / ::1 / localhost stay on this machine."""
    host = address.partition("://")[2].rpartition(":")[0]
    return address.startswith("tcp://") and not host.startswith(LOOPBACK)


def _bind_refused(refusal: str, address: str, exposure: str, fixes: str, option: str) -> ConfigError:
    return ConfigError(
        f"{refusal} {address} without keys: anyone who can reach it could {exposure}. Either {fixes}",
        option,
    )


def server_bind_refused(address: str) -> ConfigError:
    """The error for a world server binding ``address`` (public) without keys."""
    return _bind_refused(
        "refusing to bind",
        address,
        "join and read every observation",
        f"{MAKE_KEYS_HINT}, and start the server with --key keys/server.key_secret --allow DIR "
        "(agents: --key NAME.key_secret --server-key server.key); or bind tcp://127.0.0.1:PORT; "
        "or pass --insecure (TICKWIRE_INSECURE=1) on a network you trust.",
        "--bind",
    )


def hub_bind_refused(address: str, role: str) -> ConfigError:
    """The error for a Chief or PlayerPool (``role``) binding ``address`` (public) without keys."""
    return _bind_refused(
        f"{role} refuses to bind",
        address,
        "send items and read what is published",
        "make keys with `tickwire keys new chief --dir keys` and `tickwire keys new NAME --dir "
        "keys` (one per worker machine), copy the workers' public NAME.key files into a "
        f"directory 'allow', and pass {role}(address, key='keys/chief.key_secret', "
        "allow='allow') and Worker(address, id, key='keys/NAME.key_secret', "
        "server_key='keys/chief.key'); or bind tcp://127.0.0.1:PORT, or give no address (a "
        "private ipc directory); or pass insecure=True on a network you trust.",
        "address",
    )
