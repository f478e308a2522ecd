"""A world with private views whose seats share one observation space, and a BatchAgent for it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from support.marl_worlds import PrivateCounter
from tickwire import BatchAgent, PlayerView


class SameSpaceCounter(PrivateCounter):
    """PrivateCounter with one observation space for every player (a box of one int)."""

    def observation_space(self, player: int) -> Any:
        return {"type": "box", "dtype": "<i8", "shape": [1], "low": 0, "high": 10**6}

    def observe_player(self, state: Any, player: int) -> PlayerView:
        view = super().observe_player(state, player)
        return dataclasses.replace(view, observation=np.full(1, state["totals"][player], dtype=np.int64))


class CounterBatch(BatchAgent):
    """Checks what the runtime hands it (stacked views, aligned ids and rewards) and acts."""

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        k = len(self.player_ids)
        assert observations.shape == (k, 1) and observations.dtype == np.int64, observations
        assert self.rewards.shape == (k,) and len(self.step_infos) == k
        assert self.shared["tick"] == self.tick
        return (observations[:, 0] + self.player_ids) % 3
