"""A player that joins, proves readiness and never acts; it records when each STATE arrives.

Run as ``python tests/support/gap_observer.py BASE [PUBLIC SECRET SERVER_PUBLIC key files]``
with tests/ on PYTHONPATH (the ``procs`` fixture sets it); prints ``ready`` on stderr once
welcomed, then one JSON line on stdout at END: the number of ticks seen, the longest gap
between the first STATEs of two ticks (seconds), measured outside the server, and how many
STATEs repeated a tick (the server republishes the open tick's STATE when an actions
connection is cut, so agents resend what it lost).
"""

from __future__ import annotations

import json
import sys
import time

import zmq

from support.raw_player import RawPlayer


def main() -> None:
    ctx = zmq.Context()
    player = RawPlayer(ctx, sys.argv[1], name="observer")
    player.join()
    print("ready", file=sys.stderr, flush=True)
    first_seen: dict[int, float] = {}  # tick → when its first STATE arrived
    repeated = 0
    while True:
        msg = player.next_state(60)
        if msg.KIND == "end":
            break
        if msg.tick in first_seen:
            repeated += 1
        else:
            first_seen[msg.tick] = time.monotonic()
    times = sorted(first_seen.values())
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(
        json.dumps({"states": len(times), "max_gap_s": max(gaps, default=0.0), "repeated": repeated}),
        flush=True,
    )
    ctx.destroy(0)


if __name__ == "__main__":
    main()
