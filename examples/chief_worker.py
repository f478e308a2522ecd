"""The classic chief/worker example, with tickwire.

Two workers each produce a random integer 1-3 every interval into a local queue; when the
local queue holds more than 5 items, a worker sends one item + 0.1 to the chief. The chief
prints results as they come and stops after 10 rounds; every process exits cleanly, and
nothing a worker sent is lost.

Run: python examples/chief_worker.py [--interval 0.01] [--rounds 10]
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from tickwire import Chief, Worker


def produce(worker: Worker, interval: float, seed: int) -> None:
    rng = np.random.default_rng([seed, worker.id])
    local: collections.deque[int] = collections.deque()
    while not worker.stopping:
        local.append(int(rng.integers(1, 4)))
        if len(local) > 5:
            worker.send(local.popleft() + 0.1)
        worker.wait_stopping(interval)  # paces the worker; wakes at once when the chief stops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with Chief() as chief:
        chief.spawn(produce, args.workers, args=(args.interval, args.seed))
        for n, item in enumerate(chief.items(limit=args.rounds), 1):
            print(f"round {n}: {item.data:.1f} from worker {item.worker} (item #{item.seq})")
        rest = chief.stop()
        stats = chief.stats()
    print(f"stopped after {args.rounds} rounds; {len(rest)} more item(s) arrived while stopping")
    lost = 0
    for w in stats.values():
        lost += (w.fin or 0) - w.received
        print(
            f"worker {w.id}: sent {w.fin}, received {w.received}, gaps {w.gaps}, "
            f"{w.status}, exit code {w.exitcode}"
        )
    print("nothing lost" if lost == 0 else f"LOST {lost} item(s)")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
