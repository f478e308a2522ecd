"""One base address per run → the three endpoints (state, actions, control)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Endpoints:
    """The three addresses a run uses; ``base`` is what the user typed."""

    base: str
    state: str
    actions: str
    control: str


def derive(base: str) -> Endpoints:
    """``tcp://H:P`` → P, P+1, P+2; ``ipc://X`` / ``inproc://X`` → X.state, X.actions, X.control.

    ``tcp://H:0`` is allowed on the server side only (it picks three free ports).
    """
    scheme, sep, rest = base.partition("://")
    if not sep or not rest:
        raise ConfigError(
            f"address {base!r} has no scheme: use tcp://HOST:PORT, ipc:///path/prefix or inproc://name"
        )
    if scheme in ("ipc", "inproc"):
        return Endpoints(base, *(f"{base}.{n}" for n in ("state", "actions", "control")))
    if scheme != "tcp":
        raise ConfigError(f"address {base!r}: scheme {scheme!r} is not supported; use tcp, ipc or inproc")
    host, colon, port_text = rest.rpartition(":")
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65533:
        raise ConfigError(
            f"address {base!r} needs a port: tcp://HOST:PORT with PORT <= 65533 "
            "(the run also uses PORT+1 and PORT+2)"
        )
    port = int(port_text)
    return Endpoints(base, *(f"tcp://{host}:{port + i}" for i in range(3)))


def with_port(base: str, port: int) -> str:
    """Replace the port of a tcp base address (used after binding port 0)."""
    host = base.partition("://")[2].rpartition(":")[0]
    return f"tcp://{host}:{port}"


def connectable(base: str) -> str:
    """Turn a bind address into one a local agent can connect to (``*``/0.0.0.0 → 127.0.0.1)."""
    for wildcard in ("tcp://*:", "tcp://0.0.0.0:"):
        if base.startswith(wildcard):
            return "tcp://127.0.0.1:" + base[len(wildcard) :]
    return base
