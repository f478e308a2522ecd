"""The classic loop, serial and with PlayerPool: same actions, more ticks per second.

    while True:
        state = world.update(actions)
        for i, player in enumerate(players):
            actions[i] = player.get_action(state)

becomes ``actions = pool.get_actions(state)``. The pool runs one process per core by
default, each hosting its share of the players (``--processes N`` to choose); every player
keeps its own state, so the actions are the same as the serial loop's.

Run: python examples/parallel_players.py [--players 4] [--ticks 300] [--work-ms 2]
(needs cloudpickle, as its players are defined in this script: pip install 'tickwire[pool]')
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from tickwire import PlayerPool


class World:
    """A toy world: the state is a numpy field that the players' actions stir."""

    def __init__(self, n_players: int) -> None:
        self.field = np.zeros((64, 64), dtype=np.float32)
        self.tick = 0
        self.n = n_players

    def update(self, actions: list[int]) -> dict:
        for i, a in enumerate(actions):
            self.field[(i * 7) % 64, a % 64] += 1.0
        self.tick += 1
        return {"tick": self.tick, "field": self.field.copy()}


class Player:
    """A deterministic player with memory (its own rng and a running total)."""

    def __init__(self, index: int, work_ms: float) -> None:
        self.rng = np.random.default_rng(index)
        self.total = 0.0
        self.work_s = work_ms / 1e3

    def get_action(self, state: dict) -> int:
        end = time.perf_counter() + self.work_s
        while time.perf_counter() < end:  # stands in for real thinking (CPU-bound)
            pass
        self.total += float(state["field"].sum())
        return int(self.rng.integers(64) + self.total) % 64


def serial(players: list[Player], ticks: int) -> tuple[list[list[int]], float]:
    world, actions, history = World(len(players)), [0] * len(players), []
    t0 = time.perf_counter()
    for _ in range(ticks):
        state = world.update(actions)
        for i, player in enumerate(players):
            actions[i] = player.get_action(state)
        history.append(list(actions))
    return history, ticks / (time.perf_counter() - t0)


def parallel(
    players: list[Player], ticks: int, processes: int | None = None
) -> tuple[list[list[int]], float]:
    world, actions, history = World(len(players)), [0] * len(players), []
    with PlayerPool(players, processes=processes) as pool:
        t0 = time.perf_counter()
        for _ in range(ticks):
            state = world.update(actions)
            actions = pool.get_actions(state)
            history.append(list(actions))
        rate = ticks / (time.perf_counter() - t0)
    return history, rate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--players", type=int, default=4)
    p.add_argument("--ticks", type=int, default=300)
    p.add_argument("--work-ms", type=float, default=2.0, help="CPU time each player spends per tick")
    p.add_argument("--processes", type=int, help="player processes (default: one per core)")
    args = p.parse_args(argv)
    try:
        import cloudpickle  # noqa: F401  (sends this script's Player class to the pool)
    except ImportError:
        print(
            "error: parallel_players.py needs cloudpickle to send its players (defined in "
            "this script) to the pool's processes: pip install 'tickwire[pool]'",
            file=sys.stderr,
        )
        return 2
    make = lambda: [Player(i, args.work_ms) for i in range(args.players)]  # noqa: E731
    h_serial, r_serial = serial(make(), args.ticks)
    h_pool, r_pool = parallel(make(), args.ticks, args.processes)
    same = h_serial == h_pool
    print(f"{args.players} players, {args.work_ms} ms of work each per tick, {args.ticks} ticks")
    print(f"serial loop : {r_serial:8.1f} ticks/s")
    print(f"PlayerPool  : {r_pool:8.1f} ticks/s  ({r_pool / r_serial:.2f}x)")
    print(f"same actions: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
