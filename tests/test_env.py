"""Seats of a real tickwire world as Gymnasium / PettingZoo environments (tickwire.agents.env).

Every world here is real: a ``tickwire server`` process and bots as ``tickwire agent``
processes, launched by :func:`launch_world` (which must leave nothing behind) or started by
the test. The API checkers are the libraries' own.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from support.servers import start_server, wait_tick
from tickwire.agents.env import (
    LaunchedWorld,
    ParallelSeats,
    RunEnded,
    SeatEnv,
    launch_world,
    make_vector_env,
)
from tickwire.protocol import ConfigError, TransportError

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("pettingzoo")
from gymnasium.utils.env_checker import check_env  # noqa: E402
from pettingzoo.test import parallel_api_test  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*Box observation space (minimum|maximum) value is.*:UserWarning"  # MPE's unbounded Box
)

GREEDY = "tickwire.agents.examples.greedy_agent:GreedyAgent"
RANDOM = "tickwire.agents.examples.random_agent:RandomAgent"
MPE = "pettingzoo:mpe2.simple_spread_v3"


def assert_left_nothing(world: LaunchedWorld) -> None:
    """Every launched process exited (and was waited for), the directory is gone."""
    assert world.closed
    for proc in world.procs:
        assert proc.returncode is not None, f"{proc.args[:4]} still running"
    assert not world.directory.exists()


def check_env_on(env: SeatEnv) -> None:
    """Gymnasium's check_env. Its close check builds a second env from ``env.spec``, which
    would take another seat of the (full) world: skipped here, tested by closing twice."""
    check_env(env, skip_close_check=True)


def test_one_seat_of_the_grid_world_passes_check_env():
    world = launch_world(seats=1, bots={GREEDY: 1}, seed=3)
    env = SeatEnv(world, slot=0, episode_ticks=20)
    try:
        assert env.player == 0
        assert env.observation_space == gymnasium.spaces.Box(0, 1, (3, 16, 16), np.uint8)
        assert env.action_space == gymnasium.spaces.Discrete(5)
        assert env.spec.nondeterministic
        check_env_on(env)
        obs, info = env.reset(seed=1)
        assert obs[1].sum() == 1 and obs[2].sum() == 1  # this seat's cell, the bot's cell
        steps = 0
        while True:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            steps += 1
            assert reward in (0.0, 1.0) and not terminated
            assert info["missed_ticks"] == 0 and info["late"] is False  # strict mode
            if truncated:
                break
        assert steps == 20
        with pytest.raises(RuntimeError, match="call reset"):
            env.step(0)
    finally:
        env.close()
    env.close()  # twice is fine
    assert_left_nothing(world)


def test_two_seats_of_the_grid_world_pass_parallel_api_test():
    world = launch_world(seats=2, bots={RANDOM: 1})
    env = ParallelSeats(world, seats=2, slot=0, episode_ticks=15)
    try:
        assert env.possible_agents == ["player_0", "player_1"]
        parallel_api_test(env, num_cycles=40)
    finally:
        env.close()
    assert_left_nothing(world)


def test_a_pettingzoo_world_passes_parallel_api_test_and_check_env():
    """Private views: observation, reward and flags come from each seat's OBSERVATION; the
    world's episodes (25 steps of simple_spread) are the env's."""
    world = launch_world(MPE, seats=2, bots={RANDOM: 1})
    env = ParallelSeats(world, seats=2, slot=0)
    try:
        assert env.possible_agents == ["agent_0", "agent_1"]
        assert env.observation_space("agent_0").shape == (18,)
        parallel_api_test(env, num_cycles=60)
        obs, _ = env.reset()
        steps, total = 0, 0.0
        while env.agents:
            obs, rewards, terms, truncs, infos = env.step(
                {a: env.action_space(a).sample() for a in env.agents}
            )
            steps += 1
            total += sum(rewards.values())
        assert 1 <= steps <= 25 and all(truncs.values())
        assert total < 0  # simple_spread's rewards are negative distances
    finally:
        env.close()
    assert_left_nothing(world)

    world = launch_world(MPE, seats=1, bots={RANDOM: 2})
    env = SeatEnv(world, slot=0)
    try:
        check_env_on(env)
    finally:
        env.close()
    assert_left_nothing(world)


def test_a_running_world_rewards_add_up_to_the_servers_score(procs, tmp_path):
    """Seats of a world someone else started: the run's END truncates the episode, and the
    seat's rewards add up to the score the server's summary gives it."""
    server, listening, _ = start_server(procs, tmp_path, "--players", "2", "--ticks", "60", "--seed", "7")
    procs(["-m", "tickwire", "agent", "--connect", listening["base"], "--agent", GREEDY, "-q"], name="bot")
    env = SeatEnv(listening["base"], episode_ticks=None)
    try:
        env.reset(seed=0)
        total, info, truncated = 0.0, {}, False
        rng = np.random.default_rng(0)
        while not truncated:
            _, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
            total += reward
        assert info["end"] == "ticks done"
        with pytest.raises(RunEnded, match="run is over"):
            env.reset()
    finally:
        env.close()
    summary = server.json(60)
    assert summary["players"][env.player]["score"] == total


def test_deadline_mode_a_slow_trainer_misses_ticks_and_sees_it(zctx):
    world = launch_world(
        seats=1, bots={GREEDY: 1}, mode="deadline", deadline_ms=20, server_args=["--strikes", "0"]
    )
    env = SeatEnv(world, slot=0, episode_ticks=None)
    try:
        _, info = env.reset()
        wait_tick(zctx, world.connect, info["tick"] + 3)  # the trainer "thinks" for 3 ticks
        link = env.seats.link  # and the newer state has reached its socket too (no race)
        link.wait(lambda: link.act is not None, 30, "a newer tick")
        _, _, _, _, info2 = env.step(0)
        assert info2["late"] is True
        assert info2["missed_ticks"] >= 3 and info2["tick"] >= info["tick"] + 3
    finally:
        env.close()
    assert_left_nothing(world)


def test_vector_env_autoresets_on_the_next_step():
    worlds = [launch_world(seats=1, bots={RANDOM: 1}, seed=s) for s in range(2)]
    venv = make_vector_env(worlds, slot=0, episode_ticks=3)
    try:
        assert venv.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
        obs, info = venv.reset(seed=0)
        assert obs.shape == (2, 3, 16, 16) and list(info["tick"]) == [0, 0]
        for step in range(1, 4):
            obs, rewards, terms, truncs, info = venv.step(venv.action_space.sample())
            assert list(truncs) == [step == 3] * 2 and not terms.any()
            assert list(info["tick"]) == [step, step]
        obs, rewards, terms, truncs, info = venv.step(venv.action_space.sample())  # the reset step
        assert list(rewards) == [0.0, 0.0] and not truncs.any() and not terms.any()
        assert list(info["tick"]) == [3, 3]  # the new episode starts where the world is
        obs, rewards, terms, truncs, info = venv.step(venv.action_space.sample())
        assert list(info["tick"]) == [4, 4]
    finally:
        venv.close()
    for world in worlds:
        assert_left_nothing(world)


def test_a_launched_server_that_fails_says_why():
    world = launch_world("no_such_module:World", seats=1, bots={})
    with pytest.raises(TransportError, match="launched server process exited"):
        SeatEnv(world, slot=0, join_timeout_s=30)
    assert_left_nothing(world)


def test_a_world_that_describes_no_observation_needs_a_view(procs, tmp_path):
    server, listening, _ = start_server(
        procs, tmp_path, "--players", "1", "--world", "support.counter_world:CounterWorld"
    )
    with pytest.raises(ConfigError, match="pass view="):
        SeatEnv(listening["base"])
    server.kill()


@pytest.mark.parametrize(
    ("hidden", "code", "extra"),
    [
        ("gymnasium", "import tickwire.agents.env", "tickwire[gym]"),
        (
            "pettingzoo",
            "from tickwire.agents.env import ParallelSeats; ParallelSeats('ipc:///nowhere')",
            "tickwire[pettingzoo]",
        ),
    ],
)
def test_a_missing_extra_is_named(hidden, code, extra):
    """Without gymnasium (or pettingzoo, for ParallelSeats) the error names the extra to install."""
    blocker = f"import sys; sys.modules[{hidden!r}] = None\n"  # import of it raises ImportError
    out = subprocess.run([sys.executable, "-c", blocker + code], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and f"pip install '{extra}'" in out.stderr, out.stderr
