"""One exit-code map for every ``tickwire`` command, and how errors and outcomes map to it.

Scripts and CI rely on these numbers: they are documented in the README (the table there is
generated from :data:`MEANING` and checked by ``tests/test_readme.py``) and never reused
for another meaning.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from tickwire.protocol.errors import (
    ConfigError,
    LobbyTimeout,
    ProtocolError,
    RecordError,
    Refused,
    ReplayMismatch,
    TickwireError,
    TransportError,
)


class ExitCode(enum.IntEnum):
    """Process exit codes shared by ``run``, ``server`` and ``agent``."""

    OK = 0
    ERROR = 1
    USAGE = 2
    LOBBY_TIMEOUT = 3
    TRANSPORT = 4
    REFUSED = 5
    PLAYERS_CRASHED = 6
    RECORD_FAILED = 7
    REPLAY_DIFFERS = 8
    PLAYERS_LEFT = 9
    INTERRUPTED = 130

    @property
    def label(self) -> str:
        """The outcome's name as it appears in ``--json`` output (``"lobby_timeout"``)."""
        return self.name.lower()


#: What each code means, for the README and ``--help``.
MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "the run ended normally (ticks done, world done); an agent: it played to the END",
    ExitCode.ERROR: "an unexpected error: an exception in the world's or agent's code, or a bug "
    "in tickwire (the traceback is on stderr)",
    ExitCode.USAGE: "bad flag, environment variable or configuration (the message names the flag "
    "and its variable)",
    ExitCode.LOBBY_TIMEOUT: "not enough players were ready before `--lobby-timeout` (the message "
    "names who is missing)",
    ExitCode.TRANSPORT: "an address could not be bound or reached, or the peer went away (agent: "
    "no server within `--join-timeout`, or it went silent)",
    ExitCode.REFUSED: "the server refused the agent (`full`, `slot_taken`, `run_in_progress`, "
    "`version`, ...)",
    ExitCode.PLAYERS_CRASHED: "the run could not go on: every player crashed, died or left before "
    "the end, at least one of them by a crash (its connection died, or its LEAVE says "
    "`agent error`), and none came back within 4 s (none is waited for when "
    "all left), or an agent process of `tickwire run` died in the "
    "lobby",
    ExitCode.RECORD_FAILED: "the run record could not be written (disk full, write or fsync "
    "error: the run stopped, `--resume DIR` continues it), a "
    "`--resume`/`replay` directory is unusable, another server is "
    "recording the `--record`/`--resume` directory (its pid and host "
    "are named), or the `--summary` file could not be written at the "
    "end (the run's own outcome is in the message and, with `--json`, "
    "in `run_outcome`)",
    ExitCode.REPLAY_DIFFERS: "`tickwire replay` (or `--resume`): a re-simulated state hash differs "
    "from the recorded one, or a record is damaged (the tick or the "
    "file and byte offset are printed)",
    ExitCode.PLAYERS_LEFT: "the run could not go on: every player left (said LEAVE, e.g. its agent "
    "was stopped by a signal) before the end, none by a crash; each one's `leave_reason` is in "
    "the summary",
    ExitCode.INTERRUPTED: "stopped by SIGINT or SIGTERM (the summary is still printed)",
}

#: Error class → exit code; the most specific class in an error's MRO wins.
_FOR_ERROR: dict[type[BaseException], ExitCode] = {
    ConfigError: ExitCode.USAGE,
    LobbyTimeout: ExitCode.LOBBY_TIMEOUT,
    TransportError: ExitCode.TRANSPORT,
    Refused: ExitCode.REFUSED,
    ProtocolError: ExitCode.ERROR,
    RecordError: ExitCode.RECORD_FAILED,
    ReplayMismatch: ExitCode.REPLAY_DIFFERS,
    TickwireError: ExitCode.ERROR,
    KeyboardInterrupt: ExitCode.INTERRUPTED,
}

#: Player statuses (summary ``status``) of a player still able to play at the end.
PLAYING_STATUSES = frozenset({"active", "inactive", "ready"})


def for_error(error: BaseException) -> ExitCode:
    """The exit code for an error that ended a command."""
    for cls in type(error).__mro__:
        if cls in _FOR_ERROR:
            return _FOR_ERROR[cls]
    return ExitCode.ERROR


def for_summary(summary: Mapping[str, Any], interrupted: bool = False) -> ExitCode:
    """The exit code for a run that produced a summary.

    Interrupted runs give INTERRUPTED; a run in which no player was left able to play gives
    PLAYERS_LEFT if every player left and none crashed (:func:`crashed`), else
    PLAYERS_CRASHED, as does a lobby abandoned because an agent died; anything else is OK.
    """
    if interrupted:
        return ExitCode.INTERRUPTED
    if str(summary.get("reason", "")).startswith("stopped in the lobby"):
        return ExitCode.PLAYERS_CRASHED  # not a signal (see interrupted): an agent died early
    players = summary.get("players", ())
    if no_player_left(players):
        return ExitCode.PLAYERS_CRASHED if any(crashed(p) for p in players) else ExitCode.PLAYERS_LEFT
    return ExitCode.OK


#: The start of the LEAVE reason the agent SDK sends when the agent's own code raised.
AGENT_ERROR = "agent error"


def crashed(player: Mapping[str, Any]) -> bool:
    """A player (summary entry) that is gone by a crash: its connection died (``dead``), or
    it left saying its code raised (the SDK's ``agent error: ...`` LEAVE)."""
    status = str(player.get("status", ""))
    return status == "dead" or (
        status == "left" and str(player.get("leave_reason") or "").startswith(AGENT_ERROR)
    )


def no_player_left(players: Iterable[Mapping[str, Any]]) -> bool:
    """True if there were players and none of them was still able to play at the end."""
    statuses = [str(p.get("status", "")) for p in players]
    return bool(statuses) and not PLAYING_STATUSES.intersection(statuses)


def markdown_table() -> str:
    """The README's exit-code table."""
    rows = ["| code | name | meaning |", "|---:|---|---|"]
    rows += [f"| {code.value} | `{code.label}` | {MEANING[code]} |" for code in ExitCode]
    return "\n".join(rows)
