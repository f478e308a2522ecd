"""Every error tickwire raises for users to catch, in one module (the lowest layer: the pure
protocol package, so every part that raises them can import it).

::

    TickwireError              root: ``except TickwireError`` catches all of these
    ├── ProtocolError          a message broke the wire format or a protocol rule (.reason)
    ├── ConfigError            a flag, variable or argument that cannot work (.option)
    │   └── PlayerStartError   PlayerPool: a player could not be built in its process
    ├── TransportError         a socket could not connect, or a chief/worker peer went away
    │   ├── BindError          a server, hub or pool could not bind its address
    │   ├── ServerUnreachable  an agent got no WELCOME (or could not send READY) in time
    │   └── ServerGone         a playing agent's server went silent, or restarted without it
    ├── Refused                the server refused an agent (.code: full, slot_taken, ...)
    ├── LobbyTimeout           not enough players became ready in time (.summary)
    ├── RunEnded               seats as an environment: the world's run is over (its END came)
    ├── RecordError            the run record cannot be written or read (--record/--resume/replay)
    │   ├── RecordLocked       another live server records that directory (.holder)
    │   └── ReplayMismatch     a re-simulated state hash differs from the recorded one
    ├── SnapshotError          a world state cannot be snapshotted or restored
    ├── PlayerError            PlayerPool: a player's method raised (.index, .remote_traceback)
    ├── PlayerDied             PlayerPool: a player's process exited (.index, .exitcode)
    └── PoolStateError         PlayerPool: submit/collect out of order
        ├── AlreadySubmitted   submit twice without a collect
        └── NotSubmitted       collect without a submit

What to do about each (the message text always says it for the case at hand):

* ``ProtocolError``: a peer sent something tickwire cannot read; the server counts and drops
  it (``rejected`` in the summary), an agent reports it. Check both sides' versions.
* ``ConfigError``: fix the flag named by ``.option`` (exit code 2, ``usage``).
* ``BindError``: another process holds the address (a server still running there?), or the
  address cannot be bound from here; stop it or pass another ``--bind``.
* ``ServerUnreachable``: no server answered within ``--join-timeout``: start it, check the
  address (and its next two ports), and with keys ``--key``/``--server-key``.
* ``ServerGone``: the server was silent for ``--server-timeout`` while the agent played (it
  was killed, or the network is down), or a restarted server would not take the agent
  back; start the agent again when a server runs.
* ``TransportError`` itself: a bad address for ``connect`` (fix it), or a Worker's chief went
  away or refused it (see the text).
* ``Refused``: read ``.code``; ``full`` and ``run_in_progress`` mean start fewer agents or
  join before the run starts (``--late-join``); ``version`` means upgrade one side.
* ``LobbyTimeout``: the text names who is missing; start them, or raise ``--lobby-timeout``.
* ``RunEnded``: the world a ``SeatEnv``/``ParallelSeats`` plays in has ended its run; start a
  new run (or launch a world) and make a new environment.
* ``RecordError`` and below: the text names the file; ``--resume DIR`` continues a run whose
  record stopped, ``RecordLocked`` waits for the other server.
* ``PlayerError`` / ``PlayerDied`` / ``PoolStateError``: fix the player's code, close the
  pool, or call submit/collect in turn.

``AgentError`` is the old name of :class:`Refused`; it still works for one release and warns.
Which exit code each kind gives a command is decided in one place, ``tickwire.exitcodes``
(this module stays free of CLI concerns: it is part of the pure protocol package).
"""

from __future__ import annotations

import warnings
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
    """A socket could not be connected, or a peer went away (the subclasses say which
    side; a Worker's chief going away is a plain TransportError)."""


class BindError(TransportError):
    """A world server, a hub (PlayerPool, Chief) could not bind one of its endpoints: the
    address is in use (a live ipc socket file, a taken tcp port) or cannot be bound here."""


class ServerUnreachable(TransportError):
    """An agent got no WELCOME from a server (or could not send READY) within its join
    timeout: no server there, a wrong address, a firewall, or keys that do not match."""


class ServerGone(TransportError):
    """A playing agent's server went silent for longer than the server timeout (killed,
    network down), or a server restarted at the address did not take the agent back."""


class Refused(TickwireError):
    """The server refused an agent: ``code`` is the ERROR's code (``full``,
    ``slot_taken``, ``run_in_progress``, ``version``, ...), the text says what to do."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


class LobbyTimeout(TickwireError):
    """Not enough players became ready before the lobby timeout.

    The text names who is missing and what to do; ``summary`` is the run's summary dict
    (reason, players that joined, ...) when the server could build one.
    """

    def __init__(self, text: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.summary = summary


class RunEnded(TickwireError):
    """The world's run is over (its END came): no episode can start; start a new run."""


class RecordError(TickwireError):
    """The run record could not be written (disk full, write or fsync error), or a directory
    given to ``--resume`` / ``tickwire replay`` cannot be used; the text names the file.
    ``summary`` is the run's summary when a server stopped because of it."""

    summary: dict[str, Any] | None = None


class RecordLocked(RecordError):
    """Another live process holds a record directory's lock: a server records (or resumes)
    the run there. ``holder`` is what it wrote into the lock file (pid, host, since)."""

    def __init__(self, text: str, holder: dict[str, Any]) -> None:
        super().__init__(text)
        self.holder = holder


class ReplayMismatch(RecordError):
    """A re-simulated tick's state hash differs from the recorded one (the text says which)."""


class SnapshotError(TickwireError):
    """A world state could not be snapshotted or restored; the message says which part."""


class PlayerError(TickwireError):
    """A player's method raised. ``index``, ``remote_traceback``; ``errors`` has every
    player that raised in this call (index → traceback), ``results`` the other actions."""

    def __init__(self, index: int, remote_traceback: str, errors: dict[int, str], results: list[Any]) -> None:
        last = remote_traceback.strip().splitlines()[-1] if remote_traceback.strip() else "?"
        more = f" (and {len(errors) - 1} more player(s))" if len(errors) > 1 else ""
        super().__init__(
            f"player {index} raised {last}{more}\n--- remote traceback of player "
            f"{index} ---\n{remote_traceback}"
        )
        self.index, self.remote_traceback, self.errors, self.results = (
            index,
            remote_traceback,
            errors,
            results,
        )


class PlayerDied(TickwireError):
    """A player's process exited; the pool cannot answer for its players any more.
    ``index`` (the first of them), ``players`` (all it hosted), ``exitcode``, ``output``
    (the last lines the process wrote to stderr)."""

    def __init__(
        self, index: int, exitcode: int | None, players: list[int] | None = None, output: str = ""
    ) -> None:
        how = (
            f"was killed by signal {-exitcode}"
            if exitcode and exitcode < 0
            else f"exited with code {exitcode}"
        )
        hosted = f" (it hosted players {players})" if players and len(players) > 1 else ""
        tail = f"\n--- its last output ---\n{output}" if output.strip() else ""
        super().__init__(
            f"player {index}'s process {how}{hosted}; close the pool (the other "
            f"processes are unaffected, but nothing answers for these players){tail}"
        )
        self.index, self.exitcode, self.players, self.output = index, exitcode, players, output


class PlayerStartError(ConfigError):
    """A player could not be started in its process; the text has that process's own error."""

    def __init__(self, index: int | None, name: str, error: str) -> None:
        who = f"player {index} ({name})" if index is not None else f"the process for {name}"
        super().__init__(f"{who} could not be started in its process:\n{error.rstrip()}")
        self.index, self.error = index, error


class PoolStateError(TickwireError):
    """submit/collect called out of order."""


class AlreadySubmitted(PoolStateError):
    """``submit`` twice without a ``collect`` in between."""


class NotSubmitted(PoolStateError):
    """``collect`` without a ``submit`` before it."""


#: Old names still importable for one release, each with a DeprecationWarning.
DEPRECATED = {"AgentError": "Refused"}


def deprecated(module: str, name: str) -> Any:
    """The class an old name stands for, after warning that ``module.name`` is going away."""
    new = DEPRECATED.get(name)
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.{name} is deprecated and will be removed in the next release: use {module}.{new}",
        DeprecationWarning,
        stacklevel=3,
    )
    return globals()[new]


def __getattr__(name: str) -> Any:
    return deprecated(__name__, name)
