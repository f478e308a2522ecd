"""A chief with two honest workers, for attacks from outside (tests/test_chief_security.py).

``python tests/support/hostile_chief.py N PAUSE`` (tests/ on PYTHONPATH): binds on free
loopback ports, prints ``listening BASE`` once both workers have delivered an item, collects
until both workers have sent N items each and finished, and prints per-worker accounting and
the chief's rejections as JSON.
"""

from __future__ import annotations

import json
import sys

from tickwire.server.work.chief import Chief

from support.param_workers import count_to


def main(n: int, pause: float) -> None:
    with Chief("tcp://127.0.0.1:0") as chief:
        chief.spawn(count_to, 2, args=(n, pause))
        seen: dict[int, list] = {}
        announced = False
        for item in chief.items(timeout=60):
            seen.setdefault(item.worker, []).append(item.data)
            if len(seen) == 2 and not announced:
                print("listening", chief.address, file=sys.stderr, flush=True)
                announced = True
        chief.stop()
        print(
            json.dumps(
                {
                    "items": {w: v == list(range(n)) for w, v in seen.items()},
                    "workers": {
                        w.id: {
                            "received": w.received,
                            "gaps": w.gaps,
                            "status": w.status,
                            "duplicates": w.duplicates,
                        }
                        for w in chief.stats().values()
                    },
                    "rejections": chief.rejections,
                }
            )
        )


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
