"""What the world server's rules (:mod:`tickwire.protocol.server_rules`) return, and why.

The outputs are slotted dataclasses, the record style of the agent's ``Decision`` union
(:mod:`tickwire.protocol.agent_rules`): records the I/O loop only reads. The loop carries
out each one: :class:`SendTo` a message to one control identity, :class:`Publish` one on
``state``, :class:`Republish` the open tick's STATE, :class:`Probe` a control connection;
:data:`ACCEPTED` or :class:`Rejected` (with a :class:`Rejection` reason) for each action;
:class:`StatusChange` whenever a player's status changes; :class:`TickClosed` when a tick
closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .barrier import TickResult
from .errors import ProtocolError
from .messages import Message
from .server_status import Status, TextEnum


class InvalidAction(ProtocolError, ValueError):
    """An action does not fit the world's action spec; the message says why.

    Raised by ``World.validate_action``; the server rejects the action (``invalid_action``)
    and tells the agent once.
    """

    def __init__(self, text: str) -> None:
        super().__init__("invalid_action", text)


class Rejection(TextEnum):
    """Why a message was not applied; the value is the key counted under ``rejected``.

    Which ones are answered: everything refused on the control socket gets an ERROR there
    (undecodable, wrong kind, full, slot_taken, run_in_progress), except a LEAVE naming
    another player (``unknown_player``, only counted); on the actions socket only
    the first ``invalid_action`` of each player gets an ERROR (on its control socket). All
    the others are only counted: a peer that sends junk to the fan-in socket gets no echo.
    """

    # the codec could not decode it (ProtocolError.reason)
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    BAD_DTYPE = "bad_dtype"
    BAD_SHAPE = "bad_shape"
    BAD_EXT = "bad_ext"
    VERSION = "version"
    # decoded, but against the rules
    WRONG_KIND = "wrong_kind"
    WRONG_RUN = "wrong_run"
    UNKNOWN_PLAYER = "unknown_player"
    BAD_TOKEN = "bad_token"
    INVALID_ACTION = "invalid_action"
    STALE = "stale"
    FUTURE_TICK = "future_tick"
    DUPLICATE = "duplicate"
    # the server cut an actions connection (oversized or undecodable frames) that no
    # player's death or LEAVE explains: what was queued behind it on that connection is lost
    DROPPED_CONNECTION = "dropped_connection"
    # the memory guard (--memory-budget-mb) cut a connection that was filling the server's
    # memory (a message of many frames is held until its last frame arrives)
    MEMORY_GUARD = "memory_guard"
    # a JOIN that was refused
    FULL = "full"
    SLOT_TAKEN = "slot_taken"
    RUN_IN_PROGRESS = "run_in_progress"
    # with keys: a peer failed the CURVE handshake (unknown key, plaintext, wrong server key),
    # or an allowed key sent a READY/ACTION/JOIN for a slot bound to another key
    AUTH_FAILED = "auth_failed"
    WRONG_KEY = "auth_wrong_key"

    @classmethod
    def of(cls, error: ProtocolError) -> Rejection:
        """The rejection for a decoding error (an unknown codec reason counts as malformed)."""
        try:
            return cls(error.reason)
        except ValueError:
            return cls.MALFORMED


class StopReason(TextEnum):
    """Why a run ended (the summary's ``reason``); a signal gives ``"signal SIGINT"`` etc."""

    TICKS_DONE = "ticks done"
    WORLD_DONE = "world done"
    NO_PLAYERS_LEFT = "no players left"
    NOT_STARTED = "not started"
    LOBBY_TIMEOUT = "lobby timeout"
    STOPPED = "stopped"


def signal_reason(name: str) -> str:
    """The stop reason for a signal, e.g. ``"signal SIGTERM"``."""
    return f"signal {name}"


def lobby_stop_reason(why: str) -> str:
    """The summary reason when the run was stopped before it started."""
    return f"stopped in the lobby ({why})"


# Outputs are slotted records the loop only reads (not frozen, like the agent's decisions:
# a frozen dataclass costs more to build, and some are built per tick).


@dataclass(slots=True)
class SendTo:
    """Send ``message`` to one agent, ``identity``, on the control socket."""

    identity: bytes
    message: Message


@dataclass(slots=True)
class Publish:
    """Publish ``message`` to everyone on the state socket."""

    message: Message


@dataclass(slots=True)
class Republish:
    """Publish the open tick's STATE again: an actions connection was lost, and agents that
    already answered this tick send their action again (a duplicate is rejected harmlessly)."""

    tick: int


@dataclass(slots=True)
class Probe:
    """Check that ``identity`` still has a control connection; if it has none, tell
    ``ServerRules.control_lost`` (a player gone before it subscribed)."""

    identity: bytes


@dataclass(slots=True)
class Accepted:
    """The action (or batch entry) was accepted for the open tick; nothing else to do.

    One shared instance, :data:`ACCEPTED`: acceptance is the hot path, so it allocates nothing.
    """

    def __repr__(self) -> str:
        return "ACCEPTED"


ACCEPTED = Accepted()
#: What ``ServerRules.receive_action`` returns for an accepted ACTION with nothing else to
#: report (a shared constant: the I/O loop may test for it with ``is``).
ACCEPTED_ONLY: tuple[Accepted] = (ACCEPTED,)


@dataclass(slots=True)
class Rejected:
    """A message was not applied; ``text`` says what was wrong (for the log)."""

    reason: Rejection
    text: str
    player: int | None = None


@dataclass(slots=True)
class StatusChange:
    """Player ``player`` went from ``old`` (None: it just joined) to ``new`` during ``tick``."""

    player: int
    name: str
    old: Status | None
    new: Status
    tick: int
    detail: str = ""


Output = Union[SendTo, Publish, Republish, Probe, Accepted, Rejected, StatusChange]


@dataclass(slots=True)
class TickClosed:
    """A closed tick: the actions to step with (missing ones filled in) and what changed.

    ``late``: players whose action for an earlier (closed) tick arrived since the previous
    tick closed, with how many; the same arrivals the summary's ``late`` counts."""

    actions: dict[int, Any]
    result: TickResult
    changes: list[StatusChange]
    late: dict[int, int] = field(default_factory=dict)


#: No outputs (a shared empty answer).
NOTHING: tuple[Output, ...] = ()
