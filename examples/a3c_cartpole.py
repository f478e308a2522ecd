"""Asynchronous policy-gradient learning of CartPole with a chief and workers, numpy only.

Workers play Gymnasium's ``CartPole-v1`` episodes with the newest policy the chief has
published and send each episode (observations, actions, rewards; stamped with the policy
version it was played with) to the chief. The chief learns an advantage actor-critic in
the A3C style: a 2-layer tanh policy and value network in plain numpy, advantages
``G_t - V(s_t)`` (normalised per batch), Adam; after every batch of episodes it publishes
the new policy, which the workers pick up between episodes. It stops once the mean return
of the last 20 episodes reaches ``--target`` (or after ``--episodes`` / ``--time-limit``),
then checks that every episode each worker sent arrived (no gap in any worker's sequence).

Run: python examples/a3c_cartpole.py [--workers 2] [--seed 0]
(needs gymnasium: pip install 'tickwire[gym]'; without it, it says so and exits 2)
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from tickwire import Chief, Worker

HIDDEN = 32
GAMMA = 0.99


# ------------------------------------------------------------------------- the networks
def init_net(rng: np.random.Generator, outputs: int, scale: float) -> dict[str, np.ndarray]:
    """A 4 → HIDDEN (tanh) → ``outputs`` network; small last layer: a near-uniform start."""
    return {
        "W1": rng.normal(0, 1 / np.sqrt(4), (4, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "W2": rng.normal(0, scale, (HIDDEN, outputs)),
        "b2": np.zeros(outputs),
    }


def forward(net: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hidden activations, outputs) for a batch of observations ``x`` (T, 4)."""
    h = np.tanh(x @ net["W1"] + net["b1"])
    return h, h @ net["W2"] + net["b2"]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def backward(net: dict, x: np.ndarray, h: np.ndarray, dout: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the network's parameters given d(loss)/d(outputs) ``dout``."""
    dh = (dout @ net["W2"].T) * (1 - h * h)
    return {"W1": x.T @ dh, "b1": dh.sum(0), "W2": h.T @ dout, "b2": dout.sum(0)}


class Adam:
    """Adam on a dict of arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict, grads: dict, b1: float = 0.9, b2: float = 0.999) -> None:
        self.t += 1
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            mhat, vhat = self.m[k] / (1 - b1**self.t), self.v[k] / (1 - b2**self.t)
            params[k] -= self.lr * mhat / (np.sqrt(vhat) + 1e-8)


# ------------------------------------------------------------------------- the workers
def play(worker: Worker, seed: int) -> None:
    """Play episodes with the newest published policy until the chief stops."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng([seed, worker.id])
    if not worker.wait_params(60):
        return  # the chief stopped (or vanished) before publishing a policy
    episode = 0
    while not worker.stopping:
        policy = worker.params  # one whole version for the whole episode
        obs, _ = env.reset(seed=seed * 1_000_003 + worker.id * 10_007 + episode)
        observations, actions, done = [], [], False
        while not done:
            _, logits = forward(policy, obs)
            action = int(rng.random() < softmax(logits)[1])
            observations.append(obs)
            actions.append(action)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        worker.send(
            {
                "obs": np.asarray(observations, np.float32),  # stamped with the version
                "action": np.asarray(actions, np.int8),
                "terminated": bool(terminated),
            }
        )
        episode += 1
    env.close()


# ------------------------------------------------------------------------- the chief
class Learner:
    """Advantage actor-critic updates from whole episodes."""

    def __init__(self, seed: int, lr: float) -> None:
        rng = np.random.default_rng(seed)
        self.policy, self.value = init_net(rng, 2, 0.01), init_net(rng, 1, 0.01)
        self.opt_pi, self.opt_v = Adam(self.policy, lr), Adam(self.value, lr)

    @staticmethod
    def returns(n: int, terminated: bool) -> np.ndarray:
        """Discounted returns-to-go of an episode of ``n`` rewards of 1, scaled to ~[0, 1]."""
        g = (1 - GAMMA ** np.arange(n, 0, -1)) / (1 - GAMMA)
        if not terminated:  # cut by the time limit: the pole was still up, continue it
            g = g + GAMMA ** np.arange(n, 0, -1) / (1 - GAMMA)
        return g * (1 - GAMMA)

    def update(self, episodes: list[dict]) -> None:
        x = np.concatenate([e["obs"] for e in episodes]).astype(np.float64)
        a = np.concatenate([e["action"] for e in episodes]).astype(np.int64)
        g = np.concatenate([self.returns(len(e["action"]), e["terminated"]) for e in episodes])
        hv, v = forward(self.value, x)
        adv = g - v[:, 0]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        hp, logits = forward(self.policy, x)
        dlogits = softmax(logits)
        dlogits[np.arange(len(a)), a] -= 1  # d(-log pi(a|s))/d(logits)
        self.opt_pi.step(self.policy, backward(self.policy, x, hp, dlogits * adv[:, None] / len(a)))
        self.opt_v.step(self.value, backward(self.value, x, hv, (v - g[:, None]) / len(a)))


def train(args: argparse.Namespace) -> int:
    learner = Learner(args.seed, args.lr)
    returns: list[int] = []
    lags: list[int] = []
    batch: list[dict] = []
    start = time.monotonic()
    with Chief() as chief:
        chief.publish_params(learner.policy)
        chief.spawn(play, args.workers, args=(args.seed,))
        for item in chief.items(timeout=60):
            returns.append(len(item.data["action"]))
            lags.append(chief.params_version - item.version)
            batch.append(item.data)
            if len(batch) == args.batch:
                learner.update(batch)
                batch = []
                chief.publish_params(learner.policy)
            recent = float(np.mean(returns[-20:]))
            if len(returns) % 50 == 0:
                print(
                    f"episode {len(returns):5d}  policy v{chief.params_version:<4d} "
                    f"mean return (last 20) {recent:6.1f}  {time.monotonic() - start:5.1f} s",
                    flush=True,
                )
            if (
                (len(returns) >= 20 and recent >= args.target)
                or len(returns) >= args.episodes
                or time.monotonic() - start > args.time_limit
            ):
                break
        for item in chief.stop():  # episodes finished while stopping: counted too
            returns.append(len(item.data["action"]))
        stats = chief.stats()
    return report(stats, returns, lags, time.monotonic() - start)


def report(stats: dict, returns: list[int], lags: list[int], elapsed: float) -> int:
    """Print the accounting and the result; 1 if anything a worker sent went missing, or if
    no episode arrived at all (there is no result to print then)."""
    if not returns:
        print(
            f"error: no episode arrived in {elapsed:.1f} s from {len(stats)} worker(s): no result "
            "(the workers' errors, if any, are above)",
            file=sys.stderr,
        )
        return 1
    lost = {w.id: w.gaps for w in stats.values() if w.gaps or w.received != w.fin}
    print(
        f"{len(returns)} episodes from {len(stats)} workers in {elapsed:.1f} s; episodes "
        f"played with a policy {np.mean(lags):.2f} versions old on average"
    )
    if lost:
        print(f"LOST episodes (worker: gaps): {lost}")
    else:
        print("nothing lost: every worker's episodes arrived, in order, exactly once")
    print(f"mean return of the last 20 episodes: {np.mean(returns[-20:]):.1f}")
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=4, help="episodes per update")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument(
        "--target",
        type=float,
        default=475.0,  # CartPole-v1's "solved" threshold
        help="stop once the mean return of the last 20 episodes reaches this",
    )
    p.add_argument("--episodes", type=int, default=3000, help="stop after this many episodes")
    p.add_argument("--time-limit", type=float, default=150.0, help="seconds of training")
    args = p.parse_args(argv)
    try:
        import gymnasium  # noqa: F401  (the workers play its CartPole-v1)
    except ImportError:
        print(
            "error: a3c_cartpole.py needs gymnasium: pip install 'tickwire[gym]'",
            file=sys.stderr,
        )
        return 2
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
