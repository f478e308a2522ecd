"""The default world's rules, determinism and rendering; endpoints and config validation."""

import numpy as np
import pytest
from tickwire.protocol import ConfigError, derive, player_seed, state_digest
from tickwire.server.world_server.config import ServerConfig
from tickwire.server.worlds.grid_world import GridWorld
from tickwire.server.worlds.png import write_png
from tickwire.server.worlds.world import InvalidAction


def test_same_seed_same_states_different_seed_different_states():
    w = GridWorld()
    runs = []
    for seed in (1, 1, 2):
        s = w.reset(seed, 3)
        rng = np.random.default_rng(0)
        for _ in range(50):
            s = w.step(s, {p: int(rng.integers(5)) for p in range(3)})
        runs.append(w.digest(s))
    assert runs[0] == runs[1] != runs[2]


def test_collecting_a_resource_scores_and_respawns_it():
    w = GridWorld(size=4, resources=3)
    s = w.reset(0, 1)
    target = np.argwhere(s["grid"] > 0)[0]
    s["positions"][0] = target
    s["positions"][0][0] -= 1 if target[0] > 0 else -1
    move = 2 if target[0] > s["positions"][0][0] else 1
    s2 = w.step(s, {0: move})
    assert s2["scores"][0] == 1 and s2["grid"].sum() == 3 and s2["tick"] == 1
    assert s["scores"][0] == 0  # step does not mutate its input


def test_moves_stay_on_the_grid():
    w = GridWorld(size=4)
    s = w.reset(0, 1)
    for _ in range(10):
        s = w.step(s, {0: 1})
        s = w.step(s, {0: 3})
    assert tuple(s["positions"][0]) == (0, 0)


def test_actions_are_validated_against_the_spec():
    w = GridWorld()
    assert w.validate_action(4) == 4
    for bad in (5, -1, "up", 1.0, True, None):
        with pytest.raises(InvalidAction, match="0..4"):
            w.validate_action(bad)


def test_an_invalid_action_is_a_tickwire_protocol_error_and_a_value_error():
    from tickwire.protocol import ProtocolError, TickwireError

    e = InvalidAction("action 7 is not an int in 0..4")
    assert isinstance(e, (ProtocolError, TickwireError, ValueError)) and isinstance(e, TickwireError)
    assert e.reason == "invalid_action" and str(e) == "action 7 is not an int in 0..4"


def test_render_writes_a_png(tmp_path):
    w = GridWorld(size=8)
    img = w.render(w.reset(0, 2), scale=4)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    write_png(str(tmp_path / "g.png"), img)
    data = (tmp_path / "g.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


def test_digest_is_canonical():
    assert state_digest({"a": 1, "b": np.arange(3)}) == state_digest({"b": np.arange(3), "a": 1})
    assert state_digest({"a": np.arange(3)}) != state_digest({"a": np.arange(3.0)})
    assert player_seed(1, 0) != player_seed(1, 1) and player_seed(1, 0) == player_seed(1, 0)


def test_endpoints_derive_three_addresses():
    e = derive("tcp://10.0.0.1:5555")
    assert (e.state, e.actions, e.control) == (
        "tcp://10.0.0.1:5555",
        "tcp://10.0.0.1:5556",
        "tcp://10.0.0.1:5557",
    )
    assert derive("ipc:///tmp/x").control == "ipc:///tmp/x.control"
    for bad in ("localhost:5555", "tcp://host", "udp://h:1", "tcp://h:65535"):
        with pytest.raises(ConfigError):
            derive(bad)


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"players": 0}, "--players"),
        ({"mode": "fast"}, "--mode"),
        ({"deadline_ms": 0}, "--deadline-ms"),
        ({"on_missing": "x"}, "--on-missing"),
        ({"min_players": 3, "players": 2}, "--min-players"),
        ({"strikes": -1}, "--strikes"),
        ({"lobby_timeout_s": 0}, "--lobby-timeout"),
        ({"events_path": ""}, "--events"),
    ],
)
def test_server_config_is_validated_with_the_flag_named(kw, words):
    with pytest.raises(ConfigError, match=words):
        ServerConfig(**kw)


def test_the_grid_grows_with_many_players():
    w = GridWorld()
    s = w.reset(0, 1000)
    assert s["grid"].shape == (90, 90) and s["grid"].sum() == 2000
    assert w.reset(0, 4)["grid"].shape == (16, 16)
    s = w.step(w.reset(0, 300), {p: 1 for p in range(300)})
    assert s["tick"] == 1


def _sequential_step(w, state, actions):
    """The rules as first written: players move and collect one by one, in id order."""
    from tickwire.server.worlds.grid_world import MOVES

    grid, pos, scores = state["grid"].copy(), state["positions"].copy(), state["scores"].copy()
    for pid in sorted(actions):
        pos[pid] = np.clip(pos[pid] + MOVES[actions[pid]], 0, w.size - 1)
        r, c = pos[pid]
        if grid[r, c]:
            grid[r, c] = 0
            scores[pid] += 1
    collected = int(state["grid"].sum() - grid.sum())
    if collected:
        empty = np.flatnonzero(grid == 0)
        grid.flat[state["rng"].choice(empty, size=collected, replace=False)] = 1
    return {"tick": state["tick"] + 1, "grid": grid, "positions": pos, "scores": scores, "rng": state["rng"]}


@pytest.mark.parametrize("players", [1, 7, 64])
def test_vectorised_step_matches_the_sequential_rules(players):
    w = GridWorld(size=6, resources=10)  # crowded: many players contest the same cells
    fast, slow = w.reset(3, players), w.reset(3, players)
    rng = np.random.default_rng(1)
    for _ in range(200):
        acting = [p for p in range(players) if rng.random() < 0.9]  # some players missing
        actions = {p: int(rng.integers(5)) for p in acting}
        fast, slow = w.step(fast, actions), _sequential_step(w, slow, actions)
        assert w.digest(fast) == w.digest(slow)


def test_a_world_spec_naming_the_module_before_the_server_split_still_loads():
    """Run records and scripts from 0.2.0 name tickwire.server.grid_world:GridWorld."""
    from tickwire.server.worlds.loader import load_world

    assert type(load_world("tickwire.server.grid_world:GridWorld")) is GridWorld
    assert type(load_world("tickwire.server.worlds.grid_world:GridWorld")) is GridWorld
