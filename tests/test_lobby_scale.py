"""A lobby of many players: constant work per event, and JOIN retries that back off.

The lobby is asked for its verdict and its next deadline on every loop turn; with thousands
of players a pass over every player per turn made it quadratic (issue 20). The rules keep
counts and the JOINED players' order instead, and an agent's repeated JOINs back off (each
one queued at the server costs it memory and an answer). Speed is measured in the benchmark
(bench/README.md), not asserted here: these tests check the work done and the behaviour.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from support.agent_rules_builders import RUN, T0, rules, sends, welcome
from support.rules_pair import RulesPair
from support.server_rules_builders import join, make_rules, prove
from tickwire.protocol import Error, Join, Leave
from tickwire.protocol.agent_rules import (
    JOIN_JITTER,
    JOIN_RETRY_MAX_S,
    JOIN_RETRY_S,
    AgentRules,
    Send,
    Socket,
)
from tickwire.protocol.roster import Roster
from tickwire.protocol.server_rules import Lobby
from tickwire.protocol.server_status import Status


class _Visits(dict):
    """A players dict that counts the passes over it (lookups and ``in`` are not passes)."""

    passes = 0

    def values(self):  # type: ignore[override]
        self.passes += 1
        return super().values()

    def items(self):  # type: ignore[override]
        self.passes += 1
        return super().items()

    def __iter__(self):
        self.passes += 1
        return super().__iter__()


def _consistent(roster: Roster) -> None:
    """The incremental counts and JOINED set are what a pass over every player gives."""
    statuses = Counter(p.status for p in roster.players.values())
    assert {s: n for s, n in roster.counts.items() if n} == dict(statuses)
    assert sorted(roster.joined) == sorted(p.id for p in roster.players.values() if p.status is Status.JOINED)


# ---------------------------------------------------------------------- the server's rules
def test_the_lobby_asks_nothing_of_every_player_per_turn_or_per_join():
    n = 2000
    r = make_rules(players=n + 1, ready_timeout_s=5.0, lobby_timeout_s=600.0, heartbeat_s=100.0)
    r.open_lobby(0.0)
    r.heartbeat(0.0)
    r.roster.players = visits = _Visits()
    for i in range(n):
        w = join(r, f"id{i}".encode(), "bob", now=1.0)  # one name for all: deduplicated
        if i % 2:
            prove(r, w)
    assert r.lobby(2.0) is Lobby.WAIT and r.next_timeout(2.0) == pytest.approx(4.0)
    assert r.release_unready(2.0) == []
    assert visits.passes == 0  # no pass over the 2,000 players for 2,000 JOINs and a turn
    assert r.roster.players[1999].name == "bob-1999" and r.roster.counts[Status.READY] == n // 2


def test_counts_and_the_joined_order_follow_every_change_in_the_lobby():
    r = make_rules(players=4, ready_timeout_s=5.0, lobby_timeout_s=600.0)
    r.open_lobby(0.0)
    ws = [join(r, f"id{i}".encode(), f"p{i}", now=float(i)) for i in range(4)]
    _consistent(r.roster)
    assert list(r.roster.joined) == [0, 1, 2, 3]
    prove(r, ws[1])
    r.receive_control(b"id2", Leave("run1", 2, "bye"), 3.0)  # its slot is free again
    r.receive_subscription(ws[3].topic, True, 3.0)
    r.receive_subscription(ws[3].topic, False, 3.5)  # subscribed, then gone: freed
    _consistent(r.roster)
    assert list(r.roster.joined) == [0] and r.roster.counts[Status.READY] == 1
    assert join(r, b"late", "late", now=4.0).player == 2  # the lowest free slot
    assert list(r.roster.joined) == [0, 2]
    assert r.lobby(4.0) is Lobby.WAIT
    _consistent(r.roster)


def test_only_the_expired_joiners_are_released_oldest_first():
    r = make_rules(players=3, ready_timeout_s=5.0, lobby_timeout_s=600.0, heartbeat_s=100.0)
    r.open_lobby(0.0)
    r.heartbeat(0.0)
    a, b, c = (join(r, f"id{i}".encode(), f"p{i}", now=t) for i, t in enumerate((0.0, 3.0, 6.0)))
    assert r.next_timeout(0.0) == pytest.approx(5.0)  # a's ready timeout comes first
    prove(r, b)
    released = r.release_unready(7.0)
    assert [(o.player, o.new) for o in released if hasattr(o, "new")] == [(a.player, Status.DEAD)]
    assert set(r.roster.players) == {b.player, c.player}
    assert r.next_timeout(7.0) == pytest.approx(4.0)  # c's, at 6 + 5
    _consistent(r.roster)


def test_the_lowest_free_slot_is_found_again_after_a_slot_is_freed():
    roster = Roster("run1", 0, 6, 0)
    for slot in range(4):
        roster.add(roster.free_slot(None), f"p{slot}", f"id{slot}".encode())
    roster.remove(roster.players[1])
    assert roster.free_slot(None) == 1
    roster.add(1, "again", b"again")
    assert roster.free_slot(None) == 4
    assert roster.free_slot(None, frozenset({4})) == 5  # kept for a key: skipped
    assert roster.free_slot(None) == 4
    roster.add(4, "p4", b"id4")
    roster.add(5, "p5", b"id5")
    assert roster.free_slot(None) is None


def test_names_stay_unique_as_players_come_go_and_rename():
    roster = Roster("run1", 0, 4, 0)
    roster.remember({}, {3: "carol"})  # a resumed run: slot 3 keeps its recorded name
    bob = roster.add(0, "bob", b"a")
    assert roster.add(1, "bob", b"b").name == "bob-1"
    assert roster.add(2, "carol", b"c").name == "carol-2"  # carol is kept for slot 3
    roster.rejoin(bob, b"a2", "dave")  # renamed: "bob" is free again
    roster.remove(roster.players[2])
    assert roster.add(2, "bob", b"d").name == "bob"
    assert roster.add(3, "carol", b"e").name == "carol"


def test_a_lobby_of_three_hundred_players_in_one_agent_process_starts():
    pair = RulesPair(players=300)
    agent = pair.add_agent(*(f"p{i}" for i in range(300)))
    pair.advance(0.01)
    assert pair.start() is Lobby.START
    assert sorted(agent.players) == list(range(300))
    assert pair.rejected == [] and pair.server.roster.counts[Status.ACTIVE] == 300


# ---------------------------------------------------------------------- the agent's JOIN retry
class _FixedRandom:
    """A random source that always says ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def _retry_times(r: AgentRules, until: float) -> list[float]:
    """The times (after T0) at which JOINs go out, following next_due, up to ``until``."""
    now, times = T0, []
    while now - T0 <= until:
        if sends(r.due(now)):
            times.append(round(now - T0, 6))
        now += r.next_due(now)
    return times


@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_join_retries_back_off_doubling_to_a_bound_with_jitter(jitter):
    r = AgentRules(["p0"], rules().endpoints, now=T0, rng=_FixedRandom(jitter))  # type: ignore[arg-type]
    times = _retry_times(r, 30.0)
    waits = [b - a for a, b in zip(times, times[1:])]
    assert times[:2] == [0.0, JOIN_RETRY_S]  # the first retry is as quick as ever
    stretch = 1 + JOIN_JITTER * jitter
    assert waits[1:4] == pytest.approx([1.0 * stretch, 2.0 * stretch, 4.0 * stretch])
    assert waits[4:] == pytest.approx([JOIN_RETRY_MAX_S * stretch] * len(waits[4:]))
    assert max(waits) <= JOIN_RETRY_MAX_S * (1 + JOIN_JITTER)


def test_a_join_that_could_not_be_sent_is_sent_again_soon_on_its_own():
    r = AgentRules(["p0", "p1"], rules().endpoints, now=T0, rng=_FixedRandom(0.0))  # type: ignore[arg-type]
    times = _retry_times(r, 3.6)
    assert times == [0.0, 0.5, 1.5, 3.5]  # the next wait would be 4 s
    r.send_failed(Send(Socket.CONTROL, Join("p1", None), 1), T0 + 3.6)  # no connection
    assert r.next_due(T0 + 3.6) == pytest.approx(JOIN_RETRY_S)
    assert sends(r.due(T0 + 4.1)) == [Join("p1", None)]  # only the one that never left
    assert r.next_due(T0 + 4.1) == pytest.approx(3.4)  # the others' backing off goes on
    assert sends(r.due(T0 + 7.5)) == [Join("p0", None), Join("p1", None)]


def test_no_join_is_repeated_while_welcomes_keep_coming():
    n = 4
    r = AgentRules([f"p{i}" for i in range(n)], rules().endpoints, now=T0, rng=_FixedRandom(0.0))  # type: ignore[arg-type]
    assert len(sends(r.due(T0))) == n
    for i in range(n - 1):  # the server answers one JOIN each 0.5 s: slow, but getting there
        r.control_received(i, welcome(i), T0 + 0.3 + 0.5 * i)
        assert r.due(T0 + 0.5 * (i + 1)) == []  # checked every 0.5 s: nothing repeated
    # no WELCOME for a whole wait: the last one's JOIN is sent again, then backing off
    assert sends(r.due(T0 + 0.5 * (n + 1))) == [Join(f"p{n - 1}", None)]
    assert r.next_due(T0 + 0.5 * (n + 1)) == pytest.approx(1.0)


def test_a_join_that_could_not_be_sent_goes_again_even_while_welcomes_come():
    r = AgentRules(["p0", "p1"], rules().endpoints, now=T0, rng=_FixedRandom(0.0))  # type: ignore[arg-type]
    r.due(T0)
    r.send_failed(Send(Socket.CONTROL, Join("p1", None), 1), T0)  # not connected yet
    r.control_received(0, welcome(0), T0 + 0.1)
    assert sends(r.due(T0 + JOIN_RETRY_S)) == [Join("p1", None)]


def test_a_full_lobby_is_joined_again_when_it_says_even_while_welcomes_come():
    r = AgentRules(["p0", "p1"], rules().endpoints, now=T0, rng=_FixedRandom(0.0))  # type: ignore[arg-type]
    r.due(T0)
    r.control_received(0, welcome(0), T0 + 0.1)
    r.control_received(1, Error("full", "full for now", RUN, 300), T0 + 0.1)
    assert sends(r.due(T0 + 0.4)) == [Join("p1", None)]  # at retry_ms, not postponed


# ---------------------------------------------------------------------- real processes
def test_three_hundred_seats_in_one_agent_process_join_once_and_play_every_tick(procs, tmp_path):
    events = tmp_path / "events.jsonl"
    run = procs(
        [
            "-m",
            "tickwire",
            "run",
            "--agents",
            "300",
            "--per-process",
            "300",
            "--agent",
            "tickwire.bench:BenchBatchAgent",
            "--ticks",
            "5",
            "--events",
            str(events),
            "--json",
        ]
    )
    s = run.json(timeout=180)
    assert s["outcome"] == "ok" and s["ticks"] == 5 and len(s["players"]) == 300
    assert all((p["answered"], p["missed"], p["dead"]) == (5, 0, 0) for p in s["players"])
    assert s["rejected"] == {} and s["lobby_s"] > 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    joined = [e["id"] for e in lines if e["event"] == "player" and e["old"] is None]
    assert sorted(joined) == list(range(300))  # each slot joined once: none released, none twice
