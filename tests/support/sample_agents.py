"""Agents used by the integration tests (importable as support.sample_agents:Name)."""

from tickwire.agents import Agent


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


class PlacementProbe(Agent):
    """Writes its process's CPU affinity and scheduling policy to $PROBE_DIR/<player>.json."""

    def setup(self, info):
        import json
        import os

        with open(os.path.join(os.environ["PROBE_DIR"], f"{self.player_id}.json"), "w") as f:
            json.dump(
                {
                    "cpus": sorted(os.sched_getaffinity(0)),
                    "batch": os.sched_getscheduler(0) == os.SCHED_BATCH,
                },
                f,
            )

    def act(self, observation):
        return 0


class StuckInSetup(Agent):
    """Never finishes setup() (a model that takes forever to load): killed there by tests."""

    def setup(self, info):
        import threading

        threading.Event().wait(120)

    def act(self, observation):
        return 0


class ServerKillerAgent(Agent):
    """Greedy (a pure function of the observation, so fresh processes after a resume act the
    same); player 0 SIGKILLs the server ($TW_SERVER_PID) when it sees tick $TW_KILL_AT."""

    def act(self, observation):
        import os
        import signal

        from tickwire.agents.examples.greedy_agent import GreedyAgent

        kill_at = os.environ.get("TW_KILL_AT")
        if kill_at and self.player_id == 0 and self.tick == int(kill_at):
            os.kill(int(os.environ["TW_SERVER_PID"]), signal.SIGKILL)
        return GreedyAgent.act(self, observation)


class MarkupNamedAgent(Agent):
    """Its name is markup (a page must show it as text); player 0 answers tick 5 after a
    deliberate 0.2 s, past its deadline (runs paced at 40 ticks/s): a missed tick, then a late answer."""

    name = "</script><img src=x onerror=alert(1)>"

    def act(self, observation):
        if self.tick == 5 and self.player_id == 0:
            import threading

            threading.Event().wait(0.2)  # a slow computation
        return (self.tick + self.player_id) % 5


class SlowOnceAgent(ServerKillerAgent):
    """A ServerKillerAgent whose player 1 is slow at tick $TW_SLOW_AT: it spends $TW_SLOW_S
    seconds in act() there, so in deadline mode (a shorter --deadline-ms) it misses that
    tick and answers the next one in time."""

    def act(self, observation):
        import os
        import threading

        slow_at = os.environ.get("TW_SLOW_AT")
        if slow_at and self.player_id == 1 and self.tick == int(slow_at):
            threading.Event().wait(float(os.environ["TW_SLOW_S"]))  # a slow computation
        return super().act(observation)
