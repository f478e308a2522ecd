"""Membership: who joined, who is ready, live, inactive or gone, and per-player statistics."""
from __future__ import annotations

import enum
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tickwire.protocol import player_seed

from .barrier import TickResult


class Status(str, enum.Enum):
    JOINED = "joined"      #: WELCOMEd, readiness not proven yet
    READY = "ready"        #: state subscription and action path both proven
    ACTIVE = "active"      #: playing; the barrier waits for it
    INACTIVE = "inactive"  #: missed too many ticks in a row; not awaited until it answers again
    DEAD = "dead"          #: its connection went away (process died, froze, or link broke)
    LEFT = "left"          #: it said LEAVE


#: Statuses whose actions are still accepted in a tick.
PLAYING = (Status.ACTIVE, Status.INACTIVE)


@dataclass
class Player:
    """One player slot and what we know about it."""
    id: int
    name: str
    identity: bytes
    token: str
    topic: bytes
    seed: int
    status: Status = Status.JOINED
    subscribed: bool = False
    ready_sent: bool = False
    answered: int = 0
    missed: int = 0
    late: int = 0
    streak: int = 0  #: consecutive missed ticks
    last_action: Any = None
    _rt_sum: float = 0.0
    _rt_recent: deque = field(default_factory=lambda: deque(maxlen=4096))

    def record_answer(self, action: Any, response_s: float) -> None:
        self.answered += 1
        self.streak = 0
        self.last_action = action
        self._rt_sum += response_s
        self._rt_recent.append(response_s)

    def stats(self) -> dict[str, Any]:
        """Counters and response times (mean over the run, p99 over the last 4096 answers)."""
        p99 = float(np.percentile(self._rt_recent, 99)) * 1e3 if self._rt_recent else None
        mean = self._rt_sum / self.answered * 1e3 if self.answered else None
        return {"id": self.id, "name": self.name, "status": self.status.value,
                "answered": self.answered, "missed": self.missed, "late": self.late,
                "mean_ms": None if mean is None else round(mean, 3),
                "p99_ms": None if p99 is None else round(p99, 3)}


class Roster:
    """All player slots of one run, looked up by id, control identity or readiness topic."""

    def __init__(self, run: str, seed: int, capacity: int, strikes: int) -> None:
        self.run = run
        self.seed = seed
        self.capacity = capacity
        self.strikes = strikes
        self.players: dict[int, Player] = {}
        self._by_identity: dict[bytes, Player] = {}
        self._by_topic: dict[bytes, Player] = {}

    def by_identity(self, identity: bytes) -> Player | None:
        return self._by_identity.get(identity)

    def by_topic(self, topic: bytes) -> Player | None:
        return self._by_topic.get(topic)

    def free_slot(self, wanted: int | None) -> int | None:
        """The requested slot if free, else the lowest free one; None if none fits."""
        if wanted is not None:
            ok = 0 <= wanted < self.capacity and wanted not in self.players
            return wanted if ok else None
        return next((i for i in range(self.capacity) if i not in self.players), None)

    def add(self, slot: int, name: str, identity: bytes) -> Player:
        name = name or f"player-{slot}"
        if any(p.name == name for p in self.players.values()):
            name = f"{name}-{slot}"  # names are for people: keep them unique
        player = Player(id=slot, name=name, identity=identity,
                        token=secrets.token_hex(8), topic=f"tw.{self.run}.{slot}".encode(),
                        seed=player_seed(self.seed, slot))
        self.players[slot] = player
        self._by_identity[identity] = player
        self._by_topic[player.topic] = player
        return player

    def remove(self, player: Player) -> None:
        """Forget a player that went away in the lobby, freeing its slot."""
        del self.players[player.id]
        self._by_identity.pop(player.identity, None)
        self._by_topic.pop(player.topic, None)

    def mark_ready_if_proven(self, player: Player) -> bool:
        """JOINED → READY once both the subscription and the READY message were seen."""
        if player.status is Status.JOINED and player.subscribed and player.ready_sent:
            player.status = Status.READY
            return True
        return False

    def ready(self) -> list[Player]:
        return [p for p in self.players.values() if p.status is Status.READY]

    def start(self) -> None:
        """The run begins: ready players become active; the rest can no longer play."""
        for p in self.players.values():
            if p.status is Status.READY:
                p.status = Status.ACTIVE

    def heard_late(self, player: Player) -> bool:
        """A late answer: count it; an inactive player is back (the barrier waits for it
        again), since it is evidently alive. True if it was reactivated."""
        player.late += 1
        if player.status is Status.INACTIVE:
            player.status = Status.ACTIVE
            player.streak = 0
            return True
        return False

    def accepting(self) -> list[int]:
        return [p.id for p in self.players.values() if p.status in PLAYING]

    def awaited(self) -> list[int]:
        return [p.id for p in self.players.values() if p.status is Status.ACTIVE]

    def apply(self, result: TickResult) -> list[Player]:
        """Count a closed tick; return players that just became inactive (strikes)."""
        struck = []
        for pid, action in result.actions.items():
            p = self.players[pid]
            p.record_answer(action, result.response_s[pid])
            p.status = Status.ACTIVE if p.status is Status.INACTIVE else p.status
        for pid in result.missing:
            p = self.players[pid]
            p.missed += 1
            p.streak += 1
            if self.strikes and p.status is Status.ACTIVE and p.streak >= self.strikes:
                p.status = Status.INACTIVE
                struck.append(p)
        return struck

    def summary(self) -> list[dict[str, Any]]:
        return [self.players[i].stats() for i in sorted(self.players)]
