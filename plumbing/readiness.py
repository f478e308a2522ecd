"""Which of many ZeroMQ sockets have a message waiting, at a cost that grows with the
sockets that have one, not with all of them.

``zmq.Poller`` (``zmq_poll``) asks every registered socket for its events at every call:
over the 500 control sockets of an agent process hosting 500 players that is ~0.7 ms per
call, ~2.5 ms over 1,000. :class:`ReadySet` puts each socket's ``ZMQ_FD`` (libzmq's "this
socket may have news" descriptor) into one operating-system selector (epoll on Linux) and
asks for ``ZMQ_EVENTS`` only the sockets that selector reports, plus those used since they
were last asked.

libzmq's rules for that descriptor are kept: it is edge-triggered — a send or a receive on
the socket may consume its signal while a message is still waiting — so after any send or
receive the socket's ``ZMQ_EVENTS`` must be asked again before waiting on the descriptor.
The sockets :meth:`ReadySet.ready` returns (the caller reads them) and the ones passed to
:meth:`ReadySet.touched` (the caller sent on them, or changed an option that talks to the
peer) are asked at the next call, unless the caller says with :meth:`ReadySet.settled` that
it read one until ``ZMQ_EVENTS`` said nothing is left; every socket is asked at the first.
"""

from __future__ import annotations

import selectors
from collections.abc import Sequence
from typing import cast

import zmq

#: plain ints: pyzmq's enum members cost an enum construction on every use
EVENTS, POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)


def has_message(sock: zmq.Socket) -> bool:
    """``sock``'s ``ZMQ_EVENTS`` say a message can be received now."""
    return bool(cast(int, sock.getsockopt(EVENTS)) & POLLIN)


class ReadySet:
    """Readiness to receive of ``socks`` (indexes into that list)."""

    def __init__(self, socks: Sequence[zmq.Socket]) -> None:
        self.socks = list(socks)
        self._selector = selectors.DefaultSelector()
        for i, sock in enumerate(self.socks):
            self._selector.register(cast(int, sock.getsockopt(zmq.FD)), selectors.EVENT_READ, i)
        self._ask: set[int] = set(range(len(self.socks)))  #: sockets to ask at the next call

    def touched(self, i: int) -> None:
        """Socket ``i`` was sent on (or set up) by the caller: ask it at the next call."""
        self._ask.add(i)

    def settled(self, i: int) -> None:
        """The caller read socket ``i`` until its ``ZMQ_EVENTS`` said no message is left:
        it need not be asked again (saves a call per read on the busiest socket)."""
        self._ask.discard(i)

    def ready(self, timeout_s: float) -> list[int]:
        """The sockets with a message waiting, in index order; waits up to ``timeout_s``
        seconds for one if none has one now (and may return early, with none, when a socket
        was signalled for something else). The caller is expected to read them."""
        socks, found = self.socks, set()
        for i in self._ask:
            if has_message(socks[i]):
                found.add(i)
        for key, _ in self._selector.select(0 if found else max(0.0, timeout_s)):
            i = key.data
            if i not in found and has_message(socks[i]):
                found.add(i)
        self._ask = found  # read by the caller now: ask them again next time
        return sorted(found)

    def close(self) -> None:
        """Forget the descriptors (before the sockets close)."""
        self._selector.close()
