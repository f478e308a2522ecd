"""Reading a run's JSON summary (``--json``)."""

from __future__ import annotations


def accounted(p: dict) -> int:
    """Ticks a player's summary accounts for: each tick is exactly one of these."""
    return p["answered"] + p["missed"] + p["dead"] + p["left"] + p["not_joined"] + p.get("done", 0)


def player(summary: dict, pid: int) -> dict:
    """Player ``pid``'s entry in a summary."""
    return next(p for p in summary["players"] if p["id"] == pid)
