"""Any PettingZoo ``ParallelEnv`` as a tickwire world: ``--world pettingzoo:MODULE``.

Player ``i`` is ``env.possible_agents[i]``. Each player gets its own observation, reward,
terminated/truncated flags and info (an OBSERVATION, to it alone) and its own spaces in its
WELCOME; the shared STATE says which episode and step it is and who is still in it.
Episodes follow one another: when no agent is left, the next tick starts a new episode,
reset with a seed derived from the run seed and the episode number. The summary lists
every finished episode's returns. Needs ``pip install 'tickwire[pettingzoo]'``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tickwire.protocol import ConfigError, player_seed, state_digest

from .world import PlayerView, World

PREFIX = "pettingzoo:"


@dataclass
class Episode:
    """The state between ticks: the env's last outputs, keyed by agent name."""

    number: int
    steps: int = 0
    observations: dict[str, Any] = field(default_factory=dict)
    rewards: dict[str, float] = field(default_factory=dict)
    terminations: dict[str, bool] = field(default_factory=dict)
    truncations: dict[str, bool] = field(default_factory=dict)
    infos: dict[str, dict] = field(default_factory=dict)
    returns: list[float] = field(default_factory=list)  #: this episode's, per player
    finished: list[dict[str, Any]] = field(default_factory=list)  #: earlier episodes
    totals: list[float] = field(default_factory=list)  #: over every episode, per player


def load_parallel_env(module: str, **kwargs: Any) -> Any:
    """``MODULE.parallel_env(**kwargs)``, with errors that say what to install."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"cannot import PettingZoo env module {module!r}: {e}; install it "
            "(e.g. pip install 'tickwire[pettingzoo]' for mpe2) and name the "
            "module, e.g. --world pettingzoo:mpe2.simple_spread_v3",
            "--world",
        ) from e
    if not callable(getattr(mod, "parallel_env", None)):
        raise ConfigError(
            f"module {module!r} has no parallel_env(): name a PettingZoo env "
            "module with the parallel API, e.g. mpe2.simple_spread_v3",
            "--world",
        )
    return mod.parallel_env(**kwargs)


class PettingZooWorld(World):
    """Hosts one ParallelEnv; the env object itself is the mutable part of the state."""

    def __init__(self, module: str, **env_kwargs: Any) -> None:
        self.module = module
        self.env = load_parallel_env(module, **env_kwargs)
        self.names: list[str] = list(self.env.possible_agents)
        self.default_players = len(self.names)
        self._spaces = [self.env.action_space(n) for n in self.names]
        self._seed = 0

    # ------------------------------------------------------------------ World API
    def reset(self, seed: int, players: int) -> Episode:
        if players != len(self.names):
            raise ConfigError(
                f"{self.module} has {len(self.names)} agents {self.names}, but "
                f"{players} players were asked for: leave --agents/--players out "
                f"or set it to {len(self.names)}",
                "--players",
            )
        self._seed = seed
        return self._start(Episode(0, totals=[0.0] * len(self.names)))

    def _start(self, episode: Episode) -> Episode:
        obs, infos = self.env.reset(seed=player_seed(self._seed, episode.number))
        episode.steps = 0
        episode.observations, episode.infos = dict(obs), dict(infos)
        episode.rewards = {n: 0.0 for n in obs}
        episode.terminations, episode.truncations = {}, {}
        episode.returns = [0.0] * len(self.names)
        return episode

    def step(self, state: Episode, actions: dict[int, Any]) -> Episode:
        if not self.env.agents:  # everyone is out: the next episode
            state.finished.append(
                {
                    "episode": state.number,
                    "steps": state.steps,
                    "returns": [round(r, 6) for r in state.returns],
                }
            )
            state.number += 1
            return self._start(state)
        live = list(self.env.agents)
        env_actions = {n: self._action(i, actions.get(i)) for i, n in enumerate(self.names) if n in live}
        obs, rewards, terms, truncs, infos = self.env.step(env_actions)
        state.steps += 1
        for name in live:  # an agent that left keeps its last observation
            if name in obs:
                state.observations[name] = obs[name]
        state.rewards, state.infos = dict(rewards), dict(infos)
        state.terminations, state.truncations = dict(terms), dict(truncs)
        for i, name in enumerate(self.names):
            r = float(rewards.get(name, 0.0))
            state.returns[i] += r
            state.totals[i] += r
        return state

    def _action(self, player: int, action: Any) -> Any:
        """The action as the env wants it; None (missed tick) becomes a fixed default."""
        if action is None:
            return default_action(self._spaces[player])
        return action

    def observe(self, state: Episode) -> dict[str, Any]:
        """Shared: which episode and step, and which players are still in it."""
        live = set(self.env.agents)
        return {
            "episode": state.number,
            "step": state.steps,
            "live": [i for i, n in enumerate(self.names) if n in live],
        }

    def observe_player(self, state: Episode, player: int) -> PlayerView:
        name = self.names[player]
        out = name not in self.env.agents
        return PlayerView(
            state.observations.get(name),
            float(state.rewards.get(name, 0.0)),
            bool(state.terminations.get(name, out and not state.truncations.get(name))),
            bool(state.truncations.get(name, False)),
            _plain_info(state.infos.get(name)),
        )

    def observation_space(self, player: int) -> Any:
        return self.env.observation_space(self.names[player])

    def action_space(self, player: int) -> Any:
        return self._spaces[player]

    def scores(self, state: Episode) -> list[float]:
        """Each player's return summed over every episode so far."""
        return [round(t, 6) for t in state.totals]

    def summarize(self, state: Episode) -> dict[str, Any]:
        """Per-episode returns (finished episodes) and the agent names of the players."""
        return {"agents": self.names, "episodes": list(state.finished)}

    def describe(self) -> dict[str, Any]:
        return {"name": f"{PREFIX}{self.module}", "action_spec": {}, "agents": self.names}

    def digest(self, state: Episode) -> str:
        return state_digest(
            {
                "episode": state.number,
                "step": state.steps,
                "obs": [state.observations.get(n) for n in self.names],
                "totals": state.totals,
            }
        )


def default_action(space: Any) -> Any:
    """A fixed, valid action for a player that missed a tick (the env has no noop notion)."""
    from gymnasium import spaces as gs

    if isinstance(space, gs.Discrete):
        return int(space.start)
    if isinstance(space, gs.Box):
        return np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
    if isinstance(space, (gs.MultiDiscrete, gs.MultiBinary)):
        return np.zeros(space.shape, dtype=space.dtype)
    if isinstance(space, gs.Dict):
        return {k: default_action(s) for k, s in space.spaces.items()}
    if isinstance(space, gs.Tuple):
        return tuple(default_action(s) for s in space.spaces)
    raise ConfigError(f"no default action for a {type(space).__name__} action space")


def _plain_info(info: Any) -> dict:
    """The info dict with only what msgpack can carry: numbers, strings, bytes, numpy
    arrays, and lists and maps of them (numpy scalars become numbers; the rest is left out)."""
    if not info:
        return {}
    return {str(k): v for k, v in ((k, _plain(v)) for k, v in info.items()) if v is not _DROP}


_DROP = object()


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str, bytes, np.ndarray)):
        return v
    if isinstance(v, dict):
        return _plain_info(v)
    if isinstance(v, (list, tuple)):
        return [x for x in map(_plain, v) if x is not _DROP]
    return _DROP
