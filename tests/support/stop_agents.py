"""Agents for the graceful-stop tests (importable as support.stop_agents:Name)."""

from tickwire.agents import Agent


class ServerStopperAgent(Agent):
    """Greedy (a pure function of the observation, so fresh processes after a resume act the
    same); player 0 sends SIGTERM to the server ($TW_SERVER_PID) when it sees tick
    $TW_TERM_AT and answers that tick only once the server is gone (bounded: 30 s), so the
    stop always comes while the tick is open and waiting for it."""

    def act(self, observation):
        import os
        import signal

        from tickwire.agents.examples.greedy_agent import GreedyAgent

        term_at = os.environ.get("TW_TERM_AT")
        if term_at and self.player_id == 0 and self.tick == int(term_at):
            server = int(os.environ["TW_SERVER_PID"])
            os.kill(server, signal.SIGTERM)
            _wait_gone(server, 30.0)
        return GreedyAgent.act(self, observation)


def _wait_gone(pid: int, timeout: float) -> None:
    """Wait until process ``pid`` has exited (or is a zombie), at most ``timeout`` seconds."""
    import threading
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        threading.Event().wait(0.01)  # polling another process's exit: no event to wait on
