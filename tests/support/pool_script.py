"""A user's script: a PlayerPool in a loop forever, until Ctrl-C (or until it is killed)."""

import sys

from support.sample_players import Counter
from tickwire import PlayerPool

if __name__ == "__main__":
    with PlayerPool([Counter(i) for i in range(3)]) as pool:
        print(" ".join(map(str, sorted(set(pool.pids)))), flush=True)
        print("running", file=sys.stderr, flush=True)
        tick = 0
        while True:
            pool.get_actions({"tick": tick})
            tick += 1
