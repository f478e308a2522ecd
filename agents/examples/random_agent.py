"""Moves at random, reproducibly (its rng is seeded by the server)."""
from __future__ import annotations

from typing import Any

from tickwire.agents import Agent


class RandomAgent(Agent):
    def act(self, observation: Any) -> int:
        return int(self.rng.integers(self.info.world["action_spec"]["n"]))
