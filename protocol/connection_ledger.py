"""The connection-loss ledger: lost actions connections of a run, and what explains them.

Part of the world server's rules (:mod:`tickwire.protocol.server_rules`), sans-IO like them.
A player's actions connection can go away because its player died or left (explained: a
status change says so), because the server cut it (oversized or undecodable frames: nothing
else says so), or because the memory guard cut it (``--memory-budget-mb``: counted when it
happens). The ledger matches losses with deaths and LEAVEs within :data:`LOST_ACTION_GRACE_S`
(either may come first); a loss left unexplained after that is counted
``dropped_connection``. Any cut during an open tick releases it (a strict tick must not
wait forever for an action that was lost with its connection).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .barrier import TickBarrier
from .server_outputs import NOTHING, Output, Rejection, Republish

#: A lost actions connection that no death or LEAVE explains within this many seconds was
#: cut by the server (oversized or undecodable frames); then a strict tick stops waiting.
LOST_ACTION_GRACE_S = 2.0


class ConnectionLedger:
    """Lost actions connections, deaths and LEAVEs of one run, matched against each other.

    ``rejected`` is the run's rejection counter (``dropped_connection`` and
    ``memory_guard`` are counted in it); ``barrier`` the run's tick barrier (whose open
    tick a loss asks again for, and a cut releases).
    """

    def __init__(self, rejected: Counter[Rejection], barrier: TickBarrier) -> None:
        self._rejected = rejected
        self._barrier = barrier
        self._drops: list[tuple[float, int]] = []  # unexplained losses (time, tick)
        self._credits: list[float] = []  # deaths and LEAVEs not yet matched with a loss
        self._guard_cuts: list[tuple[float, int]] = []  # memory guard cuts on actions (time, tick)
        #: the open tick stops waiting (a connection was cut during it)
        self.cut_off = False
        #: the tick whose actions were asked for again (a resend for it is no rejection)
        self.asked_again = -1

    def tick_opened(self) -> None:
        """A tick opens: nothing has been cut during it yet."""
        self.cut_off = False

    def lost(self, now: float) -> Sequence[Output]:
        """A player's actions connection went away during the run. While a tick is open,
        ask for its actions again (:class:`Republish`); the loss waits to be explained."""
        tick = self._barrier.tick
        self._credits = [t for t in self._credits if now - t <= LOST_ACTION_GRACE_S]
        if self._credits:
            self._credits.pop(0)  # a player died or left just now: that was its connection
        else:
            self._drops.append((now, tick))
        if not self._barrier.waiting_for:
            return NOTHING
        self.asked_again = tick
        return (Republish(tick),)

    def memory_guard_cut(self, socket: str, now: float, running: bool) -> None:
        """The memory guard cut a connection of ``socket``: counted once, under
        ``memory_guard`` (an actions connection's loss is explained by it: not also a
        ``dropped_connection``). Like any cut during the run, it releases the open tick
        after :data:`LOST_ACTION_GRACE_S` if it is still waiting."""
        self._rejected[Rejection.MEMORY_GUARD] += 1
        if socket == "actions" and running:
            self.explained(now)
            self._guard_cuts.append((now, self._barrier.tick))

    def explained(self, now: float) -> None:
        """A player died or left: that explains one lost actions connection (or a later one)."""
        if self._drops:
            self._drops.pop(0)
        else:
            self._credits.append(now)

    @property
    def pending(self) -> bool:
        """Some cut is still within its grace period."""
        return bool(self._drops or self._guard_cuts)

    def expire(self, now: float) -> None:
        """Losses unexplained for the grace period were cuts: count them, release the tick
        (so do the memory guard's cuts, counted when they happened)."""
        open_tick = self._barrier.tick
        while self._drops and now - self._drops[0][0] >= LOST_ACTION_GRACE_S:
            _, tick = self._drops.pop(0)
            self._rejected[Rejection.DROPPED_CONNECTION] += 1
            self.cut_off = self.cut_off or tick == open_tick
        while self._guard_cuts and now - self._guard_cuts[0][0] >= LOST_ACTION_GRACE_S:
            _, tick = self._guard_cuts.pop(0)
            self.cut_off = self.cut_off or tick == open_tick

    def due(self) -> float | None:
        """When the oldest pending cut's grace ends (None: no cut pending)."""
        times = [cuts[0][0] for cuts in (self._drops, self._guard_cuts) if cuts]
        return min(times) + LOST_ACTION_GRACE_S if times else None

    def end(self) -> None:
        """The run ends: losses still unexplained are counted as what they most likely were."""
        if self._drops:
            self._rejected[Rejection.DROPPED_CONNECTION] += len(self._drops)
            self._drops.clear()
        self._guard_cuts.clear()
