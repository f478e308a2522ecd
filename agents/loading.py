"""Loading the user's agent class from a ``--agent`` spec (``pkg.module:Class`` or
``path/file.py:Class``). The ``tickwire agent`` command itself lives in ``tickwire.cli``."""

from __future__ import annotations

from tickwire.protocol.errors import ConfigError
from tickwire.protocol.loading import load_object

from .agent import Agent


def load_agent_class(spec: str) -> type[Agent]:
    """The Agent subclass named by ``pkg.module:Class`` or ``path/file.py:Class``."""
    cls = load_object(spec, "agent")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ConfigError(
            f"{spec!r} is not a subclass of tickwire.Agent: subclass it and write act(observation)", "--agent"
        )
    return cls
