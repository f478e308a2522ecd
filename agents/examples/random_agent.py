"""Acts at random, reproducibly: samples its action space if the world describes one (seeded
from this player's seed), else picks one of the grid world's discrete actions."""

from __future__ import annotations

from typing import Any

from tickwire.agents import Agent
from tickwire.protocol import Welcome
from tickwire.protocol.spaces import plain


class RandomAgent(Agent):
    def setup(self, info: Welcome) -> None:
        if hasattr(self.action_space, "sample"):  # a Gymnasium space
            self.action_space.seed(info.seed)

    def act(self, observation: Any) -> Any:
        if hasattr(self.action_space, "sample"):
            return plain(self.action_space.sample())
        return int(self.rng.integers(self.info.world["action_spec"]["n"]))
