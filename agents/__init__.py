"""The tickwire agent SDK: subclass :class:`Agent`, write ``act``, call :func:`run`.

A trainer that drives seats from its own loop uses :mod:`tickwire.agents.env` instead
(``SeatEnv``, ``ParallelSeats``, ``make_vector_env``, ``launch_world``: loaded on first use,
they need gymnasium)."""

from tickwire.plumbing.lazy import lazy_exports

from .agent import Agent
from .batch import BatchAgent
from .config import AgentConfig
from .runtime import AgentResult, run
from .worker import Worker

__all__ = [
    "Agent",
    "AgentConfig",
    "BatchAgent",
    "AgentResult",
    "run",
    "Worker",
    "SeatEnv",
    "ParallelSeats",
    "make_vector_env",
    "launch_world",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "SeatEnv": "tickwire.agents.env",
        "ParallelSeats": "tickwire.agents.env",
        "make_vector_env": "tickwire.agents.env",
        "launch_world": "tickwire.agents.env_launch",
    },
)
