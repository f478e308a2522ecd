"""The tickwire error hierarchy: one root, a few kinds, each carrying what a user needs.

::

    TickwireError
    ├── ProtocolError         a message broke the wire format or a protocol rule (.reason)
    ├── ConfigError           a flag, variable or argument that cannot work (.option)
    ├── TransportError        a socket could not bind or connect, or the peer went away
    │   ├── BindError         the server could not bind its address
    │   ├── ServerUnreachable no server answered within the join timeout
    │   └── ServerGone        the server went silent or away during the run
    ├── Refused               the server refused an agent (.code, e.g. "full"); alias AgentError
    └── LobbyTimeout          not enough players became ready in time (.summary)

Which exit code each kind gives a command is decided in one place,
``tickwire.exitcodes`` (this module stays free of CLI concerns: it is part of the pure
protocol package).
"""

from __future__ import annotations

from typing import Any


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
    """A flag, environment variable or argument has a value that cannot work.

    ``option`` names the flag (``"--players"``) when one flag is to blame.
    """

    def __init__(self, text: str, option: str | None = None) -> None:
        super().__init__(text)
        self.option = option


class TransportError(TickwireError):
    """A socket could not be bound or connected, or the peer went away."""


class BindError(TransportError):
    """The server could not bind one of its endpoints (address in use, bad path, ...)."""


class ServerUnreachable(TransportError):
    """No server answered an agent within its join timeout."""


class ServerGone(TransportError):
    """The server went silent (or away) while an agent was playing."""


class Refused(TickwireError):
    """The server refused an agent: ``code`` is the ERROR's code (``full``,
    ``slot_taken``, ``run_in_progress``, ``version``, ...), the text says what to do."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


#: The earlier name of :class:`Refused` (agents raise it when the server says no).
AgentError = Refused


class LobbyTimeout(TickwireError):
    """Not enough players became ready before the lobby timeout.

    The text names who is missing and what to do; ``summary`` is the run's summary dict
    (reason, players that joined, ...) when the server could build one.
    """

    def __init__(self, text: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.summary = summary


class RecordError(TickwireError):
    """The run record could not be written (disk full, write or fsync error), or a directory
    given to ``--resume`` / ``tickwire replay`` cannot be used; the text names the file."""


class ReplayMismatch(RecordError):
    """A re-simulated tick's state hash differs from the recorded one (the text says which)."""
