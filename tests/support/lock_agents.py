"""Agents for tests/test_record_lock.py (run in ``tickwire agent`` processes)."""

from __future__ import annotations

import os
import signal

from tickwire.agents import Agent
from tickwire.agents.examples.greedy_agent import GreedyAgent


class ServerStopperAgent(Agent):
    """Greedy; player 0 sends SIGSTOP to the server ($TW_SERVER_PID) when it sees tick
    $TW_STOP_AT: the server stops with exactly that many ticks in its record (each frame
    is one write), and goes on after SIGCONT."""

    def act(self, observation):
        at = os.environ.get("TW_STOP_AT")
        if at and self.player_id == 0 and self.tick == int(at):
            os.kill(int(os.environ["TW_SERVER_PID"]), signal.SIGSTOP)
        return GreedyAgent.act(self, observation)
