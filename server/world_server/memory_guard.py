"""The memory guard (``--memory-budget-mb``): cut the connection that is filling the server's memory.

libzmq holds a multipart message until its last frame arrives, and no socket option bounds a
message's total size (``MAXMSGSIZE`` is per frame, the high-water mark counts complete
messages), so one peer can send thousands of frames under the per-frame cap and grow the
server without bound. The guard watches the process's resident memory from its own thread
(every 10 ms, also while ``World.step`` runs) and, when it exceeds the baseline by the budget,
shuts down the connection that received the most bytes since memory began to climb. libzmq
then drops that connection and frees its incomplete message.

Two parts: :class:`MemoryBudget` decides (pure: RSS and per-connection byte counters in,
connections to cut out; unit-tested without sockets or clocks), and :class:`MemoryGuard` is
its thread (``/proc/self/statm``, the accepted connections found in ``/proc/self/fd``, their
byte counters, ``shutdown``, ``malloc_trim``). Connections are found by the address they were
accepted on (one of the three endpoints), so no ZeroMQ call is made from the guard's thread.

Counters: over TCP, the bytes each connection received (``tcpi_bytes_received`` of
``TCP_INFO``). ipc (Unix sockets) has no such counter (and ``send`` is not counted in the peer's
``/proc/PID/io``): there the guard adds up, five times per check while memory is high, the
bytes waiting unread in each connection's socket (``FIONREAD``): a peer streaming a huge
message usually has some, an honest agent sending one small action per tick almost never;
samples start at a quarter of the budget, follow each other every millisecond while memory
climbs, and while memory still grows fast and no connection showed any, the guard keeps
sampling rather than moving the baseline. That is a sample, not a count: on ipc a cut may
come a little later than on TCP.
Linux only: elsewhere the guard is off.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import socket
import struct
import termios
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from tickwire.protocol.endpoints import Endpoints

log = logging.getLogger(__name__)

MB = 1024 * 1024
#: How often the guard reads the resident memory (seconds).
CHECK_EVERY_S = 0.01
#: A connection is cut only if it received at least this much since memory began to climb ...
MIN_SUSPECT_BYTES = 1 * MB
#: ... and at least this share of the growth: a frame of a few bytes costs ~64 bytes of memory.
SUSPECT_SHARE = 1 / 32
#: A cut is made only while memory is still growing: by this share of the budget since the
#: counters were read (else the memory stays without a connection bringing it: re-baseline).
GROWING_SHARE = 1 / 8
#: ... and, with sampled counters (ipc), memory that grows by this share of the budget
#: between two checks is still being brought by someone: keep sampling.
GROWING_NOW_SHARE = 1 / 64
#: While memory is over the watch level, freed heap is given back to the OS every this many
#: checks (``malloc_trim``: libzmq frees a cut message's small frames over some time).
TRIM_EVERY_CHECKS = 10
#: ipc: a connection is cut only when its sampled unread bytes add up to this much. A peer
#: streaming a huge message keeps its socket buffer full (~200 KiB a sample); an honest
#: agent's unread bytes are one small action now and then, so memory the world grows by
#: itself never makes one a suspect (with 1 byte, a growing world got honest agents cut).
IPC_MIN_SUSPECT_BYTES = 1 * MB
#: ipc: each check while memory is high also samples the unread bytes this many more times,
#: this far apart (seconds).
EXTRA_SAMPLES = 4
EXTRA_SAMPLE_GAP_S = 0.001
#: ipc: samples start when memory passes this share of the budget (TCP: half of it), so more
#: of them are in when it reaches the limit ...
SAMPLED_WATCH_SHARE = 1 / 4
#: ... and while memory climbs by this share of the budget per check, the next check follows
#: at once (a peer that libzmq drains as fast as it sends leaves few unread bytes per sample:
#: at 10 ms a check, 1 MiB of samples took ~100 MB more on a loaded machine).
CLIMBING_SHARE = 1 / 256
#: TCP: while memory is calm the counters are read every this many checks (~0.1 s), so a
#: jump past the limit between two checks is measured from before it began.
CALM_EVERY = 10
#: ``struct tcp_info``: ``tcpi_bytes_received`` is a u64 at this offset (Linux ≥ 4.1).
TCPI_BYTES_RECEIVED = 128


class MemoryBudget:
    """Decides which connection to cut, from the resident memory and per-connection counters.

    Memory below ``baseline + budget/2`` (``watch_share``) is calm. When it first passes that
    level the counters are read and kept (with ``calm_every``: the last calm look's counters,
    from before the climb began); when it passes ``baseline + budget`` the connection whose
    counter grew most since then is cut, if it brought a fair share of the growth. If memory
    is over the limit but no connection brought it (the server's own growth, or freed memory
    the allocator kept), the baseline moves up to the current memory instead: the guard
    never keeps cutting connections for memory they did not bring. When memory falls, the
    baseline follows it down, never below the start-up ``floor``.
    """

    def __init__(
        self,
        budget: int,
        baseline: int,
        min_suspect: int = MIN_SUSPECT_BYTES,
        share: float = SUSPECT_SHARE,
        patient: bool = False,
        watch_share: float = 1 / 2,
        calm_every: int = 0,
    ) -> None:
        self.budget = budget
        self.watch_share = watch_share  #: counters are kept from baseline + this × budget
        #: while calm, also read the counters every this many checks (0: never), so that
        #: memory that jumps past the limit between two checks (a starved guard thread) is
        #: still traced to the connection that brought it
        self.calm_every = calm_every
        self._calm: tuple[int, Mapping[Hashable, int]] | None = None
        self._calm_checks = 0
        self.floor = self.baseline = baseline
        self.min_suspect = min_suspect  #: a connection must have received this much ...
        self.share = share  #: ... and this share of the memory's growth
        #: counters are samples (ipc): while memory still grows and no connection is suspect
        #: yet, keep adding samples instead of moving the baseline
        self.patient = patient
        self.rebaselined = 0  #: times the baseline moved up (memory no connection brought)
        self._before: tuple[int, Mapping[Hashable, int]] | None = None  # (rss, counters)
        self._last_rss = baseline

    @property
    def watching(self) -> bool:
        """True while counters read earlier are kept (memory began to climb)."""
        return self._before is not None

    @property
    def watch_level(self) -> int:
        return self.baseline + int(self.budget * self.watch_share)

    @property
    def limit(self) -> int:
        return self.baseline + self.budget

    def check(self, rss: int, counters: Callable[[], Mapping[Any, int]]) -> list[tuple[Any, int]]:
        """The connections to cut now (at most one), each with the bytes it received since
        memory began to climb; ``counters`` is called only when needed."""
        last, self._last_rss = self._last_rss, rss
        if rss < self.watch_level:
            self._before = None
            self.baseline = max(self.floor, min(self.baseline, rss))
            self._calm_look(rss, counters)
            return []
        now = counters()
        if self._before is None:  # memory began to climb: since the last calm look, or now
            calm, self._calm = self._calm, None
            self._before = calm or (rss, now)
            if calm is None:
                return []
        if rss < self.limit:
            return []
        suspect = self._suspect(rss, now)
        if suspect is None and self.patient and rss - last >= self.budget * GROWING_NOW_SHARE:
            return []  # still growing fast: more samples will show who brings it
        self._before = None
        if suspect is None:
            self.baseline = rss
            self.rebaselined += 1
            return []
        return [suspect]

    def _calm_look(self, rss: int, counters: Callable[[], Mapping[Hashable, int]]) -> None:
        """Every ``calm_every`` calm checks (and the first), keep the counters."""
        if not self.calm_every:
            return
        self._calm_checks += 1
        if self._calm is None or self._calm_checks >= self.calm_every:
            self._calm_checks = 0
            self._calm = (rss, counters())

    def _suspect(self, rss: int, now: Mapping[Hashable, int]) -> tuple[Hashable, int] | None:
        """The connection that brought the growth since the counters were kept, or None."""
        assert self._before is not None
        rss_before, before = self._before
        grown = rss - rss_before
        if grown < self.budget * GROWING_SHARE:
            return None
        received = {k: n - before.get(k, 0) for k, n in now.items()}
        top = max(received, key=received.__getitem__, default=None)
        if top is None or received[top] < max(self.min_suspect, grown * self.share):
            return None
        return top, received[top]

    def cut(self) -> None:
        """A connection was cut: read fresh counters before deciding again."""
        self._before = None


# ---------------------------------------------------------------------------- the thread
@dataclass(frozen=True, slots=True)
class Shot:
    """One connection the guard cut."""

    socket: str  #: "state", "actions" or "control"
    peer: str  #: the peer's address (tcp) or "pid N (uid U)" (ipc)
    received: int  #: tcp: bytes it sent since memory began to climb; ipc: its sampled unread bytes
    rss_mb: float  #: the server's resident memory when it was cut


@dataclass(frozen=True, slots=True)
class _Conn:
    fd: int
    socket: str
    peer: str
    received: int  #: tcp: bytes received so far; ipc: bytes waiting unread now
    sampled: bool  #: True for ipc: ``received`` is a sample, added up by the guard


class MemoryGuard:
    """Runs :class:`MemoryBudget` on a daemon thread; :meth:`take` hands the cuts to the loop."""

    def __init__(self, budget_mb: float, endpoints: Endpoints, every_s: float = CHECK_EVERY_S) -> None:
        self.budget = int(budget_mb * MB)
        self.every_s = every_s
        self.rules: MemoryBudget | None = None
        self._where = _listening_on(endpoints)
        self._sampled = not any(isinstance(k, int) for k in self._where)  # ipc: no counters
        self._queued: dict[int, int] = {}  # ipc: unread bytes added up per connection
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._statm: int | None = None
        self._last_rss = 0
        self._conns: dict[int, _Conn] = {}
        self._shots: list[Shot] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trim = _malloc_trim()
        self._since_trim = 0

    def start(self) -> bool:
        """Take the baseline now and start watching; False (guard off) without /proc."""
        try:
            self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            log.warning(
                "--memory-budget-mb needs Linux (/proc/self/statm): the memory guard "
                "is off; a peer can grow the server's memory with many-frame messages"
            )
            return False
        self.rules = (
            MemoryBudget(
                self.budget,
                self.rss(),
                min_suspect=IPC_MIN_SUSPECT_BYTES,
                share=0,
                patient=True,
                watch_share=SAMPLED_WATCH_SHARE,
            )
            if self._sampled
            else MemoryBudget(self.budget, self.rss(), calm_every=CALM_EVERY)
        )
        self._thread = threading.Thread(target=self._run, name="tickwire-memory-guard", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._statm is not None:
            os.close(self._statm)
            self._statm = None

    def take(self) -> list[Shot]:
        """The connections cut since the last call (called by the server loop)."""
        if not self._shots:
            return []
        with self._lock:
            shots, self._shots = self._shots, []
        return shots

    def rss(self) -> int:
        """This process's resident memory, bytes (one pread: a few µs)."""
        assert self._statm is not None
        return int(os.pread(self._statm, 128, 0).split()[1]) * self._page

    def _run(self) -> None:
        wait = self.every_s
        while not self._stop.wait(wait):
            try:
                climbing = self.check()
            except Exception:  # never let the guard die silently
                log.exception("the memory guard failed; it is off for the rest of the run")
                return
            wait = EXTRA_SAMPLE_GAP_S if climbing and self._sampled else self.every_s

    def check(self) -> bool:
        """One look: read the memory (over the watch level: give freed heap back to the OS
        first, now and then), and cut what the rules say. True while memory is over the watch
        level and still climbing (ipc: sample again at once)."""
        assert self.rules is not None
        rss = self.rss()
        last, self._last_rss = self._last_rss, rss
        self._since_trim += 1
        if rss >= self.rules.watch_level and self._since_trim >= TRIM_EVERY_CHECKS:
            self._since_trim = 0
            self._trim()
            rss = self.rss()
        for inode, received in self.rules.check(rss, self._counters):
            self._cut(inode, received, rss)
        return self.rules.watching and rss - last >= self.budget * CLIMBING_SHARE

    def _counters(self) -> dict[int, int]:
        """{socket inode: counter} of the accepted connections (tcp: bytes received; ipc:
        unread bytes added up over the checks since memory began to climb)."""
        self._conns = _accepted(self._where)
        if self.rules is not None and not self.rules.watching:
            self._queued = {}  # a fresh start: the rules keep no earlier counters
        out = {inode: c.received for inode, c in self._conns.items() if not c.sampled}
        sampled = {inode: c for inode, c in self._conns.items() if c.sampled}
        if sampled:
            unread = {inode: c.received for inode, c in sampled.items()}
            for _ in range(EXTRA_SAMPLES):  # a denser sample while memory is high
                self._stop.wait(EXTRA_SAMPLE_GAP_S)
                for inode, c in sampled.items():
                    unread[inode] += _unread(c.fd)
            for inode, n in unread.items():
                out[inode] = self._queued[inode] = self._queued.get(inode, 0) + n
        return out

    def _cut(self, inode: int, received: int, rss: int) -> None:
        conn = self._conns[inode]
        if not _shutdown(conn.fd, inode):
            return
        assert self.rules is not None
        self.rules.cut()
        self._since_trim = TRIM_EVERY_CHECKS  # trim at the next check
        sent = (
            f"{received / MB:.1f} MB of unread bytes in samples"
            if conn.sampled
            else f"{received / MB:.1f} MB"
        )
        log.warning(
            "memory guard: the server's memory grew to %.0f MB (%.0f MB at start-up or "
            "since, budget %.0f MB); cut the %s connection from %s, which sent %s since "
            "memory began to climb (a message of many frames is held until its last "
            "frame). A stranger: block its address or require keys (--key/--allow); "
            "an honest peer: raise --memory-budget-mb (TICKWIRE_MEMORY_BUDGET_MB)",
            rss / MB,
            self.rules.baseline / MB,
            self.budget / MB,
            conn.socket,
            conn.peer,
            sent,
        )
        with self._lock:
            self._shots.append(Shot(conn.socket, conn.peer, received, round(rss / MB, 1)))


# ---------------------------------------------------------------------------- Linux details
def _listening_on(endpoints: Endpoints) -> dict[int | str, str]:
    """{tcp port or ipc path: socket name} of the three endpoints."""
    out: dict[int | str, str] = {}
    for name in ("state", "actions", "control"):
        addr = getattr(endpoints, name)
        if addr.startswith("tcp://"):
            out[int(addr.rpartition(":")[2])] = name
        elif addr.startswith("ipc://"):
            out[addr[len("ipc://") :]] = name
    return out


def _accepted(where: Mapping[int | str, str]) -> dict[int, _Conn]:
    """{socket inode: connection} of the connections accepted on ``where``, with counters."""
    out: dict[int, _Conn] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:["):
            conn = _inspect(int(name), where)
            if conn is not None:
                out[int(link[8:-1])] = conn
    return out


def _inspect(fd: int, where: Mapping[int | str, str]) -> _Conn | None:
    """The connection on ``fd`` if it was accepted on one of ``where`` and has a counter."""
    try:
        dup = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        if dup.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return None  # a listening socket
        if dup.family in (socket.AF_INET, socket.AF_INET6):
            name = where.get(dup.getsockname()[1])
            if name is None:
                return None
            info = dup.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            if len(info) < TCPI_BYTES_RECEIVED + 8:
                return None
            host, port = dup.getpeername()[:2]
            return _Conn(
                fd, name, f"{host}:{port}", struct.unpack_from("<Q", info, TCPI_BYTES_RECEIVED)[0], False
            )
        if dup.family == socket.AF_UNIX:
            return _inspect_unix(fd, dup, where)
    except OSError:
        return None
    finally:
        dup.close()  # the dup only: libzmq's fd stays open
    return None


def _inspect_unix(fd: int, dup: socket.socket, where: Mapping[int | str, str]) -> _Conn | None:
    """An ipc connection: the bytes waiting unread in it now, and who its peer is."""
    local = dup.getsockname()
    name = where.get(local.decode(errors="replace") if isinstance(local, bytes) else local)
    if name is None:
        return None
    pid, uid, _ = struct.unpack("3i", dup.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return _Conn(fd, name, f"pid {pid} (uid {uid})", _unread(dup.fileno()), True)


def _unread(fd: int) -> int:
    """Bytes waiting unread in socket ``fd`` (0 if it is gone)."""
    try:
        return max(0, struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])
    except OSError:
        return 0


def _shutdown(fd: int, inode: int) -> bool:
    """Shut down the connection on ``fd`` if it is still socket ``inode`` (through a dup)."""
    try:
        dup = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        if os.fstat(dup.fileno()).st_ino != inode:
            return False  # closed and reused meanwhile
        if dup.family != socket.AF_UNIX:  # libzmq's close then resets it: no lingering FIN_WAIT
            dup.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        dup.shutdown(socket.SHUT_RDWR)
        return True
    except OSError:
        return False
    finally:
        dup.close()


def _malloc_trim() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)`` (returns freed heap to the OS), or a no-op elsewhere."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)
