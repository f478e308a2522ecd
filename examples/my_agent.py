"""The smallest useful agent: walk toward the first resource on the grid.

Run it against a server: ``python examples/my_agent.py [ADDRESS]`` (default: $TICKWIRE_CONNECT,
else tcp://127.0.0.1:5555); it prints one line saying how its run went.
"""

import os
import sys

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
    address = os.environ.get("TICKWIRE_CONNECT", "tcp://127.0.0.1:5555")
    print(run(MyAgent(), sys.argv[1] if len(sys.argv) > 1 else address))
