"""PlayerPool: ``actions[i] = players[i].get_action(state)`` in parallel, players kept alive.

Each player object is pickled **once**, into its own process (``spawn``), and lives there:
its attributes persist from call to call. Each :meth:`PlayerPool.get_actions` call is one
tick: the state is encoded once and published to all players over ZeroMQ (ipc by default;
numpy arrays travel as zero-copy frames), and the actions come back in player order.

Wire (internal, msgpack via the protocol codec): parent → players on XPUB
``{"call": n, "state": ...}`` or ``{"stop": true}``; players → parent on PULL
``{"call": n, "i": index, "ok": true, "action": ...}`` or ``{"call", "i", "ok": false,
"error", "traceback"}``; ``{"ready": index}`` once at start.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import secrets
import shutil
import signal
import tempfile
import time
import traceback
import weakref
from collections.abc import Sequence
from typing import Any

import zmq
from tickwire.agents.process import die_with_parent, reap
from tickwire.protocol import (
    ConfigError,
    ProtocolError,
    TickwireError,
    decode_payload,
    derive,
    encode_payload,
)

log = logging.getLogger(__name__)

_POLL_MS = 100
_STOP_GRACE_S = 2.0


class PlayerError(TickwireError):
    """A player's method raised. ``index``, ``remote_traceback``; ``errors`` has every
    player that raised in this call (index → traceback), ``results`` the other actions."""

    def __init__(self, index: int, remote_traceback: str, errors: dict[int, str],
                 results: list[Any]) -> None:
        last = remote_traceback.strip().splitlines()[-1] if remote_traceback.strip() else "?"
        more = f" (and {len(errors) - 1} more player(s))" if len(errors) > 1 else ""
        super().__init__(f"player {index} raised {last}{more}\n--- remote traceback of player "
                         f"{index} ---\n{remote_traceback}")
        self.index, self.remote_traceback, self.errors, self.results = (
            index, remote_traceback, errors, results)


class PlayerDied(TickwireError):
    """A player's process exited; the pool cannot answer for it any more."""

    def __init__(self, index: int, exitcode: int | None) -> None:
        how = f"was killed by signal {-exitcode}" if exitcode and exitcode < 0 else \
            f"exited with code {exitcode}"
        super().__init__(f"player {index}'s process {how}; close the pool (its other "
                         "players are unaffected but the pool cannot answer for this one)")
        self.index, self.exitcode = index, exitcode


def _player_process(index: int, player: Any, method: str, state_addr: str, result_addr: str,
                    topic: bytes) -> None:
    """Entry point of a player process: answer each published state until told to stop."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    fn = getattr(player, method)
    ctx = zmq.Context()
    sub, push = ctx.socket(zmq.SUB), ctx.socket(zmq.PUSH)
    for s in (sub, push):
        s.linger = 1000
    sub.subscribe(b"")
    sub.subscribe(topic)
    sub.connect(state_addr)
    push.connect(result_addr)
    push.send_multipart(encode_payload({"ready": index}))
    try:
        while True:
            frames = sub.recv_multipart(copy=False)
            while sub.poll(0):  # behind (the parent timed out on us)? answer only the newest
                frames = sub.recv_multipart(copy=False)
            msg = decode_payload(frames)
            if msg.get("stop"):
                return
            push.send_multipart(_answer(index, msg["call"], fn, msg["state"]), copy=False)
    finally:
        sub.close()
        push.close()
        ctx.term()


def _answer(index: int, call: int, fn: Any, state: Any) -> list:
    try:
        return encode_payload({"call": call, "i": index, "ok": True, "action": fn(state)})
    except ProtocolError as e:
        text = f"its action cannot be sent back: {e}"
        return encode_payload({"call": call, "i": index, "ok": False, "error": text,
                               "traceback": f"{traceback.format_exc()}\n{text}"})
    except Exception as e:
        return encode_payload({"call": call, "i": index, "ok": False, "error": repr(e),
                               "traceback": traceback.format_exc()})


def _terminate(procs: list, ctx: zmq.Context, tmp: str | None) -> None:
    deadline = time.monotonic() + _STOP_GRACE_S
    for p in procs:
        reap(p, max(0.0, deadline - time.monotonic()))
    ctx.destroy(linger=0)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


class PlayerPool:
    """Run ``player.<method>(state)`` for many players in parallel, one process each.

    ``with PlayerPool(players) as pool: actions = pool.get_actions(state)``. Players must
    be picklable (sent once) and their class importable (define it in a module, or under
    ``if __name__ == "__main__":`` guard in a script, as for any ``spawn`` process).
    """

    def __init__(self, players: Sequence[Any], *, method: str = "get_action",
                 address: str | None = None, start_timeout: float = 60.0) -> None:
        if not players:
            raise ConfigError("PlayerPool needs at least one player")
        for i, p in enumerate(players):
            if not callable(getattr(p, method, None)):
                raise ConfigError(f"player {i} ({type(p).__name__}) has no method {method!r}; "
                                  "pass method='...' to name the one to call")
        self.n = len(players)
        self.method = method
        self.last_missing: list[int] = []
        self._call = 0
        self._closed = False
        self._dead: dict[int, int | None] = {}
        self._tmp = None if address else tempfile.mkdtemp(prefix="twpool-")
        eps = derive(address or f"ipc://{self._tmp}/pool")
        self._ctx = zmq.Context()
        self._pub = self._ctx.socket(zmq.XPUB)
        self._pull = self._ctx.socket(zmq.PULL)
        for s in (self._pub, self._pull):
            s.linger = 0
        self._pub.sndhwm = 0  # every player must get every call
        self._procs: list = []
        self._finalizer = weakref.finalize(self, _terminate, self._procs, self._ctx, self._tmp)
        self._pub.bind(eps.state)
        self._pull.bind(eps.actions)
        nonce = secrets.token_hex(4)
        self._topics = {f"pool.{nonce}.{i}".encode(): i for i in range(self.n)}
        spawn = mp.get_context("spawn")
        for i, (player, topic) in enumerate(zip(players, self._topics)):
            proc = spawn.Process(target=_player_process, daemon=True, name=f"tickwire-player-{i}",
                                 args=(i, player, method, eps.state, eps.actions, topic))
            try:
                proc.start()
            except Exception as e:
                self.close()
                raise ConfigError(f"player {i} ({type(player).__name__}) could not be sent to "
                                  f"its process: {e}") from e
            self._procs.append(proc)
        self._poller = zmq.Poller()
        self._poller.register(self._pull, zmq.POLLIN)
        self._poller.register(self._pub, zmq.POLLIN)
        try:
            self._wait_ready(start_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Every player has subscribed (seen on XPUB) and said ready (seen on PULL)."""
        subscribed: set[int] = set()
        ready: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(subscribed & ready) < self.n:
            if time.monotonic() > deadline:
                missing = sorted(set(range(self.n)) - (subscribed & ready))
                raise TickwireError(f"players {missing} did not start within {timeout} s")
            events = dict(self._poller.poll(_POLL_MS))
            if self._pub in events:
                while self._pub.poll(0):
                    ev = self._pub.recv()
                    if ev[:1] == b"\x01" and ev[1:] in self._topics:
                        subscribed.add(self._topics[ev[1:]])
            if self._pull in events:
                while self._pull.poll(0):
                    ready.add(decode_payload(self._pull.recv_multipart())["ready"])
            self._check_alive(set(range(self.n)) - (subscribed & ready))

    def _check_alive(self, indices: set[int]) -> None:
        for i in sorted(indices):
            if i not in self._dead and not self._procs[i].is_alive():
                self._dead[i] = self._procs[i].exitcode
        dead = sorted(set(self._dead) & indices)
        if dead:
            raise PlayerDied(dead[0], self._dead[dead[0]])

    def get_actions(self, state: Any, timeout: float | None = None, default: Any = None) -> list[Any]:
        """Broadcast ``state`` once; return every player's action, in player order.

        With ``timeout`` (seconds), players that have not answered get ``default`` and are
        listed in :attr:`last_missing`; their late answers are discarded. Raises
        :class:`PlayerError` if a player raised (after collecting the others), and
        :class:`PlayerDied` if a player's process is gone.
        """
        if self._closed:
            raise TickwireError("this PlayerPool is closed")
        if self._dead:
            i = min(self._dead)
            raise PlayerDied(i, self._dead[i])
        self._call += 1
        call = self._call
        self._pub.send_multipart(encode_payload({"call": call, "state": state}), copy=False)
        results = [default] * self.n
        pending = set(range(self.n))
        errors: dict[int, str] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            wait = _POLL_MS if deadline is None else min(_POLL_MS, (deadline - time.monotonic()) * 1e3)
            if wait <= 0 and deadline is not None:
                break
            events = dict(self._poller.poll(max(0, wait)))
            if self._pull in events:
                self._collect(call, results, pending, errors)
            if self._pub in events or not events:  # an unsubscribe, or quiet: anyone dead?
                while self._pub.poll(0):
                    self._pub.recv()
                self._check_alive(pending)
        self.last_missing = sorted(pending)
        if pending:
            log.warning("players %s did not answer call %d within %.3f s; they get %r",
                        self.last_missing, call, timeout, default)
        if errors:
            first = min(errors)
            raise PlayerError(first, errors[first], errors, results)
        return results

    def _collect(self, call: int, results: list, pending: set, errors: dict) -> None:
        while True:
            try:
                msg = decode_payload(self._pull.recv_multipart(zmq.NOBLOCK, copy=False))
            except zmq.Again:
                return
            if msg.get("call") != call:
                continue  # a late answer to an earlier call
            i = msg["i"]
            pending.discard(i)
            if msg["ok"]:
                results[i] = msg["action"]
            else:
                errors[i] = msg["traceback"]

    def close(self) -> None:
        """Stop every player process (bounded: terminate, then kill) and free the sockets."""
        if self._closed:
            return
        self._closed = True
        try:
            self._pub.send_multipart(encode_payload({"stop": True}), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        self._finalizer()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def __enter__(self) -> PlayerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.n
