"""The chief of free-running workers: one global queue, per-worker accounting, clean drain.

::

    with Chief() as chief:
        chief.spawn(produce, 2)             # produce(worker) runs in 2 processes
        for item in chief.items(limit=10):  # as they come: item.worker, item.seq, item.data
            ...
    # leaving the block: workers are told to stop, everything they sent is drained

``publish_params(params)`` broadcasts the latest parameters (a dict of numpy arrays, say) to
every worker, versioned 1, 2, 3, ...; a worker that subscribes late is sent the newest, and
each item says which version it was produced with (``item.version``).

Items from each worker must arrive with seq 1, 2, 3, ...; a jump is recorded as a gap and
a repeat as a duplicate (dropped). A worker whose process exits or whose connection drops
is reported (``stats()``, a log warning). ``stop()`` publishes END, keeps receiving until
every live worker's FIN (its last seq) is in, and returns what arrived after the consumer
stopped reading.

On the network: ``Chief("tcp://0.0.0.0:5600", key="keys/chief.key_secret", allow="allow")``
lets in only workers whose public key is in ``allow`` (CURVE, as ``tickwire server --key
--allow``); workers it spawns itself get a key of their own, made for this chief. Without
keys a non-loopback address is refused unless ``insecure=True``. Each frame a peer sends is
capped (``max_item_bytes``); refused input is counted in :attr:`Chief.rejections`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
from tickwire.agents.worker import parse_worker_topic, worker_process, worker_topic
from tickwire.plumbing.keys import allowed_keys, load_secret
from tickwire.plumbing.process import reap
from tickwire.protocol import ConfigError, TickwireError
from tickwire.protocol.work import (
    ALL_TOPIC,
    MAX_ITEM_BYTES,
    WorkAck,
    WorkEnd,
    WorkFin,
    WorkHello,
    WorkItem,
    WorkMessage,
    WorkParams,
)

from ..world_server.security import ServerKeys
from .hub import Hub

log = logging.getLogger(__name__)

_END_REPEAT_S = 0.1
#: A worker that exited or unsubscribed may still have its FIN in flight on the data socket
#: (another connection): it is declared dead only if no FIN arrives within this time.
FIN_GRACE_S = 2.0
_DRAIN_BUDGET = 4096


@dataclass(frozen=True)
class Item:
    """One piece of data from one worker, produced with parameter ``version`` (0: none)."""

    worker: int
    seq: int
    data: Any
    version: int = 0


@dataclass
class WorkerStats:
    """One worker as the chief's ledger sees it. Mutable on purpose: the ledger updates it
    as the worker's messages arrive (received, gaps, status)."""

    id: int
    received: int = 0
    last_seq: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  #: (expected, got)
    duplicates: int = 0
    status: str = "running"  #: running, finished, dead
    fin: int | None = None  #: last seq the worker says it sent
    exitcode: int | None = None
    error: str | None = None  #: the worker's traceback, if it failed
    gone_at: float | None = field(default=None, repr=False)  #: departed, silent since then


class Ledger:
    """Sans-IO accounting of the workers: sequence checks, FIN, departures.

    Time is passed in, so the rules are unit-tested without processes or sleeps. A worker
    that exited (or whose link dropped) may still have items and its FIN in flight on the
    data connection, behind a backlog of any length: it is declared dead only after
    ``grace`` seconds in which nothing at all arrived from it.
    """

    def __init__(self, grace: float = FIN_GRACE_S) -> None:
        self.grace = grace
        self.workers: dict[int, WorkerStats] = {}

    def worker(self, wid: int) -> WorkerStats:
        return self.workers.setdefault(wid, WorkerStats(wid))

    def running(self) -> list[int]:
        return [w.id for w in self.workers.values() if w.status == "running"]

    def all_done(self) -> bool:
        return bool(self.workers) and not self.running()

    def on_message(self, msg: WorkHello | WorkItem | WorkFin, now: float) -> Item | None:
        """Account one message from a worker; the item to deliver, if it is a new one."""
        w = self.worker(msg.worker)
        if w.status == "dead" and w.exitcode is None:  # its link dropped, but it is talking
            w.status = "running"
            log.warning("worker %d is back", w.id)
        if w.gone_at is not None:
            # an exited worker's backlog is still draining: the silence clock restarts;
            # a live one talking again after an unsubscribe has its link back
            w.gone_at = now if w.exitcode is not None else None
        if isinstance(msg, WorkItem):
            return self._on_item(w, msg)
        if isinstance(msg, WorkFin):
            w.fin, w.status, w.error, w.gone_at = msg.fin, "finished", msg.error, None
            if w.error:
                log.error("worker %d failed:\n%s", w.id, w.error)
        return None

    @staticmethod
    def _on_item(w: WorkerStats, msg: WorkItem) -> Item | None:
        if msg.seq <= w.last_seq:
            w.duplicates += 1
            return None
        if msg.seq != w.last_seq + 1:
            w.gaps.append((w.last_seq + 1, msg.seq))
            log.warning("worker %d: items %d..%d never arrived", w.id, w.last_seq + 1, msg.seq - 1)
        w.last_seq = msg.seq
        w.received += 1
        return Item(w.id, msg.seq, msg.data, msg.version)

    def on_unsubscribe(self, wid: int, now: float) -> None:
        """The worker's topic went away: it closed, or its link timed out."""
        w = self.workers.get(wid)
        if w is not None and w.status == "running" and w.gone_at is None:
            w.gone_at = now

    def on_exit(self, wid: int, exitcode: int, now: float) -> None:
        """The worker's process ended; a killed one (negative code) cannot send a FIN."""
        w = self.worker(wid)
        w.exitcode = exitcode
        if w.status != "running":
            return
        if exitcode < 0:
            self._mark_dead(w)
        elif w.gone_at is None:
            w.gone_at = now

    def expire(self, now: float) -> None:
        """Declare dead every departed worker silent for longer than the grace period."""
        for w in self.workers.values():
            if w.status == "running" and w.gone_at is not None and now - w.gone_at > self.grace:
                self._mark_dead(w)

    @staticmethod
    def _mark_dead(w: WorkerStats) -> None:
        w.status = "dead"
        log.warning(
            "worker %d is gone (%s) after %d items",
            w.id,
            f"exit code {w.exitcode}" if w.exitcode is not None else "connection lost",
            w.received,
        )


def _snapshot(obj: Any) -> Any:
    """A copy of every numpy array in ``obj`` (through dicts, lists and tuples)."""
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_snapshot(v) for v in obj)
    return obj


def chief_keys(key: str | os.PathLike | None, allow: str | os.PathLike | None) -> ServerKeys | None:
    """The chief's keys from ``key=`` and ``allow=`` (both or neither), or None."""
    if key is None and allow is None:
        return None
    if key is None or allow is None:
        raise ConfigError(
            "Chief: key= and allow= go together: the chief's own secret key file "
            "and a directory of the workers' public *.key files (tickwire keys "
            "new)",
            "key" if key is None else "allow",
        )
    public, secret = load_secret(key, "key=")
    return ServerKeys(public, secret, allowed_keys(allow, "allow="))


class Chief:
    """The chief's end: a :class:`~tickwire.server.work.hub.Hub` (XPUB for END, acknowledgements
    and liveness; PULL for the workers' items), the ledger, and the worker processes."""

    def __init__(
        self,
        address: str | None = None,
        *,
        key: str | os.PathLike | None = None,
        allow: str | os.PathLike | None = None,
        insecure: bool = False,
        max_item_bytes: int = MAX_ITEM_BYTES,
    ) -> None:
        """Bind at ``address`` (default: ipc in a private temp dir). ``key``: the chief's
        secret key file and ``allow``: a directory of the workers' public ``*.key`` files
        (``tickwire keys new``); ``insecure``: bind a non-loopback address without them;
        ``max_item_bytes``: the cap on each frame of an item (header or one array)."""
        self._keys = chief_keys(key, allow)
        self.max_item_bytes = max_item_bytes
        self._hub = Hub(
            address, "chief", heartbeat=True, keys=self._keys, insecure=insecure, max_in_frame=max_item_bytes
        )
        self._spawn_curve: tuple[bytes, bytes, bytes] | None = None
        self.endpoints = self._hub.endpoints
        self._ledger = Ledger()
        self.workers = self._ledger.workers
        self._procs: dict[int, Any] = {}
        self._buffer: deque[Item] = deque()
        self._params: WorkParams | None = None
        self._closed = False

    @property
    def params_version(self) -> int:
        """The version of the last :meth:`publish_params` (0: none yet)."""
        return 0 if self._params is None else self._params.version

    def publish_params(self, params: Any, copy: bool = True) -> int:
        """Publish ``params`` (e.g. a dict of numpy arrays) to every worker; its version.

        One message per version, so a worker holds one whole version or the previous one;
        a worker that subscribes later gets the newest. The arrays travel zero-copy; with
        ``copy`` (default) they are first snapshotted once, so updating them in place right
        after this call cannot change what is still being sent.
        """
        self._params = WorkParams(self.params_version + 1, _snapshot(params) if copy else params)
        self._publish(ALL_TOPIC, self._params)
        return self._params.version

    @property
    def rejected(self) -> int:
        """Refused input in all: messages that were not valid worker messages (dropped) and,
        with keys, failed handshakes."""
        return self._hub.rejected

    @property
    def rejections(self) -> dict[str, int]:
        """Refused input by reason: ``auth_failed`` (a peer without an allowed key), a
        decode error's reason (``malformed``, ...), ``unexpected_kind``."""
        return dict(self._hub.rejections)

    @property
    def address(self) -> str:
        """What a Worker connects to (``Worker(chief.address, worker_id)``)."""
        return self.endpoints.base

    def spawn(
        self, target: Callable[..., Any], n: int, args: tuple = (), first_id: int | None = None
    ) -> list[int]:
        """Start ``n`` processes running ``target(worker, *args)``; return their worker ids."""
        start = first_id if first_id is not None else max(self.workers, default=-1) + 1
        ctx = mp.get_context("spawn")
        ids = list(range(start, start + n))
        for wid in ids:
            self._ledger.worker(wid)
            p = ctx.Process(
                target=worker_process,
                name=f"tickwire-worker-{wid}",
                args=(target, self.address, wid, args, self._curve_for_spawned(), self.max_item_bytes),
            )
            p.start()
            self._procs[wid] = p
        return ids

    def _curve_for_spawned(self) -> tuple[bytes, bytes, bytes] | None:
        """With keys: one key pair for the workers this chief starts itself, allowed here
        and handed to them through the spawn pipe (never written to a file)."""
        if self._keys is None:
            return None
        if self._spawn_curve is None:
            public, secret = zmq.curve_keypair()
            self._hub.allow(public, "spawned")
            self._spawn_curve = (public, secret, self._keys.public)
        return self._spawn_curve

    # ------------------------------------------------------------ receiving
    def recv(self, timeout: float | None = None, expect: int = 0) -> Item | None:
        """The next item from any worker; None after ``timeout`` seconds without one, or
        once every worker has finished or died and everything they sent was read — and, with
        ``expect``, at least that many workers have said hello (workers started elsewhere
        may connect after the spawned ones finished)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            if self._ledger.all_done() and len(self.workers) >= expect:
                return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._pump(100 if left is None else min(100, left * 1e3))
        return self._buffer.popleft()

    def items(
        self, limit: int | None = None, timeout: float | None = None, expect: int = 0
    ) -> Iterator[Item]:
        """Yield items as they arrive, until ``limit`` items, ``timeout`` s without one, or
        the end of every worker (of at least ``expect`` workers: see :meth:`recv`)."""
        count = 0
        while limit is None or count < limit:
            item = self.recv(timeout, expect)
            if item is None:
                return
            count += 1
            yield item

    def _pump(self, timeout_ms: float) -> None:
        has_msg, has_sub = self._hub.poll(timeout_ms)
        if has_msg:
            self._drain_pull()
        if has_sub:
            self._drain_subscriptions()
        self._reap()

    def _drain_pull(self, budget: int | None = _DRAIN_BUDGET) -> None:
        """Read what is queued (at most ``budget`` messages, so END and liveness checks
        keep their turn while workers flood)."""
        for msg in self._hub.messages(budget):
            if not isinstance(msg, (WorkHello, WorkItem, WorkFin)):
                self._hub.reject(
                    "unexpected_kind",
                    f"rejected a {msg.KIND} message on the "
                    "chief's data socket: workers send work.hello, work.item and "
                    "work.fin",
                )
                continue
            item = self._ledger.on_message(msg, time.monotonic())
            if item is not None:
                self._buffer.append(item)
            elif isinstance(msg, WorkFin):  # confirm: the worker may now exit, nothing lost
                self._publish(worker_topic(msg.worker), WorkAck(msg.worker, msg.fin))

    def _publish(self, topic: bytes, msg: WorkMessage) -> None:
        self._hub.publish(topic, msg)  # dropped for a worker not reading: FIN and END repeat

    def _drain_subscriptions(self) -> None:
        for sub in self._hub.subscriptions():
            wid = parse_worker_topic(sub.topic)
            if wid is None:
                continue
            w = self.workers.get(wid)
            if not sub.on:
                self._ledger.on_unsubscribe(wid, time.monotonic())
                continue
            if self._params is not None:  # a late (or reconnected) worker: the newest version
                self._publish(worker_topic(wid), self._params)
            if w is not None and w.fin is not None:  # its FIN beat its subscription here
                self._publish(worker_topic(wid), WorkAck(wid, w.fin))

    def _reap(self) -> None:
        """Note exited worker processes; declare dead those whose FIN never came."""
        now = time.monotonic()
        for wid, p in self._procs.items():
            if self.workers[wid].exitcode is None and p.exitcode is not None:
                self._ledger.on_exit(wid, p.exitcode, now)
        self._ledger.expire(now)

    # ------------------------------------------------------------ stopping
    def stop(self, timeout: float = 30.0) -> list[Item]:
        """Tell every worker to stop, drain until each live one's FIN; return undelivered items."""
        deadline = time.monotonic() + timeout
        last_end = 0.0
        while self._ledger.running():
            now = time.monotonic()
            if now >= deadline:
                late = self._ledger.running()
                raise TickwireError(f"workers {late} did not finish within {timeout} s of END")
            if now - last_end >= _END_REPEAT_S:  # repeated: a worker still subscribing gets it
                self._publish(ALL_TOPIC, WorkEnd())
                last_end = now
            self._pump(min(_END_REPEAT_S, deadline - now) * 1e3)
        self._drain_pull(budget=None)
        for w in self.workers.values():
            if w.status == "finished" and w.fin != w.last_seq:
                log.warning("worker %d said it sent %s items but %d arrived", w.id, w.fin, w.last_seq)
        rest = list(self._buffer)
        self._buffer.clear()
        return rest

    def stats(self) -> dict[int, WorkerStats]:
        """Per-worker accounting (the objects stay current: exit codes appear after close)."""
        return dict(self.workers)

    def pid(self, worker_id: int) -> int | None:
        """The process id of a worker started by :meth:`spawn`."""
        p = self._procs.get(worker_id)
        return None if p is None else p.pid

    def close(self, timeout: float = 10.0) -> None:
        """Stop (if not yet), wait up to ``timeout`` s for the worker processes to exit (still
        confirming FINs), terminate what is left, close sockets."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        try:
            self.stop(timeout=timeout)
            while any(p.is_alive() for p in self._procs.values()) and time.monotonic() < deadline:
                self._pump(50)  # a worker re-sending its FIN is waiting for our confirmation
        except TickwireError as e:
            log.warning("%s; terminating them", e)
        finally:
            for wid, p in self._procs.items():
                reap(p, 0.5)
                self.workers[wid].exitcode = p.exitcode
            self._hub.close()

    def __enter__(self) -> Chief:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
