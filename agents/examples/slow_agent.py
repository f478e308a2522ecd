"""Takes its time: for tests and demos of deadlines. ``TICKWIRE_SLOW_MS`` sets the delay."""

from __future__ import annotations

import os
import time
from typing import Any

from tickwire.agents import Agent


class SlowAgent(Agent):
    def __init__(self, delay_ms: float | None = None) -> None:
        self.delay_s = (
            float(delay_ms if delay_ms is not None else os.environ.get("TICKWIRE_SLOW_MS", "200")) / 1e3
        )

    def act(self, observation: Any) -> int:
        time.sleep(self.delay_s)  # the point of this agent: simulate slow thinking
        return 0
