"""Player objects for the PlayerPool tests (importable in spawned processes)."""

import os
import time


class Counter:
    """Keeps a counter in its own process: proves state persists between calls."""

    def __init__(self, k):
        self.k = k
        self.calls = 0

    def get_action(self, state):
        self.calls += 1
        return {"k": self.k, "calls": self.calls, "pid": os.getpid(), "tick": state["tick"]}


class Raiser:
    def get_action(self, state):
        if state["tick"] == 2:
            raise ValueError(f"bad tick {state['tick']}")
        return state["tick"]


class Sleeper:
    def __init__(self, seconds):
        self.seconds = seconds

    def decide(self, state):
        time.sleep(self.seconds)  # a deliberately slow player: the timeout path
        return "slow"


class Exiter:
    def get_action(self, state):
        if state["tick"] == 1:
            os._exit(7)
        return 0


class ArraySummer:
    def get_action(self, state):
        return float(state["grid"].sum()) + sum(state["nested"]["xs"])


def flood(worker, limit):
    """Send 0, 1, 2, ... as fast as possible until stopped (or ``limit`` items)."""
    n = 0
    while not worker.stopping and n < limit:
        worker.send({"n": n, "payload": list(range(n % 7))})
        n += 1
    while not worker.wait_stopping(1.0):
        pass  # sent everything: wait for the chief's END


def fail_after(worker, n):
    for i in range(n):
        worker.send(i)
    raise RuntimeError(f"worker gave up after {n} items")


class DiesOnArrival:
    """Kills its host while being unpickled there, after saying why on stderr."""

    def __init__(self):
        self.why = "cannot live in a pool host"

    def __setstate__(self, state):
        import sys

        sys.stderr.write(f"DiesOnArrival: {state['why']}\n")
        sys.stderr.flush()
        os._exit(3)

    def get_action(self, state):
        return 0
