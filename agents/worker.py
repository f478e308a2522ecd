"""A free-running worker for chief/worker data generation (A3C/DPPO style).

A worker produces data at its own pace and ``send``s it to the chief; no lockstep. Each
item carries the worker id and a per-worker sequence number, so the chief can tell who
sent what and notice gaps. When the chief stops, ``worker.stopping`` turns true; the
worker finishes, and ``close()`` (or leaving the ``with`` block) sends FIN with the last
sequence number and flushes everything before the process exits: nothing sent is lost.
"""
from __future__ import annotations

import logging
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

import zmq

from protocol import TransportError, decode_payload, derive, encode_payload

from .process import die_with_parent

log = logging.getLogger(__name__)

FLUSH_LINGER_MS = 10_000  #: how long close() may take to hand queued items to the chief


TOPIC_PREFIX = b"worker."


def worker_topic(worker_id: int) -> bytes:
    """The topic a worker subscribes to: its arrival/departure is how the chief sees it."""
    return TOPIC_PREFIX + str(worker_id).encode()


class Worker:
    """One worker's connection to a :class:`server.Chief` at ``connect``."""

    def __init__(self, connect: str, worker_id: int) -> None:
        eps = derive(connect)
        self._base = connect
        self.id = worker_id
        self.seq = 0
        self._stopping = False
        self._ctx = zmq.Context()
        self._push = self._ctx.socket(zmq.PUSH)
        self._push.linger = FLUSH_LINGER_MS  # default HWM: a fast producer waits (backpressure)
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.linger = 0
        self._sub.subscribe(b"")
        self._sub.subscribe(worker_topic(worker_id))
        self._sub.connect(eps.state)
        self._push.connect(eps.actions)
        self._push.send_multipart(encode_payload({"w": worker_id, "hello": True}))

    def send(self, data: Any, timeout: float = 60.0) -> int:
        """Send one item (any codec value: dicts, lists, numbers, numpy arrays); its seq.

        Waits while the chief is behind (bounded memory, nothing dropped); raises
        :class:`~protocol.TransportError` if the chief takes nothing for ``timeout`` s.
        """
        frames = encode_payload({"w": self.id, "seq": self.seq + 1, "data": data})
        if not self._push.poll(int(timeout * 1000), zmq.POLLOUT):
            raise TransportError(f"worker {self.id}: the chief at {self._base} accepted nothing "
                                 f"for {timeout:.0f} s; is it still running?")
        self._push.send_multipart(frames, copy=False)
        self.seq += 1
        return self.seq

    @property
    def stopping(self) -> bool:
        """True once the chief has asked the workers to stop (checked without blocking)."""
        while not self._stopping and self._sub.poll(0):
            if decode_payload(self._sub.recv_multipart()).get("end"):
                self._stopping = True
        return self._stopping

    def wait_stopping(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the chief's stop; a pacing sleep that wakes early."""
        if not self.stopping and self._sub.poll(int(timeout * 1000)):
            return self.stopping
        return self._stopping

    def close(self, error: str | None = None) -> None:
        """Send FIN (last seq, and the error if the worker failed), flush, close."""
        fin: dict[str, Any] = {"w": self.id, "fin": self.seq}
        if error:
            fin["error"] = error
        self._push.send_multipart(encode_payload(fin))
        self._push.close()  # blocks up to FLUSH_LINGER_MS until everything is handed over
        self._sub.close()
        self._ctx.term()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(None if exc is None else "".join(traceback.format_exception(exc_type, exc, tb)))


def worker_process(target: Callable[..., Any], connect: str, worker_id: int, args: tuple) -> None:
    """Entry point of a spawned worker: ``target(worker, *args)`` inside a Worker."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the chief decides when to stop
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with Worker(connect, worker_id) as worker:
        target(worker, *args)
