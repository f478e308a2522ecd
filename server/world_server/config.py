"""The world server's configuration: one frozen dataclass, validated once at construction.

:data:`RANGES` is the one statement of which numbers each setting takes: :class:`ServerConfig`
checks them, and so does the command line (``tickwire.options``) for the flags and
environment variables that fill these fields, with its own wording that names both.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickwire.protocol import ConfigError
from tickwire.protocol.ranges import Range, check_ranges

MODES = ("strict", "deadline")
#: The default bind with keys (or --insecure), and without.
PUBLIC_BIND, LOOPBACK_BIND = "tcp://0.0.0.0:5555", "tcp://127.0.0.1:5555"
ON_MISSING = ("noop", "repeat")


#: field → (how errors name it, its range): checked by ServerConfig for every value that is
#: not None, and by the command line for the options that fill these fields.
RANGES: dict[str, tuple[str, Range]] = {
    "players": ("--players", Range(minimum=1)),
    "ticks": ("--ticks", Range(minimum=0)),
    "deadline_ms": ("--deadline-ms", Range(above=0)),
    "strikes": ("--strikes", Range(minimum=0, note=" (0 = never)")),
    "min_players": ("--min-players", Range(minimum=1)),
    "lobby_timeout_s": ("--lobby-timeout", Range(above=0, unit=" s")),
    "heartbeat_s": ("heartbeat_s", Range(above=0, unit=" s")),
    "tick_rate": ("--tick-rate", Range(above=0, finite=True, unit=" Hz")),
    "fsync_every": ("--fsync-every", Range(minimum=0, note=" (0 = never)")),
    "checkpoint_every": ("--checkpoint-every", Range(minimum=0, note=" (0 = never)")),
    "ready_timeout_s": ("ready_timeout_s", Range(above=0, unit=" s")),
    "memory_budget_mb": ("--memory-budget-mb", Range(minimum=0, finite=True, unit=" MB", note=" (0 = off)")),
}


@dataclass(frozen=True)
class ServerConfig:
    """Everything a run of the world server needs; validated once, at construction."""

    #: base address to bind; None: every interface (``tcp://0.0.0.0:5555``) with keys or
    #: ``insecure``, else loopback only (``tcp://127.0.0.1:5555``): the default always starts
    bind: str | None = None
    players: int = 2
    ticks: int = 1000
    seed: int = 0
    mode: str = "strict"
    deadline_ms: float = 100.0
    on_missing: str = "noop"
    strikes: int = 3
    min_players: int | None = None
    lobby_timeout_s: float = 60.0
    heartbeat_s: float = 1.0
    events_path: str | None = None  #: append one JSON object per event to this file (--events)
    tick_rate: float | None = None  #: start ticks on a fixed clock of this many Hz (--tick-rate)
    late_join: bool = False  #: a free slot may be joined mid-run (--late-join)
    record_dir: str | None = None  #: write the run record (action log + checkpoints) here
    resume_dir: str | None = None  #: resume the run recorded here (and keep recording to it)
    fsync_every: int = 1000  #: fsync the record's log every K ticks (0: never)
    checkpoint_every: int = 1000  #: checkpoint the world every N ticks (0: never)
    key_path: str | None = None  #: the server's secret key file (--key); needs allow_dir
    allow_dir: str | None = None  #: directory of allowed agents' public *.key files (--allow)
    insecure: bool = False  #: allow binding a non-loopback address without keys
    #: a JOINed player that has not proved readiness within this many seconds loses its slot
    ready_timeout_s: float = 10.0
    #: cut the connection filling the memory when RSS exceeds its start-up level by this
    #: many MB (--memory-budget-mb; 0: off)
    memory_budget_mb: float = 64.0

    def __post_init__(self) -> None:
        if self.bind is None:
            public = self.key_path is not None or self.insecure
            object.__setattr__(self, "bind", PUBLIC_BIND if public else LOOPBACK_BIND)
        check_ranges(self, RANGES)
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {MODES}, got {self.mode!r}")
        if self.on_missing not in ON_MISSING:
            raise ConfigError(f"--on-missing must be one of {ON_MISSING}, got {self.on_missing!r}")
        if self.min_players is not None and self.min_players > self.players:
            raise ConfigError(
                f"--min-players must be in 1..--players ({self.players}), got {self.min_players}"
            )
        self._check_record()
        if (self.key_path is None) != (self.allow_dir is None):
            raise ConfigError(
                "--key and --allow go together: the server needs its own secret "
                "key and the directory of the agents' public keys it allows"
            )
        if self.events_path is not None and not self.events_path:
            raise ConfigError(
                "--events (TICKWIRE_EVENTS) must name a file; leave it unset for no events file"
            )

    def _check_record(self) -> None:
        for name, value in (("--record", self.record_dir), ("--resume", self.resume_dir)):
            if value is not None and not value:
                raise ConfigError(f"{name} must name a directory; leave it unset for no record")
        if self.record_dir and self.resume_dir and self.record_dir != self.resume_dir:
            raise ConfigError(
                "--resume DIR keeps recording to DIR: drop --record, or give the same directory to both"
            )

    @property
    def record_to(self) -> str | None:
        """The directory the run is recorded to, if any (``--resume`` implies its DIR)."""
        return self.resume_dir or self.record_dir
