"""The two rule books played against each other: ServerRules ↔ encoded bytes ↔ AgentRules.

No sockets, no processes, no sleeping: :class:`support.rules_pair.RulesPair` carries each
message across as the bytes the codec makes, on a fake clock. Each test follows one part of
a run end to end: join, act, miss (deadline), rejoin, end.
"""

from __future__ import annotations

import numpy as np
from support.rules_pair import RulesPair
from tickwire.protocol import Lobby, Rejection, Status


def double(state):
    """One action per hosted player: the observation times two (a numpy array)."""
    return [np.asarray(state.payload) * 2]


def constant(value):
    return lambda state: [value]


def playing(*policies, **settings) -> RulesPair:
    """A pair whose run has started, one single-player agent per policy."""
    pair = RulesPair(players=len(policies), **settings)
    for i, policy in enumerate(policies):
        pair.add_agent(f"p{i}", policy=policy)
    pair.pump()
    assert pair.start() is Lobby.START
    return pair


def statuses(pair: RulesPair) -> dict[int, Status]:
    return {p.id: p.status for p in pair.server.roster.players.values()}


def summary(pair: RulesPair, player: int) -> dict:
    (row,) = [p for p in pair.server.roster.summary() if p["id"] == player]
    return row


# ---------------------------------------------------------------------------- join
def test_join_agents_are_welcomed_prove_readiness_and_the_run_starts():
    pair = RulesPair(players=2)
    alice, bob = pair.add_agent("alice"), pair.add_agent("bob")
    assert pair.start() is Lobby.WAIT  # the JOINs are still in flight
    pair.pump()
    assert alice.players == [0] and bob.players == [1]
    (welcome,) = alice.welcomes
    assert (welcome.run, welcome.name, welcome.players) == ("run1", "alice", 2)
    assert welcome.topic in alice.subscribed and alice.rules.playing and bob.rules.playing
    assert statuses(pair) == {0: Status.READY, 1: Status.READY}  # subscription + READY seen
    assert pair.start() is Lobby.START
    assert statuses(pair) == {0: Status.ACTIVE, 1: Status.ACTIVE}
    assert [(c.player, c.old, c.new) for c in pair.changes if c.player == 0] == [
        (0, None, Status.JOINED),
        (0, Status.JOINED, Status.READY),
        (0, Status.READY, Status.ACTIVE),
    ]
    assert pair.rejected == []


def test_join_readiness_needs_the_ready_too_and_an_unready_joiner_loses_its_slot():
    pair = RulesPair(players=2, ready_timeout_s=5.0)
    pair.add_agent("ok")
    cut_off = pair.add_agent("cut off")
    cut_off.reaches_actions = False  # it cannot reach the actions port: its READY never arrives
    pair.pump()
    assert cut_off.players == [1] and cut_off.welcomes[0].topic in cut_off.subscribed
    assert statuses(pair) == {0: Status.READY, 1: Status.JOINED}  # subscribed, no READY
    pair.advance(4.0)
    assert pair.start() is Lobby.WAIT and statuses(pair)[1] is Status.JOINED
    pair.advance(1.5)  # past --ready-timeout: the slot is freed for someone else
    assert statuses(pair) == {0: Status.READY}
    assert (pair.changes[-1].player, pair.changes[-1].new) == (1, Status.DEAD)


def test_join_a_full_server_refuses_a_third_agent_which_gives_up():
    pair = RulesPair(players=2)
    pair.add_agent("a"), pair.add_agent("b")
    pair.pump()
    extra = pair.add_agent("extra")
    pair.pump()
    assert extra.players == [None] and extra.finished
    assert extra.gave_up is not None and extra.gave_up.code == "full"
    assert [r.reason for r in pair.rejected] == [Rejection.FULL]


# ---------------------------------------------------------------------------- act
def test_act_every_agent_acts_on_the_published_state_and_the_tick_closes_with_their_actions():
    pair = playing(double, constant(7))
    observation = np.arange(6, dtype=np.int16).reshape(2, 3)
    assert pair.begin_tick(observation) == 0
    (act,) = pair.agents[0].acts
    assert act.state.tick == 0 and act.state.payload.dtype == np.int16  # decoded from bytes
    np.testing.assert_array_equal(act.state.payload, observation)
    closed = pair.close_tick()
    assert closed is not None and closed.result.missing == set()
    np.testing.assert_array_equal(closed.actions[0], observation * 2)
    assert closed.actions[1] == 7
    assert pair.server.tick == 1 and pair.rejected == []
    assert summary(pair, 0)["answered"] == summary(pair, 1)["answered"] == 1


def test_act_one_process_hosting_two_players_sends_one_batch_for_both():
    pair = RulesPair(players=2)
    host = pair.add_agent("left", "right", policy=lambda state: ["L", "R"])
    pair.pump()
    assert host.players == [0, 1] and pair.start() is Lobby.START
    pair.begin_tick()
    closed = pair.close_tick()
    assert closed is not None and closed.actions == {0: "L", 1: "R"}


# ---------------------------------------------------------------------------- miss
def test_miss_a_silent_player_gets_the_noop_at_the_deadline_and_its_late_answer_is_counted():
    pair = RulesPair(players=2, mode="deadline", deadline_ms=50, rules={"noop": lambda: -1})
    pair.add_agent("quick", policy=constant(1))
    slow = pair.add_agent("slow")  # no policy: its Acts wait for answer()
    pair.pump()
    assert pair.start() is Lobby.START
    pair.begin_tick()
    assert pair.close_tick() is None  # player 1 is awaited ...
    pair.advance(0.04)
    assert pair.close_tick() is None  # ... until the deadline
    pair.advance(0.02)
    closed = pair.close_tick()
    assert closed is not None and closed.result.missing == {1}
    assert closed.actions == {0: 1, 1: -1}  # filled with the noop
    slow.answer([5])  # tick 0's answer, after it closed
    assert [r.reason for r in pair.rejected] == [Rejection.STALE]
    pair.begin_tick()
    slow.answer([6])
    closed = pair.close_tick()
    assert closed is not None and closed.actions == {0: 1, 1: 6} and closed.late == {1: 1}
    assert (summary(pair, 1)["answered"], summary(pair, 1)["missed"]) == (1, 1)


def test_miss_a_strict_tick_waits_for_a_slow_player_however_long_it_takes():
    pair = playing(constant(1), lambda state: None)
    pair.begin_tick()
    pair.advance(30.0)
    assert pair.close_tick() is None
    pair.agents[1].answer([2])
    closed = pair.close_tick()
    assert closed is not None and closed.actions == {0: 1, 1: 2}


# ---------------------------------------------------------------------------- rejoin
def test_rejoin_a_new_process_takes_back_a_dead_players_slot_and_plays_from_the_next_tick():
    hangs_at_tick_1 = lambda state: [2] if state.tick == 0 else None  # noqa: E731
    pair = playing(constant(1), hangs_at_tick_1, rules={"noop": lambda: 0})
    pair.begin_tick()
    assert pair.close_tick().actions == {0: 1, 1: 2}
    old = pair.agents[1]
    pair.begin_tick()
    assert pair.close_tick() is None  # strict: waiting for player 1 ...
    pair.kill(old)
    assert statuses(pair) == {0: Status.ACTIVE, 1: Status.DEAD}
    closed = pair.close_tick()  # ... not any more: it died during the tick (noop for it)
    assert closed is not None and closed.actions == {0: 1, 1: 0} and closed.result.missing == {1}
    pair.begin_tick()
    closed = pair.close_tick()  # a tick it is dead for all along: not waited for, not stepped
    assert closed is not None and closed.actions == {0: 1} and closed.result.missing == set()
    again = pair.add_agent("p1 again", slot=1, policy=constant(3))
    pair.pump()
    assert again.players == [1] and again.rules.playing
    (welcome,) = again.welcomes
    assert welcome.token != old.welcomes[0].token and welcome.topic != old.welcomes[0].topic
    assert statuses(pair) == {0: Status.ACTIVE, 1: Status.ACTIVE}
    pair.begin_tick()
    closed = pair.close_tick()
    assert closed is not None and closed.actions == {0: 1, 1: 3}
    row = summary(pair, 1)
    assert (row["answered"], row["missed"], row["dead"], row["rejoins"]) == (2, 1, 1, 1)
    assert pair.rejected == []  # the lost connection was explained by the death


def test_rejoin_a_join_for_a_live_players_slot_is_refused():
    pair = playing(constant(1), constant(2))
    impostor = pair.add_agent("impostor", slot=1)
    pair.pump()
    assert impostor.gave_up is not None and impostor.gave_up.code == "slot_taken"
    assert statuses(pair) == {0: Status.ACTIVE, 1: Status.ACTIVE}


def test_rejoin_agents_join_a_restarted_server_again_asking_for_their_old_slots():
    pair = RulesPair(players=2)
    first = pair.add_agent("first", slot=1, policy=constant(1))
    second = pair.add_agent("second", slot=0, policy=constant(0))
    pair.pump()
    assert pair.start() is Lobby.START and (first.players, second.players) == ([1], [0])
    pair.begin_tick()
    pair.close_tick()
    pair.restart("run2")
    pair.advance(0.0)  # the new server's first HEARTBEAT: another run while playing
    for agent in (first, second):
        assert agent.rules.results[0].rejoins == 1
        assert [w.run for w in agent.welcomes] == ["run1", "run2"]
    assert (first.players, second.players) == ([1], [0])  # the slots they had
    assert pair.start() is Lobby.START
    pair.begin_tick()
    closed = pair.close_tick()
    assert closed is not None and closed.actions == {0: 0, 1: 1}


# ---------------------------------------------------------------------------- end
def test_end_every_agent_gets_the_end_with_the_scores_and_finishes():
    pair = playing(constant(1), constant(2))
    pair.begin_tick()
    pair.close_tick()
    pair.end("ticks done", [3.5, 4.5])
    for agent in pair.agents:
        assert agent.finished and agent.ended is not None
        assert (agent.ended.run, agent.ended.tick, agent.ended.reason) == ("run1", 1, "ticks done")
        assert agent.ended.scores == [3.5, 4.5]
        assert agent.rules.results[0].reason == "end: ticks done"
        assert agent.rules.results[0].ticks == 1
