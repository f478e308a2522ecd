"""The tickwire error hierarchy: one root, a few kinds, each carrying what a user needs."""
from __future__ import annotations


class TickwireError(Exception):
    """Root of every error tickwire raises on purpose."""


class ProtocolError(TickwireError):
    """A message could not be encoded or decoded, or broke a protocol rule.

    ``reason`` is a short machine-readable code (counted by the server under
    ``rejected``); the message text says what was wrong and what to do.
    """

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


class ConfigError(TickwireError):
    """A flag, environment variable or argument has a value that cannot work."""


class TransportError(TickwireError):
    """A socket could not be bound or connected, or the peer went away."""


class LobbyTimeout(TickwireError):
    """Not enough players became ready before the lobby timeout."""


class AgentError(TickwireError):
    """The server refused an agent (full, run in progress, bad version, ...)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
