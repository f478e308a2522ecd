"""Real-time pacing (``--tick-rate HZ``): when each tick may start, and how well it did.

Sans-IO: times are passed in (``now``); nothing here reads a clock. Tick start times lie on a
fixed grid ``t0 + k / HZ`` (``t0``: the first tick's start), so small delays never accumulate
the way ``sleep(period)`` after each tick would. A tick's deadline is the end of its period,
i.e. the next grid time.

Catching up: a tick that starts late keeps its slot, so the next tick follows sooner than a
whole period (at most one period early). Once a whole slot has passed, the missed slots are
**skipped**: the next tick starts on the next grid time after ``now``, never in a burst of
back-to-back ticks. Skipped slots are counted (``skipped_slots`` in the summary).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

#: Start errors kept for the percentiles: the most recent ones (memory stays bounded).
ERROR_WINDOW = 65536


class Pacer:
    """The fixed tick clock of one run at ``rate_hz`` ticks per second."""

    def __init__(self, rate_hz: float) -> None:
        if not (rate_hz > 0 and math.isfinite(rate_hz)):
            raise ValueError(f"tick rate must be a positive number of Hz, got {rate_hz!r}")
        self.rate_hz = float(rate_hz)
        self.period = 1.0 / self.rate_hz
        self._t0: float | None = None
        self._slot = 0  #: the slot of the next tick
        self._first = self._last = 0.0
        self.ticks = 0
        self.skipped = 0
        self._errors: deque[float] = deque(maxlen=ERROR_WINDOW)

    def due(self, now: float) -> float:
        """When the next tick should start (``now`` before the first tick: start at once)."""
        if self._t0 is None:
            return now
        return self._t0 + self._slot * self.period

    def wait(self, now: float) -> float:
        """Seconds until the next tick may start (0: start it now)."""
        return max(0.0, self.due(now) - now)

    def started(self, now: float) -> float:
        """A tick started at ``now``; returns its deadline (the end of its period)."""
        if self._t0 is None:
            self._t0, self._first = now, now
        scheduled = self._t0 + self._slot * self.period
        self._errors.append(now - scheduled)
        behind = math.floor((now - self._t0) / self.period)
        if behind > self._slot:  # a whole slot passed: skip ahead, no burst
            self.skipped += behind - self._slot
            self._slot = behind
        self._slot += 1
        self.ticks += 1
        self._last = now
        return self._t0 + self._slot * self.period

    def report(self) -> dict[str, Any]:
        """Target and achieved rate, start-error percentiles (ms), skipped slots."""
        achieved = None
        if self.ticks > 1 and self._last > self._first:
            achieved = round((self.ticks - 1) / (self._last - self._first), 3)
        errors = sorted(self._errors)
        return {
            "target_hz": self.rate_hz,
            "achieved_hz": achieved,
            "start_error_ms": {
                "p50": _percentile_ms(errors, 50),
                "p99": _percentile_ms(errors, 99),
                "max": _percentile_ms(errors, 100),
            },
            "skipped_slots": self.skipped,
        }


def _percentile_ms(ordered: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of sorted seconds, in milliseconds."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1e3, 3)
