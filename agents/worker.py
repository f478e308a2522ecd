"""A free-running worker for chief/worker data generation (A3C/DPPO style).

A worker produces data at its own pace and ``send``s it to the chief; no lockstep. Each
item carries the worker id and a per-worker sequence number, so the chief can tell who
sent what and notice gaps. When the chief stops, ``worker.stopping`` turns true; the
worker finishes, and ``close()`` (or leaving the ``with`` block) sends FIN with the last
sequence number and waits until the chief confirms it has read that FIN (which travels
behind every item on the same connection): nothing sent is lost.

Why a confirmation and not ZeroMQ's linger: linger only waits until the data is in the
kernel; when a process exits while the chief's receive queue is full, libzmq discards the
messages still queued for that connection (up to its RCVHWM; see libzmq#1922 and #4660).
"""
from __future__ import annotations

import logging
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import zmq
from tickwire.protocol import ProtocolError, TransportError, derive
from tickwire.protocol.work import (
    ALL_TOPIC,
    HEARTBEAT_IVL_MS,
    HEARTBEAT_TIMEOUT_MS,
    WorkAck,
    WorkEnd,
    WorkFin,
    WorkHello,
    WorkItem,
    decode_work,
    encode_work,
)
from zmq.utils.monitor import recv_monitor_message

from .process import die_with_parent

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 60.0  #: how long close() waits for the chief to read everything by default
_FIN_REPEAT_S = 1.0     #: a FIN is re-sent this often while unconfirmed (the chief re-confirms)

TOPIC_PREFIX = b"worker."


def worker_topic(worker_id: int) -> bytes:
    """A worker's own topic: its (un)subscription is how the chief sees it arrive and leave,
    and the chief confirms its FIN there. The trailing dot keeps worker 1 from matching 10."""
    return TOPIC_PREFIX + str(worker_id).encode() + b"."


def parse_worker_topic(topic: bytes) -> int | None:
    """The worker id in a topic made by :func:`worker_topic`, or None."""
    digits = topic[len(TOPIC_PREFIX):-1]
    if topic.startswith(TOPIC_PREFIX) and topic.endswith(b".") and digits.isdigit():
        return int(digits)
    return None


class Worker:
    """One worker's connection to a :class:`server.Chief` at ``connect``."""

    def __init__(self, connect: str, worker_id: int,
                 flush_timeout: float = FLUSH_TIMEOUT_S) -> None:
        eps = derive(connect)
        self._base = connect
        self.id = worker_id
        self.seq = 0
        self.flush_timeout = flush_timeout
        self._stopping = False
        self._acked: int | None = None
        self._ctx = zmq.Context()
        self._push = self._ctx.socket(zmq.PUSH)  # default HWM: a fast producer waits (backpressure)
        self._push.linger = 0  # close() returns only once the chief confirmed everything
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.linger = 0
        self._sub.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)  # notices a vanished chief
        self._sub.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        self._monitor = self._sub.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._link_up = False
        self._sub.subscribe(ALL_TOPIC)
        self._sub.subscribe(worker_topic(worker_id))
        self._sub.connect(eps.state)
        self._push.connect(eps.actions)
        self._push.send_multipart(encode_work(WorkHello(worker_id)))

    def send(self, data: Any, timeout: float = 60.0) -> int:
        """Send one item (any codec value: dicts, lists, numbers, numpy arrays); its seq.

        Waits while the chief is behind (bounded memory, nothing dropped); raises
        :class:`~protocol.TransportError` if the chief takes nothing for ``timeout`` s.
        """
        frames = encode_work(WorkItem(self.id, self.seq + 1, data))
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
            self._read_control()
        return self._stopping

    def _read_control(self) -> None:
        frames = self._sub.recv_multipart()
        try:
            msg = decode_work(frames[1:])
        except ProtocolError as e:
            log.warning("worker %d: ignored a malformed message from the chief: %s", self.id, e)
            return
        if isinstance(msg, WorkEnd):
            self._stopping = True
        elif isinstance(msg, WorkAck) and msg.worker == self.id:
            self._acked = msg.fin

    def wait_stopping(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the chief's stop; a pacing sleep that wakes early."""
        if not self.stopping and self._sub.poll(int(timeout * 1000)):
            return self.stopping
        return self._stopping

    def _chief_connected(self) -> bool:
        """Whether the link to the chief is up, after the monitor events seen so far."""
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            self._link_up = event == zmq.EVENT_CONNECTED
        return self._link_up

    def close(self, error: str | None = None) -> None:
        """Send FIN (last seq, and the error if the worker failed), wait until the chief
        confirms it read it, close. Gives up after ``flush_timeout`` s or once the chief's
        connection drops; what was then still queued may be lost, and the chief reports
        this worker as dead without a FIN."""
        frames = encode_work(WorkFin(self.id, self.seq, error or None))
        deadline = time.monotonic() + self.flush_timeout
        poller = zmq.Poller()
        poller.register(self._sub, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        sent_at = None
        try:
            while self._acked != self.seq:
                now = time.monotonic()
                if now >= deadline:
                    log.warning("worker %d: the chief did not confirm the last %d items within "
                                "%.0f s; some may be lost", self.id, self.seq, self.flush_timeout)
                    return
                if sent_at is None or now - sent_at >= _FIN_REPEAT_S:
                    if self._push.poll(int(min(_FIN_REPEAT_S, deadline - now) * 1e3), zmq.POLLOUT):
                        self._push.send_multipart(frames, zmq.NOBLOCK)
                        sent_at = time.monotonic()
                    continue
                events = dict(poller.poll(int(max(0.0, min(sent_at + _FIN_REPEAT_S, deadline)
                                                  - now) * 1e3) + 1))
                if self._monitor in events and not self._chief_connected():
                    log.warning("worker %d: the chief at %s went away before confirming the "
                                "last items", self.id, self._base)
                    return
                while self._sub in events and self._sub.poll(0):
                    self._read_control()
        finally:
            self._sub.disable_monitor()
            self._monitor.close()
            self._push.close()
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
