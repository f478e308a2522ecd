"""Train one seat of the grid world from this process against bots in their own processes.

The world runs as a ``tickwire server`` child process with two scripted opponents, each a
``tickwire agent`` process: a GreedyAgent (walks to the nearest resource) and a RandomAgent.
This process takes the remaining seat as a Gymnasium ``Env``
(:class:`tickwire.agents.env.SeatEnv`) and learns it with REINFORCE in plain numpy: a linear
softmax policy over five features of the observation (is the nearest resource up, down,
left, right of me; a bias), returns-to-go normalised per batch (the mean: a baseline). It starts as the
uniform random policy. Strict mode and fixed seeds make the whole run deterministic.

It measures the mean return (resources collected per episode) of the untrained policy,
trains, prints the learning curve (one line per ``--report`` episodes), measures the trained
policy the same way, and ends with one line: ``return before training: X, after: Y``.

Run: python examples/train_vs_bots.py [--episodes 150] [--quick]
(needs gymnasium: pip install 'tickwire[gym]'; without it, it says so and exits 2)
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

GREEDY = "tickwire.agents.examples.greedy_agent:GreedyAgent"
RANDOM = "tickwire.agents.examples.random_agent:RandomAgent"
STAY, UP, DOWN, LEFT, RIGHT = range(5)
N_FEATURES = 5


def features(obs: np.ndarray) -> np.ndarray:
    """Where the nearest resource is from this seat (obs planes: resources, me, others)."""
    resources = np.argwhere(obs[0])
    me = np.argwhere(obs[1])[0]
    f = np.zeros(N_FEATURES)
    f[4] = 1.0  # bias
    if len(resources):
        nearest = resources[np.argmin(np.abs(resources - me).sum(axis=1))]
        dr, dc = nearest - me
        f[:4] = (dr < 0, dr > 0, dc < 0, dc > 0)
    return f


class Policy:
    """A linear softmax policy over :func:`features`; all zeros is the uniform random policy."""

    def __init__(self, rng: np.random.Generator, actions: int = 5) -> None:
        self.w = np.zeros((N_FEATURES, actions))
        self.rng = rng

    def probs(self, f: np.ndarray) -> np.ndarray:
        z = f @ self.w
        e = np.exp(z - z.max())
        return e / e.sum()

    def act(self, f: np.ndarray) -> int:
        return int(self.rng.choice(len(self.w[0]), p=self.probs(f)))

    def reinforce(self, episodes: list[tuple[list, list, list]], lr: float, gamma: float) -> None:
        """One REINFORCE step on a batch of (features, actions, rewards) episodes."""
        returns = [returns_to_go(r, gamma) for _, _, r in episodes]
        flat = np.concatenate(returns)
        mean, std = flat.mean(), flat.std()
        if std == 0:  # no reward in the whole batch: nothing to learn from
            return
        grad, steps = np.zeros_like(self.w), 0
        for (fs, actions, _), g in zip(episodes, returns):
            for f, a, advantage in zip(fs, actions, (g - mean) / std):
                d = -self.probs(f)
                d[a] += 1.0  # d log pi(a|f) / d logits
                grad += advantage * np.outer(f, d)
                steps += 1
        self.w += lr * grad / steps


def returns_to_go(rewards: list[float], gamma: float) -> np.ndarray:
    out, g = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        out[t] = g
    return out


def play(env, policy: Policy) -> tuple[list, list, list]:
    """One episode: (features, actions, rewards) of each step."""
    obs, _ = env.reset()
    fs, actions, rewards = [], [], []
    while True:
        f = features(obs)
        a = policy.act(f)
        obs, reward, terminated, truncated, info = env.step(a)
        fs.append(f)
        actions.append(a)
        rewards.append(reward)
        if terminated or truncated:
            return fs, actions, rewards


def evaluate(env, policy: Policy, episodes: int) -> float:
    return float(np.mean([sum(play(env, policy)[2]) for _ in range(episodes)]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=150, help="training episodes")
    p.add_argument("--episode-ticks", type=int, default=50, help="ticks per episode")
    p.add_argument("--eval", type=int, default=10, help="episodes measured before and after")
    p.add_argument("--batch", type=int, default=1, help="episodes per update")
    p.add_argument("--lr", type=float, default=5.0)
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--report", type=int, default=10, help="print the curve every N episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a short run for CI (60 episodes, 6 measured)")
    args = p.parse_args(argv)
    if args.quick:
        args.episodes, args.eval, args.report = 60, 6, 12
    try:
        from tickwire.agents.env import SeatEnv, launch_world
    except ImportError as e:
        print(f"this example needs gymnasium: pip install 'tickwire[gym]' ({e})", file=sys.stderr)
        return 2

    start = time.monotonic()
    world = launch_world(seats=1, bots={GREEDY: 1, RANDOM: 1}, seed=args.seed)
    env = SeatEnv(world, slot=0, episode_ticks=args.episode_ticks)  # closes the world too
    try:
        policy = Policy(np.random.default_rng(args.seed))
        before = evaluate(env, policy, args.eval)
        print(f"untrained (uniform random) policy: mean return {before:.2f} over {args.eval} episodes")
        batch, curve = [], []
        for episode in range(1, args.episodes + 1):
            batch.append(play(env, policy))
            curve.append(sum(batch[-1][2]))
            if len(batch) == args.batch:
                policy.reinforce(batch, args.lr, args.gamma)
                batch = []
            if episode % args.report == 0:
                print(
                    f"episodes {episode - args.report + 1:4d}-{episode:4d}: "
                    f"mean return {np.mean(curve[-args.report :]):5.2f}"
                )
        after = evaluate(env, policy, args.eval)
    finally:
        env.close()
    elapsed = time.monotonic() - start
    print(
        f"return before training: {before:.2f}, after: {after:.2f} "
        f"(mean of {args.eval} episodes of {args.episode_ticks} ticks; {args.episodes} "
        f"training episodes, {elapsed:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
