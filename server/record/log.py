"""The run record (``--record DIR``): an append-only action log plus periodic world checkpoints.

Layout of DIR (one run; every server epoch of it, first and resumed, writes here):

* ``log-EEEEEE.twr`` — one log per epoch. A sequence of frames, each ``<u32 length>
  <u32 CRC32 of the payload> <payload>``; the payload is msgpack (the project codec, numpy
  arrays inline, never pickle). The first frame is the header (``type: "header"``: format,
  protocol and tickwire versions, world spec and name, seed, the run-defining config, run id,
  epoch, ``start_tick``), then one ``type: "tick"`` frame per completed tick: the actions the
  world stepped with (missing ones already filled in), who missed, the state hash after the
  step, and every player's status (``status``: in the epoch's first tick record and whenever
  a status changed; :class:`RunReader` fills it in for every tick), with the players' names
  (``names``, likewise only when one changed), and ``late`` (only when someone was late:
  ``[[player, n], ...]``, the actions for an earlier, closed tick that arrived during this
  one; records written before it existed read as nobody late).
* ``checkpoint-TTTTTTTTTTTT.twc`` — one frame (``type: "checkpoint"``) with the world's
  ``snapshot`` after tick T-1 (T ticks done) and its hash; written to a temp file, fsynced,
  renamed, then the directory is fsynced. The newest :data:`KEEP_CHECKPOINTS` are kept.

Reading follows etcd's WAL decoder: a frame that does not check out in the *last* log is a
torn tail (the writer died mid-write) only if nothing valid comes after it: the bytes after
the bad frame are scanned for a frame whose length and CRC32 check out. A torn tail is
reported and, by ``--resume``, truncated. Anything else (a bad frame with good ones after
it, or any bad frame of an older epoch's log) is damage: reported with its file, its byte
offset and where the next good frame starts, and never truncated — ``--resume`` refuses it.

The log of an epoch is created with its first tick, so a server that never played a tick
(its lobby timed out, it failed or was killed before tick one) leaves no log behind.

* ``tickwire.lock`` — held (``flock``, exclusive) by the one server that writes DIR, for
  the recorder's whole life, and by ``--resume`` from before it reads the record: a second
  ``--record``/``--resume`` on DIR is refused (:class:`RecordLocked`, naming the holder's pid
  and host, which the holder writes into the file) before it changes anything in DIR. The
  kernel drops the lock when its holder dies (kill -9 included); a clean end removes the file.
  ``tickwire replay`` only looks: it reads what is complete and says that DIR is being written.

Each frame is one ``write(2)`` (a killed server loses no complete tick); the log is fsynced
every ``fsync_every`` ticks (0: never), before each checkpoint and at the end, so a machine
crash loses at most the ticks since the last fsync. A failed write or fsync raises
:class:`RecordError` and the recorder refuses further use: an fsync is never retried (after a
failed fsync the kernel may
have dropped the dirty pages, so "retry and go on" can silently lose data).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import mmap
import os
import re
import socket
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tickwire.protocol.codec import decode_payload, encode_payload
from tickwire.protocol.errors import ProtocolError, RecordError, RecordLocked
from tickwire.protocol.messages import VERSION

from ..worlds.snapshot import SNAPSHOT_LIMITS

__all__ = [
    "RecordError",
    "RecordLock",
    "RecordLocked",
    "Recorder",
    "RunReader",
    "TickRecord",
    "read_run",
    "Damage",
    "lock_record",
    "record_holder",
    "refuse_existing_record",
]

log = logging.getLogger(__name__)

FORMAT = "tickwire-record"
FORMAT_VERSION = 1
FRAME_HEADER = struct.Struct("<II")  #: payload length, CRC32 of the payload
#: No frame is larger (a checkpoint of a huge world included); a larger length is damage.
MAX_FRAME_BYTES = 2**31 - 1
KEEP_CHECKPOINTS = 3
LOG_NAME = re.compile(r"^log-(\d{6})\.twr$")
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d{12})\.twc$")
LOCK_NAME = "tickwire.lock"
#: A reader's look (``tickwire replay``) holds the lock shared for a moment: a server that
#: finds only such looks in its way tries again this often, at most this many times.
LOCK_RETRY_S = 0.01
LOCK_RETRIES = 100
#: The ServerConfig fields that define a run: a resumed or replayed run uses the recorded ones.
RUN_FIELDS = ("players", "ticks", "seed", "mode", "deadline_ms", "on_missing", "strikes")


def log_path(directory: str | os.PathLike, epoch: int) -> Path:
    return Path(directory) / f"log-{epoch:06d}.twr"


def checkpoint_path(directory: str | os.PathLike, tick: int) -> Path:
    return Path(directory) / f"checkpoint-{tick:012d}.twc"


# ---------------------------------------------------------------------------- frames
def pack_frame(record: dict[str, Any]) -> bytes:
    """One framed record: length, CRC32, msgpack payload."""
    payload = bytes(encode_payload(record, SNAPSHOT_LIMITS)[0])
    return FRAME_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class Damage:
    """Where reading a file stopped: ``offset`` is the end of its last good frame."""

    file: str
    offset: int
    size: int  #: bytes from ``offset`` to the end of the file (what truncation drops)
    torn: bool  #: a torn tail (the writer died mid-write), not damage inside the file
    reason: str
    #: where the next frame that checks out starts (None: nothing valid follows)
    next_frame: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "offset": self.offset,
            "bytes": self.size,
            "torn": self.torn,
            "reason": self.reason,
            "next_frame": self.next_frame,
        }


def read_frames(path: Path, last: bool) -> tuple[list[dict[str, Any]], Damage | None]:
    """Every good record in ``path`` and, if a frame did not check out, where and why.

    ``last``: this is the newest log, where a bad final frame may be a torn tail."""
    found: list[Damage] = []
    records = list(iter_frames(path, last, found))
    return records, found[0] if found else None


def iter_frames(path: Path, last: bool, damage: list[Damage]) -> Iterator[dict[str, Any]]:
    """:func:`read_frames` one record at a time (a long log is never decoded all at once),
    the file memory-mapped rather than copied into the heap: its pages are the kernel's page
    cache, which it can drop again under memory pressure. The damage, if any, is appended to
    ``damage`` when the iteration stops there."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            off = 0
            while off < len(data):
                record, reason = _frame_at(data, off)
                if record is None:
                    damage.append(_damage(path, data, off, last, reason))
                    return
                yield record
                off += FRAME_HEADER.size + FRAME_HEADER.unpack_from(data, off)[0]


def _damage(path: Path, data: bytes | mmap.mmap, off: int, last: bool, reason: str) -> Damage:
    """The bad frame at ``off``: a torn tail if ``last`` and no good frame follows it (only
    the newest log is scanned: elsewhere, a checkpoint or an older log, any bad frame is
    damage, and a checkpoint may be large)."""
    following = next_good_frame(data, off + 1) if last else None
    return Damage(path.name, off, len(data) - off, last and following is None, reason, following)


def _frame_at(data: bytes | mmap.mmap, off: int) -> tuple[dict[str, Any] | None, str]:
    """(record, "") or (None, why the frame at ``off`` is bad)."""
    left = len(data) - off
    if left < FRAME_HEADER.size:
        return None, f"{left} byte(s) of a frame header"
    length, crc = FRAME_HEADER.unpack_from(data, off)
    if length > left - FRAME_HEADER.size:
        return None, f"a frame of {length} bytes runs past the end of the file"
    start = off + FRAME_HEADER.size
    payload = data[start : start + length]
    if zlib.crc32(payload) != crc:
        return None, "CRC mismatch"
    try:
        record = decode_payload([payload], SNAPSHOT_LIMITS)
    except ProtocolError as e:
        return None, f"undecodable payload: {e}"
    if not isinstance(record, dict):
        return None, "payload is not a map"
    return record, ""


#: The first byte of every record's payload: a msgpack map (fixmap, map16, map32).
_MAP_START = re.compile(rb"[\x80-\x8f\xde\xdf]")


def next_good_frame(data: bytes | mmap.mmap, start: int) -> int | None:
    """The offset of the first frame at or after ``start`` whose length fits in the file and
    whose CRC32 checks out, or None: what tells damage (good records follow) from a torn tail.

    Every byte offset may start a frame (a damaged length hides where the next one starts),
    but every record is a map: only offsets whose payload would begin with a msgpack map
    byte are tried, found by a regular expression in C (zeros and most other bytes are
    skipped at once). A false match needs a 32-bit CRC to agree by chance."""
    view, end, pos = memoryview(data), len(data), start
    try:
        while True:
            found = _MAP_START.search(data, pos + FRAME_HEADER.size)
            if found is None:
                return None
            pos = found.start() - FRAME_HEADER.size
            length, crc = FRAME_HEADER.unpack_from(data, pos)
            body = pos + FRAME_HEADER.size
            if 0 < length <= end - body and zlib.crc32(view[body : body + length]) == crc:
                return pos
            pos += 1
    finally:
        view.release()


def _next_good_frame_in(path: Path, start: int) -> int | None:
    """:func:`next_good_frame` over the file at ``path``."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size <= start:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return next_good_frame(data, start)


# ---------------------------------------------------------------------------- reading
def not_a_directory(directory: Path) -> RecordError:
    """The error for a ``--resume``/``replay`` DIR that is not a directory."""
    return RecordError(f"{directory} is not a directory: give the DIR a `--record DIR` run wrote")


@dataclass(frozen=True)
class TickRecord:
    """One completed tick as recorded: what the replay page and ``tickwire replay`` read."""

    epoch: int
    run: str
    tick: int
    actions: dict[int, Any]  #: the actions the world stepped with, by player id
    missing: frozenset[int]  #: players whose action was filled in (noop or repeat)
    statuses: dict[int, str]  #: every player's status after the tick
    state_hash: str  #: ``World.digest`` of the state after the step
    #: players whose action for an earlier, closed tick arrived during this one (how many)
    late: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)  #: player names (older records: none)


def _tick_record(
    raw: dict[str, Any], header: dict[str, Any], statuses: dict[int, str], names: dict[int, str]
) -> TickRecord:
    late = {int(pid): int(n) for pid, n in raw["late"]} if "late" in raw else {}
    return TickRecord(
        header["epoch"],
        header["run"],
        raw["tick"],
        {int(pid): a for pid, a in raw["actions"]},
        frozenset(raw["missing"]),
        statuses,
        raw["hash"],
        late,
        names,
    )


@dataclass
class RunReader:
    """Reads a record directory: ``headers`` (one per epoch) at once, ticks lazily.

    Iterating :meth:`ticks` fills ``damage`` with the first frame that did not check out
    (the iteration stops there)."""

    directory: Path
    logs: list[Path] = field(default_factory=list)
    headers: list[dict[str, Any]] = field(default_factory=list)
    damage: Damage | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if not self.directory.is_dir():
            raise not_a_directory(self.directory)
        self.logs = record_logs(self.directory)
        if not self.logs:
            raise RecordError(
                f"{self.directory} holds no log-*.twr file: it is not a tickwire record (see --record)"
            )
        headers = [self._header(p, p is self.logs[-1]) for p in list(self.logs)]
        self.headers = [h for h in headers if h is not None]
        if not self.headers:
            raise RecordError(
                f"{self.directory}: no log with a readable header (a server killed "
                "before its first tick was on disk, or not a record): nothing to "
                "resume or replay; record the run again"
            )

    def _header(self, path: Path, last: bool) -> dict[str, Any] | None:
        with open(path, "rb") as f:  # the first frame only: a log may be large
            data = f.read(FRAME_HEADER.size)
            if len(data) == FRAME_HEADER.size:
                data += f.read(FRAME_HEADER.unpack(data)[0])
        record, reason = _frame_at(data, 0) if data else (None, "empty file")
        if record is None or record.get("type") != "header":
            following = _next_good_frame_in(path, 1) if data else None
            if last and following is None:  # died before its header was on disk: drop it
                self.damage = Damage(path.name, 0, path.stat().st_size, True, reason or "no header")
                self.logs.remove(path)
                return None
            why = (reason or "wrong type") + (
                "" if following is None else f"; a good frame follows at byte {following}"
            )
            raise RecordError(
                f"{path}: the first frame is not a good header ({why}): the "
                "record is unusable from this epoch on"
            )
        if record.get("format") != FORMAT or record.get("format_version") != FORMAT_VERSION:
            raise RecordError(
                f"{path}: not a {FORMAT} v{FORMAT_VERSION} file "
                f"(format {record.get('format')!r} v{record.get('format_version')!r})"
            )
        return record

    @property
    def first(self) -> dict[str, Any]:
        return self.headers[0]

    def ticks(self) -> Iterator[TickRecord]:
        """Every recorded tick in order, across epochs; stops at the first bad frame."""
        for i, path in enumerate(self.logs):
            found: list[Damage] = []
            records = iter_frames(path, i == len(self.logs) - 1, found)
            header, statuses, names = next(records), {}, {}
            for raw in records:
                if raw.get("type") == "tick":
                    if "status" in raw:  # written when a status changed
                        statuses = {int(pid): st for pid, st in raw["status"]}
                    if "names" in raw:
                        names = {int(pid): str(n) for pid, n in raw["names"]}
                    yield _tick_record(raw, header, statuses, names)
            if found:
                self.damage = found[0]
                return

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(ticks done, path) of every checkpoint file, newest first."""
        return list_checkpoints(self.directory)


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(ticks done, path) of every checkpoint file in ``directory``, newest first."""
    found = [(int(m.group(1)), p) for p in Path(directory).iterdir() if (m := CHECKPOINT_NAME.match(p.name))]
    return sorted(found, reverse=True)


def read_run(directory: str | os.PathLike) -> Iterator[TickRecord]:
    """Every recorded tick of the run in ``directory``, in order, across resumed epochs.

    The reader API for tools (a replay page, analyses): ``for t in read_run(dir): t.tick,
    t.actions, t.statuses, t.state_hash``. Use :class:`RunReader` for headers and damage."""
    return RunReader(Path(directory)).ticks()


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's record, or RecordError if its frame does not check out."""
    records, damage = read_frames(path, last=False)
    if damage is not None or len(records) != 1 or records[0].get("type") != "checkpoint":
        raise RecordError(
            f"{path}: damaged checkpoint ({damage.reason if damage else 'not one checkpoint frame'})"
        )
    return records[0]


# ---------------------------------------------------------------------------- the lock
def locked(directory: Path, holder: dict[str, Any]) -> RecordLocked:
    """The error for a directory whose lock another live process holds (``holder``: what it
    wrote into the lock file: pid, host, since; empty if not yet)."""
    return RecordLocked(
        f"{directory} is being recorded by another tickwire server ({describe_holder(holder)})"
        ": two servers writing one record would mix their ticks, so this one does not "
        f"touch it (nothing in {directory} was changed). Wait for that server to end or stop "
        "it, then `--resume` the record; or record to another directory. `tickwire replay "
        f"{directory}` reads the ticks it has written so far",
        holder,
    )


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid P on host H, since T`` from a lock file's contents (what is known of it)."""
    if not holder.get("pid"):
        return "it has not written its pid and host into the lock file yet"
    text = f"pid {holder['pid']} on host {holder.get('host', '?')}"
    return text + (f", since {holder['since']}" if holder.get("since") else "")


@dataclass
class _Hold:
    fd: int
    path: Path  #: the lock file
    created: bool  #: DIR did not exist: removed again at the end if still empty
    count: int = 1


#: This process's holds, by the real path of DIR (holds nest: the CLI, the resume, the recorder).
_HELD: dict[str, _Hold] = {}


class RecordLock:
    """This process's hold on a record directory's lock (:func:`lock_record`); a ``with``
    block or :meth:`release` gives it back. The last release of a process unlocks DIR."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._released = False

    def release(self) -> None:
        """Give the hold back; the last one removes the lock file (first: a server starting
        now makes a new one) and unlocks, and removes DIR if this process created it and it
        is still empty."""
        if self._released:
            return
        self._released = True
        hold = _HELD[self._key]
        hold.count -= 1
        if hold.count:
            return
        del _HELD[self._key]
        try:
            hold.path.unlink(missing_ok=True)
            if hold.created:
                hold.path.parent.rmdir()
        except OSError:  # not empty, or read-only: nothing to clean up then
            pass
        finally:
            os.close(hold.fd)

    def __enter__(self) -> RecordLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_record(directory: str | os.PathLike, create: bool = False) -> RecordLock:
    """Lock ``directory`` for this process's server (created first if ``create``).

    RecordLocked if another process holds it: nothing in DIR is changed then. Holds of one
    process nest (the ``tickwire`` command holds DIR for the whole run; the resume and the
    recorder inside it hold it too). The lock is ``flock(2)`` on ``DIR/tickwire.lock``, so
    the kernel drops it when its holder dies, kill -9 included."""
    path = Path(directory)
    if not create and not path.is_dir():
        raise not_a_directory(path)
    try:
        created = create and not path.exists()
        if create:
            path.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(path)
    except OSError as e:
        raise RecordError(
            f"could not create the record directory {directory}: "
            f"{e.strerror or e}; give a directory you can write"
        ) from e
    if key in _HELD:
        _HELD[key].count += 1
        return RecordLock(key)
    _HELD[key] = _Hold(_take(path / LOCK_NAME, path), path / LOCK_NAME, created)
    return RecordLock(key)


def _take(lock: Path, directory: Path) -> int:
    """An open descriptor of ``lock`` holding the exclusive lock, the holder's pid and host
    written into it. A lock file its holder removed while we opened it is opened again; a
    reader's look (a shared lock held for a moment) is waited out, boundedly."""
    for _ in range(LOCK_RETRIES):
        fd = _open_lock(lock, directory)
        try:
            if _try_flock(fd, fcntl.LOCK_EX):
                if _same_file(fd, lock):
                    _write_holder(fd, lock)
                    return fd
            elif not _try_flock(fd, fcntl.LOCK_SH):  # a writer holds it
                raise locked(directory, _holder(fd))
            else:  # only readers looking: gone in a moment
                time.sleep(LOCK_RETRY_S)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise RecordError(
        f"could not lock {directory}: readers kept its lock file busy for "
        f"{LOCK_RETRIES * LOCK_RETRY_S:g} s; try again"
    )


def _open_lock(lock: Path, directory: Path) -> int:
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise RecordError(
            f"could not open the lock file {lock}: {e.strerror or e}; a record "
            "directory must be writable by the server that records to it"
        ) from e


def _try_flock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """``fd`` is still the file at ``path`` (a holder that ended removed it meanwhile?)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


def _write_holder(fd: int, lock: Path) -> None:
    """Who holds the lock, for the message a refused server prints (best effort: a full disk
    must not stop the lock from working)."""
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": _short_argv(),
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
    except OSError as e:
        log.warning(
            "record: could not write the holder into %s: %s (the lock holds anyway)", lock, e.strerror or e
        )


def _short_argv(limit: int = 2048) -> list[str]:
    """The command line (whole, so ``--record DIR`` shows), cut to about ``limit`` characters
    so that the lock file stays within what :func:`_holder` reads."""
    out: list[str] = []
    used = 0
    for arg in sys.argv:
        used += len(arg) + 4
        if used > limit:
            return [*out, "..."]
        out.append(arg)
    return out


def _holder(fd: int) -> dict[str, Any]:
    """What the holder wrote into the lock file ({} if nothing readable yet)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def record_holder(directory: str | os.PathLike) -> dict[str, Any] | None:
    """Who is writing ``directory`` now (the lock file's contents; {} if not written yet),
    or None if nobody is. Only looks: a shared lock for a moment, never waiting."""
    try:
        fd = os.open(Path(directory) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file: nobody has held it since the last clean end
    try:
        return None if _try_flock(fd, fcntl.LOCK_SH) else _holder(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- writing
def record_logs(directory: str | os.PathLike) -> list[Path]:
    """The record's epoch logs (``log-NNNNNN.twr``) in ``directory``, in order; none if it is
    not a directory. A directory holds a record if and only if this is not empty."""
    path = Path(directory)
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if LOG_NAME.match(p.name))


def refuse_existing_record(directory: str | os.PathLike) -> None:
    """RecordError if ``directory`` already holds a record (a new ``--record`` run would mix
    two runs): the one such check, made by ``tickwire run|server`` before a socket or an
    agent, by ``tickwire run``'s launcher and by the server before it records."""
    if record_logs(directory):
        raise RecordError(
            f"--record {directory} already holds a record: continue it with "
            "--resume, or record to a new directory"
        )


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Recorder:
    """Writes one epoch's log and the checkpoints; the server loop calls :meth:`tick` once
    per completed tick and :meth:`close` at the end. Every I/O error becomes RecordError."""

    def __init__(
        self,
        directory: str | os.PathLike,
        header: dict[str, Any],
        world: Any,
        fsync_every: int,
        checkpoint_every: int,
    ) -> None:
        self.directory = Path(directory)
        self.world = world
        self.fsync_every = fsync_every
        self.checkpoint_every = checkpoint_every
        self.epoch = int(header["epoch"])
        self.path = log_path(self.directory, self.epoch)
        self.ticks = 0
        self.fsyncs = 0
        self._unsynced = 0
        self._statuses: dict[int, str] | None = None
        self._names: dict[int, str] | None = None
        self._failed: str | None = None
        self._file: BinaryIO | None = None
        self._header = pack_frame(
            {**header, "type": "header", "format": FORMAT, "format_version": FORMAT_VERSION}
        )
        #: held until :meth:`close`: no other server writes DIR meanwhile
        self._lock: RecordLock | None = lock_record(self.directory, create=True)
        try:
            self._io("prepare the record directory", self._prepare)
        except BaseException:
            self._release()
            raise

    def _prepare(self) -> None:
        """Check now what the first tick needs (the directory, a free log name), so a bad
        DIR fails before the lobby; the log itself is created with the first tick."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("checkpoint-*.tmp"):  # a server killed mid-checkpoint
            log.info("record: removing %s, a checkpoint that was never completed", stale.name)
            stale.unlink()
        if self.path.exists():
            raise FileExistsError(errno.EEXIST, "the epoch's log already exists", str(self.path))
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self.directory))

    def _create(self) -> None:
        """The epoch's log with its header: written with the first tick, so an epoch that
        never played (lobby timeout, a failure before tick one) leaves no empty log."""
        self._file = open(self.path, "xb", buffering=0)  # noqa: SIM115 (closed in close())
        self._write(self._header)
        self._sync()
        if self.fsync_every:
            fsync_directory(self.directory)

    def _io(self, what: str, fn: Any, *args: Any) -> Any:
        if self._failed:
            raise RecordError(f"the record in {self.directory} already failed ({self._failed})")
        try:
            return fn(*args)
        except OSError as e:
            self._failed = f"{what}: {e}"
            raise RecordError(
                f"could not {what} in {self.directory}: {e.strerror or e} "
                f"({type(e).__name__}, errno {e.errno}); the run stops here — "
                "free disk space or fix the device, then `tickwire server --resume "
                f"{self.directory}` continues from the last good tick"
            ) from e

    def _sync(self) -> None:
        assert self._file is not None
        self._file.flush()
        if self.fsync_every:
            os.fsync(self._file.fileno())
            self.fsyncs += 1
        self._unsynced = 0

    # ------------------------------------------------------------------ per tick
    def tick(
        self,
        tick: int,
        actions: dict[int, Any],
        missing: frozenset[int],
        statuses: dict[int, str] | None,
        state: Any,
        late: dict[int, int] | None = None,
        names: dict[int, str] | None = None,
    ) -> None:
        """Append tick ``tick`` (just stepped into ``state``); fsync / checkpoint when due.

        ``statuses`` and ``names`` (by player id) may be None: unchanged since the last call
        (the loop passes them only when the roster changed, so a quiet tick costs no dict)."""
        record = {
            "type": "tick",
            "tick": tick,
            "actions": list(actions.items()),
            "missing": sorted(missing),
            "hash": self.world.digest(state),
        }
        if statuses is not None and statuses != self._statuses:  # the reader carries them on
            self._statuses = dict(statuses)
            record["status"] = list(statuses.items())
        if names is not None and names != self._names:
            self._names = dict(names)
            record["names"] = list(names.items())
        if late:
            record["late"] = sorted(late.items())
        frame = pack_frame(record)
        if self._file is None:
            self._io("create the log", self._create)
        self._io("write or fsync the log", self._append, frame)
        done = tick + 1
        if self.checkpoint_every and done % self.checkpoint_every == 0:
            self.checkpoint(done, state)

    def _write(self, frame: bytes) -> None:
        """One write(2) per frame, no user-space buffer: a killed server loses no complete
        tick (the kernel has it); only a machine crash can lose the ticks since the last fsync."""
        assert self._file is not None
        view = memoryview(frame)
        while view:
            view = view[self._file.write(view) :]

    def _append(self, frame: bytes) -> None:
        self._write(frame)
        self.ticks += 1
        self._unsynced += 1
        if self.fsync_every and self._unsynced >= self.fsync_every:
            self._sync()

    def checkpoint(self, done: int, state: Any) -> None:
        """Save the world after ``done`` ticks (the log is synced first, so it never lags)."""
        frame = pack_frame(
            {
                "type": "checkpoint",
                "tick": done,
                "epoch": self.epoch,
                "hash": self.world.digest(state),
                "state": self.world.snapshot(state),
            }
        )
        self._io("sync the log", self._sync)
        self._io("write a checkpoint", self._write_checkpoint, done, frame)

    def _write_checkpoint(self, done: int, frame: bytes) -> None:
        path = checkpoint_path(self.directory, done)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(frame)
            f.flush()
            if self.fsync_every:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if self.fsync_every:
            fsync_directory(self.directory)
        for _, old in list_checkpoints(self.directory)[KEEP_CHECKPOINTS:]:
            old.unlink(missing_ok=True)

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Flush and fsync what is left (unless an earlier write failed), close the log and
        release DIR's lock."""
        f, self._file = self._file, None
        try:
            if f is not None and not self._failed:
                self._io("sync the log", self._sync_file, f)
        finally:
            try:
                if f is not None:
                    f.close()
            except OSError:  # the buffer could not be written: already reported, or it is now
                if not self._failed:
                    raise
            finally:
                self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _sync_file(self, f: BinaryIO) -> None:
        self._file = f
        try:
            self._sync()
        finally:
            self._file = None

    def summary(self) -> dict[str, Any]:
        return {
            "dir": str(self.directory),
            "epoch": self.epoch,
            "ticks": self.ticks,
            "fsyncs": self.fsyncs,
            "fsync_every": self.fsync_every,
            "checkpoint_every": self.checkpoint_every,
        }


def run_header(
    world: Any,
    world_spec: str,
    config: Any,
    run_id: str,
    epoch: int,
    start_tick: int = 0,
    previous_run: str | None = None,
) -> dict[str, Any]:
    """The header of one epoch's log: enough to rebuild the world and replay the run."""
    from tickwire import __version__

    return {
        "protocol": VERSION,
        "tickwire": __version__,
        "world": world_spec,
        "world_name": type(world).__name__,
        "seed": config.seed,
        "players": config.players,
        "config": {name: getattr(config, name) for name in RUN_FIELDS},
        "run": run_id,
        "epoch": epoch,
        "start_tick": start_tick,
        "previous_run": previous_run,
    }


def world_spec_of(world: Any) -> str:
    """``module:Class`` of a world object (what ``--world`` would name)."""
    cls = type(world)
    return f"{cls.__module__}:{cls.__qualname__}"
