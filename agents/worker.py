"""A free-running worker for chief/worker data generation (A3C/DPPO style).

A worker produces data at its own pace and ``send``s it to the chief; no lockstep. Each
item carries the worker id and a per-worker sequence number, so the chief can tell who
sent what and notice gaps. When the chief stops, ``worker.stopping`` turns true; the
worker finishes, and ``close()`` (or leaving the ``with`` block) sends FIN with the last
sequence number and waits until the chief confirms it has read that FIN (which travels
behind every item on the same connection): nothing sent is lost.

The chief may publish parameters (``Chief.publish_params``): the worker keeps the newest
version it has seen (``params``, ``params_version``) and stamps each item with it. A worker
whose chief is gone (its connection dropped and stayed down) stops waiting: ``send`` raises,
``stopping`` turns true, ``close`` returns.

A chief with keys (``Chief(key=..., allow=...)``) lets in only workers with an allowed key:
``Worker(connect, id, key="keys/NAME.key_secret", server_key="keys/chief.key")``; a worker
whose handshakes fail (keys refused, missing or wrong) raises from ``send`` with what to
check instead of queueing into the void, and ``close`` does not wait for it. An item
with a frame over the chief's cap (``max_item_bytes``, default
:data:`~protocol.work.MAX_ITEM_BYTES`) is refused by ``send`` before it is sent: the chief
would cut the connection and lose it.

Why a confirmation and not ZeroMQ's linger: linger only waits until the data is in the
kernel; when a process exits while the chief's receive queue is full, libzmq discards the
messages still queued for that connection (up to its RCVHWM; see libzmq#1922 and #4660).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import zmq
from tickwire.plumbing.keys import HANDSHAKE_FAILED, client_keys
from tickwire.plumbing.process import die_with_parent
from tickwire.plumbing.sockets import open_socket
from tickwire.protocol import ConfigError, ProtocolError, TransportError, derive
from tickwire.protocol.work import (
    ALL_TOPIC,
    CHIEF_GONE_S,
    HEARTBEAT_IVL_MS,
    HEARTBEAT_TIMEOUT_MS,
    MAX_ITEM_BYTES,
    WorkAck,
    WorkEnd,
    WorkFin,
    WorkHello,
    WorkItem,
    WorkParams,
    decode_work,
    encode_work,
)
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 60.0  #: how long close() waits for the chief to read everything by default
_FIN_REPEAT_S = 1.0  #: a FIN is re-sent this often while unconfirmed (the chief re-confirms)

TOPIC_PREFIX = b"worker."
#: Failed handshakes (and no success) after which a worker takes its keys for refused.
REFUSED_AFTER = 3
#: Failures after which libzmq gives the connection up (it retries the others).
FINAL_FAILURES = {"HANDSHAKE_FAILED_AUTH", "HANDSHAKE_FAILED_PROTOCOL"}


def worker_topic(worker_id: int) -> bytes:
    """A worker's own topic: its (un)subscription is how the chief sees it arrive and leave,
    and the chief confirms its FIN there. The trailing dot keeps worker 1 from matching 10."""
    return TOPIC_PREFIX + str(worker_id).encode() + b"."


def parse_worker_topic(topic: bytes) -> int | None:
    """The worker id in a topic made by :func:`worker_topic`, or None."""
    digits = topic[len(TOPIC_PREFIX) : -1]
    if topic.startswith(TOPIC_PREFIX) and topic.endswith(b".") and digits.isdigit():
        return int(digits)
    return None


class Worker:
    """One worker's connection to a :class:`server.Chief` at ``connect``.

    ``params`` / ``params_version`` hold the newest parameters the chief published (None / 0
    before the first); they are refreshed by :meth:`poll_params`, :meth:`wait_params` and
    after every :meth:`send`, never behind the caller's back inside its own code.
    """

    def __init__(
        self,
        connect: str,
        worker_id: int,
        flush_timeout: float = FLUSH_TIMEOUT_S,
        *,
        key: str | os.PathLike | None = None,
        server_key: str | os.PathLike | None = None,
        curve: tuple[bytes, bytes, bytes] | None = None,
        max_item_bytes: int = MAX_ITEM_BYTES,
    ) -> None:
        """``key`` (this worker's secret key file) and ``server_key`` (the chief's public key
        file) for a chief with keys; ``curve``: the same keys already loaded (public, secret,
        chief's public), as the chief hands them to the workers it spawns."""
        eps = derive(connect)
        self._base = connect
        self.curve = curve or client_keys(key, server_key, "key=", "server_key=")
        self.max_item_bytes = max_item_bytes
        self.id = worker_id
        self.seq = 0
        self.flush_timeout = flush_timeout
        self.params: Any = None
        self.params_version = 0
        self._stopping = False
        self._acked: int | None = None
        self._ctx = zmq.Context()
        # linger 0: close() returns only once the chief confirmed everything; the PUSH keeps
        # the default HWM (a fast producer waits: backpressure); heartbeats on the SUB notice
        # a vanished chief
        self._push = open_socket(self._ctx, zmq.PUSH, linger_ms=0, curve=self.curve)
        self._sub = open_socket(
            self._ctx,
            zmq.SUB,
            linger_ms=0,
            heartbeat_ms=(HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS),
            curve=self.curve,
        )
        # up = the ZMTP handshake succeeded (a frozen chief still accepts TCP/ipc connections)
        self._monitor = self._sub.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | HANDSHAKE_FAILED
        )
        self._link_up = False
        self._failed: list[str] = []  #: handshakes failed in a row (keys refused or missing)
        self._down_since: float | None = None  #: when a link that was up dropped
        # a worker dropped without close() (an exception, a failed test) must not hang the
        # garbage collector: a context with a live monitor never finishes terminating
        self._release = weakref.finalize(self, _release, self._ctx, (self._monitor, self._push, self._sub))
        self._sub.subscribe(ALL_TOPIC)
        self._sub.subscribe(worker_topic(worker_id))
        self._sub.connect(eps.state)
        self._push.connect(eps.actions)
        self._push.send_multipart(encode_work(WorkHello(worker_id)))

    def send(self, data: Any, timeout: float = 60.0, version: int | None = None) -> int:
        """Send one item (any codec value: dicts, lists, numbers, numpy arrays); its seq.

        The item carries ``version`` (default: :attr:`params_version`, the parameters this
        data was produced with); afterwards the newest published parameters are picked up.
        Waits while the chief is behind (bounded memory, nothing dropped); raises
        :class:`~protocol.TransportError` if the chief takes nothing for ``timeout`` s or
        its connection drops for good (:data:`~protocol.work.CHIEF_GONE_S`).
        """
        v = self.params_version if version is None else version
        frames = encode_work(WorkItem(self.id, self.seq + 1, data, v))
        self._check_size(frames)
        self._raise_if_refused()
        self._wait_writable(timeout)
        self._push.send_multipart(frames, copy=False)
        self.seq += 1
        self.poll_params()
        return self.seq

    def _check_size(self, frames: list) -> None:
        """Refuse an item the chief would cut the connection for (nothing is sent)."""
        size = max(memoryview(f).nbytes for f in frames)
        if size > self.max_item_bytes:
            raise ConfigError(
                f"worker {self.id}: item {self.seq + 1} has a frame of {size} "
                f"bytes, over the chief's cap of {self.max_item_bytes} (each "
                "array and the rest of the item count apart): send it in parts, "
                "or raise Chief(max_item_bytes=...) and Worker(max_item_bytes=...)",
                "max_item_bytes",
            )

    def _wait_writable(self, timeout: float) -> None:
        """Wait until the chief's queue takes a message; raise if it never will."""
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(self._push, zmq.POLLOUT)
        poller.register(self._monitor, zmq.POLLIN)
        while not self._push.poll(0, zmq.POLLOUT):
            self._raise_if_refused()
            if self.chief_gone:
                raise TransportError(
                    f"worker {self.id}: the chief at {self._base} is gone (its "
                    f"connection dropped and did not come back within "
                    f"{CHIEF_GONE_S:.0f} s); item {self.seq + 1} was not sent"
                )
            now = time.monotonic()
            if now >= deadline:
                raise TransportError(
                    f"worker {self.id}: the chief at {self._base} accepted "
                    f"nothing for {timeout:.0f} s; is it still running?" + self._key_hint()
                )
            poller.poll(self._ms_until(deadline, now))

    def _ms_until(self, deadline: float, now: float) -> int:
        """Milliseconds to wait: until ``deadline``, or until a dropped link counts as gone."""
        if self._down_since is not None:
            deadline = min(deadline, self._down_since + CHIEF_GONE_S)
        return max(0, int((deadline - now) * 1e3)) + 1

    def _key_hint(self) -> str:
        """What to check about keys when the link never came up."""
        if self._link_up:
            return ""
        if self.curve:
            return (
                " With keys: is server_key= the chief's public key, and is this worker's "
                "public key in the chief's allow= directory?"
            )
        return " If the chief uses keys, pass key= and server_key= (README: Chief and workers)."

    @property
    def chief_gone(self) -> bool:
        """True once the link to the chief, after being up, has been down for
        :data:`~protocol.work.CHIEF_GONE_S` (a killed chief; a frozen one after the
        heartbeat timeout)."""
        self._update_link()
        return self._down_since is not None and time.monotonic() - self._down_since >= CHIEF_GONE_S

    @property
    def refused(self) -> bool:
        """True once a handshake failed for good (the chief's allow-list said no, or the
        two sides' mechanisms differ: libzmq then stops retrying), or after
        :data:`REFUSED_AFTER` failed handshakes in a row with no success (a wrong server key)."""
        self._update_link()
        return len(self._failed) >= REFUSED_AFTER or bool(FINAL_FAILURES & set(self._failed))

    def _raise_if_refused(self) -> None:
        if self.refused:
            raise TransportError(
                f"worker {self.id}: the chief at {self._base} refused the "
                f"connection ({', '.join(self._failed)}); nothing was "
                "delivered." + self._key_hint()
            )

    @property
    def stopping(self) -> bool:
        """True once the chief has asked the workers to stop, or is gone (checked without
        blocking)."""
        while not self._stopping and self._sub.poll(0):
            self._read_control()
        return self._stopping or self.chief_gone

    def poll_params(self) -> int:
        """Take in what the chief published, without waiting; the newest parameter version."""
        while self._sub.poll(0):
            self._read_control()
        return self.params_version

    def wait_params(self, timeout: float, newer_than: int = 0) -> bool:
        """Wait up to ``timeout`` s for parameters newer than version ``newer_than``
        (default: any); False on timeout, or when the chief stops or is gone first."""
        deadline = time.monotonic() + timeout
        poller = self._control_poller()
        while self.poll_params() <= newer_than:
            now = time.monotonic()
            if now >= deadline or self.stopping:
                return False
            poller.poll(self._ms_until(deadline, now))
        return True

    def _read_control(self) -> None:
        frames = self._sub.recv_multipart(copy=False)  # parameter arrays stay in their frames
        try:
            msg = decode_work(frames[1:])
        except ProtocolError as e:
            log.warning("worker %d: ignored a malformed message from the chief: %s", self.id, e)
            return
        if isinstance(msg, WorkEnd):
            self._stopping = True
        elif isinstance(msg, WorkAck) and msg.worker == self.id:
            self._acked = msg.fin
        elif isinstance(msg, WorkParams) and msg.version > self.params_version:
            self.params, self.params_version = msg.params, msg.version  # older ones: skipped

    def wait_stopping(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the chief's stop; a pacing sleep that wakes early
        (also when the chief is gone). Parameters published meanwhile are taken in."""
        deadline = time.monotonic() + timeout
        poller = self._control_poller()
        while not self.stopping:
            now = time.monotonic()
            if now >= deadline:
                return False
            poller.poll(self._ms_until(deadline, now))
        return True

    def _control_poller(self) -> zmq.Poller:
        """A poller that wakes on the chief's messages and on link events."""
        poller = zmq.Poller()
        poller.register(self._sub, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        return poller

    def _update_link(self) -> None:
        """Follow the monitor's connect/disconnect/failed-handshake events seen so far."""
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            if event & HANDSHAKE_FAILED:
                self._failed = [*self._failed[-REFUSED_AFTER + 1 :], zmq.Event(event).name or str(event)]
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._link_up, self._down_since, self._failed = True, None, []
            elif self._link_up:
                self._link_up, self._down_since = False, time.monotonic()

    def close(self, error: str | None = None) -> None:
        """Send FIN (last seq, and the error if the worker failed), wait until the chief
        confirms it read it, close. Gives up after ``flush_timeout`` s, or once the chief's
        connection has been down for :data:`~protocol.work.CHIEF_GONE_S`; what was then
        still queued may be lost, and the chief reports this worker as dead without a FIN."""
        try:
            self._flush(encode_work(WorkFin(self.id, self.seq, error or None)))
        finally:
            self._release.detach()
            self._sub.disable_monitor()
            self._monitor.close()
            self._push.close()
            self._sub.close()
            self._ctx.term()

    def _flush(self, fin: list) -> None:
        """Send ``fin`` (repeated every second) until the chief confirms it, or give up."""
        deadline = time.monotonic() + self.flush_timeout
        sent_at: float | None = None
        while self._acked != self.seq:
            if self.refused:
                log.warning(
                    "worker %d: the chief at %s refused the connection (%s); nothing was delivered.%s",
                    self.id,
                    self._base,
                    ", ".join(self._failed),
                    self._key_hint(),
                )
                return
            if self.chief_gone:
                log.warning(
                    "worker %d: the chief at %s went away before confirming the last items",
                    self.id,
                    self._base,
                )
                return
            now = time.monotonic()
            if now >= deadline:
                log.warning(
                    "worker %d: the chief did not confirm the last %d items within %.0f s; some may be lost",
                    self.id,
                    self.seq,
                    self.flush_timeout,
                )
                return
            due = sent_at is None or now - sent_at >= _FIN_REPEAT_S
            if due and self._push.poll(0, zmq.POLLOUT):
                self._push.send_multipart(fin, zmq.NOBLOCK)
                sent_at, due = now, False
            poller = self._control_poller()
            if due:
                poller.register(self._push, zmq.POLLOUT)
            wake = deadline if due or sent_at is None else min(deadline, sent_at + _FIN_REPEAT_S)
            poller.poll(self._ms_until(wake, now))
            while self._sub.poll(0):
                self._read_control()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(None if exc is None else "".join(traceback.format_exception(exc_type, exc, tb)))


def worker_process(
    target: Callable[..., Any],
    connect: str,
    worker_id: int,
    args: tuple,
    curve: tuple[bytes, bytes, bytes] | None = None,
    max_item_bytes: int = MAX_ITEM_BYTES,
) -> None:
    """Entry point of a spawned worker: ``target(worker, *args)`` inside a Worker (with the
    keys and the item cap its chief gave it)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the chief decides when to stop
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with Worker(connect, worker_id, curve=curve, max_item_bytes=max_item_bytes) as worker:
        target(worker, *args)


def _release(ctx: zmq.Context, socks: tuple[zmq.Socket, ...]) -> None:
    """Free an unclosed worker's sockets at once (nothing is flushed: it was not closed).
    Each socket is closed by name: in a reference cycle the context's own list of its
    sockets is already empty, and terminating it with one open would wait forever."""
    with contextlib.suppress(zmq.ZMQError):
        socks[-1].disable_monitor()  # the SUB's
    for sock in socks:
        sock.close(0)
    ctx.term()
