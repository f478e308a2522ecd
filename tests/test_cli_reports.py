"""What the commands report at the end tells the truth (issue 19): counts after a resume and
in private views, every player leaving, a player that left in the lobby. Real processes."""

from __future__ import annotations

import json
import re
import signal

import pytest
from support.events import event, read_events, wait_event

from tickwire.exitcodes import ExitCode

TW = ["-m", "tickwire"]

KILL_ONCE = '''
import os, signal
from tickwire import Agent


class KillOnce(Agent):
    """Stays put; SIGKILLs the server ($TW_SERVER_PID) when it first sees tick $TW_KILL_AT."""

    killed = False

    def act(self, observation):
        if not KillOnce.killed and self.tick == int(os.environ["TW_KILL_AT"]):
            KillOnce.killed = True
            os.kill(int(os.environ["TW_SERVER_PID"]), signal.SIGKILL)
        return 0
'''


def _server(procs, ipc_base, *args, name="server"):
    return procs([*TW, "server", "--bind", ipc_base, "--players", "1", "-q", *args], name=name)


def test_after_a_resume_the_agent_counts_each_tick_once_and_the_server_says_where_it_resumed(
    procs, ipc_base, tmp_path
):
    (tmp_path / "kill_once.py").write_text(KILL_ONCE)
    record, ticks = tmp_path / "rec", 60
    first = _server(procs, ipc_base, "--ticks", str(ticks), "--record", str(record), "--fsync-every", "0")
    agent = procs(
        [*TW, "agent", "--connect", ipc_base, "--agent", "kill_once.py:KillOnce", "--server-timeout", "30"],
        name="agent",
        env={"TW_SERVER_PID": str(first.pid), "TW_KILL_AT": "30"},
    )
    assert first.wait(60) == -signal.SIGKILL, first.stderr[-2000:]
    events = tmp_path / "events.jsonl"
    second = _server(procs, ipc_base, "--resume", str(record), "--events", str(events), name="resumed")
    assert second.wait(60) == 0, second.stderr[-2000:]
    resumed_at = next(e["tick"] for e in read_events(events) if e["event"] == "resumed")
    assert 0 < resumed_at <= 30
    assert agent.wait(30) == 0, agent.stderr[-2000:]
    line = agent.stdout.strip()
    acted, skipped = map(int, re.search(r"acted on (\d+) ticks?, skipped (\d+)", line).groups())
    assert acted + skipped == ticks and acted <= ticks, line  # each of the run's ticks once
    assert "run ended at tick 60" in line and "rejoined 1 time" in line, line
    text = second.stdout
    played = ticks - resumed_at
    assert f"resumed at tick {resumed_at}: played {played} ticks in " in text, text
    assert f"; {ticks} ticks in all" in text, text


def test_in_private_views_the_agents_counts_agree_with_the_servers(procs, ipc_base, tmp_path):
    """mpe2's episodes end every 25 steps: the players are out of those ticks (``done``); the
    server does not wait for them then, so the agent may not even see some of those ticks."""
    pytest.importorskip("mpe2")
    ticks, world = 100, "pettingzoo:mpe2.simple_spread_v3"
    server = procs(
        [*TW, "server", "--bind", ipc_base, "--world", world, "--ticks", str(ticks), "--json", "-q"]
    )
    agent = procs(
        [
            *TW,
            "agent",
            "--connect",
            ipc_base,
            "--agent",
            "tickwire.agents.examples.random_agent:RandomAgent",
            "--count",
            "3",
            "--json",
            "-q",
        ],
        name="agent",
    )
    summary = server.json(120)
    results = agent.json(60)["agents"]
    done = [p["done"] for p in summary["players"]]
    assert sum(done) > 0, summary["players"]
    players = {p["id"]: p for p in summary["players"]}
    for r in results:
        p = players[r["player"]]
        assert (r["ticks"], r["done"], r["skipped"]) == (p["answered"], p["done"], p["missed"]), (r, p)
        assert r["ticks"] + r["skipped"] + r["done"] == ticks


def test_every_player_leaving_is_players_left_naming_their_reasons(procs, ipc_base, tmp_path):
    events = tmp_path / "events.jsonl"
    server = procs(
        [*TW, "server", "--bind", ipc_base, "--players", "2", "--ticks", "100000", "--events", str(events)]
    )
    agent = procs([*TW, "agent", "--connect", ipc_base, "--count", "2"], name="agent")
    wait_event(events, event("started"), server)
    agent.popen.send_signal(signal.SIGTERM)
    assert agent.wait(30) == ExitCode.INTERRUPTED
    assert server.wait(30) == ExitCode.PLAYERS_LEFT, server.stderr[-2000:]
    assert "left: 0 'GreedyAgent', 1 'GreedyAgent-1': signal SIGTERM" in server.stdout
    assert "crashed" not in server.stderr
    assert (
        server.stderr.strip()
        .splitlines()[-1]
        .startswith("tickwire server: players left: every player left before the end (no players left, ")
    )


def test_a_player_that_left_in_the_lobby_is_named_with_its_reason(procs, ipc_base):
    """GreedyAgent refuses a world that is not the grid world at setup: its LEAVE's reason
    says why, and the summary keeps it although the lobby freed the slot."""
    pytest.importorskip("mpe2")
    server = procs(
        [
            *TW,
            "server",
            "--bind",
            ipc_base,
            "--world",
            "pettingzoo:mpe2.simple_spread_v3",
            "--lobby-timeout",
            "3",
            "--json",
            "-q",
        ]
    )
    agent = procs(
        [*TW, "agent", "--connect", ipc_base, "--agent", "tickwire.agents.examples.greedy_agent:GreedyAgent"],
        name="agent",
    )
    assert agent.wait(60) != 0
    assert server.wait(60) == ExitCode.LOBBY_TIMEOUT, server.stderr[-2000:]
    summary = json.loads(server.stdout)
    assert summary["players"] == []
    [left] = summary["left_in_lobby"]
    assert (left["id"], left["name"]) == (0, "GreedyAgent")
    assert left["reason"].startswith("agent error: ConfigError: GreedyAgent plays the grid world, but")
    assert "RandomAgent" in left["reason"] and len(left["reason"]) <= 500
