"""PlayerPool: ``actions[i] = players[i].get_action(state)`` in parallel, players kept alive.

The players are spread over ``processes`` host processes (default: one per usable core),
each hosting its share; every player object is sent **once**, lives in its host and keeps
its own state from call to call. One call is one tick: the state is encoded once and
published to every host over ZeroMQ (numpy arrays travel as zero-copy frames), each host
calls its players in turn and answers with one message, and the actions come back in
player order. ``submit``/``collect`` split a call so the caller can work meanwhile.

Hosts are started as ``python -m tickwire.server.work.pool_host`` (not by re-running the
caller's ``__main__``), so players whose class lives in a notebook, in ``python -`` or in
a script without a main guard work: those are sent by value with cloudpickle.
Messages: :mod:`tickwire.protocol.work`; sockets: :mod:`tickwire.server.work.hub`.

The default address is ipc in a private 0700 directory. Given a non-loopback tcp
``address``, the pool secures itself: it makes a CURVE key pair for itself and one per host,
hands each host its keys on its stdin and allows exactly those keys (``insecure=True``
binds without keys instead).
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import zmq
from tickwire.plumbing.process import cores_are_free, stop_popens, usable_cores
from tickwire.protocol import ConfigError, TickwireError
from tickwire.protocol.errors import (  # noqa: F401  (defined with every error users catch; importable here too)
    AlreadySubmitted,
    NotSubmitted,
    PlayerDied,
    PlayerError,
    PlayerStartError,
    PoolStateError,
)
from tickwire.protocol.work import (
    ALL_TOPIC,
    STOP_GRACE_S,
    UNREADABLE_CALL,
    HostFailed,
    HostReady,
    HostResults,
    PoolCall,
    PoolStop,
)
from tickwire.server.work.pool_host import Bootstrap, to_wire

from ..world_server.security import ServerKeys, is_public
from .hub import Hub

log = logging.getLogger(__name__)

_POLL_MS = 100
#: How long a dead host's last messages (its failure report) may take to arrive.
_LAST_WORDS_S = 1.0
_TAIL_LINES = 40
#: Hosts get their own process group, so a terminal's Ctrl-C reaches only the caller (which
#: then closes the pool), but stay in its session: a new session would also put each host in
#: its own scheduler autogroup, which halved the tick rate on a loaded machine.
_OWN_PROCESS_GROUP: dict[str, Any] = {"process_group": 0} if sys.version_info >= (3, 11) else {}


# ----------------------------------------------------------------------------- sending players
def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:
        return None
    return cloudpickle


def _describe(index: int, player: Any) -> str:
    return f"player {index} ({type(player).__qualname__})"


def pickle_player(index: int, player: Any) -> bytes:
    """The player as bytes its host can load: by value (cloudpickle) if its class lives in
    ``__main__``, which the host cannot import; by reference otherwise."""
    cp = _cloudpickle()
    if type(player).__module__ == "__main__" and cp is None:
        raise ConfigError(
            f"{_describe(index, player)} is defined in __main__ (a notebook, "
            "`python -` or a script), which the pool's processes cannot import: "
            "pip install 'tickwire[pool]' (adds cloudpickle) to send it by value, "
            "or define its class in a module"
        )
    try:
        if type(player).__module__ == "__main__":
            return cp.dumps(player, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            return pickle.dumps(player, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            if cp is None:
                raise
            return cp.dumps(player, protocol=pickle.HIGHEST_PROTOCOL)  # lambdas, local classes
    except Exception as e:
        raise ConfigError(
            f"{_describe(index, player)} could not be sent to its process: "
            f"{type(e).__name__}: {e}. Players are pickled once; keep open files, "
            "locks and sockets out of them (create those in the player's first "
            "call)"
        ) from e


def split(n: int, parts: int) -> list[list[int]]:
    """Players 0..n-1 in ``parts`` contiguous groups whose sizes differ by at most one."""
    size, extra = divmod(n, parts)
    out, start = [], 0
    for h in range(parts):
        end = start + size + (h < extra)
        out.append(list(range(start, end)))
        start = end
    return out


def host_keys(hosts: int) -> tuple[ServerKeys, list[tuple[bytes, bytes, bytes]]]:
    """Fresh CURVE keys for a pool on the network: its own, allowing exactly one new pair per
    host; and each host's (public, secret, pool's public), sent on its stdin."""
    public, secret = zmq.curve_keypair()
    pairs = [zmq.curve_keypair() for _ in range(hosts)]
    allowed = {pub: f"host{h}" for h, (pub, _) in enumerate(pairs)}
    return ServerKeys(public, secret, allowed), [(pub, sec, public) for pub, sec in pairs]


# ----------------------------------------------------------------------------- host processes
class _HostProcess:
    """One host's process: its stdin gets the bootstrap, its stderr is forwarded to ours
    and its last lines are kept, to show why it failed."""

    def __init__(self, host: int, players: list[int], topic: bytes, boot: bytes) -> None:
        self.host, self.players, self.topic = host, players, topic
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tickwire.server.work.pool_host", str(os.getpid())],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **_OWN_PROCESS_GROUP,
        )
        self.thread = threading.Thread(
            target=self._io, args=(boot,), daemon=True, name=f"tickwire-pool-host-{host}"
        )
        self.thread.start()

    def _io(self, boot: bytes) -> None:
        stdin, stderr = self.popen.stdin, self.popen.stderr
        assert stdin is not None and stderr is not None  # both are pipes
        try:
            stdin.write(boot)
            stdin.close()
        except OSError:
            pass  # it died first: its stderr says why
        for raw in iter(stderr.readline, b""):
            line = raw.decode(errors="replace")
            self.tail.append(line)
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass  # our stderr is gone or closed; the tail is still kept
        stderr.close()

    def output(self) -> str:
        self.thread.join(_LAST_WORDS_S)  # let the reader reach the end of what it wrote
        return "".join(self.tail)


def _stop_hosts(hosts: list[_HostProcess], hub: Hub, pool_id: str) -> None:
    """Stop every host (bounded: STOP, then terminate, then kill), close the hub. Runs at
    close(), when the pool is garbage-collected, or at interpreter exit."""
    try:
        hub.publish(ALL_TOPIC, PoolStop(pool_id))
    except Exception as e:  # never let a failed goodbye keep processes alive
        log.debug("could not publish STOP: %s", e)
    stop_popens([h.popen for h in hosts], STOP_GRACE_S)
    for h in hosts:
        h.thread.join(_LAST_WORDS_S)
    hub.close()


# ----------------------------------------------------------------------------- the pool
class PlayerPool:
    """Run ``player.<method>(state)`` for many players in parallel, in host processes.

    ``with PlayerPool(players) as pool: actions = pool.get_actions(state)``. ``processes``
    (default: usable cores) host the players in contiguous shares; ``processes=len(players)``
    gives one process each. ``pin`` pins each host to its own core: ``None`` (the default)
    does so when there are no more hosts than cores and the usable cores were at least half
    idle over 50 ms before the start — measured +5–10% ticks/s on an idle machine, equal at
    load 2 on 2 cores, −25% when oversubscribed 3× (bench/README.md) —; ``True`` always, ``False`` never.
    ``pool.pinned`` says what was chosen. Players are sent once (by
    value if their class lives in ``__main__``: needs ``pip install 'tickwire[pool]'``).
    The hosts die with the thread that created the pool (Linux PR_SET_PDEATHSIG).
    ``address``: bind there instead of a private ipc directory; a non-loopback tcp address
    gets fresh CURVE keys for the pool and its hosts, unless ``insecure=True``.
    """

    def __init__(
        self,
        players: Sequence[Any],
        *,
        processes: int | None = None,
        method: str = "get_action",
        address: str | None = None,
        start_timeout: float = 60.0,
        pin: bool | None = None,
        insecure: bool = False,
    ) -> None:
        self._closed = True  # until started: close() has nothing to do
        if not players:
            raise ConfigError("PlayerPool needs at least one player")
        for i, p in enumerate(players):
            if not callable(getattr(p, method, None)):
                raise ConfigError(
                    f"{_describe(i, p)} has no method {method!r}; pass method='...' to name the one to call"
                )
        if pin not in (None, True, False):
            raise ConfigError(
                f"pin={pin!r}: give True (pin), False (never) or None (pin when the cores are free)"
            )
        if processes is not None and processes < 1:
            raise ConfigError(f"processes={processes}: give at least 1 (or None: one per core)")
        self.n, self.method = len(players), method
        self.names = [type(p).__qualname__ for p in players]
        blobs = [pickle_player(i, p) for i, p in enumerate(players)]
        cores = usable_cores()
        self.processes = min(self.n, processes or len(cores))
        self.pinned = (
            bool(pin) if pin is not None else (self.processes <= len(cores) and cores_are_free(cores))
        )
        self.last_missing: list[int] = []
        self._warned_missing = False  #: a missed answer was logged as a warning once
        self._call = 0
        self._pending: int | None = None
        self._dead: dict[int, int | None] = {}  # host → exit code
        self._id = secrets.token_hex(8)
        self._curves = (
            host_keys(self.processes) if (address and is_public(address) and not insecure) else None
        )
        self._hub = Hub(
            address,
            "pool",
            unlimited_out=True,
            insecure=insecure,
            keys=self._curves and self._curves[0],
            role="PlayerPool",
        )
        self._hosts: list[_HostProcess] = []
        self._finalizer = weakref.finalize(self, _stop_hosts, self._hosts, self._hub, self._id)
        self._closed = False
        try:
            self._start(blobs, cores, sys.path)
            self._wait_ready(start_timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, blobs: list[bytes], cores: list[int], path: list[str]) -> None:
        groups = split(self.n, self.processes)
        self._host_of = [0] * self.n
        for h, group in enumerate(groups):
            for i in group:
                self._host_of[i] = h
            topic = f"pool.{self._id}.{h}.".encode()  # unguessable: proves this host's link
            boot = Bootstrap(
                self._id,
                h,
                self._hub.endpoints.state,
                self._hub.endpoints.actions,
                topic,
                self.method,
                [(i, blobs[i]) for i in group],
                list(path),
                cores[h % len(cores)] if self.pinned else None,
                self._curves[1][h] if self._curves else None,
            )
            self._hosts.append(_HostProcess(h, group, topic, to_wire(boot)))

    def _wait_ready(self, timeout: float) -> None:
        """Every host has subscribed (seen on the XPUB) and said ready (on the PULL)."""
        topics = {h.topic: h.host for h in self._hosts}
        subscribed: set[int] = set()
        ready: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(subscribed & ready) < len(self._hosts):
            if time.monotonic() > deadline:
                late = [i for h in self._hosts if h.host not in subscribed & ready for i in h.players]
                raise TickwireError(
                    f"players {late} did not start within {timeout} s "
                    "(start_timeout); is the machine overloaded?"
                )
            self._hub.poll(_POLL_MS)
            subscribed |= {topics[s.topic] for s in self._hub.subscriptions() if s.on and s.topic in topics}
            for msg in self._hub.messages():
                if isinstance(msg, HostReady) and msg.pool == self._id:
                    ready.add(msg.host)
                elif isinstance(msg, HostFailed) and msg.pool == self._id:
                    raise self._start_error(msg.host, msg.player, msg.error)
            for h in self._hosts:
                if h.host not in ready and h.popen.poll() is not None:
                    raise self._died_while_starting(h)

    def _start_error(self, host: int, player: int | None, error: str) -> PlayerStartError:
        name = self.names[player] if player is not None else f"players {self._hosts[host].players}"
        return PlayerStartError(player, name, error)

    def _died_while_starting(self, h: _HostProcess) -> PlayerStartError:
        """A host exited before READY: its own report if it sent one, else its stderr."""
        deadline = time.monotonic() + _LAST_WORDS_S
        while time.monotonic() < deadline and self._hub.poll(_POLL_MS)[0]:
            for msg in self._hub.messages():
                if isinstance(msg, HostFailed) and msg.pool == self._id:
                    return self._start_error(msg.host, msg.player, msg.error)
        out = h.output() or "(it wrote nothing to stderr)"
        return PlayerStartError(
            h.players[0],
            self.names[h.players[0]],
            f"its process exited with code {h.popen.returncode}:\n{out}",
        )

    # ------------------------------------------------------------------ calls
    def get_actions(self, state: Any, timeout: float | None = None, default: Any = None) -> list[Any]:
        """Broadcast ``state`` once; return every player's action, in player order.

        With ``timeout`` (seconds), players that have not answered get ``default`` and are
        listed in :attr:`last_missing`; their late answers are discarded. Raises
        :class:`PlayerError` if a player raised (after collecting the others), and
        :class:`PlayerDied` if a player's process is gone.
        """
        self.submit(state)
        return self.collect(timeout, default)

    def submit(self, state: Any) -> None:
        """Send ``state`` to every player and return at once; :meth:`collect` the actions.
        Lets the caller update its world while the players compute."""
        if self._closed:
            raise TickwireError("this PlayerPool is closed")
        if self._pending is not None:
            raise AlreadySubmitted(
                f"submit() called while call {self._pending} is still pending: collect() its actions first"
            )
        self._raise_if_dead()
        call = PoolCall(self._id, self._call + 1, state)
        self._hub.publish(ALL_TOPIC, call, block=True)  # an encoding error leaves nothing pending
        self._call = self._pending = call.call

    def collect(self, timeout: float | None = None, default: Any = None) -> list[Any]:
        """The actions of the submitted call, in player order (see :meth:`get_actions`)."""
        if self._pending is None:
            raise NotSubmitted("collect() without a pending call: submit(state) first")
        call, self._pending = self._pending, None
        results = [default] * self.n
        pending = set(range(self.n))
        errors: dict[int, str] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            left = _POLL_MS if deadline is None else min(_POLL_MS, (deadline - time.monotonic()) * 1e3)
            if left <= 0:
                break
            has_msg, has_sub = self._hub.poll(left)
            if has_msg:
                self._take(call, results, pending, errors)
            if has_sub or not has_msg:  # an unsubscribe, or quiet: is a host gone?
                self._hub.subscriptions()
                self._check_alive(call, results, pending, errors)
        self.last_missing = sorted(pending)
        if pending:  # the first time a warning; then quieter (timeouts may be on purpose)
            log.log(
                logging.INFO if self._warned_missing else logging.WARNING,
                "players %s did not answer call %d within %.3f s; they get %r%s",
                self.last_missing,
                call,
                timeout,
                default,
                ""
                if self._warned_missing
                else " (later misses are logged at INFO; pool.last_missing lists them after each call)",
            )
            self._warned_missing = True
        if errors:
            first = min(errors)
            raise PlayerError(first, errors[first], errors, results)
        return results

    def _take(self, call: int, results: list, pending: set, errors: dict) -> None:
        for msg in self._hub.messages():
            if not (
                isinstance(msg, HostResults) and msg.pool == self._id and msg.call in (call, UNREADABLE_CALL)
            ):
                continue  # a late answer to an earlier call
            for entry in msg.results:
                try:
                    i, ok, value = entry
                    pending.remove(i)
                except (ValueError, TypeError, KeyError):
                    log.warning("host %d sent a malformed result %r", msg.host, entry)
                    continue
                if ok:
                    results[i] = value
                else:
                    errors[i] = value

    def _check_alive(self, call: int, results: list, pending: set, errors: dict) -> None:
        """Raise PlayerDied for a dead host that still owes answers (after reading what
        it sent before dying)."""
        for h in self._hosts:
            if h.host not in self._dead and h.popen.poll() is not None:
                self._dead[h.host] = h.popen.returncode
        owing = [h for h in self._dead if any(self._host_of[i] == h for i in pending)]
        if owing:
            self._take(call, results, pending, errors)
            self._raise_if_dead(pending)

    def _raise_if_dead(self, among: set[int] | None = None) -> None:
        for host in sorted(self._dead):
            h = self._hosts[host]
            if among is None or any(i in among for i in h.players):
                raise PlayerDied(h.players[0], self._dead[host], h.players, h.output())

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop every host process (bounded: STOP, then terminate, then kill) and free the
        sockets and the temporary directory."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    @property
    def pids(self) -> list[int]:
        """The process id of each player's host, in player order."""
        return [self._hosts[self._host_of[i]].popen.pid for i in range(self.n)]

    def __enter__(self) -> PlayerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.n
