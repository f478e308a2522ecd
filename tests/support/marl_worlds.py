"""Worlds and agents for the per-player-view tests and the world checker's tests.

``PrivateCounter`` is a correct world with private views and spaces; the others each carry
one mistake the checker must name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tickwire import Agent, PlayerView, World


class PrivateCounter(World):
    """Each player sees its own counter; a player is terminated on every 5th tick of its own."""

    def observation_space(self, player: int) -> Any:
        return {"type": "box", "dtype": "<i8", "shape": [1 + player], "low": 0, "high": 10**6}

    def action_space(self, player: int) -> Any:
        return {"type": "discrete", "n": 3}

    def reset(self, seed: int, players: int) -> Any:
        return {"tick": 0, "totals": [0] * players}

    def step(self, state: Any, actions: dict[int, Any]) -> Any:
        totals = list(state["totals"])
        for p, a in actions.items():
            totals[p] += a or 0
        return {"tick": state["tick"] + 1, "totals": totals}

    def observe(self, state: Any) -> Any:
        return {"tick": state["tick"]}

    def observe_player(self, state: Any, player: int) -> PlayerView:
        obs = np.full(1 + player, state["totals"][player], dtype=np.int64)
        return PlayerView(
            obs, reward=float(state["totals"][player]), terminated=state["tick"] % 5 == 4 and player == 0
        )

    def scores(self, state: Any) -> list[float]:
        return [float(t) for t in state["totals"]]


class Nondeterministic(PrivateCounter):
    def reset(self, seed: int, players: int) -> Any:
        return {"tick": 0, "totals": [int(np.random.default_rng().integers(1000))] * players}


class Unsendable(PrivateCounter):
    def observe(self, state: Any) -> Any:
        return {"tick": object()}


class OutOfSpace(PrivateCounter):
    def observe_player(self, state: Any, player: int) -> PlayerView:
        return PlayerView(np.full(7, -1, dtype=np.int64))


class BadScores(PrivateCounter):
    def scores(self, state: Any) -> list[float]:
        return [0.0]


class BadView(PrivateCounter):
    def observe_player(self, state: Any, player: int) -> PlayerView:
        return PlayerView(np.zeros(1 + player, dtype=np.int64), reward="lots")


class CrashingStep(PrivateCounter):
    def step(self, state: Any, actions: dict[int, Any]) -> Any:
        raise KeyError("oops")


class FloatRender(PrivateCounter):
    def render(self, state: Any) -> np.ndarray:
        return np.zeros((4, 4, 3))  # float64, not uint8


class GrowingRender(PrivateCounter):
    def render(self, state: Any) -> np.ndarray:
        return np.zeros((4, 4 + state["tick"], 3), np.uint8)


class SpaceCheckingAgent(Agent):
    """Fails loudly unless each observation is its own (fits its own space) and the spaces
    are Gymnasium objects; samples its action space."""

    def setup(self, info: Any) -> None:
        import gymnasium

        assert isinstance(self.action_space, gymnasium.spaces.Space), self.action_space
        assert isinstance(self.observation_space, gymnasium.spaces.Space), self.observation_space
        self.action_space.seed(info.seed)

    def act(self, observation: Any) -> Any:
        if not self.observation_space.contains(np.asarray(observation, self.observation_space.dtype)):
            raise AssertionError(
                f"player {self.player_id} got an observation of shape "
                f"{np.shape(observation)} outside its space {self.observation_space}"
            )
        assert isinstance(self.reward, float) and not self.terminated
        return int(self.action_space.sample())


class IntKeyed(World):
    """Positions keyed by player id, actions that are ``{player id: step}`` maps: int map keys
    travel both ways."""

    def reset(self, seed: int, players: int) -> Any:
        return {"tick": 0, "pos": {p: 0 for p in range(players)}}

    def step(self, state: Any, actions: dict[int, Any]) -> Any:
        pos = dict(state["pos"])
        for p, a in actions.items():
            pos[p] += (a or {}).get(p, 0)
        return {"tick": state["tick"] + 1, "pos": pos}

    def observe(self, state: Any) -> Any:
        return state

    def scores(self, state: Any) -> list[float]:
        return [float(v) for v in state["pos"].values()]


class IntKeyedAgent(Agent):
    def act(self, obs: Any) -> Any:
        assert set(obs["pos"]) == set(range(len(obs["pos"]))), obs  # int keys arrived as ints
        return {self.player_id: 1}


class TupleKeyed(PrivateCounter):
    def observe(self, state: Any) -> Any:
        return {(0, 0): state["tick"]}  # packs as a list key, which no peer can decode
