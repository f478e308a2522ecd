"""The tick barrier and the roster as pure units: no sockets, no clock, no sleeping."""

import tracemalloc

import numpy as np
import pytest
from tickwire.protocol.barrier import Offer, TickBarrier, TickResult
from tickwire.protocol.roster import LogHistogram, Roster
from tickwire.protocol.server_status import Status


def test_tick_completes_when_every_awaited_player_answered():
    b = TickBarrier()
    b.begin(0, {0, 1, 2}, {0, 1, 2}, now=10.0)
    assert b.offer(0, 0, "a", now=10.1) is Offer.ACCEPTED
    assert b.offer(2, 0, "c", now=10.3) is Offer.ACCEPTED
    assert not b.complete and b.waiting_for == {1}
    assert b.offer(1, 0, "b", now=10.2) is Offer.ACCEPTED
    assert b.complete
    r = b.close()
    assert r.actions == {0: "a", 1: "b", 2: "c"} and r.missing == frozenset() and not r.timed_out
    assert r.response_s[2] == pytest.approx(0.3)


def test_strict_tick_never_expires_deadline_tick_does():
    b = TickBarrier()
    b.begin(0, {0}, {0}, now=0.0)
    assert not b.expired(1e9) and b.time_left(5.0) is None
    b.close()
    b.begin(1, {0}, {0}, now=0.0, deadline=0.05)
    assert not b.expired(0.049) and b.expired(0.05)
    assert b.time_left(0.02) == pytest.approx(0.03)
    r = b.close()
    assert r.missing == {0} and r.timed_out


def test_stale_future_duplicate_and_unknown_offers_are_never_applied():
    b = TickBarrier()
    b.begin(0, {0, 1}, {0, 1}, now=0)
    b.offer(0, 0, "first", now=0)
    b.close()
    b.begin(1, {0, 1}, {0, 1}, now=1)
    assert b.offer(1, 0, "late", now=1) is Offer.STALE
    assert b.offer(0, 2, "early", now=1) is Offer.FUTURE
    assert b.offer(7, 1, "who", now=1) is Offer.UNKNOWN
    assert b.offer(0, 1, "one", now=1) is Offer.ACCEPTED
    assert b.offer(0, 1, "two", now=1) is Offer.DUPLICATE
    r = b.close()
    assert r.actions == {0: "one"} and r.missing == {1}
    assert b.offer(0, 1, "after close", now=2) is Offer.STALE


def test_dropping_a_dead_player_completes_the_tick_without_it():
    b = TickBarrier()
    b.begin(0, {0, 1}, {0, 1}, now=0)
    b.offer(0, 0, "x", now=0)
    b.drop(1)
    assert b.complete
    assert b.close().missing == {1}


def test_inactive_players_may_answer_but_are_not_awaited():
    b = TickBarrier()
    b.begin(0, accepting={0, 1}, awaited={0}, now=0)
    b.offer(0, 0, "x", now=0)
    assert b.complete
    b.close()
    b.begin(1, accepting={0, 1}, awaited={0}, now=0)
    assert b.offer(1, 1, "back", now=0) is Offer.ACCEPTED


def test_misuse_is_refused_loudly():
    b = TickBarrier()
    with pytest.raises(RuntimeError):
        b.close()
    b.begin(3, {0}, {0}, now=0)
    with pytest.raises(RuntimeError):
        b.begin(4, {0}, {0}, now=0)
    b.close()
    with pytest.raises(ValueError):
        b.begin(3, {0}, {0}, now=0)


def test_player_stats_report_counts_and_response_times():
    r = Roster("run", seed=1, capacity=1, strikes=0)
    r.add(0, "p", b"id0").status = Status.ACTIVE
    b = TickBarrier()
    for tick, rt in enumerate([0.001, 0.002, 0.003]):
        b.begin(tick, r.accepting(), r.awaited(), now=0)
        b.offer(0, tick, 0, now=rt)
        r.count(b.close(), r.absent())
    s = r.summary()[0]
    assert s["answered"] == 3 and s["missed"] == 0
    assert s["mean_ms"] == pytest.approx(2.0)
    assert s["p99_ms"] == pytest.approx(2.98, rel=LogHistogram.RELATIVE_ERROR)  # numpy: 2.98


def test_a_closed_tick_counts_each_player_once_by_what_it_did_or_why_it_was_absent():
    r = Roster("run", seed=1, capacity=4, strikes=0)
    for i, status in enumerate((Status.ACTIVE, Status.ACTIVE, Status.DEAD, Status.LEFT)):
        r.add(i, f"p{i}", f"id{i}".encode()).status = status
    b = TickBarrier()
    b.begin(0, r.accepting(), r.awaited(), now=0)
    b.offer(0, 0, "x", now=0)
    missed = r.count(b.close(), r.absent())
    assert [p.id for p in missed] == [1] and r.players[1].streak == 1
    counts = [(s["answered"], s["missed"], s["dead"], s["left"]) for s in r.summary()]
    assert counts == [(1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)]


def test_roster_slots_names_seeds_and_lookups():
    r = Roster("run", seed=1, capacity=2, strikes=0)
    assert r.free_slot(1) == 1 and r.free_slot(5) is None
    a = r.add(1, "bot", b"a")
    b = r.add(r.free_slot(None), "bot", b"b")
    assert (a.name, b.name) == ("bot", "bot-0") and r.free_slot(None) is None
    assert a.seed != b.seed and a.token != b.token
    assert r.by_topic(a.topic) is a and r.by_identity(b"b") is b
    r.remove(a)
    assert r.free_slot(None) == 1 and r.by_topic(a.topic) is None


def test_a_deadline_tick_awaiting_nobody_waits_for_every_accepting_player_until_its_deadline():
    """Every player inactive: closing at once would leave them no time to answer (and so to
    come back); the tick lasts until its deadline or until each of them answered."""
    b = TickBarrier()
    b.begin(0, {0, 1}, set(), now=0.0, deadline=0.05)
    assert not b.complete and b.waiting_for == {0, 1} and not b.expired(0.049)
    assert b.offer(0, 0, "a", now=0.01) is Offer.ACCEPTED and not b.complete
    assert b.offer(1, 0, "b", now=0.02) is Offer.ACCEPTED and b.complete
    assert b.close().missing == frozenset()
    b.begin(1, {0, 1}, set(), now=1.0, deadline=1.05)
    assert not b.complete and b.expired(1.05)
    assert b.close().missing == {0, 1}
    b.begin(2, set(), set(), now=2.0, deadline=2.05)  # nobody may answer: nothing to wait for
    assert b.complete
    b.close()
    b.begin(3, {0}, set(), now=3.0)  # strict: waits only for whom it is told to
    assert b.complete


def test_the_p99_is_over_the_whole_run_within_the_stated_error_of_numpy():
    """10,000 slow answers, then 5,000 fast ones: the p99 of the run is a slow one (a window
    of the last answers would report a fast one)."""
    rng = np.random.default_rng(1)
    times = np.concatenate(
        [rng.lognormal(np.log(0.01), 0.3, 10_000), rng.lognormal(np.log(0.001), 0.3, 5_000)]
    )
    r = Roster("run", seed=1, capacity=2, strikes=0)
    r.add(1, "p", b"id1")
    for tick, rt in enumerate(times):
        r.count(TickResult(tick, {1: 0}, frozenset(), {1: float(rt)}, False), {})
    want = np.percentile(times, 99) * 1e3
    assert r.summary()[0]["p99_ms"] == pytest.approx(want, rel=LogHistogram.RELATIVE_ERROR)
    h = LogHistogram(3)
    h.add({0: 0.0, 1: 1e-7, 2: 2e6})  # below the smallest and above the largest bucket
    assert h.quantile(0, 0.5) == h.quantile(1, 0.5) == 0.0
    assert h.quantile(2, 0.5) == pytest.approx(LogHistogram.MAX_S, rel=0.05)
    assert LogHistogram(1).quantile(0, 0.99) is None


def test_histogram_counts_widen_before_a_bucket_could_wrap():
    """4-byte counts halve a big run's memory; past 2**32 - 1 values in all they become 8-byte
    counts before the fold that could wrap one (a wrapped bucket would lose its values)."""
    h = LogHistogram(2)
    assert h.counts.dtype == np.uint32
    h.add({0: 1e-3})
    h.quantile(0, 0.5)  # folds
    bucket = int(np.flatnonzero(h.counts[0])[0])
    top = 2**32 - 1
    h.counts[0, bucket] = top - 1  # as if that many answers came before
    h._counted = top - 1
    for _ in range(3):
        h.add({0: 1e-3})
    assert h.quantile(0, 0.5) == pytest.approx(1e-3, rel=LogHistogram.RELATIVE_ERROR)
    assert h.counts.dtype == np.uint64 and int(h.counts[0, bucket]) == top + 2


def test_the_players_memory_does_not_grow_with_the_answers_they_gave():
    """50 players: the memory the roster holds after 1,000 ticks is what it holds after
    3,000 (read after a summary, which counts what was buffered)."""
    action = object()
    tracemalloc.start()
    try:
        r = Roster("run", seed=1, capacity=50, strikes=0)
        for i in range(50):
            r.add(i, f"p{i}", f"id{i}".encode())

        def play(ticks: range) -> int:
            for tick in ticks:
                rt = 0.0005 + (tick % 997) * 1e-5
                r.count(
                    TickResult(
                        tick,
                        dict.fromkeys(range(50), action),
                        frozenset(),
                        {i: rt + i * 1e-6 for i in range(50)},
                        False,
                    ),
                    {},
                )
            r.summary()
            return tracemalloc.get_traced_memory()[0]

        after_1000 = play(range(1000))
        grown = play(range(1000, 3000)) - after_1000
    finally:
        tracemalloc.stop()
    # 100,000 answers later: a few KB of noise (numpy caches small blocks), where keeping
    # the answers would take over 3 MB
    assert r.players[0].answered == 3000 and grown < 16_384, grown


def test_batches_offered_in_columns_close_into_columns_that_match_the_dicts():
    """Two batches arriving out of id order: the result's columns are the same actions and
    response times as its dicts, ids ascending; one action offered alone (or refused
    entries, or actions that cannot share one array) leaves the columns out."""
    b = TickBarrier()
    b.begin(0, range(6), range(6), now=1.0)
    assert (
        b.offer_batch(
            [5, 1, 3], 0, [50, 10, 30], now=1.25, columns=(np.array([5, 1, 3]), np.array([50, 10, 30]))
        )
        == []
    )
    assert (
        b.offer_batch(
            [0, 4, 2], 0, [0, 40, 20], now=1.5, columns=(np.array([0, 4, 2]), np.array([0, 40, 20]))
        )
        == []
    )
    r = b.close()
    assert r.columns is not None and r.columns.ids.tolist() == [0, 1, 2, 3, 4, 5]
    assert dict(zip(r.columns.ids.tolist(), r.columns.actions.tolist())) == r.actions
    assert dict(zip(r.columns.ids.tolist(), r.columns.response_s.tolist())) == r.response_s
    assert r.response_s == {0: 0.5, 1: 0.25, 2: 0.5, 3: 0.25, 4: 0.5, 5: 0.25}

    b.begin(1, range(3), range(3), now=0.0)
    b.offer_batch([0, 1], 1, [1, 1], now=0.1, columns=(np.array([0, 1]), np.array([1, 1])))
    assert b.offer(2, 1, 1, now=0.2) is Offer.ACCEPTED
    assert b.close().columns is None  # an action offered alone: the dicts only
    b.begin(2, range(3), range(3), now=0.0)
    assert b.offer_batch([0, 0], 2, [1, 2], now=0.1, columns=(np.array([0, 0]), np.array([1, 2])))
    assert b.close().columns is None  # a refused entry: entry by entry, the dicts only
    b.begin(3, range(2), range(2), now=0.0)
    b.offer_batch([0], 3, [1], now=0.1, columns=(np.array([0]), np.array([1])))
    b.offer_batch([1], 3, [0.5], now=0.1, columns=(np.array([1]), np.array([0.5])))
    r = b.close()
    assert r.columns is None and r.actions == {0: 1, 1: 0.5}  # int and float: no one array


def test_a_tick_counted_from_columns_gives_the_summary_the_dicts_give():
    """The roster counts a closed tick from the barrier's columns when it has them: the
    summary (counts, mean, p99) is the one counting from the dicts gives."""
    summaries = []
    for columns in (True, False):
        r = Roster("run", seed=1, capacity=4, strikes=0)
        for i in range(4):
            r.add(i, f"p{i}", f"id{i}".encode()).status = Status.ACTIVE
        b = TickBarrier()
        for tick in range(50):
            b.begin(tick, *r.split()[:2], now=0.0)
            ids = [3, 0] if tick % 7 else [3, 0, 1]  # player 2 never answers, 1 now and then
            cols = (np.array(ids), np.array([tick % 5] * len(ids))) if columns else None
            b.offer_batch(ids, tick, [tick % 5] * len(ids), now=0.001 * (tick % 9 + 1), columns=cols)
            result = b.close()
            assert (result.columns is not None) is columns
            r.count(result, {})
        assert r.players[0].last_action == 49 % 5 and r.players[2].last_action is None
        summaries.append(r.summary())
    assert summaries[0] == summaries[1]
    assert [(s["answered"], s["missed"]) for s in summaries[0]] == [(50, 0), (8, 42), (0, 50), (50, 0)]


def test_a_slot_freed_in_the_lobby_starts_from_zero_for_its_next_player():
    r = Roster("run", seed=1, capacity=1, strikes=0)
    first = r.add(0, "a", b"a")
    first.status = Status.ACTIVE
    r.count(TickResult(0, {0: 3}, frozenset(), {0: 0.002}, False), {})
    assert first.answered == 1 and first.last_action == 3
    r.remove(first)
    second = r.add(0, "b", b"b", ticks_before=2)
    s = r.summary()[0]
    assert (s["answered"], s["not_joined"], s["mean_ms"], s["p99_ms"]) == (0, 2, None, None)
    assert second.last_action is None
