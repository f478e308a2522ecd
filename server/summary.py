"""The end-of-run summary, for people (a table) and for programs (one JSON object)."""
from __future__ import annotations

import json
from typing import Any


def format_summary(s: dict[str, Any]) -> str:
    """A short human report of a run's summary dict."""
    rate = f"{s['ticks_per_s']:,.1f}" if s.get("ticks_per_s") else "-"
    lines = [
        f"run {s['run']} ({s['world']}, seed {s['seed']}, {s['mode']} mode): {s['reason']}",
        f"{s['ticks']} ticks in {s['elapsed_s']:.2f} s = {rate} ticks/s "
        f"(lobby {s['lobby_s']:.2f} s)",
        f"state hash {s['state_hash']}",
        "",
        f"{'id':>3}  {'name':<20} {'status':<9} {'score':>6} {'answered':>8} {'missed':>6} "
        f"{'late':>5} {'dead':>5} {'mean ms':>8} {'p99 ms':>8}",
    ]
    for p in s["players"]:
        ms = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"{p['id']:>3}  {p['name'][:20]:<20} {p['status']:<9} "
                     f"{'-' if p['score'] is None else p['score']:>6} {p['answered']:>8} "
                     f"{p['missed']:>6} {p['late']:>5} {p.get('dead', 0):>5} {ms(p['mean_ms']):>8} "
                     f"{ms(p['p99_ms']):>8}")
    if s["rejected"]:
        lines.append("rejected messages: " + ", ".join(f"{k} {v}" for k, v in s["rejected"].items()))
    return "\n".join(lines)


def to_json(s: dict[str, Any]) -> str:
    return json.dumps(s, sort_keys=True)
