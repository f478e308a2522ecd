"""The grid world with players 0 and 1 starting on the same cell (they stay there when they
STAY): for the pictures' overlap handling."""

from __future__ import annotations

from typing import Any

from tickwire.agents import Agent
from tickwire.server.worlds.grid_world import GridWorld


class OverlapWorld(GridWorld):
    def reset(self, seed: int, players: int) -> dict[str, Any]:
        state = super().reset(seed, players)
        state["positions"][0] = (3, 4)
        state["positions"][1] = (3, 4)  # on top of player 0
        if players > 2:
            state["positions"][2] = (10, 12)
        state["grid"][3, 4] = 0
        state["grid"][10, 12] = 0
        return state


class StayAgent(Agent):
    """Never moves (action 0): players that start on one cell stay on it."""

    def act(self, observation: Any) -> int:
        return 0
