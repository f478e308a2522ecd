"""A grid world whose own memory grows once, legitimately, and then stays: a server that is
big by itself (thousands of players' roster, queues, world) without any peer bringing it."""

import os

from tickwire.server.worlds.grid_world import GridWorld

MB = 2**20


class GrowingWorld(GridWorld):
    """The grid world that, at its ``TICKWIRE_GROW_AT``-th step (default 2), allocates and
    touches ``TICKWIRE_GROW_MB`` MB (default 40) and holds it for the rest of the run."""

    def __init__(self) -> None:
        super().__init__()
        self._steps = 0
        self._held: bytes | None = None

    def step(self, state, actions):
        self._steps += 1
        if self._held is None and self._steps >= int(os.environ.get("TICKWIRE_GROW_AT", "2")):
            self._held = b"\x01" * (int(os.environ.get("TICKWIRE_GROW_MB", "40")) * MB)  # resident
        return super().step(state, actions)
