"""The agent's rules (tickwire.protocol.agent_rules): no sockets, no sleeps, no clocks.

Time is a number passed in; every test starts at ``now = 100.0``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.agent_rules_builders import EPS, RUN, T0, playing, rules, sends, state, welcome
from tickwire.protocol import (
    Action,
    Actions,
    End,
    Error,
    Heartbeat,
    Join,
    Leave,
    Ready,
    Refused,
    ServerGone,
    ServerUnreachable,
)
from tickwire.protocol.agent_rules import (
    ACTION_RETRY_S,
    JOIN_RETRY_S,
    READY_RETRY_S,
    Act,
    AgentResult,
    Ended,
    Finish,
    GiveUp,
    Send,
    ServerComplained,
    Setup,
    Socket,
    Subscribe,
)


# ---------------------------------------------------------------------- joining
def test_starting_sends_a_join_for_every_hosted_player_at_once():
    r = rules(3)
    assert r.due(T0) == [Send(Socket.CONTROL, Join(f"p{i}", None), i) for i in range(3)]


def test_join_asks_for_consecutive_slots_from_the_configured_one():
    assert [m.slot for m in sends(rules(3, slot=4).due(T0))] == [4, 5, 6]


def test_an_unanswered_join_is_sent_again_after_the_retry_interval():
    r = rules()
    r.due(T0)
    assert r.due(T0 + JOIN_RETRY_S - 0.01) == []
    assert sends(r.due(T0 + JOIN_RETRY_S)) == [Join("p0", None)]


def test_next_due_is_the_next_join_retry():
    r = rules()
    r.due(T0)
    assert r.next_due(T0 + 0.1) == pytest.approx(JOIN_RETRY_S - 0.1)


def test_a_welcomed_player_is_not_joined_again():
    r = rules(2)
    r.due(T0)
    r.control_received(1, welcome(1), T0 + 0.1)
    assert r.due(T0 + JOIN_RETRY_S) == []  # a WELCOME came: the server is getting there
    assert sends(r.due(T0 + 2 * JOIN_RETRY_S)) == [Join("p0", None)]  # none since: again


def test_no_welcome_within_the_join_timeout_gives_up_naming_the_address():
    r = rules(join_timeout_s=5)
    r.due(T0)
    assert r.due(T0 + 4.9) != [] and not r.finished  # only retries so far
    [give_up] = r.due(T0 + 5)
    assert isinstance(give_up, GiveUp) and isinstance(give_up.error, ServerUnreachable)
    assert "no WELCOME" in str(give_up.error) and "tcp://127.0.0.1:5555" in str(give_up.error)
    assert r.finished


# ---------------------------------------------------------------------- welcome → ready
def test_a_welcome_calls_setup_then_subscribes_to_its_topic_then_sends_ready():
    r = rules()
    r.due(T0)
    w = welcome(3)
    assert r.control_received(0, w, T0) == [
        Setup(0, w),
        Subscribe(w.topic),
        Send(Socket.ACTIONS, Ready(RUN, 3, "tok3"), 0),
    ]
    assert r.results[0].player == 3


def test_a_repeated_welcome_changes_nothing():
    r = rules()
    r.due(T0)
    r.control_received(0, welcome(3), T0)
    assert r.control_received(0, welcome(3), T0 + 0.5) == []


def test_playing_starts_only_once_every_hosted_player_sent_ready():
    r = rules(2)
    r.due(T0)
    r.control_received(0, welcome(0), T0)
    assert not r.playing
    r.control_received(1, welcome(1), T0)
    assert r.playing


def test_a_ready_that_could_not_be_sent_is_retried_until_it_goes_out():
    r = rules()
    r.due(T0)
    ready = r.control_received(0, welcome(0), T0)[-1]
    assert r.send_failed(ready, T0) == [] and not r.playing
    assert r.next_due(T0) == pytest.approx(READY_RETRY_S)
    assert r.due(T0 + READY_RETRY_S) == [ready]
    assert r.playing


def test_a_ready_never_sent_gives_up_at_the_join_timeout_naming_the_actions_endpoint():
    r = rules(join_timeout_s=5)
    r.due(T0)
    r.send_failed(r.control_received(0, welcome(0), T0)[-1], T0)
    [give_up] = r.due(T0 + 5)
    assert isinstance(give_up.error, ServerUnreachable) and EPS.actions in str(give_up.error)


# ---------------------------------------------------------------------- refusal
def test_an_error_before_the_welcome_is_a_refusal_with_the_servers_code_and_text():
    r = rules()
    r.due(T0)
    [give_up] = r.control_received(0, Error("full", "all 2 player slots are taken"), T0)
    assert isinstance(give_up.error, Refused) and give_up.error.code == "full"
    assert "refused p0" in str(give_up.error) and "slots are taken" in str(give_up.error)
    assert r.finished


def test_a_refusal_leaves_for_the_hosted_players_already_welcomed():
    r = rules(2)
    r.due(T0)
    r.control_received(0, welcome(5), T0)
    decisions = r.control_received(1, Error("full", "no room"), T0)
    assert isinstance(decisions[-1], GiveUp)
    assert [(m.player, type(m)) for m in sends(decisions)] == [(5, Leave)]


def test_an_error_after_the_welcome_is_reported_and_recorded_and_play_goes_on():
    r = playing()
    err = Error("invalid_action", "tick 3: 99 is not an int in 0..4", RUN)
    assert r.control_received(0, err, T0 + 1) == [ServerComplained(0, err)]
    assert r.results[0].errors == [err.text] and r.playing


# ---------------------------------------------------------------------- playing
def test_acts_on_a_state_of_its_run():
    assert playing().states_received([state(0)], T0) == [Act(state(0))]


def test_acts_only_on_the_newest_queued_state_and_counts_the_older_ones_skipped():
    r = playing()
    assert r.states_received([state(0), state(1), state(2)], T0) == [Act(state(2))]
    assert r.results[0].skipped == 2


def test_a_tick_gap_counts_as_skipped():
    r = playing()
    r.states_received([state(0)], T0)
    r.states_received([state(4)], T0)
    assert r.results[0].skipped == 3


def test_a_state_at_or_before_the_last_tick_acted_on_is_ignored():
    r = playing()
    r.states_received([state(5)], T0)
    assert r.states_received([state(5)], T0) == [] and r.states_received([state(3)], T0) == []


def test_states_before_every_player_is_ready_are_not_acted_on():
    r = rules(2)
    r.due(T0)
    r.control_received(0, welcome(0), T0)
    assert r.states_received([state(0)], T0) == []


def test_messages_of_another_run_are_ignored_while_joining_and_its_end_always():
    r = rules()
    r.due(T0)
    assert r.states_received([state(0, run="old"), End("old", 3, "ticks done")], T0) == []
    r = playing()
    assert r.states_received([End("old", 3, "ticks done")], T0) == []
    assert r.control_received(0, End("old", 3, "ticks done"), T0) == [] and r.playing


def test_a_heartbeat_is_not_acted_on():
    assert playing().states_received([Heartbeat(RUN, 0)], T0) == []


def test_one_hosted_player_sends_an_action_with_its_token_and_a_rising_seq():
    r = playing()
    first, second = r.acted(0, ["up"]), r.acted(1, ["down"])
    assert first == Send(Socket.ACTIONS, Action(RUN, 0, 10, 1, "tok10", "up"))
    assert second.message.seq == 2 and r.results[0].ticks == 2


def test_several_hosted_players_send_one_actions_batch_per_tick():
    r = playing(3)
    assert r.acted(7, [1, 2, 3]) == Send(
        Socket.ACTIONS, Actions(RUN, 7, 1, [[10, "tok10", 1], [11, "tok11", 2], [12, "tok12", 3]])
    )
    assert [res.ticks for res in r.results] == [1, 1, 1]


def test_several_hosted_players_all_count_the_same_skipped_ticks():
    r = playing(2)
    r.states_received([state(0), state(1)], T0)
    assert [res.skipped for res in r.results] == [1, 1]


def test_an_action_that_could_not_be_sent_is_not_counted():
    r = playing()
    r.send_failed(r.acted(0, [1]), T0)
    assert r.results[0].ticks == 0 and r.playing


def test_an_action_that_could_not_be_sent_is_retried_while_its_tick_is_the_newest():
    r = playing()
    r.states_received([state(4)], T0)
    sent = r.acted(4, [1])
    r.send_failed(sent, T0)  # the actions connection is down (cut, server restarting)
    assert r.results[0].ticks == 0 and r.next_due(T0) <= ACTION_RETRY_S
    assert r.due(T0) == []
    [retry] = r.due(T0 + ACTION_RETRY_S)
    assert retry.message == sent.message and r.results[0].ticks == 1
    r.send_failed(retry, T0 + ACTION_RETRY_S)  # still down: uncounted, tried again later
    assert r.results[0].ticks == 0
    [again] = r.due(T0 + 2 * ACTION_RETRY_S)  # this one goes out
    assert again.message == sent.message and r.results[0].ticks == 1
    assert r.due(T0 + 3 * ACTION_RETRY_S) == []


def test_a_failed_action_is_not_retried_once_a_newer_state_came():
    r = playing()
    r.states_received([state(4)], T0)
    r.send_failed(r.acted(4, [1]), T0)
    r.states_received([state(5)], T0 + ACTION_RETRY_S / 2)
    assert r.due(T0 + ACTION_RETRY_S) == []


# ---------------------------------------------------------------------- end
def test_an_end_on_the_state_socket_calls_on_end_and_finishes():
    r = playing()
    end = End(RUN, 100, "ticks done", [3, 4])
    assert r.states_received([end], T0) == [Ended(end), Finish("end: ticks done")]
    assert r.finished and r.results[0].end == end and r.results[0].reason == "end: ticks done"


def test_an_end_on_the_control_socket_calls_on_end_and_finishes():
    r = playing()
    end = End(RUN, 100, "ticks done")
    assert r.control_received(0, end, T0) == [Ended(end), Finish("end: ticks done")]


def test_the_second_end_of_a_run_is_ignored():
    r = playing()
    end = End(RUN, 100, "ticks done")
    r.states_received([end], T0)
    assert r.control_received(0, end, T0) == [] and r.states_received([end], T0) == []


def test_a_state_queued_before_the_end_is_not_acted_on():
    r = playing()
    end = End(RUN, 3, "world done")
    assert r.states_received([state(2), end], T0) == [Ended(end), Finish("end: world done")]


# ---------------------------------------------------------------------- silence
def test_server_silence_longer_than_the_server_timeout_gives_up_saying_what_happened():
    r = playing(server_timeout_s=10)
    r.states_received([state(0)], T0 + 1)
    assert r.due(T0 + 11) == []
    [give_up] = r.due(T0 + 11.01)
    assert isinstance(give_up.error, ServerGone)
    assert "silent for more than 10 s" in str(give_up.error) and EPS.base in str(give_up.error)


def test_a_heartbeat_counts_as_the_server_being_alive():
    r = playing(server_timeout_s=10)
    r.states_received([Heartbeat(RUN, 0)], T0 + 9)
    assert r.due(T0 + 18) == [] and r.next_due(T0 + 18) == pytest.approx(1)


def test_a_control_message_of_this_run_counts_as_the_server_being_alive():
    r = playing(server_timeout_s=10)
    r.control_received(0, Error("invalid_action", "bad", RUN), T0 + 9)
    assert r.due(T0 + 18) == []


def test_a_rejoin_that_gets_no_welcome_within_the_server_timeout_gives_up_naming_the_new_run():
    r = playing(server_timeout_s=10)
    [join_again] = r.states_received([Heartbeat("new", 0)], T0 + 5)
    assert join_again.message == Join("p0", 10)
    [give_up] = r.due(T0 + 15.5)
    assert isinstance(give_up.error, ServerGone)  # the server it played with is gone
    assert "'new'" in str(give_up.error) and "could not rejoin" in str(give_up.error)


# ---------------------------------------------------------------------- stop
def test_a_stop_request_leaves_for_every_welcomed_player_and_finishes():
    r = playing(2)
    decisions = r.stop("signal SIGTERM")
    assert decisions == [
        Send(Socket.CONTROL, Leave(RUN, 10, "signal SIGTERM"), 0),
        Send(Socket.CONTROL, Leave(RUN, 11, "signal SIGTERM"), 1),
        Finish("signal SIGTERM"),
    ]
    assert r.finished and r.results[1].reason == "signal SIGTERM"


def test_a_stop_while_joining_leaves_only_for_the_players_already_welcomed():
    r = rules(2)
    r.due(T0)
    r.control_received(1, welcome(1), T0)
    assert [(d.agent, d.message.player) for d in r.stop("signal SIGINT")[:-1]] == [(1, 1)]


def test_a_stop_after_the_end_does_nothing():
    r = playing()
    r.states_received([End(RUN, 5, "ticks done")], T0)
    assert r.stop("signal SIGTERM") == []


# ---------------------------------------------------------------------- the result line
def test_the_result_line_says_name_player_ticks_skipped_end_and_scores():
    res = AgentResult(
        "MyAgent",
        player=1,
        ticks=998,
        skipped=2,
        end=End(RUN, 1000, "ticks done", [3, 12]),
        reason="end: ticks done",
    )
    assert str(res) == (
        "MyAgent (player 1): acted on 998 ticks, skipped 2; run ended at "
        "tick 1000 (ticks done); score 12 (all: 3, 12)"
    )


def test_the_result_line_of_a_stopped_agent_says_why():
    res = AgentResult("MyAgent", player=0, ticks=1, reason="signal SIGTERM")
    assert str(res) == "MyAgent (player 0): acted on 1 tick, skipped 0; stopped (signal SIGTERM)"


def test_the_result_line_of_an_agent_that_never_joined_says_so():
    assert str(AgentResult("MyAgent", reason="signal SIGINT")) == "MyAgent: never joined (signal SIGINT)"


# ---------------------------------------------------------------------- purity
def test_importing_the_agent_rules_imports_no_zmq():
    code = "import sys, tickwire.protocol.agent_rules; sys.exit(1 if 'zmq' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_an_agent_joining_mid_run_counts_skipped_ticks_only_from_its_first_state():
    r = playing()
    r.states_received([state(10736), state(10737)], T0)  # the ticks before were never its own
    r.states_received([state(10740)], T0)
    assert r.results[0].skipped == 1 + 2
    assert "skipped 3;" in str(r.results[0])


def test_the_silence_message_is_a_sentence_and_the_agent_knows_it_was_welcomed():
    fresh = rules()
    assert fresh.never_welcomed
    r = playing(server_timeout_s=10)
    assert not r.never_welcomed
    r.states_received([state(0)], T0)
    [give_up] = r.due(T0 + 11)
    assert str(give_up.error).endswith("so this agent stops.")


# ---------------------------------------------------------------------- full, for now
def test_full_with_retry_ms_waits_and_joins_again_instead_of_giving_up():
    from tickwire.protocol.agent_rules import Waiting

    r = rules()
    r.due(T0)
    full = Error("full", "2 of them by players that joined but have not proved readiness", "r", retry_ms=1500)
    assert r.control_received(0, full, T0 + 0.01) == [Waiting(0, full)]
    assert not r.finished and r.results[0].errors == [full.text]
    assert r.next_due(T0 + 0.01) == pytest.approx(1.5)
    assert r.due(T0 + 1.5) == []  # not yet: the retry is 1.5 s after the refusal
    assert sends(r.due(T0 + 1.51)) == [Join("p0", None)]
    assert r.control_received(0, full, T0 + 1.52) == []  # said once
    assert r.results[0].errors == [full.text]
    decisions = r.control_received(0, welcome(0), T0 + 2)
    assert isinstance(decisions[0], Setup) and not r.finished


def test_the_wait_after_full_is_bounded_both_ways():
    from tickwire.protocol.agent_rules import FULL_RETRY_MAX_S, FULL_RETRY_MIN_S

    for retry_ms, wait in ((0, FULL_RETRY_MIN_S), (-5, FULL_RETRY_MIN_S), (3_600_000, FULL_RETRY_MAX_S)):
        r = rules()
        r.due(T0)
        r.control_received(0, Error("full", "held", "r", retry_ms=retry_ms), T0)
        assert r.next_due(T0) == pytest.approx(wait)


def test_still_full_at_the_join_timeout_gives_up_as_refused_full():
    r = rules(join_timeout_s=5)
    r.due(T0)
    r.control_received(0, Error("full", "held by joiners not ready", "r", retry_ms=1000), T0)
    [give_up] = r.due(T0 + 5)
    assert isinstance(give_up, GiveUp) and isinstance(give_up.error, Refused)
    assert (
        give_up.error.code == "full"
        and "still full after the join timeout (5 s)" in str(give_up.error)
        and "held by joiners not ready" in str(give_up.error)
    )


def test_full_without_retry_ms_after_waiting_gives_up_at_once():
    r = rules()
    r.due(T0)
    r.control_received(0, Error("full", "held", "r", retry_ms=100), T0)
    [give_up] = r.control_received(0, Error("full", "all slots ready: larger --players"), T0 + 1)
    assert give_up.error.code == "full" and "larger --players" in str(give_up.error)
