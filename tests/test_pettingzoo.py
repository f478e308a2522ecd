"""PettingZoo envs and private views end to end: real server, real agent processes, real
mpe2 envs (``pip install -e '.[test]'`` installs them)."""
from __future__ import annotations

import pytest
from conftest import accounted

pytest.importorskip("mpe2")

ADVERSARY = "pettingzoo:mpe2.simple_adversary_v3"  # observation sizes 8, 10, 10


def run(procs, name: str, *args: str) -> dict:
    return procs(["-m", "tickwire", "run", "-q", "--json", *args], name=name).json(120)


def test_a_pettingzoo_env_runs_episode_after_episode_with_its_own_players(procs):
    s = run(procs, "adversary", "--world", ADVERSARY, "--ticks", "60", "--seed", "3",
            "--agent", "marl_worlds:SpaceCheckingAgent")
    assert s["agents"] == ["adversary_0", "agent_0", "agent_1"]
    assert len(s["players"]) == 3  # --agents defaults to the env's agent count
    # 25 steps per episode + one tick where every agent sees its final view (done)
    assert [(e["episode"], e["steps"]) for e in s["episodes"]] == [(0, 25), (1, 25)]
    assert all(len(e["returns"]) == 3 for e in s["episodes"])
    for p in s["players"]:
        assert (p["answered"], p["done"], p["dead"], p["missed"]) == (58, 2, 0, 0), p
        assert accounted(p) == 60
    assert s["rejected"] == {}


def test_the_same_seed_gives_the_same_run_and_sampling_agents_by_default(procs):
    a = run(procs, "spread-a", "--world", "pettingzoo:mpe2.simple_spread_v3", "--ticks", "30")
    b = run(procs, "spread-b", "--world", "pettingzoo:mpe2.simple_spread_v3", "--ticks", "30")
    assert [p["name"] for p in a["players"]][0] == "RandomAgent"
    assert a["state_hash"] == b["state_hash"]
    assert a["episodes"] == b["episodes"] and len(a["episodes"]) == 1
    assert [p["score"] for p in a["players"]] == [p["score"] for p in b["players"]]


def test_a_world_with_private_views_runs_and_counts_terminated_ticks_as_done(procs):
    s = run(procs, "private", "--world", "marl_worlds:PrivateCounter", "--agents", "3",
            "--per-process", "2", "--ticks", "20", "--agent", "marl_worlds:SpaceCheckingAgent")
    by_id = {p["id"]: p for p in s["players"]}
    assert by_id[0]["done"] == 4 and by_id[0]["answered"] == 16  # out on ticks 4, 9, 14, 19
    assert by_id[1]["done"] == 0 and by_id[1]["answered"] == 20
    assert all(accounted(p) == 20 for p in s["players"])
