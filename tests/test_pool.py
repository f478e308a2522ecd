"""PlayerPool with real processes: hosting, persistence, order, players defined anywhere,
split-phase calls, errors, deaths, timeouts, Ctrl-C, nothing left running."""

import logging
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from support.paths import SUPPORT
from support.processes import alive
from support.sample_players import ArraySummer, Counter, DiesOnArrival, Exiter, Raiser, Sleeper
from tickwire.plumbing.process import cores_are_free, cpu_times, idle_share
from tickwire.protocol import ConfigError
from tickwire.server import PlayerDied, PlayerError
from tickwire.server.work.pool import AlreadySubmitted, NotSubmitted, PlayerStartError, split

from tickwire import PlayerPool


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait (bounded, no sleeping) until process ``pid`` has exited; True if it has."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if select.select([fd], [], [], timeout)[0]:
            return True
    finally:
        os.close(fd)
    return not alive(pid)  # exited, but a zombie of a parent that has not reaped it yet


# ---------------------------------------------------------------------------- layout and state
def test_hosted_players_keep_distinct_state_and_answers_keep_player_order():
    shared = Counter(9)  # the same object three times: still three distinct players
    players = [Counter(k) for k in range(5)] + [shared, shared, shared]
    with PlayerPool(players, processes=2) as pool:
        for tick in range(4):
            out = pool.get_actions({"tick": tick})
            assert [o["k"] for o in out] == [0, 1, 2, 3, 4, 9, 9, 9]
            assert all(o["calls"] == tick + 1 and o["tick"] == tick for o in out)
        assert len(set(pool.pids)) == 2 and os.getpid() not in pool.pids
        assert [o["pid"] for o in out] == pool.pids  # players 0-3 in one process, 4-7 in the other
    assert shared.calls == 0  # the caller's object was copied once, never called here


def _affinities(pool) -> list[set[int]]:
    return [os.sched_getaffinity(p) for p in sorted(set(pool.pids), key=pool.pids.index)]


def test_by_default_one_process_per_usable_core_pinned_only_when_cores_are_free():
    cores = sorted(os.sched_getaffinity(0))
    with PlayerPool([Counter(k) for k in range(6)]) as pool:
        pool.get_actions({"tick": 0})  # hosts pin themselves before they say ready
        assert pool.processes == min(6, len(cores)) == len(set(pool.pids))
        # the choice follows the load at start; either way the hosts are what it says
        want = [{cores[h]} for h in range(pool.processes)] if pool.pinned else [set(cores)] * pool.processes
        assert _affinities(pool) == want


def test_pin_false_leaves_hosts_free_to_move():
    with PlayerPool([Counter(k) for k in range(4)], processes=2, pin=False) as pool:
        assert not pool.pinned
        assert _affinities(pool) == [os.sched_getaffinity(0)] * 2


def test_pin_must_be_true_false_or_none():
    with pytest.raises(ConfigError, match="pin='no'"):
        PlayerPool([Counter(0)], pin="no")


def test_pinned_hosts_each_run_on_their_own_core_as_normal_tasks():
    cores = sorted(os.sched_getaffinity(0))
    with PlayerPool([Counter(k) for k in range(4)], processes=2, pin=True) as pool:
        pool.get_actions({"tick": 0})
        assert pool.pinned
        assert _affinities(pool) == [{cores[h % len(cores)]} for h in range(2)]
        # not SCHED_BATCH: a batch host waits out whole time slices on a loaded machine
        assert all(os.sched_getscheduler(p) == os.SCHED_OTHER for p in set(pool.pids))


STAT = """cpu  300 0 100 500 0 0 0 0 0 0
cpu0 100 0 50 {idle0} 0 0 0 0 0 0
cpu1 200 0 50 {idle1} 10 0 0 0 0 0
intr 12345
"""


def test_cpu_times_reads_idle_and_total_jiffies_of_the_usable_cores_only():
    assert cpu_times([0, 1], STAT.format(idle0=250, idle1=250)) == {0: (250, 400), 1: (260, 510)}
    assert cpu_times([1], STAT.format(idle0=250, idle1=250)) == {1: (260, 510)}
    assert cpu_times([0, 5], STAT.format(idle0=250, idle1=250)) is None  # core 5 is not listed


@pytest.mark.parametrize("idle0, idle1, share", [(350, 350, 1.0), (350, 250, 0.5), (250, 250, 0.0)])
def test_idle_share_between_two_samples(idle0, idle1, share):
    before = cpu_times([0, 1], STAT.format(idle0=250, idle1=250))
    # each core advanced 100 jiffies of which idle0-250 / idle1-250 idle (the rest busy)
    after = {0: (idle0, before[0][1] + 100), 1: (idle1 + 10, before[1][1] + 100)}
    assert idle_share(before, after) == share


def test_cores_are_free_falls_back_to_the_load_average_without_proc_stat(monkeypatch):
    import tickwire.plumbing.process as process

    monkeypatch.setattr(process, "cpu_times", lambda cores: None)
    for load, free in [(0.3, True), (1.9, True), (2.0, False), (7.5, False)]:
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert cores_are_free([0, 1]) is free

    def unknown():
        raise OSError("no /proc/loadavg")

    monkeypatch.setattr(os, "getloadavg", unknown)
    assert cores_are_free([0, 1]) is False


def test_processes_equal_to_players_gives_one_process_per_player():
    with PlayerPool([Counter(k) for k in range(4)], processes=4) as pool:
        out = pool.get_actions({"tick": 0})
        assert len({o["pid"] for o in out}) == 4 and [o["pid"] for o in out] == pool.pids


def test_split_gives_contiguous_shares_that_differ_by_at_most_one():
    assert split(7, 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split(2, 2) == [[0], [1]]


def test_numpy_and_nested_states_reach_every_player():
    state = {"grid": np.ones((512, 512), np.float32), "nested": {"xs": [1, 2, 3]}}
    with PlayerPool([ArraySummer(), ArraySummer(), ArraySummer()]) as pool:
        assert pool.get_actions(state) == [512 * 512 + 6.0] * 3


def test_int_keys_travel_and_a_state_the_players_cannot_decode_is_an_error_not_a_hang():
    with PlayerPool([Counter(k) for k in range(3)], processes=2) as pool:
        assert [a["tick"] for a in pool.get_actions({"tick": {0: (1, 2)}})] == [{0: [1, 2]}] * 3
        with pytest.raises(PlayerError, match="could not be decoded in the player's process"):
            pool.get_actions({"tick": 1, (0, 1): "a tuple key packs as a list: undecodable"})
        assert [a["calls"] for a in pool.get_actions({"tick": 2})] == [2, 2, 2]  # still works


# ---------------------------------------------------------------------------- players defined anywhere
MAIN_PLAYERS = textwrap.dedent("""
    import sys
    from tickwire import PlayerPool

    class Walker:                       # lives in __main__: sent by value
        def __init__(self, k):
            self.k, self.pos = k, 0

        def get_action(self, state):
            self.pos += self.k * state["step"]
            return self.pos

    pool = PlayerPool([Walker(k) for k in range(5)])
    print(" ".join(map(str, sorted(set(pool.pids)))), file=sys.stderr)
    for t in range(3):
        actions = pool.get_actions({"step": 1})
    print(actions)
    pool.close()
""")


def _run_python(args, **kw):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=kw.pop("cwd", None), **kw
    )


def _check_main_players_ran(out):
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 3, 6, 9, 12]"
    pids = [int(p) for p in out.stderr.split()[:2] if p.isdigit()]
    assert pids and not [p for p in pids if alive(p)]


def test_players_defined_in_a_script_piped_to_python_stdin_work(tmp_path):
    _check_main_players_ran(_run_python(["-"], input=MAIN_PLAYERS, cwd=tmp_path))


def test_players_defined_in_a_script_without_a_main_guard_work(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(MAIN_PLAYERS)
    _check_main_players_ran(_run_python([str(script)], cwd=tmp_path))


def test_a_main_player_without_cloudpickle_is_refused_with_the_fix(tmp_path):
    blocked = "import sys\nsys.modules['cloudpickle'] = None  # as if not installed\n"
    out = _run_python(["-"], input=blocked + MAIN_PLAYERS, cwd=tmp_path)
    assert out.returncode != 0
    assert "ConfigError: player 0 (Walker) is defined in __main__" in out.stderr
    assert "pip install 'tickwire[pool]'" in out.stderr


def test_a_player_that_cannot_be_pickled_is_named():
    with pytest.raises(ConfigError, match=r"player 1 \(Counter\) could not be sent"):
        PlayerPool([Counter(0), Counter(threading.Lock())])


def test_a_player_whose_module_fails_to_import_in_its_process_shows_that_error(monkeypatch):
    from support.fragile_players import Fragile

    monkeypatch.setenv("TICKWIRE_TEST_FAIL_IMPORT", "1")  # inherited by the pool's processes
    with pytest.raises(PlayerStartError) as e:
        PlayerPool([Counter(0), Fragile()], processes=1)
    text = str(e.value)
    assert e.value.index == 1 and "player 1 (Fragile) could not be started" in text
    assert "Traceback" in text and "fragile_players refuses to load here" in text


def test_a_player_whose_process_dies_while_starting_shows_its_output():
    with pytest.raises(PlayerStartError) as e:
        PlayerPool([Counter(0), DiesOnArrival()], processes=2)
    text = str(e.value)
    assert "player 1 (DiesOnArrival)" in text and "exited with code 3" in text
    assert "DiesOnArrival: cannot live in a pool host" in text


def test_bad_players_are_refused_up_front():
    with pytest.raises(ConfigError, match="no method 'get_action'"):
        PlayerPool([object()])
    with pytest.raises(ConfigError, match="at least one"):
        PlayerPool([])
    with pytest.raises(ConfigError, match="processes=0"):
        PlayerPool([Counter(0)], processes=0)


# ---------------------------------------------------------------------------- split phase
def test_submit_then_collect_lets_the_caller_work_meanwhile():
    with PlayerPool([Counter(0), Counter(1)]) as pool:
        pool.submit({"tick": 0})
        mine = sum(range(1000))  # the caller's own work while the players compute
        out = pool.collect(timeout=30)
        assert mine == 499500 and [o["k"] for o in out] == [0, 1]
        assert pool.get_actions({"tick": 1})[0]["calls"] == 2


def test_submit_and_collect_out_of_order_raise_named_errors_and_the_pool_goes_on():
    with PlayerPool([Counter(0)]) as pool:
        with pytest.raises(NotSubmitted, match="submit"):
            pool.collect()
        pool.submit({"tick": 0})
        with pytest.raises(AlreadySubmitted, match="collect"):
            pool.submit({"tick": 1})
        assert pool.collect()[0]["tick"] == 0
        assert pool.get_actions({"tick": 1})[0]["calls"] == 2


# ---------------------------------------------------------------------------- errors and deaths
def test_an_exception_names_the_player_carries_the_traceback_and_the_pool_goes_on():
    with PlayerPool([Counter(0), Raiser(), Counter(2)]) as pool:
        pool.get_actions({"tick": 0})
        pool.get_actions({"tick": 1})
        with pytest.raises(PlayerError) as e:
            pool.get_actions({"tick": 2})
        assert e.value.index == 1 and "ValueError: bad tick 2" in str(e.value)
        assert "Traceback" in e.value.remote_traceback and "sample_players.py" in e.value.remote_traceback
        assert e.value.results[0]["calls"] == 3 and e.value.results[2]["calls"] == 3
        after = pool.get_actions({"tick": 3})
        assert after[1] == 3 and after[0]["calls"] == 4


def test_a_player_that_exits_is_reported_with_its_exit_code():
    with PlayerPool([Counter(0), Exiter()], processes=2) as pool:
        pool.get_actions({"tick": 0})
        with pytest.raises(PlayerDied) as e:
            pool.get_actions({"tick": 1})
        assert e.value.index == 1 and e.value.exitcode == 7 and "code 7" in str(e.value)
        with pytest.raises(PlayerDied):
            pool.get_actions({"tick": 2})  # stays reported, never hangs


def test_a_dead_host_names_every_player_it_hosted():
    with PlayerPool([Counter(0), Counter(1), Exiter(), Counter(3)], processes=2) as pool:
        pool.get_actions({"tick": 0})
        with pytest.raises(PlayerDied) as e:
            pool.get_actions({"tick": 1})
        assert e.value.index == 2 and e.value.players == [2, 3] and "hosted players [2, 3]" in str(e.value)


def test_a_killed_player_process_is_reported():
    with PlayerPool([Counter(0), Counter(1), Counter(2)], processes=3) as pool:
        pool.get_actions({"tick": 0})
        os.kill(pool.pids[2], signal.SIGKILL)
        with pytest.raises(PlayerDied) as e:
            pool.get_actions({"tick": 1})
        assert e.value.index == 2 and e.value.exitcode == -9 and "signal 9" in str(e.value)


def test_players_that_miss_the_timeout_get_the_default_and_are_terminated_at_close(caplog):
    caplog.set_level(logging.INFO, logger="tickwire.server.work.pool")
    with PlayerPool([Sleeper(0.0), Sleeper(30.0)], method="decide", processes=2) as pool:
        assert pool.get_actions({}, timeout=0.5, default="none") == ["slow", "none"]
        assert pool.last_missing == [1]
        assert pool.get_actions({}, timeout=0.5) == ["slow", None]
        sleeping = pool.pids[1]
    misses = [r for r in caplog.records if "did not answer call" in r.getMessage()]
    assert [r.levelname for r in misses] == ["WARNING", "INFO"]  # one warning, not one a call
    assert wait_gone(sleeping, 10), "the sleeping player's process was not terminated"


def test_a_slow_player_does_not_hide_the_answers_of_the_players_sharing_its_process():
    with PlayerPool([Sleeper(0.0), Sleeper(30.0), Sleeper(0.0)], method="decide", processes=1) as pool:
        assert pool.get_actions({}, timeout=1.0, default="none") == ["slow", "none", "none"]
        assert pool.last_missing == [1, 2]  # player 2 waits behind player 1 in the same process


def test_close_leaves_no_process_and_refuses_further_calls():
    pool = PlayerPool([Counter(0), Counter(1)])
    pids = set(pool.pids)
    pool.close()
    assert not [p for p in pids if alive(p)]
    with pytest.raises(Exception, match="closed"):
        pool.get_actions({})


def test_ctrl_c_in_the_callers_loop_leaves_no_process(procs):
    script = procs([str(SUPPORT / "pool_script.py")], name="script")
    script.wait_for("running")
    pids = [int(p) for p in script.stdout.split()]
    assert pids and all(alive(p) for p in pids)
    script.popen.send_signal(signal.SIGINT)
    assert script.wait(10) != 0 and "KeyboardInterrupt" in script.stderr
    assert not [p for p in pids if alive(p)]


def test_a_killed_caller_takes_its_player_processes_with_it(procs, tmp_path):
    # a SIGKILLed caller cannot remove its ipc dir: keep it inside the test's own tmp_path
    script = procs([str(SUPPORT / "pool_script.py")], name="script", env={"TMPDIR": str(tmp_path)})
    script.wait_for("running")
    pids = [int(p) for p in script.stdout.split()]
    script.popen.kill()
    script.wait(10)
    assert all(wait_gone(p, 10) for p in pids), [p for p in pids if alive(p)]
