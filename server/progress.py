"""The live status line: tick, ticks/s, late/missed; on stderr, rate-limited."""
from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .loop import WorldServer


class Progress:
    """Redraws one line ~10×/s on a terminal; prints a line every ``every_s`` otherwise."""

    def __init__(self, total: int, stream: IO[str] = sys.stderr, every_s: float | None = None) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s if every_s is not None else (0.1 if self.tty else 5.0)
        self._t0 = self._last = time.monotonic()
        self._last_tick = 0
        self._drawn = False

    def __call__(self, tick: int, server: "WorldServer") -> None:
        now = time.monotonic()
        if tick == 0:  # the run starts now: rates must not include the lobby
            self._last, self._last_tick = now, 0
            return
        if now - self._last < self.every_s and tick != self.total:
            return
        rate = (tick - self._last_tick) / max(now - self._last, 1e-9)
        self._last, self._last_tick = now, tick
        players = server.roster.players.values()
        late = sum(p.late for p in players)
        missed = sum(p.missed for p in players)
        live = len(server.roster.accepting())
        line = (f"tick {tick}/{self.total}  {rate:,.0f} ticks/s  players {live}  "
                f"late {late}  missed {missed}  rejected {sum(server.rejected.values())}")
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
