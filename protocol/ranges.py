"""The numbers a setting takes, stated once: :class:`Range`, used by the server's and the
agent's configs (``ServerConfig.RANGES``, ``AgentConfig.RANGES``) and by the command line's
option table, which takes its bounds from them (pure: no I/O)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from tickwire.protocol.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The numbers a setting takes: at least ``minimum``, greater than ``above``, and a finite
    number if ``finite`` (None: no such bound). ``unit`` and ``note`` only shape the text."""

    minimum: float | None = None
    above: float | None = None
    finite: bool = False
    unit: str = ""  #: " s", " MB": written after each bound
    note: str = ""  #: " (0 = never)": written after the bounds

    def allows(self, value: float) -> bool:
        """True if ``value`` is within every bound (NaN never is)."""
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.above is None or value > self.above)
            and (not self.finite or math.isfinite(value))
        )

    def describe(self) -> str:
        """The bounds as text: ``at least 0 (0 = never)``, ``greater than 0 s``."""
        bounds = []
        if self.minimum is not None:
            bounds.append(f"at least {self.minimum:g}{self.unit}")
        if self.above is not None:
            bounds.append(f"greater than {self.above:g}{self.unit}")
        if self.finite:
            bounds.append("finite")
        return " and ".join(bounds) + self.note


def check_ranges(config: object, ranges: Mapping[str, tuple[str, Range]]) -> None:
    """Raise :class:`ConfigError` for the first field of ``config`` (not None) outside its range."""
    for name, (label, rng) in ranges.items():
        value = getattr(config, name)
        if value is not None and not rng.allows(value):
            raise ConfigError(f"{label} must be {rng.describe()}, got {value}")
