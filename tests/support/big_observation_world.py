"""A grid world whose shared observation carries a large array (a fresh one each tick), so a
subscriber that never reads shows how many states the server keeps queued for it."""

from typing import Any

import numpy as np
from tickwire.server.worlds.grid_world import GridWorld
from tickwire.server.worlds.world import PlayerView

#: Bytes of padding in every tick's observation (the issue's measurement used 256 KiB).
PADDING = 256 * 1024


class BigObservationWorld(GridWorld):
    """The grid world (same states, same hashes) with ``PADDING`` bytes in each observation."""

    def observe(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**super().observe(state), "padding": np.full(PADDING, state["tick"] % 251, dtype=np.uint8)}


class BigPrivateWorld(GridWorld):
    """The grid world, and each player gets its own ``PADDING``-byte view every tick (sent on
    its control connection)."""

    def observe_player(self, state: dict[str, Any], player: int) -> PlayerView:
        return PlayerView(np.full(PADDING, (state["tick"] + player) % 251, dtype=np.uint8), reward=0.0)
