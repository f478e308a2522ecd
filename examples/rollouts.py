"""Parallel data generation: workers run rollouts of the default world with random
policies; the chief collects (observation, action, reward) batches into one .npz file.

Run: python examples/rollouts.py [--workers 2] [--samples 5000] [--out rollouts.npz]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from tickwire import Chief, GridWorld, Worker

PLAYERS = 4


def observation(state: dict, player: int) -> np.ndarray:
    """The grid with the player's own cell marked 2 (flattened, uint8)."""
    obs = state["grid"].copy()
    r, c = state["positions"][player]
    obs[r, c] = 2
    return obs.reshape(-1)


def rollout(worker: Worker, batch: int, episode_ticks: int, seed: int) -> None:
    """Random policies on GridWorld; player 0's experience is recorded in batches."""
    world = GridWorld()
    rng = np.random.default_rng([seed, worker.id])
    episode = 0
    while not worker.stopping:
        state = world.reset(seed * 1000 + worker.id * 100 + episode, PLAYERS)
        obs, acts, rews = [], [], []
        for _ in range(episode_ticks):
            actions = {p: int(rng.integers(5)) for p in range(PLAYERS)}
            before = int(state["scores"][0])
            obs.append(observation(state, 0))
            state = world.step(state, actions)
            acts.append(actions[0])
            rews.append(int(state["scores"][0]) - before)
            if len(obs) == batch:
                worker.send(
                    {
                        "obs": np.stack(obs),
                        "action": np.array(acts, np.int8),
                        "reward": np.array(rews, np.float32),
                        "episode": episode,
                    }
                )
                obs, acts, rews = [], [], []
                if worker.stopping:
                    return
        episode += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--batch", type=int, default=64, help="samples per batch (at least 1)")
    p.add_argument("--episode-ticks", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="rollouts.npz")
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error(f"--batch must be at least 1, got {args.batch}")
    batches = []
    with Chief() as chief:
        chief.spawn(rollout, args.workers, args=(args.batch, args.episode_ticks, args.seed))
        got = 0
        for item in chief.items():
            batches.append(item.data)
            got += len(item.data["action"])
            if sys.stdout.isatty():
                print(f"\r{got}/{args.samples} samples", end="", flush=True)
            if got >= args.samples:
                break
        batches += [i.data for i in chief.stop()]  # drained: nothing a worker sent is lost
    if sys.stdout.isatty():
        print()
    if not batches:
        print("error: no batch arrived from the workers, nothing written (see their errors)", file=sys.stderr)
        return 1
    data = {k: np.concatenate([b[k] for b in batches]) for k in ("obs", "action", "reward")}
    np.savez_compressed(args.out, **data)
    print(
        f"wrote {args.out}: "
        + ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in data.items())
        + f"; mean reward {data['reward'].mean():.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
