"""An agent process's configuration: where to connect and how patient to be."""

from __future__ import annotations

from dataclasses import dataclass

from tickwire.protocol import ConfigError


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
        if self.slot is not None and self.slot < 0:
            raise ConfigError(f"slot (--slot) must be >= 0, got {self.slot}")
        for name, flag in (("join_timeout_s", "--join-timeout"), ("server_timeout_s", "--server-timeout")):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} ({flag}) must be > 0 seconds, got {getattr(self, name)}")
        if (self.key_path is None) != (self.server_key_path is None):
            raise ConfigError(
                "--key and --server-key go together: an agent needs its own "
                "secret key and the server's public key to connect with CURVE"
            )
        if not self.stop_grace_s >= 0:
            raise ConfigError(
                f"stop_grace_s must be >= 0 seconds (0: only a second signal "
                f"interrupts act()), got {self.stop_grace_s}"
            )
