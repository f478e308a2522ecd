"""PettingZoo envs and private views end to end: real server, real agent processes, real
mpe2 envs (``pip install -e '.[test]'`` installs them)."""

from __future__ import annotations

import pytest
from support.summaries import accounted

pytest.importorskip("mpe2")

ADVERSARY = "pettingzoo:mpe2.simple_adversary_v3"  # observation sizes 8, 10, 10


def run(procs, name: str, *args: str) -> dict:
    return procs(["-m", "tickwire", "run", "-q", "--json", *args], name=name).json(120)


def test_a_pettingzoo_env_runs_episode_after_episode_with_its_own_players(procs):
    s = run(
        procs,
        "adversary",
        "--world",
        ADVERSARY,
        "--ticks",
        "60",
        "--seed",
        "3",
        "--agent",
        "support.marl_worlds:SpaceCheckingAgent",
    )
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
    s = run(
        procs,
        "private",
        "--world",
        "support.marl_worlds:PrivateCounter",
        "--agents",
        "3",
        "--per-process",
        "2",
        "--ticks",
        "20",
        "--agent",
        "support.marl_worlds:SpaceCheckingAgent",
    )
    by_id = {p["id"]: p for p in s["players"]}
    assert by_id[0]["done"] == 4 and by_id[0]["answered"] == 16  # out on ticks 4, 9, 14, 19
    assert by_id[1]["done"] == 0 and by_id[1]["answered"] == 20
    assert all(accounted(p) == 20 for p in s["players"])


def _readme_block(lang: str, text: str) -> str:
    """The one block in ``lang`` containing ``text``, in the README or the docs pages."""
    from support.doc_blocks import all_blocks

    (block,) = {b.text for b in all_blocks() if b.lang == lang and text in b.text}
    return block


def test_the_readme_private_view_world_runs_and_checks_as_printed(procs, tmp_path):
    (tmp_path / "tag.py").write_text(_readme_block("python", "class TagWorld"))
    s = run(
        procs,
        "tag",
        "--world",
        "tag.py:TagWorld",
        "--agent",
        "tag.py:LeftAgent",
        "--agents",
        "2",
        "--ticks",
        "20",
    )
    assert s["reason"] == "world done" and s["ticks"] == 5  # 5 → 0 in five steps
    assert all(p["answered"] == 5 and accounted(p) == 5 for p in s["players"])
    check = procs(["-m", "tickwire", "check-world", "tag.py:TagWorld", "--players", "2"], name="check-tag")
    assert check.wait(60) == 0, check.stdout + check.stderr
    assert "OK" in check.stdout


def test_a_private_observation_reaches_its_player_and_nobody_on_the_state_socket(procs, ipc_base, zctx):
    """Raw sockets: each player gets only its own OBSERVATION (on its control connection);
    an eavesdropper subscribed to everything on the state socket sees STATEs, none of them."""
    import zmq
    from support.raw_player import RawPlayer
    from tickwire.protocol import Observation, decode, derive

    server = procs(
        [
            "-m",
            "tickwire",
            "server",
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--ticks",
            "3",
            "--world",
            "support.marl_worlds:PrivateCounter",
            "--json",
            "-q",
        ],
        name="server",
    )
    spy = zctx.socket(zmq.SUB)
    spy.setsockopt(zmq.SUBSCRIBE, b"")
    spy.connect(derive(ipc_base).state)
    # subscribed before anyone joins: the lobby's heartbeat (every 1 s) has reached it
    assert spy.poll(10_000), "the spy got no heartbeat from the lobby"
    kinds = [decode(spy.recv_multipart()).KIND]
    players = [RawPlayer(zctx, ipc_base, f"raw{i}") for i in range(2)]
    welcomes = [p.join() for p in players]
    assert all(w.private and w.action_space == {"type": "discrete", "n": 3} for w in welcomes)
    for tick in range(3):
        for p, w in zip(players, welcomes):
            assert p.next_state().tick == tick
            obs = p.control()
            assert isinstance(obs, Observation) and (obs.tick, obs.player) == (tick, w.player)
            assert len(obs.payload) == 1 + w.player  # its own view: one more per player id
            if not obs.terminated:
                p.act(tick, 1)
    s = server.json()
    assert s["ticks"] == 3 and s["rejected"] == {}
    while kinds[-1] != "end" and spy.poll(5_000):  # everything published, up to the END
        kinds.append(decode(spy.recv_multipart()).KIND)
    assert kinds.count("state") == 3 and kinds[-1] == "end" and "observation" not in kinds, kinds
