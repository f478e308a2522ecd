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
``TCP_INFO``). ipc (Unix sockets) has no such counter (and ``send`` is not counted in the
peer's ``/proc/PID/io``): there the guard adds up the bytes waiting unread in each
connection's socket (``FIONREAD``), sampled at every check while memory is high: a peer
streaming a huge message usually has some, an honest agent sending one small action per tick
almost never; samples start at a quarter of the budget, follow each other every millisecond
while memory climbs fast (by 1/256 of the budget between two checks), and while memory still
grows fast and no connection showed any, the guard keeps sampling rather than moving the
baseline. That is a sample, not a count: on ipc a cut may come a little later than on TCP.

Cost. A big run's server is over the watch level by itself (1,000 players' roster, queues and
world are tens of MB), so what the guard does while memory is high but steady is what it
costs: it reads the counters again only when memory passes the highest level they were read at
(by 1/256 of the budget) or reaches the limit, never while it is merely high; it lists
``/proc/self/fd`` only then, or when the number of fds changed, and inspects each socket once
(by its inode); on ipc a sample is one ``epoll_wait`` over the connections (an epoll set of
the guard's own) and a ``FIONREAD`` of the few with bytes waiting, taken once per check while
memory is steady and five times (1 ms apart) while it climbs (1/256 of the budget over the
highest level of the second before: ~256 KiB/s) or after a cut; ``malloc_trim`` runs only over
the limit or after a cut. At 1,000 players this took the guard's thread from ~40% of the
server's CPU to ~2-3%.

What it does not do, on purpose: move the baseline, or forget the counters, because memory has
been calm for a while. An attacker would then bring its message in steps, each under the
budget, waiting for the calm between them; the counters kept when memory began to climb stay
until it falls back under the watch level or a decision is made at the limit, so the steps add
up to the connection that brought them (tests: ``test_memory_guard_attacks.py``).
Linux only: elsewhere the guard is off.
"""

from __future__ import annotations

import ctypes
import fcntl
import itertools
import logging
import os
import select
import socket
import struct
import termios
import threading
import time
from collections import deque
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
#: While memory is over the watch level, counters are read again only once it passes the
#: highest level they were read at by this share of the budget (256 KiB at 64 MB): memory that
#: is high but not climbing reads nothing (a big run's server is over the watch level by
#: itself, and reading every connection every 10 ms was ~30% of its CPU at 1,000 players).
CLIMB_SHARE = 1 / 256
#: The guard is busy for this many checks after memory climbed, or after a cut; idle
#: otherwise. Climbing: ``CLIMB_SHARE`` of the budget over the highest memory of the
#: ``CLIMB_WINDOW`` checks before the last ``CLIMB_CHECKS`` (256 KiB in ~1 s at 64 MB), so
#: memory that goes up and down as the allocator takes and gives back pages is not climbing,
#: and a peer bringing its message at more than ~256 KiB/s keeps the guard busy.
BUSY_CHECKS = 100
CLIMB_CHECKS = 100
CLIMB_WINDOW = 100
#: While memory is over the limit, or over the watch level after a cut, freed heap is given
#: back to the OS every this many checks (``malloc_trim``: libzmq frees a cut message's small
#: frames over some time, and freed memory the allocator kept must not move the baseline up).
#: Not otherwise: steady memory has little to give back, and what is given back is faulted in
#: again, which made memory look as if it climbed.
TRIM_EVERY_CHECKS = 10
#: ipc: while memory is over the watch level, the unread bytes are sampled at each check: five
#: times (``EXTRA_SAMPLES``) while the guard is busy, once while it is idle (each sample wakes
#: the thread, and a wake-up costs ~40-120 µs of CPU on a loaded machine). The connections
#: are listed again when their number changed, at most every this many checks.
RELIST_EVERY_CHECKS = 10
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

    Between the watch level and the limit the counters are read again only while memory
    climbs: when it passes the highest level they were read at by ``climb_share`` of the
    budget. Memory that is high but steady reads nothing, and forgets nothing either: the
    counters kept when it began to climb stay until it falls back under the watch level or
    reaches the limit, so memory brought in steps with pauses between them is still traced,
    over all its steps, to the connection that brought it.
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
        climb_share: float = CLIMB_SHARE,
    ) -> None:
        self.budget = budget
        #: while watching, counters are read again only when memory passes the highest level
        #: they were read at by this much (or reaches the limit)
        self.climb_step = int(budget * climb_share)
        self._high = 0
        self.reads = 0  #: times the counters were read (calm looks included)
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
        if self._before is not None and rss < self.limit and rss < self._high + self.climb_step:
            return []  # high, not climbing: the counters kept when it began to climb still hold
        now = self._read(counters)
        if self._before is None:  # memory began to climb: since the last calm look, or now
            calm, self._calm = self._calm, None
            self._before = calm or (rss, now)
            self._high = rss
            if calm is None:
                return []
        self._high = max(self._high, rss)
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
            self._calm = (rss, self._read(counters))

    def _read(self, counters: Callable[[], Mapping[Hashable, int]]) -> Mapping[Hashable, int]:
        self.reads += 1
        return counters()

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
    """An accepted connection on one of the endpoints (what does not change while it lives)."""

    fd: int
    socket: str
    peer: str
    sampled: bool  #: True for ipc: its counter is sampled unread bytes, added up by the guard


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
        self._known = _Connections(self._where)
        self._conns: dict[int, _Conn] = {}
        self._unread: _Unread | None = None  # ipc: the connections in an epoll set, to sample
        self._fds = -1  # open fds when the connections were last listed
        self._since_list = 0  # checks since then
        self._rss = 0  # the memory the rules are deciding on
        self._shots: list[Shot] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trim = _malloc_trim()
        self._since_trim = 0
        self._busy = 0  # checks left before the guard is idle again
        self._trimming = 0  # checks left of trimming after a cut
        self._recent: deque[int] = deque(maxlen=CLIMB_WINDOW + CLIMB_CHECKS)  # memory per check

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
        if self._sampled:
            self._unread = _Unread()
        self._thread = threading.Thread(target=self._run, name="tickwire-memory-guard", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._unread is not None and (self._thread is None or not self._thread.is_alive()):
            self._unread.close()
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
        while not self._stop.is_set():
            time.sleep(wait)  # (a plain sleep: an Event's timed wait costs more CPU per wake-up)
            if self._stop.is_set():
                return
            try:
                climbing = self.check()
            except Exception:  # never let the guard die silently
                log.exception("the memory guard failed; it is off for the rest of the run")
                return
            wait = EXTRA_SAMPLE_GAP_S if climbing and self._sampled else self.every_s

    def check(self) -> bool:
        """One look: read the memory (over the limit, or after a cut: give freed heap back to
        the OS first, now and then), sample the unread bytes (ipc, while watching), and cut
        what the rules say. True while memory is over the watch level and climbs fast (ipc:
        look again at once)."""
        assert self.rules is not None
        rss = self.rss()
        last, self._last_rss = self._last_rss, rss
        self._since_trim += 1
        self._busy = max(0, self._busy - 1)
        self._trimming = max(0, self._trimming - 1)
        if self._recent:  # (in the first second: over the first check's memory)
            older = itertools.islice(self._recent, max(1, len(self._recent) - CLIMB_CHECKS))
            if rss - max(older) >= self.rules.climb_step:
                self._busy = BUSY_CHECKS  # memory climbs
        self._recent.append(rss)
        if (
            rss >= self.rules.limit or (self._trimming and rss >= self.rules.watch_level)
        ) and self._since_trim >= TRIM_EVERY_CHECKS:
            self._since_trim = 0
            self._trim()
            rss = self.rss()
        if self._unread is not None and self.rules.watching:
            self._since_list += 1
            if self._since_list >= RELIST_EVERY_CHECKS and _fd_count() != self._fds:
                self._list()  # a connection came or went: in the epoll set within ~0.1 s
            self._sample(dense=self._busy > 0)
        self._rss = rss
        for inode, received in self.rules.check(rss, self._counters):
            self._cut(inode, received, rss)
        return self.rules.watching and self._busy > 0 and rss - last >= self.budget * CLIMBING_SHARE

    def _counters(self) -> dict[int, int]:
        """{socket inode: counter} of the accepted connections (tcp: bytes received; ipc:
        unread bytes added up over the checks since memory began to climb)."""
        assert self.rules is not None
        fresh = not self.rules.watching
        if fresh:
            self._queued = {}  # a fresh start: the rules keep no earlier counters
        # A calm look (TCP, every ~0.1 s) lists the connections again only if the number of
        # fds changed. One closed and another opened on its fd in between would keep the
        # old socket's inode for the new counter here: harmless, as the counters a decision
        # is made on always come with a fresh listing, where the new socket, absent from this
        # look, counts from zero.
        if not (self._rss < self.rules.watch_level and _fd_count() == self._fds):
            self._list()
        if fresh and self._unread is not None:
            self._sample(dense=True)  # (while watching, each check samples before the rules decide)
        return {
            inode: self._queued.get(inode, 0) if c.sampled else _tcp_received(c.fd)
            for inode, c in self._conns.items()
        }

    def _list(self) -> None:
        self._conns = self._known.list()
        self._fds = _fd_count()
        self._since_list = 0
        if self._unread is not None:
            self._unread.watch(self._conns)

    def _sample(self, dense: bool) -> None:
        """ipc: add up the bytes waiting unread now (``dense``: ``1 + EXTRA_SAMPLES`` times,
        ``EXTRA_SAMPLE_GAP_S`` apart)."""
        assert self._unread is not None
        for i in range(1 + EXTRA_SAMPLES if dense else 1):
            if i:
                time.sleep(EXTRA_SAMPLE_GAP_S)
            for inode, n in self._unread.sample().items():
                self._queued[inode] = self._queued.get(inode, 0) + n

    def _cut(self, inode: int, received: int, rss: int) -> None:
        conn = self._conns[inode]
        if not _shutdown(conn.fd, inode):
            return  # closed meanwhile (the rules read fresh counters, a fresh listing, next)
        assert self.rules is not None
        self.rules.cut()
        self._since_trim = TRIM_EVERY_CHECKS  # trim at the next check ...
        self._busy = self._trimming = BUSY_CHECKS  # ... and now and then for a while
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


class _Connections:
    """The accepted connections on ``where``, from ``/proc/self/fd``: listed again at each
    read (``readlink``: which socket each fd is now), but each socket inspected once (its
    family, addresses and peer: the costly part, ~8 system calls) and then remembered by its
    inode, so a listing of thousands of connections costs one ``readlink`` each."""

    def __init__(self, where: Mapping[int | str, str]) -> None:
        self.where = where
        self._seen: dict[int, tuple[int, _Conn | None]] = {}  # fd: (socket inode, ours or None)

    def list(self) -> dict[int, _Conn]:
        """{socket inode: connection} of the connections accepted on ``where`` now."""
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            return {}
        seen: dict[int, tuple[int, _Conn | None]] = {}
        for name in names:
            try:
                link = os.readlink(f"/proc/self/fd/{name}")
            except OSError:
                continue
            if not link.startswith("socket:["):
                continue
            fd, inode = int(name), int(link[8:-1])
            known = self._seen.get(fd)
            if known is not None and known[0] == inode:  # the same socket as at the last read
                seen[fd] = known
                continue
            try:
                seen[fd] = (inode, _inspect(fd, self.where))
            except OSError:  # gone, or not inspectable now (no fd left to dup): next time
                continue
        self._seen = seen
        return {inode: conn for inode, conn in seen.values() if conn is not None}


def _inspect(fd: int, where: Mapping[int | str, str]) -> _Conn | None:
    """The connection on ``fd`` if it was accepted on one of ``where`` (None: not ours; a
    listening socket, another family or address). OSError if it cannot be told now."""
    dup = socket.socket(fileno=os.dup(fd))
    try:
        if dup.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return None  # a listening socket
        if dup.family in (socket.AF_INET, socket.AF_INET6):
            name = where.get(dup.getsockname()[1])
            if name is None:
                return None
            host, port = dup.getpeername()[:2]
            return _Conn(fd, name, f"{host}:{port}", False)
        if dup.family == socket.AF_UNIX:
            local = dup.getsockname()
            name = where.get(local.decode(errors="replace") if isinstance(local, bytes) else local)
            if name is None:
                return None
            creds = dup.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            pid, uid, _ = struct.unpack("3i", creds)
            return _Conn(fd, name, f"pid {pid} (uid {uid})", True)
        return None
    finally:
        dup.close()  # the dup only: libzmq's fd stays open


class _Unread:
    """ipc: the bytes waiting unread in the accepted connections, sampled cheaply. The
    connections are in an epoll set of the guard's own (level-triggered, read-only: libzmq's
    polling is untouched; a connection libzmq closes leaves the set by itself), so a sample
    is one ``epoll_wait`` that names the few connections with bytes waiting, and a
    ``FIONREAD`` of each of those: an honest connection almost never has any."""

    def __init__(self) -> None:
        self._poll = select.epoll()
        self._fds: dict[int, int] = {}  # fd: socket inode, of the connections in the set

    def watch(self, conns: Mapping[int, _Conn]) -> None:
        """Make the set the sampled connections of ``conns`` ({inode: connection})."""
        fds: dict[int, int] = {}
        for inode, c in conns.items():
            if not c.sampled:
                continue
            if self._fds.get(c.fd) != inode:
                try:
                    self._poll.register(c.fd, select.EPOLLIN)
                except FileExistsError:
                    pass  # this socket is in the set already
                except OSError:
                    continue  # closed meanwhile
            fds[c.fd] = inode
        self._fds = fds

    def sample(self) -> dict[int, int]:
        """{socket inode: bytes waiting unread now} of the connections that have any."""
        out: dict[int, int] = {}
        for fd, _ in self._poll.poll(0):
            inode = self._fds.get(fd)
            if inode is not None:
                n = _unread(fd)
                if n:
                    out[inode] = out.get(inode, 0) + n
        return out

    def close(self) -> None:
        self._poll.close()


def _fd_count() -> int:
    """How many fds this process has open (Linux ≥ 6.2 tells it in one ``stat``)."""
    n = os.stat("/proc/self/fd").st_size
    return n if n > 0 else len(os.listdir("/proc/self/fd"))


def _tcp_received(fd: int) -> int:
    """Bytes TCP connection ``fd`` received so far (``tcpi_bytes_received``; 0 if it is gone)."""
    try:
        dup = socket.socket(fileno=os.dup(fd))
    except OSError:
        return 0
    try:
        info = dup.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return 0
    finally:
        dup.close()  # the dup only: libzmq's fd stays open
    if len(info) < TCPI_BYTES_RECEIVED + 8:
        return 0
    return int(struct.unpack_from("<Q", info, TCPI_BYTES_RECEIVED)[0])


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
