"""tickwire's wire protocol and the server's rules: messages, codec (msgpack + numpy),
limits, errors, the tick barrier, the roster and the server's sans-IO state machine.

Pure: bytes in, messages out; events and ``now`` in, decisions out. No sockets, no clocks,
no logging.
"""

from .barrier import Offer, TickBarrier, TickResult
from .codec import ALLOWED_DTYPES, decode_payload, encode_payload
from .digest import player_seed, state_digest
from .endpoints import Endpoints, connectable, derive
from .errors import (
    BindError,
    ConfigError,
    LobbyTimeout,
    ProtocolError,
    Refused,
    RunEnded,
    ServerGone,
    ServerUnreachable,
    TickwireError,
    TransportError,
)
from .limits import ACTION_LIMITS, CONTROL_LIMITS, DEFAULT_LIMITS, Limits
from .messages import (
    KINDS,
    VERSION,
    Action,
    ActionArray,
    Actions,
    End,
    Error,
    Heartbeat,
    Join,
    Leave,
    Message,
    Observation,
    Ready,
    State,
    Welcome,
    decode,
    encode,
)
from .roster import Player, Roster
from .server_rules import InvalidAction, Lobby, Rejection, ServerRules, StopReason
from .server_status import TRANSITIONS, IllegalTransition, PlayerEvent, Status

__all__ = [
    "ALLOWED_DTYPES",
    "decode_payload",
    "encode_payload",
    "player_seed",
    "state_digest",
    "Endpoints",
    "connectable",
    "derive",
    "ConfigError",
    "LobbyTimeout",
    "RunEnded",
    "Refused",
    "BindError",
    "ServerUnreachable",
    "ServerGone",
    "ProtocolError",
    "TickwireError",
    "TransportError",
    "ACTION_LIMITS",
    "CONTROL_LIMITS",
    "DEFAULT_LIMITS",
    "Limits",
    "KINDS",
    "VERSION",
    "Action",
    "ActionArray",
    "Actions",
    "End",
    "Error",
    "Heartbeat",
    "Join",
    "Leave",
    "Message",
    "Observation",
    "Ready",
    "State",
    "Welcome",
    "decode",
    "encode",
    "Offer",
    "TickBarrier",
    "TickResult",
    "Player",
    "Roster",
    "InvalidAction",
    "Lobby",
    "Rejection",
    "ServerRules",
    "StopReason",
    "TRANSITIONS",
    "IllegalTransition",
    "PlayerEvent",
    "Status",
]


def __getattr__(name: str) -> object:
    """``AgentError``: the old name of :class:`Refused` (warns; removed in the next release)."""
    from .errors import deprecated

    return deprecated(__name__, name)
