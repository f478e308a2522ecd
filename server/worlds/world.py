"""The World API: what a user implements to put a game or simulation behind tickwire."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from tickwire.protocol import state_digest
from tickwire.protocol.loading import load_object  # noqa: F401  (re-exported for worlds)
from tickwire.protocol.server_rules import InvalidAction  # noqa: F401  (part of the World API)
from tickwire.protocol.spaces import from_gymnasium


@dataclass(frozen=True, slots=True)
class PlayerView:
    """What one player alone receives for a tick (see :meth:`World.observe_player`).

    ``terminated`` or ``truncated`` takes the player out of the tick: it is not waited for,
    its action is not accepted, the tick counts as ``done`` for it. It plays again as soon
    as a later view says neither (e.g. the world started a new episode).
    """

    observation: Any = None
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict | None = None


class ActionBatch(NamedTuple):
    """A tick's actions as arrays, for a world with ``accepts_action_array = True``:
    ``ids`` (int64, ascending) are the players that take part in the tick and ``actions``
    (first axis aligned with ``ids``) their actions, missing ones already filled in."""

    ids: np.ndarray
    actions: np.ndarray

    def to_dict(self) -> dict[int, Any]:
        """The same actions as ``{player id: action}`` (what ``step`` gets by default)."""
        values = self.actions.tolist() if self.actions.ndim == 1 else list(self.actions)
        return dict(zip(self.ids.tolist(), values))

    @staticmethod
    def of(actions: dict[int, Any]) -> ActionBatch:
        """The batch of a tick's ``{player id: action}`` (ids sorted)."""
        ids = np.fromiter(actions.keys(), dtype=np.int64, count=len(actions))
        try:
            values = np.asarray(list(actions.values()))
        except ValueError:  # actions of different shapes: one object each
            values = np.empty(len(actions), dtype=object)
            values[:] = list(actions.values())
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            order = np.argsort(ids, kind="stable")
            ids, values = ids[order], values[order]
        return ActionBatch(ids, values)


from .snapshot import restore_state, snapshot_state  # noqa: E402  (snapshot imports StepResult)


class World(ABC):
    """A lockstep world. Subclass it and implement ``reset`` and ``step``.

    ``state`` is whatever you like; only ``observe(state)`` travels to agents, encoded once
    per tick for all of them. ``step`` receives one action per playing player, keyed by
    player id, missing ones already replaced by the noop (or last) action.
    """

    #: True: ``step`` receives the tick's actions as an :class:`ActionBatch` (numpy arrays:
    #: player ids and their actions) instead of a dict; a world whose ``step`` is vectorised
    #: saves the per-player conversion. Default False: the dict.
    accepts_action_array: bool = False

    #: Shown to agents in WELCOME (``info.world``) and used by :meth:`validate_action`.
    #: ``{"type": "discrete", "n": K}`` accepts the ints 0..K-1; ``{}`` accepts anything.
    action_spec: dict[str, Any] = {}

    @abstractmethod
    def reset(self, seed: int, players: int) -> Any:
        """Return the initial state for ``players`` players, deterministic in ``seed``."""

    @abstractmethod
    def step(self, state: Any, actions: dict[int, Any]) -> Any:
        """Return the next state from exactly the actions accepted for this tick."""

    def observe(self, state: Any) -> Any:
        """The part of the state all agents see (dicts, lists, scalars, numpy arrays)."""
        return state

    def done(self, state: Any) -> bool:
        """True ends the run before ``--ticks`` is reached."""
        return False

    def scores(self, state: Any) -> list[float]:
        """One score per player id (index = player id)."""
        return []

    def noop(self) -> Any:
        """The action used for a player that did not answer in time."""
        return None

    def describe(self) -> dict[str, Any]:
        """What agents learn about the world when they join."""
        return {"name": type(self).__name__, "action_spec": self.action_spec}

    def validate_action(self, action: Any) -> Any:
        """Return the action if it fits ``action_spec``, else raise :class:`InvalidAction`."""
        if self.action_spec.get("type") == "discrete":
            n = self.action_spec["n"]
            if type(action) is not int or not 0 <= action < n:
                raise InvalidAction(f"action {action!r} is not an int in 0..{n - 1}")
        return action

    # ------------------------------------------------------------------ per-player views
    # Optional: a world that overrides observe_player sends each playing player its own
    # OBSERVATION every tick (to that player only), besides the shared STATE.

    def observe_player(self, state: Any, player: int) -> PlayerView:
        """``player``'s private view of ``state``: observation, reward, terminated, truncated
        and info. Not overridden: every player sees only ``observe(state)`` (no extra cost)."""
        raise NotImplementedError

    @property
    def has_player_views(self) -> bool:
        """True if this world overrides :meth:`observe_player`."""
        return type(self).observe_player is not World.observe_player

    def observation_space(self, player: int) -> Any:
        """``player``'s observation space: a Gymnasium space, a space map of
        :mod:`tickwire.protocol.spaces`, or None (not described)."""
        return None

    def action_space(self, player: int) -> Any:
        """``player``'s action space (as :meth:`observation_space`); when given, the server
        checks every action against it instead of calling :meth:`validate_action`."""
        return None

    def wire_spaces(self, player: int) -> tuple[dict | None, dict | None]:
        """(observation space, action space) of ``player`` as wire maps (None: not described)."""
        obs, act = self.observation_space(player), self.action_space(player)
        return (None if obs is None else from_gymnasium(obs), None if act is None else from_gymnasium(act))

    # ------------------------------------------------------------------ render hook
    def render(self, state: Any) -> np.ndarray:
        """Optional: a picture of ``state`` as an (H, W, 3) uint8 RGB array.

        Render at native resolution (e.g. one pixel per grid cell): viewers scale it up
        without smoothing (``tickwire run --render FILE``, the replay page of ``tickwire
        replay DIR --html FILE``, which embeds one frame per tick, so small frames keep the
        page small). Every frame of a run should have the same shape. Not overridden: the
        world has no pictures (the replay page still shows the players and the hashes)."""
        raise NotImplementedError

    @property
    def has_render(self) -> bool:
        """True if this world overrides :meth:`render`."""
        return type(self).render is not World.render

    def summarize(self, state: Any) -> dict[str, Any]:
        """Extra entries for the run's summary (e.g. per-episode returns); default none."""
        return {}

    def digest(self, state: Any) -> str:
        """A hash of the state for determinism checks (default: of ``observe(state)``)."""
        return state_digest(self.observe(state))

    def snapshot(self, state: Any) -> bytes:
        """The whole state as bytes, for checkpoints (``--record``): it must include every
        source of randomness. The default handles msgpack-able states with numpy arrays and
        numpy Generators (see :mod:`tickwire.server.worlds.snapshot`); override it with
        :meth:`restore` for anything else. Never pickle: a checkpoint may come from elsewhere."""
        return snapshot_state(state)

    def restore(self, blob: bytes) -> Any:
        """The state :meth:`snapshot` saved. Called after ``reset`` with the recorded seed and
        players, so attributes that ``reset`` sets on the world are already in place."""
        return restore_state(blob)
