"""tickwire's wire protocol: messages, codec (msgpack + numpy), limits, errors.

Pure: bytes in, messages out. No sockets, no clocks, no logging.
"""
from .codec import ALLOWED_DTYPES, decode_payload, encode_payload
from .digest import player_seed, state_digest
from .endpoints import Endpoints, connectable, derive
from .errors import (
                     AgentError,
                     ConfigError,
                     LobbyTimeout,
                     ProtocolError,
                     TickwireError,
                     TransportError,
)
from .limits import ACTION_LIMITS, DEFAULT_LIMITS, Limits
from .messages import (
                     KINDS,
                     VERSION,
                     Action,
                     Actions,
                     End,
                     Error,
                     Heartbeat,
                     Join,
                     Leave,
                     Message,
                     Ready,
                     State,
                     Welcome,
                     decode,
                     encode,
)

__all__ = [
    "ALLOWED_DTYPES", "decode_payload", "encode_payload", "player_seed", "state_digest",
    "Endpoints", "connectable", "derive", "AgentError", "ConfigError", "LobbyTimeout",
    "ProtocolError", "TickwireError", "TransportError", "ACTION_LIMITS", "DEFAULT_LIMITS",
    "Limits", "KINDS", "VERSION", "Action", "Actions", "End", "Error", "Heartbeat", "Join", "Leave",
    "Message", "Ready", "State", "Welcome", "decode", "encode",
]
