"""The pytest plugin as a user gets it: installed (pytest11 entry point), in a separate pytest
process (pytester.runpytest_subprocess), driving real agent processes and sockets."""

from __future__ import annotations

import json
import re
import sys

import pytest
from support.processes import alive

from tickwire.pytest_plugin import AgentRecipe

pytest_plugins = ["pytester"]

#: Every inner session is bounded twice: pytest-timeout inside, the subprocess timeout outside.
INNER_TIMEOUT = ("-p", "no:cacheprovider", "--timeout=90")


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*INNER_TIMEOUT, *args, timeout=150)


COUNT_WORLD = '''
from tickwire import World

class CountWorld(World):
    """The total of all actions, plus a start value given to the constructor."""
    action_spec = {"type": "discrete", "n": 10}
    def __init__(self, start=0):
        self.start = start
    def reset(self, seed, players): return {"total": self.start}
    def step(self, state, actions): return {"total": state["total"] + sum(actions.values())}
    def scores(self, state): return [state["total"]]
    def noop(self): return 0
'''


def test_the_plugin_is_registered_through_the_pytest11_entry_point(pytester):
    result = run_inner(pytester, "--fixtures")
    result.stdout.fnmatch_lines(["*tickwire_run*", "*tickwire_server*"])
    assert "tickwire.pytest_plugin" in "\n".join(result.stdout.lines)


def test_an_agent_class_defined_in_the_test_module_answers_every_tick(pytester):
    pytester.makepyfile("""
        import json
        from tickwire import Agent

        class Stay(Agent):
            def act(self, observation):
                return 0

        def test_match(tickwire_run):
            summary = tickwire_run(agents=[Stay, Stay], ticks=50, seed=3)
            assert summary["reason"] == "ticks done" and summary["ticks"] == 50
            assert [p["name"] for p in summary["players"]] == ["Stay", "Stay-1"]
            for p in summary["players"]:
                assert (p["status"], p["answered"], p["missed"]) == ("active", 50, 0), p
            assert summary.exit_codes == [0, 0] and summary.errors == [None, None]
            with open("summary.json", "w") as f:
                json.dump(summary, f)
    """)
    run_inner(pytester).assert_outcomes(passed=1)
    ours = json.loads((pytester.path / "summary.json").read_text())
    cli = pytester.run(
        sys.executable, "-m", "tickwire", "run", "--json", "--agents", "1", "--ticks", "3", timeout=60
    )
    assert cli.ret == 0, cli.stderr.str()
    theirs = json.loads(cli.stdout.str())
    assert sorted(ours) == sorted(theirs)  # the same dict as `tickwire run --json`
    assert sorted(ours["players"][0]) == sorted(theirs["players"][0])
    assert ours["seed"] == 3 and ours["world"] == "GridWorld" and ours["mode"] == "strict"


def test_an_agent_that_raises_exits_or_is_slow_shows_up_and_the_run_goes_on(pytester):
    pytester.makepyfile("""
        import os
        import time
        from tickwire import Agent

        class Stay(Agent):
            def act(self, observation):
                return 0

        class Crashes(Agent):
            def act(self, observation):
                if self.tick == 3:
                    raise RuntimeError("boom at tick 3")
                return 0

        class Exits(Agent):
            def act(self, observation):
                if self.tick == 4:
                    os._exit(7)
                return 0

        def test_match(tickwire_run):
            summary = tickwire_run(agents=[Stay, Crashes, Exits], ticks=40, mode="strict")
            assert summary["reason"] == "ticks done" and summary["ticks"] == 40
            stay, crashes, exits = summary["players"]
            assert (stay["status"], stay["answered"]) == ("active", 40)
            assert (crashes["status"], crashes["answered"]) == ("left", 3)
            assert (exits["status"], exits["answered"]) == ("dead", 4)
            assert summary.exit_codes == [0, 1, 7]
            assert summary.errors == [None, "RuntimeError: boom at tick 3", None]

        class Slow(Agent):
            def act(self, observation):
                time.sleep(0.5)  # the agent under test is slow: the deadline must not wait
                return 0

        def test_deadline_mode_does_not_wait_for_a_slow_agent(tickwire_run):
            summary = tickwire_run(agents=[Stay, Slow], ticks=20, mode="deadline",
                                   deadline_ms=50)
            stay, slow = summary["players"]
            assert summary["reason"] == "ticks done" and summary["ticks"] == 20
            assert slow["missed"] >= 3 and stay["answered"] > slow["answered"]
    """)
    result = run_inner(pytester)
    result.assert_outcomes(passed=2)
    assert result.duration < 60


def test_an_agent_raising_in_setup_ends_the_lobby_with_its_error(pytester):
    pytester.makepyfile("""
        from tickwire import Agent

        class Stay(Agent):
            def act(self, observation):
                return 0

        class BadSetup(Agent):
            def setup(self, info):
                raise ValueError("no setup for you")

        def test_match(tickwire_run):
            summary = tickwire_run(agents=[Stay, BadSetup], ticks=40)
            assert summary["ticks"] == 0
            assert summary["reason"] == ("stopped in the lobby (agent 1 (BadSetup) exited with "
                                         "code 1 before the run started: ValueError: no setup for you)")
            assert summary.exit_codes[1] == 1
    """)
    result = run_inner(pytester)
    result.assert_outcomes(passed=1)
    assert result.duration < 60  # not the lobby timeout


def test_a_world_instance_and_agent_instances_reach_their_processes(pytester):
    pytester.makepyfile(
        COUNT_WORLD
        + """
import pytest
from tickwire import Agent

class Adds(Agent):
    def __init__(self, k):
        self.k = k
    def act(self, observation):
        return self.k

def test_match(tickwire_run):
    summary = tickwire_run(agents=[Adds(1), Adds(2)], world=CountWorld(start=100), ticks=10,
                           transport="tcp")
    assert summary["world"] == "CountWorld"
    assert summary["players"][0]["score"] == 100 + 10 * (1 + 2)

class Broken(CountWorld):
    def step(self, state, actions):
        raise ZeroDivisionError("the world under test is broken")

def test_an_error_in_the_world_reaches_the_test(tickwire_run):
    with pytest.raises(ZeroDivisionError, match="the world under test is broken"):
        tickwire_run(agents=[Adds(1)], world=Broken(), ticks=10)
"""
    )
    run_inner(pytester).assert_outcomes(passed=2)


def test_world_and_agents_given_as_module_and_file_specs(pytester):
    pytester.makepyfile(count_world=COUNT_WORLD)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "my_agents.py").write_text(
        "from tickwire import Agent\n\nclass Two(Agent):\n    def act(self, observation):\n        return 2\n"
    )
    (pytester.path / "tests" / "test_specs.py").write_text(
        "def test_match(tickwire_run):\n"
        "    summary = tickwire_run(agents=['my_agents.py:Two', 'my_agents:Two'],\n"
        "                           world='count_world:CountWorld', ticks=10)\n"
        "    assert summary['world'] == 'CountWorld'\n"
        "    assert summary['players'][0]['score'] == 10 * (2 + 2)\n"
        "    assert [p['name'] for p in summary['players']] == ['Two', 'Two-1']\n"
    )
    # the file spec is relative to the test file; the module spec is found on sys.path
    run_inner(pytester, "tests", "--rootdir", str(pytester.path), "-o", "pythonpath=.").assert_outcomes(
        passed=1
    )


def test_test_module_classes_work_with_import_mode_importlib(pytester):
    (pytester.path / "agent-tests").mkdir()  # not a valid package name: not importable by name
    (pytester.path / "agent-tests" / "test_importlib.py").write_text(
        "from tickwire import Agent\n\n"
        "class Stay(Agent):\n"
        "    def act(self, observation):\n"
        "        return 0\n\n"
        "def test_match(tickwire_run):\n"
        "    summary = tickwire_run(agents=[Stay, Stay(), Stay], ticks=20)\n"
        "    assert [p['answered'] for p in summary['players']] == [20, 20, 20], summary\n"
    )
    run_inner(pytester, "--import-mode=importlib", "agent-tests").assert_outcomes(passed=1)


def test_a_class_defined_inside_the_test_function_travels_by_value(pytester):
    pytest.importorskip("cloudpickle")
    pytester.makepyfile("""
        from tickwire import Agent

        def test_match(tickwire_run):
            answer = 1

            class Local(Agent):
                def act(self, observation):
                    return answer

            summary = tickwire_run(agents=[Local, Local()], ticks=10)
            assert [p["answered"] for p in summary["players"]] == [10, 10]
    """)
    run_inner(pytester).assert_outcomes(passed=1)


def test_without_cloudpickle_a_local_class_is_refused_with_a_clear_message(monkeypatch):
    from tickwire import Agent

    class Local(Agent):
        def act(self, observation):
            return 0

    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # import cloudpickle → ImportError
    with pytest.raises(TypeError, match="define it at module level .*pip install cloudpickle"):
        AgentRecipe.of(Local)


def test_a_module_not_importable_by_name_is_loaded_from_its_file(tmp_path, monkeypatch):
    (tmp_path / "elsewhere.py").write_text(
        "from tickwire import Agent\n\nclass Far(Agent):\n    def act(self, o):\n        return 0\n"
    )
    monkeypatch.delitem(sys.modules, "not.a.package.elsewhere", raising=False)
    recipe = AgentRecipe(
        "Far", module="not.a.package.elsewhere", file=str(tmp_path / "elsewhere.py"), qualname="Far"
    )
    try:
        agent = recipe.build()
        assert type(agent).__name__ == "Far" and agent.name == "Far"
    finally:
        sys.modules.pop("not.a.package.elsewhere", None)


def test_tickwire_server_plays_with_agents_the_test_starts(pytester):
    pytester.makepyfile(count_world=COUNT_WORLD)
    pytester.makepyfile(
        my_agents="""
        from tickwire import Agent

        class Adds(Agent):
            def __init__(self, k=2):
                self.k = k
            def act(self, observation):
                return self.k
    """
    )
    pytester.makepyfile("""
        import subprocess
        import sys
        import threading

        import tickwire
        from count_world import CountWorld
        from my_agents import Adds

        def test_match(tickwire_server):
            server = tickwire_server(players=2, ticks=20, world=CountWorld())
            assert server.address.startswith("tcp://127.0.0.1:")
            in_thread = threading.Thread(target=tickwire.run, args=(Adds(1),), daemon=True,
                                         kwargs={"connect": server.address, "handle_signals": False,
                                                 "slot": 0})
            in_thread.start()
            child = subprocess.Popen([sys.executable, "-m", "tickwire.agents", "--connect",
                                      server.address, "--agent", "my_agents:Adds", "--slot", "1"])
            try:
                summary = server.wait(60)
            finally:
                in_thread.join(15)
                child.wait(15)
            assert summary["reason"] == "ticks done"
            assert summary["players"][0]["score"] == 20 * (1 + 2)
            assert child.returncode == 0 and not in_thread.is_alive()

        def test_unwaited_server_is_stopped_at_teardown(tickwire_server):
            server = tickwire_server(players=3)
            assert not server.done
    """)
    run_inner(pytester).assert_outcomes(passed=2)


LEFTOVERS = '''
import json
import os
from pathlib import Path

def children():
    """Live children of this process, less multiprocessing's resource tracker."""
    from multiprocessing import resource_tracker
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] != "Z" and int(entry.name) != tracker:
                kids.append(int(entry.name))
    return kids
'''


def test_a_match_that_does_not_end_in_time_fails_clearly_and_leaves_nothing(pytester):
    pytester.makepyfile(
        LEFTOVERS
        + """
from tickwire import Agent

class Stay(Agent):
    def act(self, observation):
        return 0

class Spins(Agent):
    def act(self, observation):
        while True:
            pass

def test_hangs(tickwire_run):
    tickwire_run(agents=[Stay, Spins], ticks=10, timeout=6)

def test_then_nothing_is_left(tickwire_run):
    assert children() == []
    summary = tickwire_run(agents=[Stay], ticks=5)
    assert children() == []
    assert not os.path.exists(summary.address.partition("://")[2].rpartition("/")[0])
    Path("pids.json").write_text(json.dumps(summary.pids))
"""
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=1, failed=1)
    # normally "(tick 0 of 10; players: 0 'Stay' active answered 0, 1 'Spins' active ...)"
    # and Spins is caught spinning in act(); on a loaded machine Stay may still be starting
    # after 6 s ("still in the lobby, 1 of 2 player(s) ready"): then Spins never got a state
    # to spin on and, if it was ready, ends cleanly on the END.
    lobby = "still in the lobby" in result.stdout.str()
    spins = "*" if lobby else "was still running (stopped at the end)."
    result.stdout.fnmatch_lines(
        [
            "*tickwire_run: the match did not end within 6 s (*; players: *). Agents: agent 0 "
            f"(Stay) *; agent 1 (Spins) {spins} Raise timeout=*"
        ]
    )
    if lobby:
        assert re.search(
            r"agent 1 \(Spins\) (exited with code 0|was still running "
            r"\(stopped at the end\))\. Raise",
            result.stdout.str(),
        )
    assert result.duration < 60
    pids = json.loads((pytester.path / "pids.json").read_text())
    assert pids and not any(alive(pid) for pid in pids)


def test_the_plugin_does_not_load_the_server_until_a_fixture_is_used(pytester):
    pytester.makepyfile("""
        import sys

        def test_nothing_heavy_imported():
            assert "tickwire.pytest_plugin" in sys.modules
            assert "zmq" not in sys.modules and "tickwire.server.world_server.loop" not in sys.modules
    """)
    run_inner(pytester).assert_outcomes(passed=1)


def test_the_readme_pytest_example_passes_as_printed(pytester):
    from support.doc_blocks import block_with

    pytester.makepyfile(test_readme_example=block_with("python", "def test_my_agent_plays_every_tick"))
    result = run_inner(pytester)
    result.assert_outcomes(passed=1)


def test_the_plugin_loads_worlds_as_the_cli_does_pettingzoo_specs_included():
    pytest.importorskip("mpe2")
    from tickwire.server.worlds.pettingzoo_world import PettingZooWorld

    from tickwire.pytest_plugin import _load_world

    world = _load_world("pettingzoo:mpe2.simple_spread_v3", None)
    assert isinstance(world, PettingZooWorld)
    assert world.default_players == 3


def test_the_summary_is_the_json_object_and_a_key_that_is_an_attribute_says_so():
    from tickwire.pytest_plugin import RunSummary

    summary = RunSummary({"reason": "ticks done", "outcome": "ok", "exit_code": 0, "players": []})
    summary.exit_codes, summary.errors, summary.pids, summary.address = [0], [None], [1], "ipc://x"
    assert summary["reason"] == "ticks done" and summary.get("exit_codes") is None
    assert json.loads(json.dumps(summary)) == {
        "reason": "ticks done",
        "outcome": "ok",
        "exit_code": 0,
        "players": [],
    }
    for name in RunSummary.ATTRIBUTES:
        with pytest.raises(KeyError, match=rf"not a key of the run's summary .* use summary\.{name}"):
            summary[name]
        assert getattr(summary, name) is not None
    with pytest.raises(KeyError, match="^'nothing'$"):
        summary["nothing"]
