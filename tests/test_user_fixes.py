"""Fixes found by trying tickwire as a new user would (issue 19): each as the user meets it,
through the real command or script in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tickwire.server.worlds.grid_world import GridWorld
from tickwire.server.worlds.png import legend, player_colours, render_picture

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

#: Runs a script with some modules made unimportable (as if they were not installed).
WITHOUT = (
    "import runpy, sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "script = sys.argv[2]\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_path(script, run_name='__main__')\n"
)


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------------------- examples
@pytest.mark.parametrize(
    "script, missing, extra",
    [
        ("a3c_cartpole.py", "gymnasium", "tickwire[gym]"),
        ("parallel_players.py", "cloudpickle", "tickwire[pool]"),
    ],
)
def test_an_example_without_its_extra_says_which_to_install_and_fails(tmp_path, script, missing, extra):
    got = run(["-c", WITHOUT, missing, str(ROOT / "examples" / script)], tmp_path)
    assert got.returncode == 2, got.stdout + got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install '{extra}'" in lines[0] and missing in lines[0], got.stderr
    assert "nan" not in got.stdout + got.stderr and "Traceback" not in got.stderr


def test_the_a3c_example_prints_no_nan_when_no_episode_arrives(capsys):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import a3c_cartpole
    finally:
        sys.path.remove(str(ROOT / "examples"))
    assert a3c_cartpole.report({}, [], [], 0.5) == 1
    out = capsys.readouterr()
    assert "nan" not in out.out + out.err and "no episode arrived" in out.err


# ---------------------------------------------------------------------------- world loader
BROKEN = {
    "syntax.py": ("from tickwire import World\n\nclass W(World)\n    pass\n", 3, "SyntaxError"),
    "imports.py": (
        "import numpy\nimport no_such_module_for_tickwire\nfrom tickwire import World\n",
        2,
        "ModuleNotFoundError: No module named 'no_such_module_for_tickwire'",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("command", ["check-world", "run"])
def test_a_world_file_that_does_not_import_is_one_usage_error_naming_file_and_line(tmp_path, name, command):
    text, line, error = BROKEN[name]
    (tmp_path / name).write_text(text)
    spec = f"{tmp_path / name}:W"
    args = ["check-world", spec] if command == "check-world" else ["run", "--world", spec, "--ticks", "3"]
    got = run(["-m", "tickwire", *args], tmp_path)
    assert got.returncode == 2, got.stderr
    assert "Traceback" not in got.stderr
    lines = [x for x in got.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, got.stderr
    assert f"{tmp_path / name}:{line}: " in lines[0] and error in lines[0], lines[0]


def test_a_missing_world_module_keeps_its_one_line_message(tmp_path):
    got = run(["-m", "tickwire", "check-world", "no_such_world_module_xyz:W"], tmp_path)
    assert got.returncode == 2 and "cannot import world module 'no_such_world_module_xyz'" in got.stderr


# ---------------------------------------------------------------------------- python -m
@pytest.mark.parametrize(
    "module, usage",
    [
        ("tickwire", "usage: tickwire [-h]"),
        ("tickwire.server", "usage: tickwire server [-h]"),
        ("tickwire.agents", "usage: tickwire agent [-h]"),
    ],
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_python_m_entry_point_prints_its_own_help(tmp_path, module, usage, flag):
    got = run(["-m", module, flag], tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith(usage), got.stdout[:300]


# ---------------------------------------------------------------------------- GreedyAgent
def test_the_default_agent_on_a_pettingzoo_world_says_it_plays_the_grid_world(procs, ipc_base):
    pytest.importorskip("mpe2")
    world = "pettingzoo:mpe2.simple_spread_v3"
    server = procs(["-m", "tickwire", "server", "--world", world, "--bind", ipc_base])
    agent = procs(["-m", "tickwire", "agent", "--connect", ipc_base, "--join-timeout", "60"])
    assert agent.wait(90) == 2, agent.stderr[-3000:] + server.stderr[-3000:]  # the wrong --agent
    assert "IndexError" not in agent.stderr and "Traceback" not in agent.stderr
    said = [line for line in agent.stderr.splitlines() if "GreedyAgent plays the grid world" in line]
    assert len(said) == 1 and "private views" in said[0], agent.stderr[-3000:]
    assert "--agent tickwire.agents.examples.random_agent:RandomAgent" in said[0]
    server.wait_for("GreedyAgent plays the grid world", timeout=30)  # its LEAVE reason, logged


def test_tickwire_run_with_greedy_agent_on_a_pettingzoo_world_shows_why(tmp_path):
    pytest.importorskip("mpe2")
    args = ["-m", "tickwire", "run", "--world", "pettingzoo:mpe2.simple_spread_v3"]
    args += ["--agent", "tickwire.agents.examples.greedy_agent:GreedyAgent", "--ticks", "5"]
    got = run([*args, "--lobby-timeout", "10", "-q"], tmp_path)
    # 6: the agents' processes died in the lobby (the launcher joins a dead process before
    # reading its exit code; it used to miss it and wait out the lobby: exit 3)
    assert got.returncode == 6, got.stderr[-3000:]
    assert "IndexError" not in got.stderr
    assert "GreedyAgent plays the grid world" in got.stderr


def test_greedy_agent_refuses_at_setup_once_and_before_any_act():
    from tickwire.agents.examples.greedy_agent import GreedyAgent
    from tickwire.protocol import Welcome
    from tickwire.protocol.errors import ConfigError

    def welcome(**kw):
        base = dict(run="r", player=0, name="g", seed=0, token="t", topic=b"", mode="strict")
        return Welcome(**base, deadline_ms=None, ticks=5, players=1, **kw)

    grid = welcome(world=GridWorld().describe())
    GreedyAgent().setup(grid)  # the grid world: fine
    with pytest.raises(ConfigError, match="private views"):
        GreedyAgent().setup(welcome(world={"name": "pz", "action_spec": {}}, private=True))
    with pytest.raises(ConfigError, match="5 discrete moves"):
        GreedyAgent().setup(welcome(world={"name": "box", "action_spec": {"type": "box"}}))
    with pytest.raises(ConfigError, match="not the grid world's"):
        GreedyAgent().act(np.zeros(3))


# ---------------------------------------------------------------------------- --render
def _cell(img: np.ndarray, row: int, col: int, scale: int) -> set[tuple[int, ...]]:
    block = img[row * scale : (row + 1) * scale, col * scale : (col + 1) * scale]
    return {tuple(int(v) for v in c) for c in block.reshape(-1, 3)}


def test_render_picture_splits_a_shared_cell_and_has_a_legend():
    sys.path.insert(0, str(TESTS))
    try:
        from overlap_world import OverlapWorld
    finally:
        sys.path.remove(str(TESTS))
    world = OverlapWorld()
    state = world.reset(0, 3)
    img = render_picture(world, state)
    scale = 16  # a 16x16 grid scaled up to 256 pixels
    colours = [tuple(int(v) for v in c) for c in player_colours(3)]
    shared = _cell(img, 3, 4, scale)
    assert colours[0] in shared and colours[1] in shared, "a player sharing the cell is hidden"
    assert (255, 255, 255) in shared, "the shared cell does not show its count"
    assert colours[2] in _cell(img, 10, 12, scale) and colours[0] not in _cell(img, 10, 12, scale)
    # below the grid: a legend with each player's colour
    strip = img[16 * scale :]
    assert strip.shape[0] > 0 and strip.shape[1] == 16 * scale
    found = {tuple(int(v) for v in c) for c in strip.reshape(-1, 3)}
    assert all(c in found for c in colours), "a player's colour is missing from the legend"


def test_the_render_flag_writes_the_picture_with_legend(tmp_path):
    got = run(
        [
            "-m",
            "tickwire",
            "run",
            "--world",
            "overlap_world:OverlapWorld",
            "--agents",
            "3",
            "--agent",
            "overlap_world:StayAgent",
            "--ticks",
            "3",
            "--render",
            "final.png",
            "-q",
        ],
        tmp_path,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    sys.path.insert(0, str(TESTS))
    try:
        from test_replay_page import decode_png
    finally:
        sys.path.remove(str(TESTS))
    img = decode_png((tmp_path / "final.png").read_bytes())
    colours = [tuple(int(v) for v in c) for c in player_colours(3)]
    assert img.shape[0] > img.shape[1] == 256  # the grid and the legend below it
    shared = _cell(img, 3, 4, 16)
    assert colours[0] in shared and colours[1] in shared


def test_a_long_legend_wraps_and_ends_with_the_count_left_out():
    strip = legend(256, player_colours(100))
    assert strip.shape[1] == 256 and strip.shape[0] > 30  # several rows
    found = {tuple(int(v) for v in c) for c in strip.reshape(-1, 3)}
    assert tuple(int(v) for v in player_colours(100)[63]) in found
