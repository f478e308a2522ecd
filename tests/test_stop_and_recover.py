"""Graceful stops and inactive players, with real processes: a SIGTERM'ed strict run resumes
to the uninterrupted run's state, and players that froze in deadline mode come back.

Every wait is bounded; statuses come from the events file and the summary, never from logs.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from support.events import event, read_events, wait_event
from support.servers import replay_json
from support.summaries import accounted, player
from tickwire.server.record.log import read_run

SERVER = ["-m", "tickwire", "server"]
AGENT = ["-m", "tickwire", "agent"]
STOPPER = "support.stop_agents:ServerStopperAgent"
SEED = "7"


# ---------------------------------------------------------------------------- SIGTERM
@pytest.mark.slow
def test_sigterm_then_resume_three_times_ends_on_the_uninterrupted_hash(procs, ipc_base, tmp_path):
    """Each epoch's player 0 SIGTERMs the server at a tick it has not answered yet: the open
    tick is dropped (not stepped, recorded or counted; the summary's ticks and END name the
    ticks done), and --resume plays it again: after three stops the run ends with the
    hash of a run never stopped (the old code stepped the open tick with a noop for player 0
    and counted it missed)."""
    ticks, stops, record = 40, (10, 20, 30), tmp_path / "rec"
    reference = procs(
        [
            "-m",
            "tickwire",
            "run",
            "--agents",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--agent",
            STOPPER,
            "--json",
            "-q",
        ],
        name="reference",
    )
    extra = ["--record", str(record)]
    for epoch, stop_at in enumerate(stops):
        events = tmp_path / f"events{epoch}.jsonl"
        server = _server(procs, ipc_base, ticks, *extra, "--events", str(events), name=f"server{epoch}")
        _agents(procs, ipc_base, server.pid, epoch, {"TW_TERM_AT": str(stop_at)})
        assert server.wait(60) == 130, server.stderr[-2000:]  # 130: stopped by a signal
        s = json.loads(server.stdout)
        start = s.get("resumed_from", 0)
        assert s["reason"] == "signal SIGTERM" and (start, s["ticks"]) == (
            stops[epoch - 1] if epoch else 0,
            stop_at,
        )
        assert all(accounted(p) == stop_at - start for p in s["players"]), s["players"]
        assert player(s, 0)["missed"] == 0 and player(s, 1)["answered"] == stop_at - start
        (end,) = [e for e in read_events(events) if e["event"] == "end"]
        assert end["tick"] == stop_at
        assert [t.tick for t in read_run(record)] == list(range(stop_at))
        extra = ["--resume", str(record)]
    final = _server(procs, ipc_base, ticks, *extra, name="final")
    _agents(procs, ipc_base, final.pid, len(stops), {})
    summary = final.json(120)
    assert summary["resumed_from"] == stops[-1] and summary["ticks"] == ticks
    want = reference.json(120)["state_hash"]
    assert summary["state_hash"] == want
    report = replay_json(record)
    assert report["identical"] and report["final_hash"] == want


def _server(procs, ipc_base, ticks, *extra, name):
    return procs(
        [
            *SERVER,
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--fsync-every",
            "0",
            "--lobby-timeout",
            "60",
            "--json",
            "-q",
            *extra,
        ],
        name=name,
    )


def _agents(procs, ipc_base, server_pid, epoch, env):
    """One process per player: player 1 answers the tick player 0 holds open."""
    return [
        procs(
            [
                *AGENT,
                "--connect",
                ipc_base,
                "--agent",
                STOPPER,
                "--slot",
                str(slot),
                "--server-timeout",
                "30",
                "-q",
            ],
            name=f"agent{slot}-{epoch}",
            env={"TW_SERVER_PID": str(server_pid), **env},
        )
        for slot in (0, 1)
    ]


# ---------------------------------------------------------------------------- inactive
FREEZE_S = 0.4


def test_players_frozen_until_inactive_in_deadline_mode_come_back_and_play_on(procs, ipc_base, tmp_path):
    """Both agents frozen (SIGSTOP) for 0.4 s miss 3 ticks of 50 ms and turn inactive. The
    ticks that await nobody still last their deadline and the server reads the sockets
    meanwhile, so after SIGCONT both answer again, turn active and answer most later ticks
    (the old code then ran the remaining ticks at once, never reading their answers)."""
    ticks, events = 600, tmp_path / "events.jsonl"
    server = procs(
        [
            *SERVER,
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--ticks",
            str(ticks),
            "--seed",
            SEED,
            "--mode",
            "deadline",
            "--deadline-ms",
            "50",
            "--lobby-timeout",
            "60",
            "--events",
            str(events),
            "--json",
            "-q",
        ],
        name="server",
    )
    agents = [
        procs(
            [*AGENT, "--connect", ipc_base, "--slot", str(slot), "--server-timeout", "30", "-q"],
            name=f"agent{slot}",
        )
        for slot in (0, 1)
    ]
    wait_event(events, event("started"), server)
    frozen = time.monotonic()
    for a in agents:
        os.kill(a.pid, signal.SIGSTOP)
    try:
        inactive = [wait_event(events, event("player", id=i, new="inactive"), server) for i in (0, 1)]
        # the fault lasts FREEZE_S (not a synchronisation: what follows waits on events)
        time.sleep(max(0.0, FREEZE_S - (time.monotonic() - frozen)))
    finally:
        for a in agents:
            os.kill(a.pid, signal.SIGCONT)
    for i in (0, 1):
        back = wait_event(
            events,
            lambda e, i=i: event("player", id=i, new="active")(e) and e["tick"] >= inactive[i]["tick"],
            server,
        )
        assert back["tick"] < ticks - 100, back  # back well before the end
    s = server.json(120)
    assert s["ticks"] == ticks and s["reason"] == "ticks done"
    for p in s["players"]:
        assert p["status"] == "active" and accounted(p) == ticks
        assert p["missed"] < ticks // 4 and p["answered"] > ticks * 3 // 4, p
