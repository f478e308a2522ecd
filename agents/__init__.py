"""The tickwire agent SDK: subclass :class:`Agent`, write ``act``, call :func:`run`."""

from .agent import Agent
from .batch import BatchAgent
from .config import AgentConfig
from .runtime import AgentResult, run
from .worker import Worker

__all__ = ["Agent", "AgentConfig", "BatchAgent", "AgentResult", "run", "Worker"]
