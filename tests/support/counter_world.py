"""A minimal user-written world: the state is a running total of everyone's actions."""

from tickwire.server import World


class CounterWorld(World):
    action_spec = {"type": "discrete", "n": 10}

    def reset(self, seed, players):
        return {"total": seed, "tick": 0}

    def step(self, state, actions):
        return {"total": state["total"] + sum(actions.values()), "tick": state["tick"] + 1}

    def done(self, state):
        return state["total"] >= 1000

    def scores(self, state):
        return [state["total"]]

    def noop(self):
        return 0
