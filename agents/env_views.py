"""Views: how a seat of a world without private views sees the shared STATE as an RL env.

A world with private views sends each player its observation, reward and flags (an
OBSERVATION message) and describes its observation space in the WELCOME: nothing to adapt.
A world that only publishes a shared STATE needs a :class:`SeatView` to say what one seat
observes and what it is rewarded; :class:`GridView` is the one for the grid world.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from tickwire.protocol import ConfigError, Welcome


class SeatView(Protocol):
    """One seat's view of a shared STATE payload (numpy only; called once per seat and tick)."""

    def observation_space(self, welcome: Welcome) -> Any:
        """The seat's Gymnasium observation space, from its WELCOME."""

    def observe(self, payload: Any, player: int) -> Any:
        """The seat's observation of the STATE ``payload`` (a fresh object every call)."""

    def reward(self, before: Any, after: Any, player: int) -> float:
        """The seat's reward from the STATE ``before`` to the STATE ``after``."""


class GridView:
    """The grid world seen by one seat: a ``(3, size, size)`` uint8 Box of 0/1 planes —
    resources, this seat's cell, the other players' cells; the reward is this seat's score
    gained (resources collected) since the last observation."""

    def observation_space(self, welcome: Welcome) -> Any:
        from gymnasium import spaces

        size = int(welcome.world.get("size", 0))
        if size < 1:
            raise ConfigError(f"GridView needs the grid world's size in the WELCOME; world: {welcome.world}")
        return spaces.Box(0, 1, shape=(3, size, size), dtype=np.uint8)

    def observe(self, payload: Any, player: int) -> np.ndarray:
        grid = np.asarray(payload["grid"])
        pos = np.asarray(payload["positions"])
        out = np.zeros((3, *grid.shape), dtype=np.uint8)
        out[0] = grid > 0
        r, c = pos[player]
        out[1, r, c] = 1
        others = np.delete(pos, player, axis=0)
        if len(others):
            out[2, others[:, 0], others[:, 1]] = 1
        return out

    def reward(self, before: Any, after: Any, player: int) -> float:
        return float(after["scores"][player]) - float(before["scores"][player])


def default_view(welcome: Welcome) -> SeatView:
    """The view for a world without private views: :class:`GridView` for the grid world."""
    name = welcome.world.get("name", "?")
    if name == "GridWorld":
        return GridView()
    raise ConfigError(
        f"world {name} sends no private views and describes no observation space: pass "
        "view=... (a tickwire.agents.env_views.SeatView: its observation space, each seat's "
        "observation and reward from the shared state), or give the world observe_player()"
    )
