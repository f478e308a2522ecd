"""The memory guard's decisions (pure: no sockets, no clocks) and how the rules count its cuts.

The guard itself (a thread, /proc, real connections) is tested from outside in
test_security.py: many-frame messages against a real server process.
"""

from __future__ import annotations

import pytest
from test_server_rules import action, started
from tickwire.protocol.server_rules import LOST_ACTION_GRACE_S, Rejection, Republish
from tickwire.server.world_server.memory_guard import MB, MemoryBudget

BASE = 50 * MB
BUDGET = 96 * MB


def counters(**by_name: float):
    """A counter reader that must be called (counts the calls)."""
    calls = []

    def read():
        calls.append(1)
        return {k: int(v * MB) for k, v in by_name.items()}

    read.calls = calls
    return read


def never():
    raise AssertionError("counters read while memory is calm")


def rules() -> MemoryBudget:
    return MemoryBudget(BUDGET, BASE)


def test_calm_memory_reads_no_counters_and_cuts_nothing():
    r = rules()
    assert r.check(BASE + 40 * MB, never) == []
    assert r.check(BASE - 10 * MB, never) == []


def test_the_connection_that_brought_the_growth_is_cut():
    r = rules()
    assert r.check(BASE + 50 * MB, counters(honest=300, attacker=10)) == []  # watching
    assert r.check(BASE + 80 * MB, counters(honest=301, attacker=30)) == []  # under the limit
    assert r.check(BASE + 100 * MB, counters(honest=302, attacker=60)) == [("attacker", 50 * MB)]


def test_a_connection_new_since_memory_began_to_climb_counts_from_zero():
    r = rules()
    r.check(BASE + 50 * MB, counters(honest=300))
    assert r.check(BASE + 100 * MB, counters(honest=301, attacker=20)) == [("attacker", 20 * MB)]


def test_memory_that_jumps_over_the_limit_is_decided_at_the_next_check():
    r = rules()
    assert r.check(BASE + 120 * MB, counters(honest=300, attacker=50)) == []  # no 'before' yet
    assert r.check(BASE + 140 * MB, counters(honest=300, attacker=60)) == [("attacker", 10 * MB)]


def test_growth_no_connection_brought_moves_the_baseline_instead_of_cutting():
    r = rules()
    r.check(BASE + 50 * MB, counters(a=10, b=10))
    assert r.check(BASE + 100 * MB, counters(a=10.5, b=10.2)) == []  # < 1 MB each: the server's own
    assert r.baseline == BASE + 100 * MB and r.rebaselined == 1
    assert r.check(BASE + 120 * MB, never) == []  # calm again, over the new baseline


def test_a_fair_share_of_the_growth_is_needed_to_be_cut():
    r = rules()
    r.check(BASE + 50 * MB, counters(a=10))
    # 1.2 MB sent while memory grew 64 MB: less than 1/32 of it, so not this connection
    assert r.check(BASE + 114 * MB, counters(a=11.2)) == []
    assert r.rebaselined == 1


def test_memory_that_stays_after_a_cut_does_not_get_more_connections_cut():
    r = rules()
    r.check(BASE + 50 * MB, counters(honest=300, attacker=0))
    assert r.check(BASE + 100 * MB, counters(honest=310, attacker=50))[0][0] == "attacker"
    r.cut()
    # the allocator kept the freed memory: over the limit, but nobody brings more of it
    read = counters(honest=320)
    assert r.check(BASE + 99 * MB, read) == []  # fresh counters first
    assert r.check(BASE + 99 * MB, counters(honest=330)) == []  # not growing: re-baseline
    assert r.baseline == BASE + 99 * MB and len(read.calls) == 1


def test_the_baseline_follows_memory_down_but_never_below_the_start():
    r = rules()
    r.check(BASE + 50 * MB, counters(a=0))
    r.check(BASE + 100 * MB, counters(a=0))  # re-baselined at +100 MB
    assert r.baseline == BASE + 100 * MB
    r.check(BASE + 20 * MB, never)
    assert r.baseline == BASE + 20 * MB
    r.check(BASE - 30 * MB, never)
    assert r.baseline == BASE


def test_falling_back_under_the_watch_level_forgets_the_counters():
    r = rules()
    r.check(BASE + 50 * MB, counters(attacker=0))
    r.check(BASE + 10 * MB, never)  # calm: forgotten
    r.check(BASE + 60 * MB, counters(attacker=100))  # kept anew here
    assert r.check(BASE + 100 * MB, counters(attacker=120)) == [("attacker", 20 * MB)]


def test_with_sampled_counters_fast_growth_waits_for_a_sample_instead_of_moving_the_baseline():
    r = MemoryBudget(BUDGET, BASE, min_suspect=1, share=0, patient=True)  # ipc
    r.check(BASE + 50 * MB, counters(a=0, b=0))
    assert r.check(BASE + 100 * MB, counters(a=0, b=0)) == []  # growing fast, nobody seen yet
    assert r.baseline == BASE and r.watching
    assert r.check(BASE + 110 * MB, counters(a=0, b=0.25)) == [("b", MB // 4)]
    r.cut()
    r.check(BASE + 105 * MB, counters(a=0))
    assert r.check(BASE + 105 * MB, counters(a=0)) == []  # not growing: the baseline moves
    assert r.baseline == BASE + 105 * MB


def test_an_earlier_watch_level_keeps_counters_from_a_quarter_of_the_budget():
    r = MemoryBudget(BUDGET, BASE, min_suspect=1, share=0, patient=True, watch_share=1 / 4)
    assert r.watch_level == BASE + BUDGET // 4
    assert r.check(BASE + 20 * MB, never) == []
    r.check(BASE + 30 * MB, counters(a=0, b=0))  # watching from here ...
    assert r.watching
    assert r.check(BASE + 100 * MB, counters(a=0, b=2)) == [("b", 2 * MB)]  # ... to the limit


def test_with_calm_looks_a_jump_past_the_limit_is_traced_from_before_it_began():
    """A starved guard thread sees memory only after it jumped past the limit and the
    message stalled: without a look from before the jump it blamed nobody and moved the
    baseline up (CI: +167 MB); with it, the connection that brought the jump is cut at once."""
    r = MemoryBudget(BUDGET, BASE, calm_every=3)
    reads = counters(honest=300, attacker=0)
    r.check(BASE + 10 * MB, reads)  # the first calm look
    r.check(BASE + 10 * MB, never)
    r.check(BASE + 10 * MB, never)
    r.check(BASE + 10 * MB, counters(honest=300.1, attacker=1))  # every 3rd calm check
    assert r.check(BASE + 140 * MB, counters(honest=300.2, attacker=91)) == [("attacker", 90 * MB)]
    assert r.baseline == BASE


def test_without_calm_looks_a_jump_and_a_stall_moved_the_baseline():
    r = rules()  # calm_every=0: how the TCP guard decided before calm looks
    assert r.check(BASE + 140 * MB, counters(honest=300, attacker=91)) == []
    assert r.check(BASE + 141 * MB, counters(honest=300, attacker=91)) == []
    assert r.baseline == BASE + 141 * MB and r.rebaselined == 1


# ---------------------------------------------------------------------------- the rules' count
def _cut_during_tick(guard_first: bool):
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    r.receive_action(action(w0, 0, 1), 0.0)
    if guard_first:
        r.memory_guard_cut("actions", 0.1)
    assert r.actions_connection_lost(0.1) == (Republish(0),)  # honest players resend
    if not guard_first:
        r.memory_guard_cut("actions", 0.1)
    return r, w1


@pytest.mark.parametrize("guard_first", [True, False])
def test_a_cut_actions_connection_is_counted_once_and_a_resend_within_the_grace_counts(guard_first):
    r, w1 = _cut_during_tick(guard_first)
    assert not r.may_close(0.1 + LOST_ACTION_GRACE_S / 2)  # it waits for player 1 ...
    r.receive_action(action(w1, 0, 2), 0.1 + LOST_ACTION_GRACE_S / 2)
    assert r.may_close(0.1 + LOST_ACTION_GRACE_S / 2)
    assert r.close_tick(0.0).result.missing == set()  # ... who misses nothing
    assert dict(r.rejected) == {Rejection.MEMORY_GUARD: 1}


@pytest.mark.parametrize("guard_first", [True, False])
def test_a_strict_tick_does_not_wait_forever_after_a_cut(guard_first):
    # the guard may have cut an honest player's connection, its action with it
    r, _ = _cut_during_tick(guard_first)
    assert r.next_timeout(0.1) <= LOST_ACTION_GRACE_S
    assert not r.may_close(0.1 + LOST_ACTION_GRACE_S / 2)
    assert r.may_close(0.1 + LOST_ACTION_GRACE_S)
    assert r.close_tick(0.0).result.missing == {1}
    assert dict(r.rejected) == {Rejection.MEMORY_GUARD: 1}  # not also a dropped_connection


def test_a_cut_on_the_other_sockets_is_counted_and_explains_no_actions_loss():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    r.memory_guard_cut("control", 0.0)
    r.memory_guard_cut("state", 0.0)
    r.actions_connection_lost(0.1)  # some other actions connection: still a drop
    assert r.may_close(0.1 + LOST_ACTION_GRACE_S)
    assert r.rejected[Rejection.MEMORY_GUARD] == 2
    assert r.rejected[Rejection.DROPPED_CONNECTION] == 1
