"""Status lines on stderr, rate-limited: the run's (tick, ticks/s, late/missed) and long jobs'
(bench, replay: done/total and what runs now)."""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .report import TickReport


class Progress:
    """The run's line, from the loop's :class:`TickReport` s (pass it as ``progress=``):
    redrawn ~10×/s on a terminal; a line every ``every_s`` otherwise."""

    def __init__(self, total: int, stream: IO[str] = sys.stderr, every_s: float | None = None) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s if every_s is not None else (0.1 if self.tty else 5.0)
        self._last = time.monotonic()
        self._last_tick = 0
        self._drawn = False

    def __call__(self, report: TickReport) -> None:
        now, tick = report.now, report.tick
        if report.tick_s is None:
            if report.running:  # the run starts now: rates must not include the lobby
                self._last, self._last_tick = now, tick
            return
        if now - self._last < self.every_s and tick != self.total:
            return
        rate = (tick - self._last_tick) / max(now - self._last, 1e-9)
        self._last, self._last_tick = now, tick
        line = (
            f"tick {tick}/{self.total}  {rate:,.0f} ticks/s  players {report.live}  "
            f"late {report.late}  missed {report.missed}  rejected {report.rejected_total}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


class JobProgress:
    """The status line of a long job that is not a run (``tickwire bench``; a replay), in the
    run's style: ``what done/total  detail  elapsed``, redrawn ~10×/s on a terminal. Silent when
    the stream is not a terminal (logs and CI output stay clean) or when ``enabled`` is False
    (``-q``). Other output goes through :meth:`write`, so it never lands mid-line."""

    def __init__(
        self, total: int, what: str, stream: IO[str] = sys.stderr, enabled: bool = True, every_s: float = 0.1
    ) -> None:
        self.total, self.what, self.stream, self.every_s = total, what, stream, every_s
        self.on = enabled and stream.isatty()
        self._t0 = time.monotonic()
        self._last = -every_s
        self._line = ""

    def update(self, done: int, detail: str = "") -> None:
        """``done`` of ``total`` are finished; ``detail`` says what runs now."""
        if not self.on:
            return
        now = time.monotonic()
        if now - self._last < self.every_s and done != self.total:
            return
        self._last = now
        self._line = (f"{self.what} {done}/{self.total}  {detail}  {now - self._t0:,.0f} s elapsed").replace(
            "    ", "  "
        )
        self.stream.write("\r\x1b[2K" + self._line)
        self.stream.flush()

    def write(self, text: str) -> None:
        """Print ``text`` (a line or more) above the status line."""
        if self._line:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text.rstrip("\n") + "\n")
        if self._line:
            self.stream.write(self._line)
        self.stream.flush()

    def close(self) -> None:
        """Leave the terminal on a fresh line (the status line is erased)."""
        if self._line:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._line = ""
