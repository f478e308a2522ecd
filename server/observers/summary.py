"""The end-of-run summary, for people (a table) and for programs (one JSON object)."""

from __future__ import annotations

import json
import resource
import sys
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB since it started *this program*.

    Linux: ``VmHWM`` of /proc/self/status, which execve resets; getrusage's ``ru_maxrss``
    is not reset by execve, so a server spawned from a big parent (pytest, a notebook)
    would report the parent's peak. Elsewhere ``ru_maxrss`` (KiB on BSDs, bytes on macOS)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: an agent chooses its name and its LEAVE reason,
    and a control character in them (an ANSI escape, a carriage return) must not rewrite the
    host's screen; such characters are shown escaped (``\\x1b``), the rest as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_summary(s: dict[str, Any]) -> str:
    """A short human report of a run's summary dict."""
    lines = [
        f"run {s['run']} ({s['world']}, seed {s['seed']}, {s['mode']} mode): {s['reason']}",
        _ticks_line(s),
        f"state hash {s['state_hash']}",
        *_pacing_line(s.get("pacing")),
        "",
        f"{'id':>3}  {'name':<20} {'status':<9} {'score':>6} {'answered':>8} {'missed':>6} "
        f"{'late':>5} {'dead':>5} {'mean ms':>8} {'p99 ms':>8}",
    ]
    for p in s["players"]:
        ms = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(
            f"{p['id']:>3}  {printable(p['name'])[:20]:<20} {p['status']:<9} "
            f"{_score(p['score']):>6} {p['answered']:>8} "
            f"{p['missed']:>6} {p['late']:>5} {p.get('dead', 0):>5} {ms(p['mean_ms']):>8} "
            f"{ms(p['p99_ms']):>8}"
        )
    done = [p for p in s["players"] if p.get("done")]
    if done:
        lines.append(
            "out of the tick by their own view (done): "
            + ", ".join(f"player {p['id']} {p['done']}" for p in done)
        )
    lines += _left_lines(s)
    episodes = s.get("episodes")
    if episodes:
        lines.append(_episodes(episodes, s.get("agents")))
    if s["rejected"]:
        lines.append("rejected messages: " + ", ".join(f"{k} {v}" for k, v in s["rejected"].items()))
    return "\n".join(lines)


def _left_lines(s: dict[str, Any]) -> list[str]:
    """Who left (said LEAVE) and why, players of the run and players that left in the
    lobby; one line per reason, naming the players that gave it."""
    lines = []
    for what, entries in (
        ("left", [(p["id"], p["name"], p.get("leave_reason")) for p in s["players"]]),
        ("left in the lobby", [(e["id"], e["name"], e["reason"]) for e in s.get("left_in_lobby") or []]),
    ):
        by_reason: dict[str, list[str]] = {}
        for pid, name, reason in entries:
            if reason is not None:
                by_reason.setdefault(reason, []).append(f"{pid} {name!r}")
        lines += [f"{what}: {', '.join(who)}: {printable(reason)}" for reason, who in by_reason.items()]
    return lines


def _ticks_line(s: dict[str, Any]) -> str:
    """``200 ticks in 0.78 s = 255.1 ticks/s (lobby 4.70 s)``; after ``--resume`` the ticks
    this server played (its rate is over those), the tick it resumed at and the run's total."""
    rate = f"{s['ticks_per_s']:,.1f}" if s.get("ticks_per_s") else "-"
    lobby = f"(lobby {s['lobby_s']:.2f} s)"
    resumed = s.get("resumed_from")
    if resumed is None:
        return f"{s['ticks']} ticks in {s['elapsed_s']:.2f} s = {rate} ticks/s {lobby}"
    played = s["ticks"] - resumed
    return (
        f"resumed at tick {resumed}: played {played} tick{'s' * (played != 1)} in "
        f"{s['elapsed_s']:.2f} s = {rate} ticks/s {lobby}; {s['ticks']} ticks in all"
    )


def _pacing_line(p: dict[str, Any] | None) -> list[str]:
    """``paced at 30 Hz: achieved 29.9 Hz, tick start error p50 0.3 ms, p99 4.1 ms`` (--tick-rate)."""
    if not p or p.get("achieved_hz") is None:
        return []
    err = p["start_error_ms"]
    return [
        f"paced at {p['target_hz']:g} Hz: achieved {p['achieved_hz']:,.1f} Hz, tick start "
        f"error p50 {err['p50']:.2f} ms, p99 {err['p99']:.2f} ms, max {err['max']:.2f} ms; "
        f"{p['skipped_slots']} slot(s) skipped"
    ]


def _score(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def _episodes(episodes: list[dict[str, Any]], agents: list[str] | None) -> str:
    """Finished episodes and each player's mean return over them."""
    players = len(episodes[0]["returns"])
    names = agents or [str(i) for i in range(players)]
    means = [sum(e["returns"][i] for e in episodes) / len(episodes) for i in range(players)]
    last = episodes[-1]
    return (
        f"{len(episodes)} episode(s) finished; mean return: "
        + ", ".join(f"{n} {m:.3f}" for n, m in zip(names, means))
        + f"; last (episode {last['episode']}, {last['steps']} steps): "
        + ", ".join(f"{r:.3f}" for r in last["returns"])
    )


def to_json(s: dict[str, Any]) -> str:
    return json.dumps(s, sort_keys=True)
