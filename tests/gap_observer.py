"""A player that joins, proves readiness and never acts; it records when each STATE arrives.

Run as ``python gap_observer.py BASE [PUBLIC SECRET SERVER_PUBLIC key files]``; prints
``ready`` on stderr once welcomed, then one JSON line on stdout at END: the number of states
seen and the longest gap between two of them (seconds), measured outside the server.
"""
from __future__ import annotations

import json
import sys
import time

import zmq
from raw_player import RawPlayer


def main() -> None:
    ctx = zmq.Context()
    player = RawPlayer(ctx, sys.argv[1], name="observer")
    player.join()
    print("ready", file=sys.stderr, flush=True)
    times: list[float] = []
    while True:
        msg = player.next_state(60)
        if msg.KIND == "end":
            break
        times.append(time.monotonic())
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(json.dumps({"states": len(times), "max_gap_s": max(gaps, default=0.0)}), flush=True)
    ctx.destroy(0)


if __name__ == "__main__":
    main()
