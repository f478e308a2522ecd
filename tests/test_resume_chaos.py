"""Resume gaps, with real processes and SIGKILL: ``--on-missing repeat`` across a resume,
and a server killed while it writes its record (a half-written checkpoint, a short log write).

The reference for each is an uninterrupted run with the same seed and agents; the agents
are pure functions of the observation, so fresh processes after a resume act the same.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from tickwire.server.record import read_run

AGENT = "sample_agents:SlowOnceAgent"
SEED = "7"


def _replay(record) -> dict:
    out = subprocess.run([sys.executable, "-m", "tickwire", "replay", str(record), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def _misses(record) -> list[tuple[int, int]]:
    """(tick, player) of every filled-in action in the record."""
    return [(t.tick, pid) for t in read_run(record) for pid in sorted(t.missing)]


# ---------------------------------------------------------------------------- repeat
REPEAT = ["--mode", "deadline", "--deadline-ms", "1000", "--on-missing", "repeat"]


def test_on_missing_repeat_repeats_the_action_from_before_the_resume(procs, ipc_base, tmp_path):
    """Player 1 is slow at tick 12, the first tick after the server is killed and resumed:
    the world must step with its tick-11 action (recorded by the killed epoch), as in an
    uninterrupted run, not with the noop."""
    ticks, kill_at = 24, 12
    env = {"TW_SLOW_AT": str(kill_at), "TW_SLOW_S": "1.5"}
    ref = procs(["-m", "tickwire", "run", "--agents", "2", "--ticks", str(ticks), "--seed", SEED,
                 "--agent", AGENT, "--record", str(tmp_path / "ref"), *REPEAT, "--json", "-q"],
                name="reference", env=env)
    reference = ref.json(120)
    record = tmp_path / "rec"
    server = _repeat_server(procs, ipc_base, ticks, "--record", str(record))
    agents = _repeat_agents(procs, ipc_base, server.pid, {**env, "TW_KILL_AT": str(kill_at)}, 0)
    assert server.wait(60) == -signal.SIGKILL, server.stderr[-2000:]
    for a in agents:
        a.kill()
    resumed = _repeat_server(procs, ipc_base, ticks, "--resume", str(record), name="resumed")
    _repeat_agents(procs, ipc_base, resumed.pid, env, 1)
    summary = resumed.json(120)
    assert summary["resumed_from"] == kill_at and summary["resume"]["remembered_players"] == [0, 1]
    # player 1 missed exactly the slow tick in both runs (else the timing margins failed)
    assert _misses(record) == _misses(tmp_path / "ref") == [(kill_at, 1)]
    recorded = {t.tick: t.actions for t in read_run(record)}
    before = recorded[kill_at - 1][1]
    assert recorded[kill_at][1] == before != 0  # repeated, and not the noop (0)
    assert summary["state_hash"] == reference["state_hash"]
    report = _replay(record)
    assert report["identical"] and report["epochs"] == 2
    assert report["final_hash"] == reference["state_hash"]


def _repeat_server(procs, ipc_base, ticks, *extra, name="server"):
    return procs(["-m", "tickwire", "server", "--bind", ipc_base, "--players", "2", "--ticks",
                  str(ticks), "--seed", SEED, *REPEAT, "--lobby-timeout", "60", "--json", "-q",
                  *extra], name=name)


def _repeat_agents(procs, ipc_base, server_pid, env, epoch):
    """One process per player (a slow player must not hold up the other)."""
    return [procs(["-m", "tickwire", "agent", "--connect", ipc_base, "--agent", AGENT,
                   "--slot", str(slot), "--server-timeout", "30", "-q"],
                  name=f"agent{slot}-{epoch}", env={"TW_SERVER_PID": str(server_pid), **env})
            for slot in (0, 1)]
