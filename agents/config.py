"""An agent process's configuration: where to connect and how patient to be."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentConfig:
    """Where to connect and how patient to be."""
    connect: str
    slot: int | None = None            #: ask for this player slot (K agents: slot..slot+K-1)
    join_timeout_s: float = 60.0       #: give up if no server answers within this
    server_timeout_s: float = 10.0     #: exit if the server is silent this long
    handle_signals: bool = True        #: SIGINT/SIGTERM → LEAVE and exit cleanly
    #: after the first SIGINT/SIGTERM, user code (``act()``) still running this long is
    #: interrupted (0: only a second signal interrupts it)
    stop_grace_s: float = 2.0
