"""The World API: what a user implements to put a game or simulation behind tickwire."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from tickwire.protocol import state_digest
from tickwire.protocol.loading import load_object  # noqa: F401  (re-exported for worlds)
from tickwire.protocol.server_rules import InvalidAction  # noqa: F401  (part of the World API)

from .snapshot import restore_state, snapshot_state


class World(ABC):
    """A lockstep world. Subclass it and implement ``reset`` and ``step``.

    ``state`` is whatever you like; only ``observe(state)`` travels to agents, encoded once
    per tick for all of them. ``step`` receives one action per playing player, keyed by
    player id, missing ones already replaced by the noop (or last) action.
    """

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

    def digest(self, state: Any) -> str:
        """A hash of the state for determinism checks (default: of ``observe(state)``)."""
        return state_digest(self.observe(state))

    def snapshot(self, state: Any) -> bytes:
        """The whole state as bytes, for checkpoints (``--record``): it must include every
        source of randomness. The default handles msgpack-able states with numpy arrays and
        numpy Generators (see :mod:`tickwire.server.snapshot`); override it with
        :meth:`restore` for anything else. Never pickle: a checkpoint may come from elsewhere."""
        return snapshot_state(state)

    def restore(self, blob: bytes) -> Any:
        """The state :meth:`snapshot` saved. Called after ``reset`` with the recorded seed and
        players, so attributes that ``reset`` sets on the world are already in place."""
        return restore_state(blob)
