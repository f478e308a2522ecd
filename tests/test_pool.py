"""PlayerPool with real processes: persistence, order, errors, deaths, timeouts, Ctrl-C."""
import os
import signal

import numpy as np
import pytest
from conftest import alive
from sample_players import ArraySummer, Counter, Exiter, Raiser, Sleeper
from tickwire.protocol import ConfigError
from tickwire.server import PlayerDied, PlayerError, PlayerPool


def test_players_keep_their_state_in_their_own_processes_and_order_is_kept():
    with PlayerPool([Counter(k) for k in range(4)]) as pool:
        for tick in range(5):
            out = pool.get_actions({"tick": tick})
            assert [o["k"] for o in out] == [0, 1, 2, 3]
            assert all(o["calls"] == tick + 1 and o["tick"] == tick for o in out)
        pids = {o["pid"] for o in out}
        assert len(pids) == 4 and os.getpid() not in pids and pids == set(pool.pids)


def test_numpy_and_nested_states_reach_every_player():
    state = {"grid": np.ones((512, 512), np.float32), "nested": {"xs": [1, 2, 3]}}
    with PlayerPool([ArraySummer(), ArraySummer()]) as pool:
        assert pool.get_actions(state) == [512 * 512 + 6.0] * 2


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
    with PlayerPool([Counter(0), Exiter()]) as pool:
        pool.get_actions({"tick": 0})
        with pytest.raises(PlayerDied) as e:
            pool.get_actions({"tick": 1})
        assert e.value.index == 1 and e.value.exitcode == 7 and "code 7" in str(e.value)
        with pytest.raises(PlayerDied):
            pool.get_actions({"tick": 2})  # stays reported, never hangs


def test_a_killed_player_process_is_reported():
    with PlayerPool([Counter(0), Counter(1), Counter(2)]) as pool:
        pool.get_actions({"tick": 0})
        os.kill(pool.pids[2], signal.SIGKILL)
        with pytest.raises(PlayerDied) as e:
            pool.get_actions({"tick": 1})
        assert e.value.index == 2 and e.value.exitcode == -9 and "signal 9" in str(e.value)


def test_players_that_miss_the_timeout_get_the_default_and_the_pool_stays_usable():
    with PlayerPool([Sleeper(0.0), Sleeper(30.0)], method="decide") as pool:
        assert pool.get_actions({}, timeout=0.5, default="none") == ["slow", "none"]
        assert pool.last_missing == [1]
        assert pool.get_actions({}, timeout=0.5) == ["slow", None]
    # close() returned although player 1 was still sleeping: it was terminated


def test_close_leaves_no_process_and_refuses_further_calls():
    pool = PlayerPool([Counter(0), Counter(1)])
    pids = pool.pids
    pool.close()
    assert not any(alive(p) for p in pids)
    with pytest.raises(Exception, match="closed"):
        pool.get_actions({})


def test_ctrl_c_in_the_callers_loop_leaves_no_process(procs):
    script = procs([os.path.join(os.path.dirname(__file__), "pool_script.py")], name="script")
    script.wait_for("running")
    pids = [int(p) for p in script.stdout.split()]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    script.popen.send_signal(signal.SIGINT)
    assert script.wait(10) != 0 and "KeyboardInterrupt" in script.stderr
    assert not [p for p in pids if alive(p)]


def test_bad_players_are_refused_up_front():
    with pytest.raises(ConfigError, match="no method 'get_action'"):
        PlayerPool([object()])
    with pytest.raises(ConfigError, match="could not be sent"):
        PlayerPool([Counter(lambda: 0)])  # a lambda cannot be pickled
    with pytest.raises(ConfigError, match="at least one"):
        PlayerPool([])
