"""Agents used by the integration tests (importable as sample_agents:Name)."""
from agents import Agent


class InvalidAgent(Agent):
    """Always answers with an action outside the grid world's spec."""
    def act(self, observation):
        return 99


class CrashingAgent(Agent):
    """Raises in act() at tick 5."""
    def act(self, observation):
        if self.tick == 5:
            raise RuntimeError("boom at tick 5")
        return 0


class CountingAgent(Agent):
    """For the counter world: always adds its player id + 1."""
    def act(self, observation):
        return self.player_id + 1
