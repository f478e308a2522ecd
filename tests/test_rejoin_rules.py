"""Rejoin, late join, lost connections and lobby probes in the pure rules (issue 9).

No sockets, sleeps or clocks: server and agent rules are fed events with an explicit ``now``.
"""

from __future__ import annotations

from test_agent_rules import T0, playing, state
from test_server_rules import action, changes, join, make_rules, prove, rejections, sent, started
from tickwire.protocol import Error, Heartbeat, Join, Ready, Welcome
from tickwire.protocol.agent_rules import Send, Setup, Socket, Subscribe
from tickwire.protocol.server_rules import (
    LOST_ACTION_GRACE_S,
    PROBE_EVERY_S,
    Lobby,
    Probe,
    Rejection,
    Republish,
    ServerRules,
)
from tickwire.protocol.server_status import Status
from tickwire.server.world_server.config import ServerConfig


def accounted(r) -> None:
    """Every tick is counted once per player: answered + missed + dead + left + not_joined."""
    for p in r.roster.summary():
        total = p["answered"] + p["missed"] + p["dead"] + p["left"] + p["not_joined"]
        assert total == r.tick, p


def play_tick(r, tick: int, answers: list, now: float = 0.0) -> None:
    r.begin_tick(tick, now)
    for w, payload in answers:
        r.receive_action(action(w, tick, payload), now)
    r.close_tick(now)


def die(r, w: Welcome, now: float = 0.0) -> None:
    r.receive_subscription(w.topic, False, now)


# ---------------------------------------------------------------------- server: rejoin
def test_a_dead_players_slot_is_taken_back_by_a_join_naming_it():
    r, (w0, w1) = started()
    play_tick(r, 0, [(w0, 1), (w1, 1)])
    die(r, w1)
    play_tick(r, 1, [(w0, 1)])
    outs = r.receive_control(b"new1", Join("p1 again", slot=1), 0.0)
    (w,) = sent(outs)
    assert (w.player, w.run) == (1, r.run_id) and w.token != w1.token and w.topic != w1.topic
    assert changes(outs) == [(1, Status.DEAD, Status.JOINED)]
    play_tick(r, 2, [(w0, 1)])  # not proven yet: still not back
    prove(r, w)
    assert r.roster.players[1].status is Status.ACTIVE
    r.begin_tick(3, 0.0)
    assert r.barrier.waiting_for == {0, 1}  # plays from the next tick
    r.receive_action(action(w0, 3, 1), 0.0)
    r.receive_action(action(w, 3, 2), 0.0)
    r.close_tick(0.0)
    stats = r.roster.players[1].stats()
    assert (stats["answered"], stats["dead"], stats["rejoins"]) == (2, 2, 1)
    accounted(r)


def test_the_old_token_is_no_longer_accepted_after_a_rejoin():
    r, (w0, w1) = started()
    die(r, w1)
    w = join(r, b"new1", slot=1)
    prove(r, w)
    r.begin_tick(0, 0.0)
    assert rejections(r.receive_action(action(w1, 0, 1), 0.0)) == [Rejection.BAD_TOKEN]


def test_a_join_without_a_slot_mid_run_takes_the_lowest_dead_slot():
    r, ws = started(3)
    die(r, ws[2])
    die(r, ws[1])
    assert join(r, b"restarted").player == 1


def test_a_join_for_a_live_players_slot_is_refused_as_slot_taken():
    r, (w0, w1) = started()
    outs = r.receive_control(b"impostor", Join("x", slot=1), 0.0)
    (err,) = sent(outs)
    assert err.code == "slot_taken" and "active" in err.text
    assert rejections(outs) == [Rejection.SLOT_TAKEN]
    assert r.roster.players[1].identity == b"id1"


def test_a_left_players_slot_is_not_taken_back():
    r, (w0, w1) = started()
    from tickwire.protocol import Leave

    r.receive_control(b"id1", Leave(r.run_id, 1, "bye"), 0.0)
    (err,) = sent(r.receive_control(b"x", Join("x", slot=1), 0.0))
    assert err.code == "slot_taken"


def test_a_free_slot_mid_run_needs_late_join():
    r = make_rules(players=2)
    r.open_lobby(0.0)
    prove(r, join(r, b"a"))
    r.start(0.0)
    (err,) = sent(r.receive_control(b"b", Join("b"), 0.0))
    assert err.code == "run_in_progress" and "--late-join" in err.text


def test_with_late_join_a_free_slot_is_joined_mid_run_and_earlier_ticks_count_as_not_joined():
    r, w0 = late_started()
    w1 = join(r, b"b")
    assert w1.player == 1
    prove(r, w1)
    play_tick(r, 2, [(w0, 1), (w1, 3)])
    assert r.roster.players[1].stats()["not_joined"] == 2
    accounted(r)


def test_a_rejoined_player_that_dies_again_can_rejoin_again():
    r, (w0, w1) = started()
    die(r, w1)
    w = join(r, b"second", slot=1)
    r.receive_subscription(w.topic, True, 0.0)
    die(r, w)
    assert r.roster.players[1].status is Status.DEAD
    assert join(r, b"third", slot=1).player == 1
    assert r.roster.players[1].rejoins == 2


# ---------------------------------------------------------------------- server: lost actions
def test_a_lost_actions_connection_during_a_tick_asks_for_the_actions_again():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    assert r.actions_connection_lost(0.1) == (Republish(0),)


def test_an_unexplained_lost_connection_releases_a_strict_tick_after_the_grace():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    r.receive_action(action(w0, 0, 1), 0.0)
    r.actions_connection_lost(0.1)
    assert not r.may_close(0.1 + LOST_ACTION_GRACE_S / 2)
    assert r.next_timeout(0.2) <= LOST_ACTION_GRACE_S
    assert r.may_close(0.1 + LOST_ACTION_GRACE_S)
    closed = r.close_tick(0.0)
    assert closed.result.missing == {1}
    assert r.rejected[Rejection.DROPPED_CONNECTION] == 1
    r.begin_tick(1, 5.0)
    assert not r.may_close(5.0)  # the next tick waits again
    accounted(r)


def test_a_lost_connection_explained_by_a_death_is_not_a_drop_in_either_order():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    die(r, w1)
    r.actions_connection_lost(0.1)
    r.receive_control(b"id0", Error("x", "y"), 0.15)  # noise: nothing
    r.heartbeat(0.2)
    r.actions_connection_lost(0.3)
    die(r, w0, 0.4)
    assert r.may_close(10.0)  # everyone is dead
    assert Rejection.DROPPED_CONNECTION not in r.rejected


def test_a_lost_connection_in_the_lobby_changes_nothing():
    r = make_rules()
    r.open_lobby(0.0)
    assert r.actions_connection_lost(0.0) == ()


# ---------------------------------------------------------------------- server: probes
def test_players_that_joined_but_never_subscribed_are_probed_once_a_second():
    r = make_rules(players=2)
    r.open_lobby(0.0)
    w0 = join(r, b"a")
    join(r, b"b")
    r.receive_subscription(w0.topic, True, 0.0)
    assert r.probe(0.0) == [Probe(b"b")]
    assert r.probe(0.5) == ()
    assert r.probe(PROBE_EVERY_S) == [Probe(b"b")]


def test_a_lost_control_connection_in_the_lobby_frees_the_slot():
    r = make_rules(players=2)
    r.open_lobby(0.0)
    join(r, b"a")
    join(r, b"b")
    outs = r.control_lost(b"b", 0.0)
    assert changes(outs) == [(1, Status.JOINED, Status.DEAD)]
    assert 1 not in r.roster.players and r.lobby(1.0) is Lobby.WAIT
    assert join(r, b"c").player == 1
    assert r.control_lost(b"unknown", 0.0) == []


# ---------------------------------------------------------------------- agent: resend, rejoin
def test_a_state_for_the_tick_already_answered_resends_that_action_uncounted():
    r = playing()
    r.states_received([state(4)], T0)
    first = r.acted(4, ["up"])
    [again] = r.states_received([state(4)], T0 + 1)
    assert again.message == first.message and again.resend
    assert r.send_failed(again, T0 + 1) == [] and r.results[0].ticks == 1


def test_a_state_of_another_run_makes_every_hosted_player_join_again_for_its_slot():
    r = playing(2)
    r.states_received([state(7)], T0)
    joins = r.states_received([Heartbeat("new", 3)], T0 + 1)
    assert [(d.agent, d.message) for d in joins] == [(0, Join("p0", 10)), (1, Join("p1", 11))]
    assert not r.playing and r.results[0].rejoins == 1
    w = Welcome(
        run="new",
        player=10,
        name="p0",
        seed=7,
        token="t",
        topic=b"tw.new.10",
        mode="strict",
        deadline_ms=None,
        ticks=100,
        players=4,
    )
    decisions = r.control_received(0, w, T0 + 1)
    assert decisions[:2] == [Setup(0, w, again=True), Subscribe(b"tw.new.10")]
    assert decisions[2] == Send(Socket.ACTIONS, Ready("new", 10, "t"), 0)


def test_a_rejoin_retries_a_slot_taken_refusal_and_acts_on_the_new_runs_states():
    r = playing()
    r.states_received([state(50)], T0)
    r.acted(50, [1])
    r.states_received([state(3, run="new")], T0)
    assert r.control_received(0, Error("slot_taken", "still alive", "new"), T0) == []
    [retry] = r.due(T0 + 1)
    assert retry.message == Join("p0", 10)
    w = Welcome(
        run="new",
        player=10,
        name="p0",
        seed=7,
        token="t",
        topic=b"tw.new.10",
        mode="strict",
        deadline_ms=None,
        ticks=100,
        players=4,
    )
    r.control_received(0, w, T0 + 1)
    assert r.playing
    [act] = r.states_received([state(40, run="new")], T0 + 2)  # a resumed run may be behind
    assert act.state.tick == 40
    # neither run's ticks before the first STATE this agent saw of it were skipped by us
    assert r.results[0].skipped == 0
    r.states_received([state(42, run="new")], T0 + 3)  # but a gap in the new run is
    assert r.results[0].skipped == 1


def test_a_first_join_refused_as_slot_taken_still_gives_up():
    from tickwire.protocol.agent_rules import GiveUp

    r = playing()
    r2 = type(r)(["x"], r.endpoints, now=T0)
    r2.due(T0)
    [give_up] = r2.control_received(0, Error("slot_taken", "taken", "run1"), T0)
    assert isinstance(give_up, GiveUp)


def test_a_duplicate_we_asked_for_is_not_counted_but_others_are():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    r.receive_action(action(w0, 0, 1), 0.0)
    r.actions_connection_lost(0.1)
    assert rejections(r.receive_action(action(w0, 0, 1), 0.2)) == []
    r.receive_action(action(w1, 0, 1), 0.2)
    r.close_tick(0.0)
    r.begin_tick(1, 0.3)
    r.receive_action(action(w0, 1, 1), 0.3)
    assert rejections(r.receive_action(action(w0, 1, 1), 0.3)) == [Rejection.DUPLICATE]


def test_losses_still_unexplained_at_the_end_are_counted():
    r, _ = started()
    r.begin_tick(0, 0.0)
    r.actions_connection_lost(0.1)
    r.end("stopped", [], 0.0)
    assert r.rejected[Rejection.DROPPED_CONNECTION] == 1


def test_a_player_back_after_the_tick_opened_may_answer_it_and_is_counted_once():
    r, (w0, w1) = started()
    die(r, w1)
    r.begin_tick(0, 0.0)
    w = join(r, b"new1", slot=1)
    prove(r, w)  # back during tick 0, whose STATE it may have seen
    assert rejections(r.receive_action(action(w, 0, 2), 0.0)) == []
    assert r.barrier.waiting_for == {0}  # but the open tick does not wait for it
    r.receive_action(action(w0, 0, 1), 0.0)
    closed = r.close_tick(0.0)
    assert closed.actions == {0: 1, 1: 2}
    assert r.roster.players[1].stats()["answered"] == 1
    accounted(r)


# ---------------------------------------------------------------------- server: rejoin with keys
def keyed_start(keys: list[str], fixed: dict[str, int] | None = None):
    """Rules of a started run whose players joined with ``keys`` (one per player)."""
    r = ServerRules(ServerConfig(bind="inproc://rules", players=len(keys)), "run1", fixed_slots=fixed)
    r.open_lobby(0.0)
    ws = [sent(r.receive_control(f"id{i}".encode(), Join(k), 0.0, key=k))[0] for i, k in enumerate(keys)]
    for w, k in zip(ws, keys):
        r.receive_subscription(w.topic, True, 0.0)
        r.receive_action(Ready(w.run, w.player, w.token), 0.0, k)
    r.start(0.0)
    return r, ws


def test_with_keys_only_the_key_bound_to_a_dead_slot_may_take_it_back():
    r, (wa, wb) = keyed_start(["alice", "bob"])
    die(r, wa)
    (err,) = sent(r.receive_control(b"bob2", Join("bob", slot=wa.player), 0.0, key="bob"))
    assert isinstance(err, Error) and err.code == Rejection.WRONG_KEY.value
    assert r.roster.players[wa.player].status is Status.DEAD  # the binding survived the death
    (w,) = sent(r.receive_control(b"alice2", Join("alice", slot=wa.player), 0.0, key="alice"))
    assert isinstance(w, Welcome) and w.player == wa.player and w.topic != wa.topic
    assert r.roster.players[wa.player].key == "alice"


def test_with_keys_a_join_without_a_slot_takes_back_only_its_own_keys_dead_slot():
    r, (wa, wb) = keyed_start(["alice", "bob"])
    die(r, wa)
    (err,) = sent(r.receive_control(b"bob2", Join("bob"), 0.0, key="bob"))
    assert isinstance(err, Error) and err.code == Rejection.RUN_IN_PROGRESS.value
    die(r, wb)
    (w,) = sent(r.receive_control(b"bob3", Join("bob"), 0.0, key="bob"))
    assert w.player == wb.player and r.roster.players[wb.player].rejoins == 1


def test_with_keys_a_fixed_slots_key_takes_its_slot_back_whatever_slot_it_asks_for():
    r, (wa, wb) = keyed_start(["alice", "bob"], fixed={"alice": 1})
    assert wa.player == 1
    die(r, wa)
    (w,) = sent(r.receive_control(b"alice2", Join("x", slot=0), 0.0, key="alice"))
    assert (w.player, w.name) == (1, "alice")


def test_rejoin_topics_are_random_and_new_each_time():
    r, (w0, w1) = started()
    topics = {w1.topic}
    for i in range(3):
        die(r, r.roster.players[1])
        topics.add(join(r, f"new{i}".encode(), slot=1).topic)
    assert len(topics) == 4 and all(len(t) >= 32 and r.run_id.encode() not in t for t in topics)


# ---------------------------------------------------------------------- server: late join accounting
def late_started():
    """A --late-join run of 2 slots started with player 0 alone; ticks 0 and 1 played."""
    r = make_rules(players=2, late_join=True)
    r.open_lobby(0.0)
    w0 = join(r, b"a")
    prove(r, w0)
    r.start(0.0)
    play_tick(r, 0, [(w0, 1)])
    play_tick(r, 1, [(w0, 1)])
    return r, w0


def test_a_late_join_while_a_tick_is_open_counts_that_tick_as_not_joined():
    r, w0 = late_started()
    r.begin_tick(2, 0.0)
    w1 = join(r, b"b")  # joins during tick 2: it sat out 0, 1 and (not answering it) 2
    prove(r, w1)
    r.receive_action(action(w0, 2, 1), 0.0)
    r.close_tick(0.0)
    play_tick(r, 3, [(w0, 1), (w1, 3)])
    stats = r.roster.players[1].stats()
    assert (stats["not_joined"], stats["answered"]) == (3, 1)
    accounted(r)


def test_a_late_joiner_may_answer_the_tick_open_at_its_join_like_a_rejoiner():
    r, w0 = late_started()
    r.begin_tick(2, 0.0)
    w1 = join(r, b"b")
    prove(r, w1)
    assert rejections(r.receive_action(action(w1, 2, 3), 0.0)) == []
    r.receive_action(action(w0, 2, 1), 0.0)
    assert r.close_tick(0.0).actions == {0: 1, 1: 3}
    stats = r.roster.players[1].stats()
    assert (stats["not_joined"], stats["answered"]) == (2, 1)
    accounted(r)


def test_a_late_joiners_answer_to_a_tick_it_sat_out_is_stale_but_not_late():
    r, w0 = late_started()
    r.begin_tick(2, 0.0)
    w1 = join(r, b"b")
    r.receive_action(action(w0, 2, 1), 0.0)
    r.close_tick(0.0)  # tick 2 closes before it proves readiness: not_joined
    prove(r, w1)
    r.begin_tick(3, 0.0)
    assert rejections(r.receive_action(action(w1, 2, 3), 0.0)) == [Rejection.STALE]
    stats = r.roster.players[1].stats()
    assert (stats["late"], stats["missed"]) == (0, 0)


def test_late_counts_each_missed_tick_once_and_never_a_tick_answered_in_time():
    r, (w0, w1) = started(mode="deadline", deadline_ms=10)
    play_tick(r, 0, [(w0, 1), (w1, 1)])
    play_tick(r, 1, [(w0, 1)])  # player 1 misses tick 1
    r.begin_tick(2, 0.0)
    for tick in (1, 1, 0):  # late for 1, a repeat of 1, a resend of 0 it answered
        assert rejections(r.receive_action(action(w1, tick, 2), 0.0)) == [Rejection.STALE]
    r.receive_action(action(w0, 2, 1), 0.0)
    r.receive_action(action(w1, 2, 1), 0.0)
    closed = r.close_tick(0.0)
    stats = r.roster.players[1].stats()
    assert (stats["missed"], stats["late"], closed.late) == (1, 1, {1: 1})


# ---------------------------------------------------------------------- server: names
def test_a_newcomer_taking_a_dead_slot_gets_its_own_name_de_duplicated():
    r, (w0, w1) = started()
    die(r, w1)
    version = r.roster.version
    outs = r.receive_control(b"new1", Join("newcomer", slot=1), 0.0)
    (w,) = sent(outs)
    change = next(o for o in outs if hasattr(o, "new"))
    assert w.name == change.name == r.roster.players[1].name == "newcomer"
    assert "was 'p1'" in change.detail and r.roster.version > version
    die(r, w)
    assert join(r, b"third", "p0", slot=1).name == "p0-1"  # p0 is player 0's


def test_a_rejoin_under_the_same_name_keeps_it_bare():
    r, (w0, w1) = started()
    die(r, w1)
    assert join(r, b"new1", "p1", slot=1).name == "p1"


def test_the_first_holder_of_a_name_keeps_it_bare_and_suffixes_never_collide():
    r = make_rules(players=3)
    assert join(r, b"a", "Greedy", slot=2).name == "Greedy"
    assert join(r, b"b", "Greedy-0", slot=1).name == "Greedy-0"
    assert join(r, b"c", "Greedy", slot=0).name == "Greedy-0-2"


def test_late_answers_are_matched_against_a_bounded_number_of_recent_misses():
    from tickwire.protocol.roster import MISSES_KEPT

    r, (w0, w1) = started(mode="deadline", deadline_ms=10)
    for tick in range(MISSES_KEPT + 1):  # player 1 misses them all
        play_tick(r, tick, [(w0, 1)])
    r.begin_tick(MISSES_KEPT + 1, 0.0)
    r.receive_action(action(w1, 0, 2), 0.0)  # forgotten: stale, not late
    r.receive_action(action(w1, MISSES_KEPT, 2), 0.0)  # recent: late
    p = r.roster.players[1]
    assert (p.late, len(p._unanswered)) == (1, MISSES_KEPT - 1)


# ---------------------------------------------------------------------------- names on resume
def test_a_resumed_run_keeps_each_slots_recorded_name_whatever_order_the_agents_come_back():
    """Two agents of one class were recorded as slot 1 'GreedyAgent' and slot 0
    'GreedyAgent-0' (slot 1 joined first); after a resume slot 0 comes back first. Without
    the recorded names it took the bare name and the two swapped."""
    from tickwire.protocol.roster import Roster

    roster = Roster("run", 0, capacity=3, strikes=3)
    roster.remember({}, {0: "GreedyAgent-0", 1: "GreedyAgent"})
    assert roster.add(0, "GreedyAgent", b"a").name == "GreedyAgent-0"
    assert roster.add(2, "GreedyAgent", b"c").name == "GreedyAgent-2"  # 'GreedyAgent' is kept
    assert roster.add(1, "GreedyAgent", b"b").name == "GreedyAgent"  # for slot 1, now back
    fresh = Roster("run", 0, capacity=2, strikes=3)
    fresh.remember({}, {0: "victim"})
    assert fresh.add(0, "newcomer", b"n").name == "newcomer"  # another name: its own
    assert Roster("run", 0, 2, 3).add(0, "GreedyAgent", b"x").name == "GreedyAgent"
