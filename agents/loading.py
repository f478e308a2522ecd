"""Loading the user's agent class from a ``--agent`` spec (``pkg.module:Class`` or
``path/file.py:Class``). The ``tickwire agent`` command itself lives in ``tickwire.cli``."""

from __future__ import annotations

from tickwire.protocol.errors import ConfigError
from tickwire.protocol.loading import load_object

from .agent import Agent
from .batch import BatchAgent


def load_agent_class(spec: str) -> type[Agent] | type[BatchAgent]:
    """The Agent (or BatchAgent) subclass named by ``pkg.module:Class`` or ``path/file.py:Class``."""
    cls = load_object(spec, "agent")
    if not (isinstance(cls, type) and issubclass(cls, (Agent, BatchAgent))):
        raise ConfigError(
            f"{spec!r} is not a subclass of tickwire.Agent: subclass it and write act(observation) "
            "(or of tickwire.BatchAgent, with act_batch(observations))",
            "--agent",
        )
    return cls
