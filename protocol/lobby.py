"""The lobby's policy: when the run starts, when it gives up, which slots it frees.

Part of the world server's rules (:mod:`tickwire.protocol.server_rules`), sans-IO like them.
The run starts once every slot is ready, or with ``--min-players`` once the lobby timeout
passed; a player that joined but did not prove readiness within ``--ready-timeout`` loses
its slot (a squatter, or an agent that cannot reach the other ports).

The lobby is asked for its verdict and its next deadline on every loop turn, so each answer
is constant time: the roster keeps a count of players per status and the players still
JOINED in the order they joined (:attr:`Roster.counts`, :attr:`Roster.joined`), never a pass
over every player (with thousands of players that made the lobby quadratic).
"""

from __future__ import annotations

import enum

from .endpoints import Endpoints, connectable
from .seats import Seats
from .server_outputs import Output
from .server_status import PlayerEvent, Status


class Lobby(enum.Enum):
    """What the lobby should do now."""

    WAIT = "wait"  #: keep waiting for players
    START = "start"  #: start the run (everyone ready, or --min-players after the timeout)
    GIVE_UP = "give up"  #: timed out without enough ready players: see lobby_report()


class LobbyPolicy:
    """The lobby of one run, over its :class:`Seats`; ``endpoints`` (if known) name the
    addresses in :meth:`report`."""

    def __init__(self, seats: Seats, endpoints: Endpoints | None = None) -> None:
        self._seats = seats
        self._settings = seats.settings
        self._endpoints = endpoints
        self._opened = 0.0

    def open(self, now: float) -> None:
        """The lobby opens now; the lobby timeout counts from here."""
        self._opened = now

    def verdict(self, now: float) -> Lobby:
        """Start when every slot is ready, or with ``min_players`` once the timeout passed."""
        cfg = self._settings
        ready = self._seats.roster.counts[Status.READY]
        if ready >= cfg.players:
            return Lobby.START
        if now - self._opened < cfg.lobby_timeout_s:
            return Lobby.WAIT
        if cfg.min_players and ready >= cfg.min_players:
            return Lobby.START
        return Lobby.GIVE_UP

    def release_unready(self, now: float) -> list[Output]:
        """Free the slots of players that joined but did not prove readiness within
        ``ready_timeout_s``. In the lobby the players still JOINED are kept in the order they
        joined, so only the expired ones at the front are visited."""
        seats = self._seats
        outs: list[Output] = []
        limit = self._settings.ready_timeout_s
        players, joined_at = seats.roster.players, seats.joined_at
        expired = []
        for pid in seats.roster.joined:
            if now - joined_at.get(pid, now) <= limit:
                break  # every later one joined later
            expired.append(players[pid])
        for p in expired:
            seats.gone(
                p,
                PlayerEvent.UNSUBSCRIBED,
                f"joined but not ready within {limit:g} "
                "s: slot released (can it reach the state and actions ports?)",
                now,
                outs,
            )
        return outs

    def due(self, now: float) -> float:
        """When the lobby next decides something by time alone: its timeout, or the ready
        timeout of the earliest joiner not ready yet."""
        cfg, seats = self._settings, self._seats
        due = self._opened + cfg.lobby_timeout_s
        first = next(iter(seats.roster.joined), None)  # the earliest joiner (release_unready)
        if first is not None:
            due = min(due, seats.joined_at.get(first, now) + cfg.ready_timeout_s)
        return due

    def report(self) -> str:
        """Who is missing and what to do about it (for the lobby-timeout error)."""
        cfg, eps, roster = self._settings, self._endpoints, self._seats.roster
        base = eps.base if eps else "the server's address"
        state, actions = (
            (connectable(eps.state), connectable(eps.actions))
            if eps
            else ("its state", "its actions endpoint")
        )
        lines = [
            f"only {len(roster.ready())} of {cfg.min_players or cfg.players} needed "
            f"player(s) were ready after {cfg.lobby_timeout_s:.0f} s (address {base})."
        ]
        for p in roster.players.values():
            if p.status is Status.JOINED:
                missing = [
                    w
                    for w, ok in (
                        ("state subscription", p.subscribed),
                        ("READY on the actions socket", p.ready_sent),
                    )
                    if not ok
                ]
                lines.append(
                    f"  player {p.id} {p.name!r} joined but never proved its "
                    f"{' and '.join(missing)}: can it reach {state} and {actions}?"
                )
        never = cfg.players - len(roster.players)
        if never:
            lines.append(
                f"  {never} slot(s) were never joined: start more agents, connect them "
                f"to {self._connect_to()}, or lower --players / set --min-players."
            )
        return "\n".join(lines)

    def _connect_to(self) -> str:
        """The address agents connect to: a wildcard bind (``0.0.0.0``, ``*``) is no address
        to connect to, so name the local one and say what agents elsewhere use."""
        if self._endpoints is None:
            return "the server's address"
        base = self._endpoints.base
        local = connectable(base)
        if local == base:
            return base
        return f"{local} (agents on other hosts: tcp://THIS-HOST'S-ADDRESS:{local.rpartition(':')[2]})"
