"""Real-time pacing (--tick-rate): the fixed tick clock and the rules around it, with ``now``
passed in (no sockets, sleeps or real clocks)."""

from __future__ import annotations

import pytest
from test_server_rules import act, join, make_rules, started
from tickwire.protocol.errors import ConfigError
from tickwire.protocol.pacing import ERROR_WINDOW, Pacer
from tickwire.server.world_server.config import ServerConfig


def test_the_first_tick_starts_at_once_and_sets_the_grid():
    p = Pacer(10.0)
    assert p.wait(5.0) == 0.0
    assert p.started(5.0) == pytest.approx(5.1)  # its deadline: the end of its period
    assert p.due(5.0) == pytest.approx(5.1)


def test_start_times_lie_on_the_grid_and_small_delays_do_not_accumulate():
    p = Pacer(10.0)
    p.started(0.0)
    for k in range(1, 50):  # every tick starts 3 ms late; the grid does not drift
        p.started(k * 0.1 + 0.003)
    assert p.due(0.0) == pytest.approx(5.0)
    assert p.report()["start_error_ms"]["p50"] == pytest.approx(3.0)
    assert p.report()["skipped_slots"] == 0


def test_wait_is_the_time_left_until_the_next_start():
    p = Pacer(4.0)
    p.started(0.0)
    assert p.wait(0.1) == pytest.approx(0.15)
    assert p.wait(0.3) == 0.0


def test_a_tick_less_than_a_period_late_keeps_its_slot():
    p = Pacer(10.0)
    p.started(0.0)
    assert p.started(0.17) == pytest.approx(0.2)  # 70 ms late: the next tick is still at 0.2
    assert p.skipped == 0


def test_an_overrun_of_whole_periods_skips_the_missed_slots_instead_of_bursting():
    p = Pacer(10.0)
    p.started(0.0)
    deadline = p.started(0.35)  # slot 1 was due at 0.1: slots 1..2 passed entirely
    assert deadline == pytest.approx(0.4) and p.due(0.35) == pytest.approx(0.4)
    assert p.skipped == 2
    assert p.report()["start_error_ms"]["max"] == pytest.approx(250.0)


def test_the_report_gives_the_achieved_rate_and_error_percentiles():
    p = Pacer(100.0)
    for k in range(101):
        p.started(k * 0.01 + (0.002 if k % 50 == 7 else 0.0))
    r = p.report()
    assert r["target_hz"] == 100.0 and r["achieved_hz"] == pytest.approx(100.0)
    assert r["start_error_ms"]["p50"] == 0.0 and r["start_error_ms"]["p99"] == pytest.approx(2.0)


def test_an_empty_report_has_no_numbers():
    r = Pacer(5.0).report()
    assert r["achieved_hz"] is None and r["start_error_ms"]["p50"] is None


def test_the_errors_kept_for_percentiles_are_bounded():
    p = Pacer(1000.0)
    for k in range(ERROR_WINDOW + 10):
        p.started(k / 1000.0)
    assert len(p._errors) == ERROR_WINDOW and p.ticks == ERROR_WINDOW + 10


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_a_rate_that_is_not_positive_and_finite_is_refused(rate):
    with pytest.raises(ValueError, match="positive"):
        Pacer(rate)
    with pytest.raises(ConfigError, match="--tick-rate"):
        ServerConfig(tick_rate=rate)


# ---------------------------------------------------------------------------- the rules
def test_unpaced_rules_never_hold_a_tick_back():
    r, _ = started()
    assert r.pacer is None and r.until_tick(123.0) == 0.0


def test_a_paced_deadline_tick_closes_at_the_end_of_its_period_not_at_deadline_ms():
    r, ws = started(mode="deadline", deadline_ms=5.0, tick_rate=10.0)
    r.begin_tick(0, 100.0)
    assert not r.may_close(100.05)  # 50 ms: past --deadline-ms, within the period
    assert r.may_close(100.1)
    r.close_tick(0.0)


def test_a_paced_deadline_run_announces_its_period_as_the_deadline():
    r = make_rules(mode="deadline", deadline_ms=5.0, tick_rate=20.0)
    assert join(r, b"id0").deadline_ms == 50
    assert join(make_rules(tick_rate=20.0), b"id0").deadline_ms is None  # strict: no deadline


def test_between_ticks_the_rules_wait_for_the_next_start_time():
    r, ws = started(tick_rate=20.0)  # strict: the tick waits for both players
    r.begin_tick(0, 0.0)
    r.published(0.0)  # (no heartbeat is due before the next start)
    for w in ws:
        act(r, w, 0, 1, now=0.01)
    assert r.may_close(0.01)
    r.close_tick(0.0)
    assert r.until_tick(0.01) == pytest.approx(0.04)
    assert r.next_timeout(0.01) == pytest.approx(0.04)  # the loop's wait ends at the start time
    assert r.until_tick(0.05) == 0.0


def test_inactive_players_no_longer_let_a_deadline_run_race():
    # nobody answers: without pacing every tick would start as soon as the last closed
    r, _ = started(mode="deadline", deadline_ms=1.0, strikes=1, tick_rate=50.0)
    now = 0.0
    for tick in range(10):
        now += r.until_tick(now)
        r.begin_tick(tick, now)
        # every tick lasts its period: tick 0 waits for both, then both are struck, and a
        # tick awaiting nobody still waits for the inactive until its deadline
        assert not r.may_close(now)
        now = r.barrier._deadline
        assert r.may_close(now)
        r.close_tick(0.0)
    assert now == pytest.approx(0.2) and r.until_tick(now) == 0.0
    assert r.pacer.report()["achieved_hz"] == pytest.approx(50.0)


def test_a_resumed_run_starts_a_new_grid_at_its_first_tick_without_skipping():
    r, ws = started(tick_rate=20.0)  # as --resume: the first tick played is tick 500
    assert r.until_tick(1000.0) == 0.0  # the ticks before the resume owe no wait and no burst
    r.begin_tick(500, 1000.0)
    for w in ws:
        act(r, w, 500, 1, now=1000.01)
    r.close_tick(0.0)
    assert r.until_tick(1000.01) == pytest.approx(0.04)  # on the grid that began at tick 500
    assert r.pacer.report()["skipped_slots"] == 0
