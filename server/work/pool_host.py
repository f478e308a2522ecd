"""A PlayerPool host process: several players, one subscription, one answer per call.

Started by :class:`tickwire.server.PlayerPool` as ``python -m tickwire.server.work.pool_host
PARENT_PID`` (never by re-running the user's ``__main__``, so players defined in a
notebook, in ``python -`` or in an unguarded script work). The pool writes a
:class:`Bootstrap` to this process's stdin: a plain pickle (str, int, bytes only) holding
the addresses and one pickle per player; each player is unpickled separately, so a failure
names the player. Everything after that travels as :mod:`tickwire.protocol.work` messages:
:class:`HostFailed` with this process's own traceback if a player cannot be loaded,
:class:`HostReady`, then one :class:`HostResults` per call (or a few parts of one when the
call is slow, so a pool timeout still gets the answers that are done).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import zmq
from tickwire.plumbing.process import die_with_parent, pin_to_cpu
from tickwire.plumbing.sockets import open_socket
from tickwire.protocol import ProtocolError
from tickwire.protocol.work import (
    ALL_TOPIC,
    LINGER_MS,
    UNREADABLE_CALL,
    HostFailed,
    HostReady,
    HostResults,
    PoolCall,
    PoolStop,
    decode_work,
    encode_work,
)

log = logging.getLogger(__name__)

#: Once a call has taken this long, the answers done so far are sent without waiting for the
#: rest (by a watchdog thread that wakes twice per period: no cost per call).
PARTIAL_AFTER_S = 0.05


@dataclass(frozen=True)
class Bootstrap:
    """What a host needs to start (sent by value on stdin; plain types only)."""

    pool: str
    host: int
    state_addr: str
    result_addr: str
    topic: bytes
    method: str
    players: list[tuple[int, bytes]]  #: (player index, that player's pickle)
    sys_path: list[str]
    cpu: int | None
    curve: tuple[bytes, bytes, bytes] | None = None  #: (own public, own secret, pool's public): CURVE


def to_wire(b: Bootstrap) -> bytes:
    """The bootstrap as a plain pickle (a dict of builtins: nothing to import to read it)."""
    return pickle.dumps(b.__dict__, protocol=pickle.HIGHEST_PROTOCOL)


class Host:
    """The connected host: its sockets and players."""

    def __init__(self, boot: Bootstrap) -> None:
        self.boot = boot
        self.ctx = zmq.Context()
        # linger: a failure report must reach the pool before we exit
        self.sub = open_socket(self.ctx, zmq.SUB, linger_ms=LINGER_MS, curve=boot.curve)
        self.push = open_socket(self.ctx, zmq.PUSH, linger_ms=LINGER_MS, curve=boot.curve)
        self.push.connect(boot.result_addr)
        self.players: list[tuple[int, Any]] = []
        self.lock = threading.Lock()  # guards the call in progress, shared with the watchdog
        self.call: int | None = None
        self.started = 0.0
        self.unsent: list = []
        self.stopped = threading.Event()
        self.watchdog = threading.Thread(target=self._watch, daemon=True, name="partial-answers")

    def send(self, msg: Any) -> None:
        self.push.send_multipart(encode_work(msg), copy=False)

    def load_players(self) -> bool:
        """Unpickle every player; report the first that fails (with our traceback)."""
        for index, blob in self.boot.players:
            try:
                player = pickle.loads(blob)
                self.players.append((index, getattr(player, self.boot.method)))
            except BaseException as e:
                self.send(HostFailed(self.boot.pool, self.boot.host, index, _explain(e)))
                return False
        return True

    def subscribe(self) -> None:
        """Subscribe (the pool sees our topic: the link is up), then say ready."""
        self.sub.subscribe(ALL_TOPIC)
        self.sub.subscribe(self.boot.topic)
        self.sub.connect(self.boot.state_addr)
        self.watchdog.start()
        self.send(HostReady(self.boot.pool, self.boot.host, [i for i, _ in self.players]))

    def serve(self) -> None:
        """Answer each call until STOP; when behind, answer only the newest call."""
        while True:
            msg = self._newest()
            if isinstance(msg, PoolStop):
                return
            if isinstance(msg, PoolCall) and msg.pool == self.boot.pool:
                self._answer(msg)

    def _newest(self) -> Any:
        msg = self._read(self.sub.recv_multipart(copy=False))
        while self.sub.poll(0) and not isinstance(msg, PoolStop):
            msg = self._read(self.sub.recv_multipart(copy=False))
        return msg

    def _read(self, frames: list) -> Any:
        try:
            return decode_work(frames[1:])
        except ProtocolError as e:  # on the pool's own topic: the pool must not wait for us
            log.warning("pool host %d: could not decode a call: %s", self.boot.host, e)
            why = (
                f"ProtocolError: the state could not be decoded in the player's process ({e}); send "
                "dicts with str or number keys, lists, numbers, strings and numpy arrays"
            )
            self._send_results(self.push, UNREADABLE_CALL, [[i, False, why] for i, _ in self.players])
            return None

    def _answer(self, call: PoolCall) -> None:
        """Call every player; one answer at the end (the watchdog sends parts of slow calls)."""
        with self.lock:
            self.call, self.started, self.unsent = call.call, time.monotonic(), []
        for index, fn in self.players:
            try:
                result = [index, True, fn(call.state)]
            except Exception:
                result = [index, False, traceback.format_exc()]
            with self.lock:
                self.unsent.append(result)
        with self.lock:
            results, self.unsent, self.call = self.unsent, [], None
        self._send_results(self.push, call.call, results)

    def _watch(self) -> None:
        """While a call runs longer than PARTIAL_AFTER_S, send the answers done so far (on
        this thread's own socket), so a pool timeout loses only the slow players."""
        push = open_socket(self.ctx, zmq.PUSH, linger_ms=0, curve=self.boot.curve)
        push.connect(self.boot.result_addr)
        try:
            while not self.stopped.wait(PARTIAL_AFTER_S / 2):
                with self.lock:
                    if (
                        self.call is None
                        or not self.unsent
                        or time.monotonic() - self.started < PARTIAL_AFTER_S
                    ):
                        continue
                    call, results, self.unsent = self.call, self.unsent, []
                self._send_results(push, call, results)
        finally:
            push.close()

    def _send_results(self, push: zmq.Socket, call: int, results: list) -> None:
        if not results:
            return
        try:
            frames = encode_work(HostResults(self.boot.pool, self.boot.host, call, results))
        except ProtocolError as e:
            frames = encode_work(
                HostResults(
                    self.boot.pool,
                    self.boot.host,
                    call,
                    [
                        [i, False, f"its action cannot be sent back: {e}"]
                        if ok and _unencodable(v)
                        else [i, ok, v]
                        for i, ok, v in results
                    ],
                )
            )
        push.send_multipart(frames, copy=len(frames) == 1)  # zero-copy pays for arrays only

    def close(self) -> None:
        self.stopped.set()
        if self.watchdog.is_alive():
            self.watchdog.join(1.0)
        self.sub.close(0)
        self.push.close()
        self.ctx.term()


def _unencodable(value: Any) -> bool:
    try:
        encode_work(HostResults("", 0, 0, [[0, True, value]]))
        return False
    except ProtocolError:
        return True


def _explain(e: BaseException) -> str:
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    if "__main__" in str(e):
        text += (
            "\nThe player refers to something defined in __main__ that this process "
            "cannot import: install cloudpickle (pip install 'tickwire[pool]') so the "
            "pool sends it by value, or move it into a module.\n"
        )
    return text


def main(argv: list[str]) -> int:
    """Entry point: bootstrap from stdin, load players, serve calls until STOP."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the pool owner's to handle
    die_with_parent()
    if argv and os.getppid() != int(argv[0]):
        return 3  # the pool died before we could ask to die with it
    boot = Bootstrap(**pickle.load(sys.stdin.buffer))
    sys.path[:] = boot.sys_path
    if boot.cpu is not None:
        pin_to_cpu(boot.cpu, batch=False)  # SCHED_BATCH halves a pool's rate under load
    host = Host(boot)
    try:
        if not host.load_players():
            return 1
        host.subscribe()
        host.serve()
        return 0
    finally:
        host.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise SystemExit(main(sys.argv[1:]))
