"""An agent process's configuration: where to connect and how patient to be."""

from __future__ import annotations

from dataclasses import dataclass

from tickwire.protocol import ConfigError
from tickwire.protocol.ranges import Range, check_ranges

#: field → (how errors name it, its range): checked by AgentConfig, and by the command line
#: for the options that fill these fields (tickwire.options takes its bounds from here).
RANGES: dict[str, tuple[str, Range]] = {
    "slot": ("slot (--slot)", Range(minimum=0)),
    "join_timeout_s": ("join_timeout_s (--join-timeout)", Range(above=0, unit=" s")),
    "server_timeout_s": ("server_timeout_s (--server-timeout)", Range(above=0, unit=" s")),
    "stop_grace_s": (
        "stop_grace_s",
        Range(minimum=0, unit=" s", note=" (0: only a second signal interrupts act())"),
    ),
}


@dataclass(frozen=True)
class AgentConfig:
    """Where to connect and how patient to be; validated once, at construction."""

    connect: str
    slot: int | None = None  #: ask for this player slot (K agents: slot..slot+K-1)
    join_timeout_s: float = 60.0  #: give up if no server answers within this
    server_timeout_s: float = 10.0  #: exit if the server is silent this long
    handle_signals: bool = True  #: SIGINT/SIGTERM → LEAVE and exit cleanly
    #: after the first SIGINT/SIGTERM, user code (``act()``) still running this long is
    #: interrupted (0: only a second signal interrupts it)
    stop_grace_s: float = 2.0
    key_path: str | None = None  #: this agent's secret key file (--key)
    server_key_path: str | None = None  #: the server's public key file (--server-key)

    def __post_init__(self) -> None:
        check_ranges(self, RANGES)
        if (self.key_path is None) != (self.server_key_path is None):
            raise ConfigError(
                "--key and --server-key go together: an agent needs its own "
                "secret key and the server's public key to connect with CURVE"
            )
