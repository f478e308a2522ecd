"""What PROTOCOL.md tells an agent written in another language, checked against the code."""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq.auth
from support.raw_player import RawPlayer
from support.summaries import player
from tickwire.agents.examples.greedy_agent import GreedyAgent
from tickwire.plumbing.keys import key_slot
from tickwire.protocol import Action, Error, Join, ProtocolError, decode, encode
from tickwire.protocol.digest import player_seed
from tickwire.protocol.limits import ACTION_LIMITS, CONTROL_LIMITS, MAX_ACTION_FRAME
from tickwire.server.worlds.grid_world import GridWorld


def _decode(obj, *frames: bytes):
    return decode([msgpack.packb(obj), *frames])


def test_slot_and_capabilities_may_be_omitted():
    assert _decode({"v": 1, "kind": "join", "name": "c"}) == Join("c", None, {})


@pytest.mark.parametrize(
    "obj, frames, reason",
    [
        ({"v": 1, "kind": "join", "name": "c", "capabilities": None}, (), "malformed"),
        ({"v": 1, "kind": "join", "name": "c", "slot": True}, (), "malformed"),
        ({"v": 1, "kind": "teleport"}, (), "malformed"),
        ({"v": 1, "kind": "state", "run": "r", "tick": 0}, (b"unreferenced",), "malformed"),
        ({"kind": "join", "name": "c"}, (), "version"),
        ([1, 2], (), "malformed"),
    ],
)
def test_what_the_decoder_rejects_and_why(obj, frames, reason):
    with pytest.raises(ProtocolError) as e:
        _decode(obj, *frames)
    assert e.value.reason == reason


def test_a_lower_seq_is_accepted_and_a_corrected_action_replaces_an_invalid_one(procs, ipc_base, zctx):
    server = procs(
        ["-m", "tickwire", "server", "--bind", ipc_base, "--players", "2", "--ticks", "2", "--json", "-q"],
        name="server",
    )
    p1, p2 = RawPlayer(zctx, ipc_base, "c1"), RawPlayer(zctx, ipc_base, "c2")
    w1, _ = p1.join(), p2.join()
    assert p1.next_state().tick == 0 and p2.next_state().tick == 0
    p1.act(0, 99)  # invalid: ERROR, but the tick stays open (p2 awaited)
    assert isinstance(err := p1.control(), Error) and err.code == "invalid_action"
    p1.push.send_multipart(encode(Action(w1.run, 0, w1.player, 0, w1.token, 1)))  # seq 0 < 1
    p1.push.send_multipart(p2.action(0, 0))  # same connection: arrives after the correction
    assert p1.next_state().tick == 1 and p2.next_state().tick == 1
    p1.act(1, 0)
    p2.act(1, 0)
    s = server.json()
    assert s["rejected"] == {"invalid_action": 1}
    assert player(s, w1.player)["answered"] == 2 and player(s, w1.player)["missed"] == 0


# ------------------------------------------------------------------ claims added with the docs site
PROTOCOL = (Path(__file__).resolve().parent.parent / "PROTOCOL.md").read_text()


def test_the_versioning_section_quotes_what_the_server_answers_to_another_version():
    with pytest.raises(ProtocolError) as e:
        _decode({"v": 2, "kind": "join", "name": "c"})
    assert e.value.reason == "version"
    assert (
        "protocol version 2 is not supported; this peer speaks version 1: upgrade the older side" in PROTOCOL
    )
    assert str(e.value) in PROTOCOL.replace("\n", " ")


def test_the_limits_named_as_v1_changes_are_the_code_limits():
    assert ACTION_LIMITS.max_header_bytes == 96 * 1024 and ACTION_LIMITS.max_array_bytes == 256 * 1024
    assert MAX_ACTION_FRAME == 256 * 1024 and CONTROL_LIMITS.max_header_bytes == 16 * 1024
    row = next(line for line in PROTOCOL.splitlines() if line.startswith("| action header limit"))
    assert "1 MiB" in row and "96 KiB" in row


def test_a_name_over_the_string_limit_is_malformed_not_oversized():
    assert CONTROL_LIMITS.max_str_len == 4096
    with pytest.raises(ProtocolError) as e:
        decode([msgpack.packb({"v": 1, "kind": "join", "name": "x" * 5000})], CONTROL_LIMITS)
    assert e.value.reason == "malformed"
    assert "a 5,000-character `name` is `malformed`, not `oversized`" in PROTOCOL


def test_the_sample_key_file_is_a_key_file_with_its_slot(tmp_path):
    sample = PROTOCOL[PROTOCOL.index("    #   ****  Generated") :]
    lines = []
    for line in sample.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    (tmp_path / "alice.key").write_text("\n".join(lines) + "\n")
    public, secret = zmq.auth.load_certificate(str(tmp_path / "alice.key"))
    assert len(public) == 40 and secret is None
    assert key_slot(tmp_path / "alice.key") == 0


def test_player_seeds_follow_the_documented_formula_and_exceed_2_53():
    seeds = [player_seed(run_seed, p) for run_seed in range(3) for p in range(4)]
    for run_seed, p in [(0, 0), (2, 3)]:
        expected = int(np.random.SeedSequence([run_seed, p]).generate_state(1, np.uint64)[0] >> 1)
        assert player_seed(run_seed, p) == expected
    assert all(0 <= s < 2**63 for s in seeds) and any(s > 2**53 for s in seeds)


def test_the_grid_world_observation_is_the_documented_table():
    world = GridWorld()
    obs = world.observe(world.reset(0, 3))
    assert set(obs) == {"tick", "grid", "positions", "scores"} and obs["tick"] == 0
    assert (obs["grid"].dtype.str, obs["grid"].shape) == ("|u1", (16, 16))
    assert (obs["positions"].dtype.str, obs["positions"].shape) == ("<i2", (3, 2))
    assert (obs["scores"].dtype.str, obs["scores"].shape) == ("<i4", (3,))
    assert int(obs["grid"].sum()) == max(4, 2 * 3)
    assert world.reset(0, 40)["grid"].shape == (18, 18)  # ceil(sqrt(8 * 40))
    assert "`|u1`, shape `[S, S]`" in PROTOCOL and "`<i2`, shape `[players, 2]`" in PROTOCOL


def documented_greedy(obs: dict, me: int) -> int:
    """GreedyAgent's rule as PROTOCOL.md words it, written from the page."""
    row, col = (int(v) for v in obs["positions"][me])
    targets = [
        (r, c)
        for r in range(obs["grid"].shape[0])
        for c in range(obs["grid"].shape[1])
        if obs["grid"][r, c] > 0
    ]
    if not targets:
        return 0
    tr, tc = min(targets, key=lambda rc: abs(rc[0] - row) + abs(rc[1] - col))  # first of the nearest
    if tr != row:
        return 2 if tr > row else 1
    if tc != col:
        return 4 if tc > col else 3
    return 0


def test_greedy_agent_follows_the_documented_rule():
    world = GridWorld()
    agents = [GreedyAgent() for _ in range(4)]
    for i, a in enumerate(agents):
        a.player_id = i
    state = world.reset(7, 4)
    for _ in range(200):
        obs = world.observe(state)
        actions = {i: a.act(obs) for i, a in enumerate(agents)}
        assert actions == {i: documented_greedy(obs, i) for i in range(4)}
        state = world.step(state, actions)
    empty = {**world.observe(state), "grid": np.zeros((16, 16), np.uint8)}
    assert agents[0].act(empty) == documented_greedy(empty, 0) == 0


def test_a_frame_over_the_control_cap_is_cut_without_an_answer_and_counted_nowhere(procs, ipc_base, zctx):
    """PROTOCOL.md: a JOIN over 64 KiB never reaches the server (libzmq cuts it): no ERROR,
    nothing in ``rejected``; a JOIN over the 16 KiB header limit but under the cap is
    answered ``oversized``."""
    server = procs(
        ["-m", "tickwire", "server", "--bind", ipc_base, "--players", "1", "--ticks", "2", "--json", "-q"],
        name="server",
    )
    big, mid = RawPlayer(zctx, ipc_base, "big"), RawPlayer(zctx, ipc_base, "mid")
    mid.dealer.send_multipart(
        [
            msgpack.packb(
                {
                    "v": 1,
                    "kind": "join",
                    "name": "m",
                    "capabilities": {
                        "x": "y" * 4000,
                        "z": "y" * 4000,
                        "w": "y" * 4000,
                        "q": "y" * 4000,
                        "r": "y" * 4000,
                    },
                }
            )
        ]
    )
    assert isinstance(err := mid.control(), Error) and err.code == "oversized"
    big.dealer.send_multipart(
        [msgpack.packb({"v": 1, "kind": "join", "name": "b", "capabilities": {"x": "y" * 70_000}})]
    )
    player = RawPlayer(zctx, ipc_base, "p")
    player.join()  # the server is serving: whatever the big JOIN caused has happened by now
    assert not big.dealer.poll(500), "the over-cap JOIN was answered"
    for tick in range(2):
        assert player.next_state().tick == tick
        player.act(tick, 0)
    s = server.json()
    assert s["rejected"] == {"oversized": 1}  # the mid JOIN only: the cut one is counted nowhere
