"""Walks toward the nearest resource on the default grid world.

It plays the grid world only (``tickwire.server.worlds.grid_world:GridWorld`` and worlds
with its observation): at setup it checks the WELCOME and, for any other world, stops with
one message naming an agent that fits instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tickwire.agents import Agent
from tickwire.protocol import Welcome
from tickwire.protocol.errors import ConfigError

STAY, UP, DOWN, LEFT, RIGHT = range(5)

#: What to use instead on a world that is not the grid world.
INSTEAD = (
    "use --agent tickwire.agents.examples.random_agent:RandomAgent (samples the world's action "
    "space; `tickwire run --world pettingzoo:...` picks it by default) or your own agent"
)


def not_the_grid_world(info: Welcome) -> str | None:
    """Why the world this WELCOME describes is not one GreedyAgent can play (None: it is)."""
    spec = info.world.get("action_spec") or {}
    name = info.world.get("name", "?")
    if info.private:
        return f"world {name} sends each player its own observation (private views)"
    if spec.get("type") != "discrete" or int(spec.get("n", 0)) < RIGHT + 1:
        return f"world {name} does not take the grid world's 5 discrete moves (its action_spec: {spec})"
    return None


class GreedyAgent(Agent):
    def setup(self, info: Welcome) -> None:
        problem = not_the_grid_world(info)
        if problem:
            name = type(self).__name__
            raise ConfigError(f"{name} plays the grid world, but {problem}: {INSTEAD}", "--agent")

    def act(self, observation: dict[str, Any]) -> int:
        if not (isinstance(observation, Mapping) and "positions" in observation and "grid" in observation):
            raise ConfigError(
                f"{type(self).__name__} plays the grid world, but this world's observation is not "
                f"the grid world's (a map with 'grid' and 'positions'; got {type(observation).__name__}): "
                f"{INSTEAD}",
                "--agent",
            )
        row, col = (int(v) for v in observation["positions"][self.player_id])
        targets = np.argwhere(observation["grid"] > 0)
        if len(targets) == 0:
            return STAY
        dist = np.abs(targets - (row, col)).sum(axis=1)
        tr, tc = targets[int(np.argmin(dist))]  # first nearest: deterministic ties
        if tr != row:
            return DOWN if tr > row else UP
        if tc != col:
            return RIGHT if tc > col else LEFT
        return STAY
