"""The memory guard's decisions (pure: no sockets, no clocks), the parts its thread reads
connections with (on real sockets), and how the rules count its cuts.

The guard itself (a thread, /proc, real connections) is tested from outside in
test_security.py and test_memory_guard_attacks.py: many-frame messages against a real server
process.
"""

from __future__ import annotations

import os
import socket
import sys

import pytest
from support.server_rules_builders import action, started
from tickwire.protocol.server_rules import LOST_ACTION_GRACE_S, Rejection, Republish
from tickwire.server.world_server import memory_guard
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


# ---------------------------------------------------------------------------- high, not climbing
STEP = BUDGET // 256  # climb_step: counters are read again once memory passes its high by this


def test_memory_high_but_not_climbing_reads_no_counters():
    """A big run's server is over the watch level by itself for the whole run: reading every
    connection at every check then was most of the guard's cost, for nothing."""
    r = rules()
    r.check(BASE + 50 * MB, counters(a=0))  # memory began to climb: counters kept
    for rss in (50 * MB, 50 * MB + STEP - 1, 49 * MB, 50 * MB + STEP // 2):
        assert r.check(BASE + rss, never) == []  # up and down, never past the high by a step
    assert r.reads == 1 and r.watching
    read = counters(a=0)
    r.check(BASE + 50 * MB + STEP, read)  # climbing again
    assert len(read.calls) == 1 and r.reads == 2
    assert r.check(BASE + 50 * MB + STEP, never) == []  # the high moved up with it


def test_memory_over_the_limit_is_decided_at_every_check_even_without_a_new_high():
    r = MemoryBudget(BUDGET, BASE, min_suspect=1, share=0, patient=True)
    r.check(BASE + 50 * MB, counters(a=0))
    assert r.check(BASE + 110 * MB, counters(a=0)) == []  # growing fast: keep sampling
    assert r.check(BASE + 109 * MB, counters(a=0.5)) == [("a", MB // 2)]  # lower, still read


@pytest.mark.parametrize("sampled", [False, True], ids=["tcp", "ipc"])
def test_memory_brought_in_steps_with_calm_between_them_is_traced_over_all_steps(sampled):
    """An attacker that sends a little, waits until memory has been calm for a while, and
    sends again: the counters kept when memory began to climb stay through the calm, so at
    the limit the steps add up to the connection that brought them all (a guard that moved
    its baseline, or forgot its counters, after calm would let the steps grow the server
    without bound)."""
    kw = {"min_suspect": MB, "share": 0, "patient": True, "watch_share": 1 / 4} if sampled else {}
    r = MemoryBudget(BUDGET, BASE, **kw)
    r.check(BASE + 50 * MB, counters(honest=1, attacker=0))
    for step in range(1, 6):  # +10 MB a step, each followed by a long calm
        rss = BASE + 50 * MB + step * 10 * MB
        brought = step * 10 * (0.2 if sampled else 1)  # ipc: what samples saw of it
        got = r.check(rss, counters(honest=1 + step / 100, attacker=brought))
        if rss < r.limit:
            assert got == []
            for _ in range(1000):
                assert r.check(rss, never) == []  # calm: nothing read, nothing forgotten
        else:
            assert got == [("attacker", int(brought * MB))]
            break
    else:
        raise AssertionError("memory never reached the limit")
    assert r.baseline == BASE and r.rebaselined == 0


# ---------------------------------------------------------------------------- the thread's parts
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the guard reads /proc (Linux)")


@linux_only
def test_the_connection_list_inspects_each_socket_once_and_sees_new_and_gone_ones(tmp_path, monkeypatch):
    path = str(tmp_path / "actions")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    inspected = []
    inspect = memory_guard._inspect
    monkeypatch.setattr(
        memory_guard, "_inspect", lambda fd, where: inspected.append(fd) or inspect(fd, where)
    )
    known = memory_guard._Connections({path: "actions"})
    peers, accepted = [], []
    try:
        for _ in range(2):
            peers.append(socket.socket(socket.AF_UNIX))
            peers[-1].connect(path)
            accepted.append(listener.accept()[0])
        first = known.list()
        assert sorted(c.fd for c in first.values()) == sorted(a.fileno() for a in accepted)
        me = f"pid {os.getpid()}"
        assert all(c.socket == "actions" and c.sampled and me in c.peer for c in first.values())
        n = len(inspected)  # every socket of this process, once
        assert known.list() == first and len(inspected) == n  # nothing inspected again
        gone = accepted.pop()
        gone_inode = os.fstat(gone.fileno()).st_ino
        gone.close()
        peers.append(socket.socket(socket.AF_UNIX))
        peers[-1].connect(path)
        accepted.append(listener.accept()[0])  # (it may reuse the closed one's fd)
        now = known.list()
        assert gone_inode not in now and os.fstat(accepted[-1].fileno()).st_ino in now
        assert len(now) == 2
    finally:
        for s in [listener, *peers, *accepted]:
            s.close()


@linux_only
def test_unread_bytes_are_sampled_from_an_epoll_set_of_the_connections(tmp_path):
    ours, peer = socket.socketpair()
    other, other_peer = socket.socketpair()
    unread = memory_guard._Unread()
    try:
        inode = os.fstat(ours.fileno()).st_ino
        conn = memory_guard._Conn(ours.fileno(), "actions", "pid 1 (uid 0)", True)
        unread.watch({inode: conn})
        unread.watch({inode: conn})  # already in the set: no error
        assert unread.sample() == {}
        peer.sendall(b"x" * 1000)
        other_peer.sendall(b"y" * 10)  # not in the set
        assert unread.sample() == {inode: 1000}
        assert unread.sample() == {inode: 1000}  # level-triggered: still waiting
        ours.recv(1000)
        assert unread.sample() == {}
        ours.close()  # a closed connection leaves the set by itself
        assert unread.sample() == {}
    finally:
        unread.close()
        for s in (ours, peer, other, other_peer):
            s.close()


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
