"""The Agent base class: subclass it and write ``act``."""
from __future__ import annotations

from typing import Any

import numpy as np
from tickwire.protocol import End, Welcome


class Agent:
    """One player. Write ``act(observation) -> action``; everything else is optional.

    Set by the runtime before ``setup`` is called:

    * ``player_id`` — this player's id (index into per-player arrays of the world);
    * ``tick``      — the tick the current observation belongs to;
    * ``rng``       — a ``numpy.random.Generator`` seeded from the run seed and player id,
      so even random agents are reproducible;
    * ``info``      — the server's WELCOME (run id, mode, deadline, world description, ...).

    ``act`` should return within the tick: on SIGINT/SIGTERM the runtime LEAVEs as soon as
    it has control again, and interrupts an ``act`` still running ``stop_grace_s`` later.
    """

    #: Name shown in the server's logs and summary; defaults to the class name.
    name: str | None = None

    player_id: int = -1
    tick: int = -1
    rng: np.random.Generator
    info: Welcome

    def setup(self, info: Welcome) -> None:
        """Called once after joining, before the first tick."""

    def act(self, observation: Any) -> Any:
        """Return this player's action for ``observation`` (the world's shared view)."""
        raise NotImplementedError(f"{type(self).__name__} must implement act(observation)")

    def on_end(self, end: End) -> None:
        """Called once when the run ends (``end.reason``, ``end.scores``)."""
