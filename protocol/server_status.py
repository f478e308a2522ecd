"""A player's status on the server and every legal change of it, in one table.

Pure data: :data:`TRANSITIONS` maps ``(status, event) → new status``; a pair that is not in
the table is a bug in the caller and raises :class:`IllegalTransition`. Events that may
arrive in a status where they change nothing (a retried LEAVE, an unsubscribe after LEAVE)
are listed as explicit self-transitions, so the table says what is harmless too.
"""

from __future__ import annotations

import enum

from .errors import TickwireError


class TextEnum(str, enum.Enum):
    """An enum whose members print, format and serialise as their plain string values."""

    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]  # str's, on purpose


class Status(TextEnum):
    """Where a player stands; the values are what the summary and the events file print."""

    JOINED = "joined"  #: WELCOMEd, readiness not proven yet
    READY = "ready"  #: state subscription and action path both proven
    ACTIVE = "active"  #: playing; the barrier waits for it
    INACTIVE = "inactive"  #: missed too many ticks in a row; not awaited until it answers again
    DEAD = "dead"  #: its connection went away (process died, froze, or link broke)
    LEFT = "left"  #: it said LEAVE


class PlayerEvent(TextEnum):
    """What can happen to a player."""

    PROVEN = "proven"  #: its subscription and its READY have both been seen
    START = "start"  #: the lobby is over, the run begins
    STRUCK = "struck"  #: missed ``--strikes`` ticks in a row (deadline mode)
    ANSWERED = "answered"  #: an action from it arrived (in time or late)
    SUBSCRIBED = "subscribed"  #: its readiness topic was subscribed (again)
    UNSUBSCRIBED = "unsubscribed"  #: its subscription went away: process died, froze or link broke
    LEAVE = "leave"  #: it said LEAVE
    LOST = "lost"  #: its control connection went away before it subscribed
    REJOINED = "rejoined"  #: a new JOIN took its slot back after it died


#: Statuses whose actions are accepted in a tick.
PLAYING = frozenset({Status.ACTIVE, Status.INACTIVE})

S, E = Status, PlayerEvent

#: Every legal status change. Keep it the only place a status is decided.
TRANSITIONS: dict[tuple[Status, PlayerEvent], Status] = {
    # lobby
    (S.JOINED, E.SUBSCRIBED): S.JOINED,
    (S.JOINED, E.ANSWERED): S.JOINED,
    (S.JOINED, E.PROVEN): S.READY,
    (S.READY, E.SUBSCRIBED): S.READY,
    (S.READY, E.ANSWERED): S.READY,
    # the run starts: the ready play, the unproven stay out of it
    (S.READY, E.START): S.ACTIVE,
    (S.JOINED, E.START): S.JOINED,
    # playing
    (S.ACTIVE, E.ANSWERED): S.ACTIVE,
    (S.ACTIVE, E.SUBSCRIBED): S.ACTIVE,
    (S.ACTIVE, E.STRUCK): S.INACTIVE,
    (S.INACTIVE, E.ANSWERED): S.ACTIVE,
    (S.INACTIVE, E.SUBSCRIBED): S.INACTIVE,
    # connection lost and regained
    (S.JOINED, E.UNSUBSCRIBED): S.DEAD,
    (S.READY, E.UNSUBSCRIBED): S.DEAD,
    (S.ACTIVE, E.UNSUBSCRIBED): S.DEAD,
    (S.INACTIVE, E.UNSUBSCRIBED): S.DEAD,
    (S.DEAD, E.UNSUBSCRIBED): S.DEAD,
    (S.DEAD, E.ANSWERED): S.DEAD,  # an action sent before it died may still arrive
    (S.DEAD, E.SUBSCRIBED): S.ACTIVE,  # reconnected: the barrier waits for it again
    (S.JOINED, E.LOST): S.DEAD,  # gone before it subscribed (killed in setup())
    (S.DEAD, E.LOST): S.DEAD,
    # rejoin: a new process takes a dead slot back; it proves readiness again, mid-run
    # (JOINED → READY on PROVEN, READY → ACTIVE on START, at once) and plays from the next tick
    (S.DEAD, E.REJOINED): S.JOINED,
    # leaving is final
    (S.JOINED, E.LEAVE): S.LEFT,
    (S.READY, E.LEAVE): S.LEFT,
    (S.ACTIVE, E.LEAVE): S.LEFT,
    (S.INACTIVE, E.LEAVE): S.LEFT,
    (S.DEAD, E.LEAVE): S.LEFT,
    (S.LEFT, E.LEAVE): S.LEFT,
    (S.LEFT, E.ANSWERED): S.LEFT,
    (S.LEFT, E.SUBSCRIBED): S.LEFT,
    (S.LEFT, E.UNSUBSCRIBED): S.LEFT,
}

del S, E


class IllegalTransition(TickwireError):
    """A status change the table does not allow: a bug in the server's rules, not in a peer."""

    def __init__(self, player: int, status: Status, event: PlayerEvent) -> None:
        super().__init__(
            f"player {player}: event {event.value!r} is not allowed in status "
            f"{status.value!r} (see TRANSITIONS in tickwire.protocol.server_status); "
            "please report this as a bug"
        )
        self.player, self.status, self.event = player, status, event


def next_status(player: int, status: Status, event: PlayerEvent) -> Status:
    """The status after ``event``; raise :class:`IllegalTransition` if the table has no entry."""
    try:
        return TRANSITIONS[status, event]
    except KeyError:
        raise IllegalTransition(player, status, event) from None
