"""BatchAgent: one policy acting for every player its process hosts, in one call."""

from __future__ import annotations

from typing import Any

import numpy as np
from tickwire.protocol import End, Welcome

from .agent import Agent

#: Spaces whose values stack into one array along a new first axis.
STACKABLE = ("discrete", "box", "multi_discrete", "multi_binary")


class BatchAgent:
    """All the players one process hosts (``tickwire agent --count K``, ``tickwire run
    --per-process K``, ``run(MyBatch(), connect, count=K)``). Write
    ``act_batch(observations) -> actions``: one call per tick for the K seats, returning an
    array whose first axis has one action per seat, in the order of :attr:`player_ids`
    (e.g. ``np.int64`` of shape ``[K]`` for a discrete space, ``[K, *shape]`` for a box).
    The actions travel as one ACTION_ARRAY message and the server checks them together.

    ``observations`` is, with a shared view, the tick's state (the same for every seat,
    received once); with private views, the acting seats' observations stacked into one
    array (first axis aligned with :attr:`player_ids`), which needs every seat to have the
    same observation space of a stackable kind (discrete, box, multi_discrete,
    multi_binary). The seats must also share one action space. Where they do not, setup
    stops with an error: use the per-seat :class:`~tickwire.agents.agent.Agent` there.

    Set by the runtime:

    * ``player_ids`` — int64 array of the seats acting in this call (all seats with a shared
      view; the ones not terminated or truncated with private views);
    * ``tick``, ``info`` (the K WELCOMEs, hosting order), ``rng`` (seeded from the first
      seat's seed), ``observation_space``, ``action_space`` (shared by the seats);
    * private views: ``shared`` (the tick's STATE payload), ``rewards`` (float array aligned
      with ``player_ids``), ``step_infos`` (list of dicts).
    """

    #: Name shown in the server's logs and summary (seats are NAME-0 .. NAME-K-1).
    name: str | None = None

    player_ids: np.ndarray = np.zeros(0, np.int64)
    tick: int = -1
    rng: np.random.Generator
    info: list[Welcome] = []
    observation_space: Any = None
    action_space: Any = None
    shared: Any = None
    rewards: np.ndarray = np.zeros(0)
    step_infos: list[dict] = []

    def setup(self, info: list[Welcome]) -> None:
        """Called once, when every seat has joined, before the first tick."""

    def act_batch(self, observations: Any) -> Any:
        """Return one action per seat in :attr:`player_ids` (an array, first axis K)."""
        raise NotImplementedError(f"{type(self).__name__} must implement act_batch(observations)")

    def on_done(self, player_id: int, observation: Any) -> None:
        """Private views: seat ``player_id``'s episode is over; it does not act this tick."""

    def on_end(self, end: End) -> None:
        """Called once when the run ends."""


class Seat(Agent):
    """One seat of a :class:`BatchAgent` (the runtime's per-player bookkeeping); it never acts."""

    def act(self, observation: Any) -> Any:  # pragma: no cover - the batch acts for it
        raise RuntimeError("a BatchAgent seat does not act alone")


def check_seats(batch: BatchAgent, welcomes: list[Welcome]) -> None:
    """Raise ValueError, naming the per-seat Agent, if the seats cannot be batched: different
    action spaces, or private views whose observations do not stack."""
    name = type(batch).__name__
    spaces = {repr(w.action_space) for w in welcomes}
    if len(spaces) > 1:
        raise ValueError(
            f"{name}: the {len(welcomes)} seats have different action spaces ({', '.join(sorted(spaces))}); "
            "a BatchAgent returns one array for all of them: host these players with the per-seat "
            "tickwire.Agent (or one BatchAgent per space)"
        )
    if not welcomes[0].private:
        return
    obs = {repr(w.observation_space) for w in welcomes}
    space = welcomes[0].observation_space
    if len(obs) > 1 or space is None or space.get("type") not in STACKABLE:
        raise ValueError(
            f"{name}: this world gives each player a private view, and the seats' observations do "
            f"not stack into one array (observation spaces: {', '.join(sorted(obs))}; stackable: "
            f"one shared space of type {', '.join(STACKABLE)}): use the per-seat tickwire.Agent"
        )


def stack(observations: list[Any]) -> np.ndarray:
    """The acting seats' private observations as one array (first axis: the seats)."""
    return np.stack([np.asarray(o) for o in observations]) if observations else np.zeros(0)
