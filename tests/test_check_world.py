"""``tickwire check-world``: a good world passes, each broken one is named in plain words."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import support.marl_worlds as mw
from tickwire.server.worlds.check import check_world
from tickwire.server.worlds.grid_world import GridWorld


@pytest.mark.parametrize(
    "make", [GridWorld, mw.PrivateCounter, mw.IntKeyed], ids=["grid", "private", "int-keys"]
)
def test_good_worlds_pass(make):
    assert check_world(make, players=3, ticks=20) == []


@pytest.mark.parametrize(
    "cls, words",
    [
        (mw.Nondeterministic, "not deterministic"),
        (mw.Unsendable, "cannot be sent"),
        (mw.TupleKeyed, "cannot be sent to agents (header is not valid msgpack"),
        (mw.OutOfSpace, "does not fit observation_space(0)"),
        (mw.BadScores, "returned 1 scores for 3 players"),
        (mw.BadView, "reward 'lots' is not a number"),
        (mw.CrashingStep, "step() at tick 0 raised KeyError"),
        (mw.FloatRender, "render() of the state after reset() returned a float64 array"),
        (mw.GrowingRender, "render() changed its picture's shape from (4, 4, 3)"),
    ],
)
def test_broken_worlds_are_named(cls, words):
    problems = check_world(cls, players=3, ticks=20)
    assert any(words in p for p in problems), problems


def test_a_pettingzoo_env_with_different_observation_sizes_passes():
    pytest.importorskip("mpe2")
    from tickwire.server.worlds.pettingzoo_world import PettingZooWorld

    assert check_world(lambda: PettingZooWorld("mpe2.simple_adversary_v3"), ticks=30) == []


def test_the_command_exits_0_when_good_and_1_when_not():
    world_file = mw.__file__
    ok = subprocess.run(
        [sys.executable, "-m", "tickwire", "check-world", f"{world_file}:PrivateCounter", "--ticks", "10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "tickwire", "check-world", f"{world_file}:BadScores", "--ticks", "10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "problem: scores() returned 1 scores for 2 players" in bad.stdout


def test_pettingzoo_infos_keep_what_can_travel():
    import numpy as np
    from tickwire.server.worlds.pettingzoo_world import _plain_info

    info = {"a": np.float32(1.5), "b": {"c": [1, np.int64(2), object()]}, "d": object(), 3: "x"}
    assert _plain_info(info) == {"a": 1.5, "b": {"c": [1, 2]}, "3": "x"}


def test_int_map_keys_travel_in_states_and_actions_of_a_real_run():
    """``{player_id: ...}`` in the state and in the actions: decoded as ints by agents and by
    the server (they were refused as map keys once: the run hung on tick 1)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickwire",
            "run",
            "--world",
            f"{mw.__file__}:IntKeyed",
            "--agent",
            f"{mw.__file__}:IntKeyedAgent",
            "--agents",
            "2",
            "--ticks",
            "20",
            "--json",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    s = json.loads(out.stdout)
    assert out.returncode == 0 and s["rejected"] == {}, out.stderr[-2000:]
    assert [(p["answered"], p["score"]) for p in s["players"]] == [(20, 20.0), (20, 20.0)]


def test_a_raising_step_is_one_problem_and_bad_counts_are_usage_errors():
    assert check_world(mw.CrashingStep, players=3, ticks=5) == [
        "step() at tick 0 raised KeyError: 'oops'"
    ]  # not also "returned None"
    for flag, value in (("--players", "0"), ("--ticks", "-1")):
        out = subprocess.run(
            [sys.executable, "-m", "tickwire", "check-world", f"{mw.__file__}:PrivateCounter", flag, value],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2 and f"argument {flag}: must be at least" in out.stderr
