"""The smallest useful agent: walk toward the first resource on the grid."""
import numpy as np

from tickwire import Agent, run


class MyAgent(Agent):
    def act(self, observation):
        row, col = observation["positions"][self.player_id]
        targets = np.argwhere(observation["grid"] > 0)
        if len(targets) == 0:
            return 0
        tr, tc = targets[0]
        return 2 if tr > row else 1 if tr < row else 4 if tc > col else 3 if tc < col else 0


if __name__ == "__main__":
    run(MyAgent(), connect="tcp://localhost:5555")
