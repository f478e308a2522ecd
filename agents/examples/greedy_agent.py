"""Walks toward the nearest resource on the default grid world."""

from __future__ import annotations

from typing import Any

import numpy as np
from tickwire.agents import Agent

STAY, UP, DOWN, LEFT, RIGHT = range(5)


class GreedyAgent(Agent):
    def act(self, observation: dict[str, Any]) -> int:
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
