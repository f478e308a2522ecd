"""The chief of free-running workers: one global queue, per-worker accounting, clean drain.

::

    with Chief() as chief:
        chief.spawn(produce, 2)             # produce(worker) runs in 2 processes
        for item in chief.items(limit=10):  # as they come: item.worker, item.seq, item.data
            ...
    # leaving the block: workers are told to stop, everything they sent is drained

Items from each worker must arrive with seq 1, 2, 3, ...; a jump is recorded as a gap and
a repeat as a duplicate (dropped). A worker whose process exits or whose connection drops
is reported (``stats()``, a log warning). ``stop()`` publishes END, keeps receiving until
every live worker's FIN (its last seq) is in, and returns what arrived after the consumer
stopped reading.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import zmq

from agents.process import reap
from agents.worker import TOPIC_PREFIX, worker_process
from protocol import ProtocolError, TickwireError, decode_payload, derive, encode_payload

log = logging.getLogger(__name__)

_END_REPEAT_S = 0.1
#: A worker that exited or unsubscribed may still have its FIN in flight on the data socket
#: (another connection): it is declared dead only if no FIN arrives within this time.
FIN_GRACE_S = 2.0


@dataclass(frozen=True)
class Item:
    """One piece of data from one worker."""
    worker: int
    seq: int
    data: Any


@dataclass
class WorkerStats:
    id: int
    received: int = 0
    last_seq: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  #: (expected, got)
    duplicates: int = 0
    status: str = "running"     #: running, finished, dead
    fin: int | None = None      #: last seq the worker says it sent
    exitcode: int | None = None
    error: str | None = None    #: the worker's traceback, if it failed
    gone_at: float | None = field(default=None, repr=False)  #: exit/unsubscribe seen, no FIN yet


class Chief:
    """Binds a PULL socket for data and an XPUB socket for END and liveness."""

    def __init__(self, address: str | None = None) -> None:
        self._tmp = None if address else tempfile.mkdtemp(prefix="twchief-")
        self.endpoints = derive(address or f"ipc://{self._tmp}/chief")
        self._ctx = zmq.Context()
        self._pub = self._ctx.socket(zmq.XPUB)
        self._pull = self._ctx.socket(zmq.PULL)
        for s in (self._pub, self._pull):
            s.linger = 0
        self._pub.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        self._pub.setsockopt(zmq.HEARTBEAT_TIMEOUT, 4000)
        self._pub.bind(self.endpoints.state)
        self._pull.bind(self.endpoints.actions)
        self._poller = zmq.Poller()
        self._poller.register(self._pull, zmq.POLLIN)
        self._poller.register(self._pub, zmq.POLLIN)
        self.workers: dict[int, WorkerStats] = {}
        self._procs: dict[int, Any] = {}
        self._buffer: deque[Item] = deque()
        self.rejected = 0
        self._closed = False

    @property
    def address(self) -> str:
        """What a Worker connects to (``Worker(chief.address, worker_id)``)."""
        return self.endpoints.base

    def spawn(self, target: Callable[..., Any], n: int, args: tuple = (),
              first_id: int | None = None) -> list[int]:
        """Start ``n`` processes running ``target(worker, *args)``; return their worker ids."""
        start = first_id if first_id is not None else max(self.workers, default=-1) + 1
        ctx = mp.get_context("spawn")
        ids = list(range(start, start + n))
        for wid in ids:
            self.workers.setdefault(wid, WorkerStats(wid))
            p = ctx.Process(target=worker_process, name=f"tickwire-worker-{wid}",
                            args=(target, self.address, wid, args))
            p.start()
            self._procs[wid] = p
        return ids

    # ------------------------------------------------------------ receiving
    def recv(self, timeout: float | None = None) -> Item | None:
        """The next item from any worker; None after ``timeout`` seconds without one, or
        once every worker has finished or died and everything they sent was read."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            if self._all_done():
                return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._pump(100 if left is None else min(100, left * 1e3))
        return self._buffer.popleft()

    def items(self, limit: int | None = None, timeout: float | None = None) -> Iterator[Item]:
        """Yield items as they arrive, until ``limit`` items, ``timeout`` s without one, or
        the end of every worker."""
        count = 0
        while limit is None or count < limit:
            item = self.recv(timeout)
            if item is None:
                return
            count += 1
            yield item

    def _all_done(self) -> bool:
        return bool(self.workers) and all(w.status != "running" for w in self.workers.values())

    def _pump(self, timeout_ms: float) -> None:
        events = dict(self._poller.poll(max(0, int(timeout_ms))))
        if self._pull in events:
            self._drain_pull()
        if self._pub in events:
            self._drain_subscriptions()
        self._reap()

    def _drain_pull(self) -> None:
        while True:
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                msg = decode_payload(frames)
                if not isinstance(msg, dict) or type(msg.get("w")) is not int:
                    raise ProtocolError("malformed", "worker messages are maps with an int 'w'")
                wid = msg["w"]
            except ProtocolError as e:
                self.rejected += 1
                log.warning("rejected a message on the chief's data socket: %s", e)
                continue
            self._on_message(self.workers.setdefault(wid, WorkerStats(wid)), msg)

    def _on_message(self, w: WorkerStats, msg: dict) -> None:
        if w.status == "dead" and w.exitcode is None:  # its link dropped, but it is talking
            w.status = "running"
            log.warning("worker %d is back", w.id)
        if w.exitcode is None:  # talking again after an unsubscribe: the link came back
            w.gone_at = None
        if "seq" in msg:
            seq = msg["seq"]
            if seq <= w.last_seq:
                w.duplicates += 1
                return
            if seq != w.last_seq + 1:
                w.gaps.append((w.last_seq + 1, seq))
                log.warning("worker %d: items %d..%d never arrived", w.id, w.last_seq + 1, seq - 1)
            w.last_seq = seq
            w.received += 1
            self._buffer.append(Item(w.id, seq, msg.get("data")))
        elif "fin" in msg:
            w.fin, w.status, w.error = msg["fin"], "finished", msg.get("error")
            if w.error:
                log.error("worker %d failed:\n%s", w.id, w.error)

    def _drain_subscriptions(self) -> None:
        while self._pub.poll(0):
            event = self._pub.recv()
            if event[:1] == b"\x00" and event[1:].startswith(TOPIC_PREFIX):
                w = self.workers.get(int(event[1 + len(TOPIC_PREFIX):]))
                if w is not None and w.status == "running" and w.gone_at is None:
                    w.gone_at = time.monotonic()

    def _reap(self) -> None:
        """Note exited worker processes; declare dead those whose FIN never came."""
        now = time.monotonic()
        for wid, p in self._procs.items():
            w = self.workers[wid]
            if w.exitcode is None and p.exitcode is not None:
                w.exitcode = p.exitcode
                if w.status == "running" and w.gone_at is None:
                    w.gone_at = now
                if w.status == "running" and p.exitcode < 0:  # killed: no FIN can follow
                    self._mark_dead(w)
        for w in self.workers.values():
            if w.status == "running" and w.gone_at is not None and now - w.gone_at > FIN_GRACE_S:
                self._mark_dead(w)

    def _mark_dead(self, w: WorkerStats) -> None:
        w.status = "dead"
        log.warning("worker %d is gone (%s) after %d items", w.id,
                    f"exit code {w.exitcode}" if w.exitcode is not None else "connection lost",
                    w.received)

    # ------------------------------------------------------------ stopping
    def stop(self, timeout: float = 30.0) -> list[Item]:
        """Tell every worker to stop, drain until each live one's FIN; return undelivered items."""
        deadline = time.monotonic() + timeout
        last_end = 0.0
        while any(w.status == "running" for w in self.workers.values()):
            now = time.monotonic()
            if now >= deadline:
                late = [w.id for w in self.workers.values() if w.status == "running"]
                raise TickwireError(f"workers {late} did not finish within {timeout} s of END")
            if now - last_end >= _END_REPEAT_S:  # repeated: a worker still subscribing gets it
                self._pub.send_multipart(encode_payload({"end": True}))
                last_end = now
            self._pump(min(_END_REPEAT_S, deadline - now) * 1e3)
        self._drain_pull()
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

    def close(self) -> None:
        """Stop (if not yet), reap every worker process, close sockets."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop(timeout=10.0)
        except TickwireError as e:
            log.warning("%s; terminating them", e)
        finally:
            for wid, p in self._procs.items():
                reap(p, 2.0)
                self.workers[wid].exitcode = p.exitcode
            self._ctx.destroy(linger=0)
            if self._tmp:
                shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Chief:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
