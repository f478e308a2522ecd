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
    * ``info``      — the server's WELCOME (run id, mode, deadline, world description, ...);
    * ``observation_space``, ``action_space`` — this player's spaces if the world describes
      them: Gymnasium space objects when gymnasium is installed, else the wire maps of
      :mod:`tickwire.protocol.spaces`; None when the world does not describe them.

    In a world with private views (``info.private``), ``act`` receives this player's own
    observation (it fits ``observation_space``) and, set before each call:

    * ``shared``     — the tick's shared part (the STATE payload, the same for everyone);
    * ``reward``, ``terminated``, ``truncated``, ``step_info`` — this player's reward, flags
      and info dict for the tick. A terminated or truncated player is not asked to act on
      that tick: ``on_done(observation)`` is called instead, and it plays again when the
      world says so (e.g. the next episode).

    ``act`` should return within the tick: on SIGINT/SIGTERM the runtime LEAVEs as soon as
    it has control again, and interrupts an ``act`` still running ``stop_grace_s`` later.
    """

    #: Name shown in the server's logs and summary; defaults to the class name.
    name: str | None = None

    player_id: int = -1
    tick: int = -1
    rng: np.random.Generator
    info: Welcome
    observation_space: Any = None
    action_space: Any = None
    shared: Any = None
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    step_info: dict = {}

    def setup(self, info: Welcome) -> None:
        """Called once after joining, before the first tick."""

    def act(self, observation: Any) -> Any:
        """Return this player's action for ``observation`` (the world's shared view)."""
        raise NotImplementedError(f"{type(self).__name__} must implement act(observation)")

    def on_done(self, observation: Any) -> None:
        """Private views: this player's episode is over (terminated or truncated); the last
        ``observation`` and ``reward`` are here. It is not asked to act on this tick."""

    def on_end(self, end: End) -> None:
        """Called once when the run ends (``end.reason``, ``end.scores``)."""


def space_object(space: dict | None) -> Any:
    """A WELCOME space as a Gymnasium space if gymnasium is installed, else the wire map."""
    if space is None:
        return None
    try:
        from tickwire.protocol.spaces import to_gymnasium

        return to_gymnasium(space)
    except ImportError:
        return space
