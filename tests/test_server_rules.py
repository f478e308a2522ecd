"""The world server's rules as a specification: no sockets, no sleeping, no real clock.

Every test feeds :class:`ServerRules` events with an explicit ``now`` and reads what it
decides (messages to send or publish, acceptances, rejections, status changes).
"""

from __future__ import annotations

import pytest
from tickwire.protocol import (
    Action,
    Actions,
    ConfigError,
    End,
    Error,
    Heartbeat,
    Join,
    Leave,
    ProtocolError,
    Ready,
    State,
    Welcome,
    derive,
)
from tickwire.protocol.server_rules import (
    ACCEPTED,
    ACCEPTED_ONLY,
    NOBODY_PLAYING_GRACE_S,
    InvalidAction,
    Lobby,
    NextTick,
    Publish,
    Rejected,
    Rejection,
    SendTo,
    ServerRules,
    StatusChange,
    StopReason,
)
from tickwire.protocol.server_status import (
    TRANSITIONS,
    IllegalTransition,
    PlayerEvent,
    Status,
    next_status,
)
from tickwire.server.world_server.config import ServerConfig

SPEC = {"type": "discrete", "n": 5}
NOOP = 0


def validate(action):
    if type(action) is not int or not 0 <= action < 5:
        raise InvalidAction(f"action {action!r} is not an int in 0..4")
    return action


def make_rules(**settings) -> ServerRules:
    cfg = ServerConfig(**{"bind": "inproc://rules", "players": 2, **settings})
    return ServerRules(
        cfg,
        "run1",
        describe=lambda: {"name": "Test", "action_spec": SPEC},
        validate=validate,
        noop=lambda: NOOP,
        endpoints=derive("ipc:///tmp/x/run"),
    )


def sent(outs) -> list:
    return [o.message for o in outs if isinstance(o, SendTo)]


def rejections(outs) -> list[Rejection]:
    return [o.reason for o in outs if isinstance(o, Rejected)]


def changes(outs) -> list[tuple]:
    return [(o.player, o.old, o.new) for o in outs if isinstance(o, StatusChange)]


def join(
    r: ServerRules, identity: bytes, name: str = "p", slot: int | None = None, now: float = 0.0
) -> Welcome:
    (welcome,) = sent(r.receive_control(identity, Join(name, slot), now))
    assert isinstance(welcome, Welcome), welcome
    return welcome


def prove(r: ServerRules, w: Welcome) -> None:
    r.receive_subscription(w.topic, True, 0.0)
    r.receive_action(Ready(w.run, w.player, w.token), now=0.0)


def started(n: int = 2, **settings) -> tuple[ServerRules, list[Welcome]]:
    """Rules of a run that has started with ``n`` ready players."""
    r = make_rules(players=n, **settings)
    r.open_lobby(0.0)
    ws = [join(r, f"id{i}".encode(), f"p{i}") for i in range(n)]
    for w in ws:
        prove(r, w)
    assert r.lobby(0.0) is Lobby.START
    r.start(0.0)
    return r, ws


def action(w: Welcome, tick: int, payload, **over) -> Action:
    fields = {
        "run": w.run,
        "tick": tick,
        "player": w.player,
        "seq": 1,
        "token": w.token,
        "payload": payload,
        **over,
    }
    return Action(**fields)


def act(r: ServerRules, w: Welcome, tick: int, payload, now: float = 0.0, **over) -> list:
    return r.receive_action(action(w, tick, payload, **over), now)


# ---------------------------------------------------------------------------- joining
def test_a_join_is_welcomed_with_a_slot_a_token_a_topic_and_the_world():
    r = make_rules()
    outs = r.receive_control(b"a", Join("alice"), 0.0)
    (w,) = sent(outs)
    assert (w.run, w.player, w.name, w.mode, w.ticks, w.players) == ("run1", 0, "alice", "strict", 1000, 2)
    assert w.token and w.topic and w.world["action_spec"] == SPEC
    assert changes(outs) == [(0, None, Status.JOINED)]


def test_a_retried_join_gets_the_same_welcome():
    r = make_rules()
    first = join(r, b"a", "alice")
    assert join(r, b"a", "alice") == first
    assert len(r.roster.players) == 1


def test_a_join_asking_for_a_free_slot_gets_it():
    r = make_rules(players=3)
    assert join(r, b"a", slot=2).player == 2
    assert join(r, b"b").player == 0


def test_a_join_when_every_slot_is_taken_is_refused_as_full():
    r = make_rules(players=1)
    join(r, b"a")
    outs = r.receive_control(b"b", Join("extra"), 0.0)
    (err,) = sent(outs)
    assert rejections(outs) == [Rejection.FULL]
    assert err.code == "full" and "larger --players" in err.text


def test_a_join_for_a_taken_slot_is_refused_as_slot_taken():
    r = make_rules(players=2)
    join(r, b"a", slot=1)
    (err,) = sent(r.receive_control(b"b", Join("b", slot=1), 0.0))
    assert err.code == "slot_taken" and "ask for another or none" in err.text


def test_a_join_for_a_slot_out_of_range_is_refused_as_slot_taken():
    r = make_rules(players=2)
    (err,) = sent(r.receive_control(b"b", Join("b", slot=7), 0.0))
    assert err.code == "slot_taken" and "0..1" in err.text


def test_a_join_after_the_run_started_is_refused_as_run_in_progress():
    r, _ = started(n=1)
    outs = r.receive_control(b"late", Join("late"), 0.0)
    (err,) = sent(outs)
    assert err.code == "run_in_progress" and "before it starts" in err.text
    assert rejections(outs) == [Rejection.RUN_IN_PROGRESS]


def test_a_retried_join_after_the_start_still_gets_its_welcome():
    r, (w, _) = started()
    assert join(r, b"id0") == w


def test_garbage_on_control_is_answered_with_what_was_wrong_and_what_to_do():
    r = make_rules()
    outs = r.receive_control(b"x", ProtocolError("malformed", "header is not valid msgpack"), 0.0)
    (err,) = sent(outs)
    assert isinstance(err, Error) and err.code == "malformed" and err.run == "run1"
    assert "could not decode your message" in err.text
    assert "header is not valid msgpack" in err.text and "PROTOCOL.md" in err.text
    assert rejections(outs) == [Rejection.MALFORMED]


def test_garbage_with_an_empty_reason_text_still_gets_a_useful_error():
    (err,) = sent(make_rules().receive_control(b"x", ProtocolError("malformed", ""), 0.0))
    assert "no detail" in err.text and "'kind'" in err.text


def test_a_message_of_the_wrong_kind_on_control_is_refused():
    r = make_rules()
    outs = r.receive_control(b"x", State("run1", 0), 0.0)
    (err,) = sent(outs)
    assert err.code == "wrong_kind" and "only join and leave" in err.text


# ---------------------------------------------------------------------------- readiness
def test_subscription_then_ready_proves_readiness():
    r = make_rules()
    w = join(r, b"a")
    assert changes(r.receive_subscription(w.topic, True, 0.0)) == []
    outs = r.receive_action(Ready(w.run, w.player, w.token), 0.0)
    assert changes(outs) == [(0, Status.JOINED, Status.READY)]


def test_ready_then_subscription_proves_readiness():
    r = make_rules()
    w = join(r, b"a")
    assert changes(r.receive_action(Ready(w.run, w.player, w.token), 0.0)) == []
    assert changes(r.receive_subscription(w.topic, True, 0.0)) == [(0, Status.JOINED, Status.READY)]


def test_a_ready_with_a_wrong_token_proves_nothing():
    r = make_rules()
    w = join(r, b"a")
    r.receive_subscription(w.topic, True, 0.0)
    outs = r.receive_action(Ready(w.run, w.player, "forged"), 0.0)
    assert rejections(outs) == [Rejection.BAD_TOKEN]
    assert r.roster.players[0].status is Status.JOINED


def test_a_subscription_to_an_unknown_topic_changes_nothing():
    r = make_rules()
    join(r, b"a")
    assert r.receive_subscription(b"", True, 0.0) == ()
    assert r.receive_subscription(b"tw.other.0", True, 0.0) == ()


# ---------------------------------------------------------------------------- the lobby
def test_the_lobby_starts_as_soon_as_every_slot_is_ready():
    r = make_rules(players=2)
    r.open_lobby(10.0)
    w0 = join(r, b"a")
    prove(r, w0)
    assert r.lobby(10.5) is Lobby.WAIT
    prove(r, join(r, b"b"))
    assert r.lobby(10.6) is Lobby.START


def test_starting_makes_the_ready_players_active():
    r = make_rules(players=1)
    prove(r, join(r, b"a"))
    outs = r.start(0.0)
    assert changes(outs) == [(0, Status.READY, Status.ACTIVE)] and r.running


def test_the_lobby_waits_until_its_timeout():
    r = make_rules(players=2, lobby_timeout_s=5)
    r.open_lobby(100.0)
    assert r.lobby(104.99) is Lobby.WAIT


def test_without_min_players_the_lobby_gives_up_at_its_timeout():
    r = make_rules(players=2, lobby_timeout_s=5)
    r.open_lobby(100.0)
    prove(r, join(r, b"a"))
    assert r.lobby(105.0) is Lobby.GIVE_UP


def test_min_players_starts_the_run_after_the_lobby_timeout():
    r = make_rules(players=3, min_players=2, lobby_timeout_s=5)
    r.open_lobby(0.0)
    prove(r, join(r, b"a"))
    prove(r, join(r, b"b"))
    assert r.lobby(4.9) is Lobby.WAIT
    assert r.lobby(5.0) is Lobby.START


def test_min_players_not_reached_gives_up_after_the_lobby_timeout():
    r = make_rules(players=3, min_players=2, lobby_timeout_s=5)
    r.open_lobby(0.0)
    prove(r, join(r, b"a"))
    assert r.lobby(5.0) is Lobby.GIVE_UP


def test_the_lobby_report_names_who_is_missing_and_what_to_do():
    r = make_rules(players=3, lobby_timeout_s=2)
    prove(r, join(r, b"a", "ok"))
    w = join(r, b"b", "halfway")
    r.receive_subscription(w.topic, True, 0.0)
    report = r.lobby_report()
    assert report.startswith("only 1 of 3 needed player(s) were ready after 2 s (address ipc:///tmp/x/run).")
    assert (
        "player 1 'halfway' joined but never proved its READY on the actions socket: can it "
        "reach ipc:///tmp/x/run.state and ipc:///tmp/x/run.actions?"
    ) in report
    assert "1 slot(s) were never joined: start more agents" in report
    assert "'ok'" not in report


def test_a_player_that_disconnects_in_the_lobby_frees_its_slot():
    r = make_rules(players=1)
    w = join(r, b"a")
    prove(r, w)
    outs = r.receive_subscription(w.topic, False, 0.0)
    assert changes(outs) == [(0, Status.READY, Status.DEAD)]
    assert r.roster.players == {} and join(r, b"b").player == 0


def test_a_player_that_leaves_in_the_lobby_frees_its_slot():
    r = make_rules(players=1)
    w = join(r, b"a")
    outs = r.receive_control(b"a", Leave(w.run, w.player, "bye"), 0.0)
    assert changes(outs) == [(0, Status.JOINED, Status.LEFT)]
    assert r.roster.players == {} and join(r, b"b").player == 0


def test_players_not_ready_at_the_start_stay_out_and_count_as_not_joined():
    r = make_rules(players=2, min_players=1, lobby_timeout_s=1)
    r.open_lobby(0.0)
    prove(r, join(r, b"a"))
    w1 = join(r, b"b")
    assert r.lobby(1.0) is Lobby.START
    r.start(0.0)
    assert r.roster.players[1].status is Status.JOINED
    r.begin_tick(0, 1.0)
    assert rejections(act(r, w1, 0, 1)) == [Rejection.UNKNOWN_PLAYER]
    r.close_tick(0.0)
    assert r.roster.players[1].stats()["not_joined"] == 1


# ---------------------------------------------------------------------------- actions
def test_an_action_for_the_open_tick_is_accepted():
    r, (w0, _) = started()
    r.begin_tick(0, now=5.0)
    assert list(act(r, w0, 0, 3, now=5.002)) == [ACCEPTED]
    assert r.barrier.close().response_s == {0: pytest.approx(0.002)}


def test_a_strict_tick_may_close_only_when_every_active_player_answered():
    r, (w0, w1) = started()
    r.begin_tick(0, now=0.0)
    act(r, w0, 0, 1)
    assert not r.may_close(1e9)
    act(r, w1, 0, 2)
    assert r.may_close(0.0)
    closed = r.close_tick(0.0)
    assert closed.actions == {0: 1, 1: 2} and closed.result.missing == frozenset()
    assert r.tick == 1


def test_a_deadline_tick_may_close_at_its_deadline():
    r, _ = started(mode="deadline", deadline_ms=50)
    r.begin_tick(0, now=10.0)
    assert not r.may_close(10.049) and r.may_close(10.05)
    assert r.close_tick(0.0).result.timed_out


def test_an_action_from_an_earlier_run_is_rejected_as_wrong_run():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    assert rejections(act(r, w0, 0, 1, run="old-run")) == [Rejection.WRONG_RUN]


def test_an_action_from_an_unknown_player_is_rejected_as_unknown_player():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    assert rejections(act(r, w0, 0, 1, player=7)) == [Rejection.UNKNOWN_PLAYER]


def test_an_action_with_another_players_token_is_rejected_as_bad_token():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    outs = act(r, w0, 0, 1, player=w1.player)
    assert rejections(outs) == [Rejection.BAD_TOKEN] and not sent(outs)


@pytest.mark.parametrize("token", ["é" * 16, "\u00ff", "токен"])
def test_a_token_that_is_not_ascii_is_a_bad_token_not_a_crash(token):
    # compare_digest raises TypeError on non-ASCII str: one such ACTION (or READY) from
    # anyone who can reach the actions socket used to end the server with exit 1
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    assert rejections(act(r, w0, 0, 1, token=token)) == [Rejection.BAD_TOKEN]
    assert rejections(r.receive_action(Ready(r.run_id, w0.player, token), 0.0)) == [Rejection.BAD_TOKEN]
    assert not r.from_player(action(w0, 0, 1, token=token), None)


def test_an_action_outside_the_spec_is_rejected_as_invalid_action():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    assert rejections(act(r, w0, 0, 99)) == [Rejection.INVALID_ACTION]


def test_an_action_for_a_closed_tick_is_rejected_as_stale_and_counted_late():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    act(r, w1, 0, 1)
    r.barrier.drop(0)
    r.close_tick(0.0)
    r.begin_tick(1, 0.0)
    assert rejections(act(r, w0, 0, 1)) == [Rejection.STALE]
    assert r.roster.players[0].late == 1


def test_a_closed_tick_names_the_late_arrivals_since_the_previous_close():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    act(r, w1, 0, 1)
    r.barrier.drop(0)
    assert r.close_tick(0.0).late == {}
    r.begin_tick(1, 0.0)
    act(r, w0, 0, 1)
    act(r, w0, 0, 2)  # a second stale one for the same missed tick is not late again
    act(r, w0, 1, 1)
    act(r, w1, 1, 1)
    assert r.close_tick(0.0).late == {0: 1} == {0: r.roster.players[0].late}
    r.begin_tick(2, 0.0)
    act(r, w0, 2, 1)
    act(r, w1, 2, 1)
    assert r.close_tick(0.0).late == {}  # counted once, at the tick it arrived in


def test_the_roster_version_moves_only_when_a_status_or_the_membership_changes():
    r = make_rules()
    versions = [r.roster.version]
    w0 = join(r, b"a")  # a new player
    versions.append(r.roster.version)
    prove(r, w0)  # joined -> ready
    versions.append(r.roster.version)
    assert versions == sorted(set(versions)), versions
    r2, (w1, w2) = started()
    before = r2.roster.version
    r2.begin_tick(0, 0.0)
    act(r2, w1, 0, 1)
    act(r2, w2, 0, 1)
    r2.close_tick(0.0)
    assert r2.roster.version == before  # a tick where nothing changed
    r2.receive_control(b"id0", Leave(w1.run, w1.player), 0.0)
    assert r2.roster.version > before  # active -> left


def test_an_action_for_a_tick_not_yet_published_is_rejected_as_future_tick():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    assert rejections(act(r, w0, 5, 1)) == [Rejection.FUTURE_TICK]


def test_a_second_action_for_the_same_tick_is_rejected_as_duplicate():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 1)
    assert rejections(act(r, w0, 0, 2)) == [Rejection.DUPLICATE]
    r.barrier.drop(1)
    assert r.close_tick(0.0).actions[0] == 1


def test_a_message_of_the_wrong_kind_on_the_actions_socket_is_rejected_and_not_answered():
    r, _ = started()
    outs = r.receive_action(State("run1", 0), 0.0)
    assert rejections(outs) == [Rejection.WRONG_KIND] and not sent(outs)


@pytest.mark.parametrize("reason", ["malformed", "oversized", "bad_dtype", "bad_shape", "bad_ext", "version"])
def test_an_undecodable_action_is_counted_under_the_codecs_reason_and_not_answered(reason):
    r, _ = started()
    outs = r.receive_action(ProtocolError(reason, "what the codec said"), 0.0)
    assert rejections(outs) == [Rejection(reason)] and not sent(outs)
    assert r.rejected == {Rejection(reason): 1}


def test_an_unknown_codec_reason_counts_as_malformed():
    r, _ = started()
    assert rejections(r.receive_action(ProtocolError("new_reason", "?"), 0.0)) == [Rejection.MALFORMED]


def test_an_invalid_action_is_told_to_the_agent_once_and_then_only_counted():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    (err,) = sent(act(r, w0, 0, 99))
    assert err.code == "invalid_action" and "is not an int in 0..4" in err.text
    assert "'n': 5" in err.text  # it quotes the action spec
    assert sent(act(r, w0, 0, 98)) == []
    assert r.rejected[Rejection.INVALID_ACTION] == 2


def test_an_invalid_action_releases_the_players_place_in_a_strict_tick():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 99)
    act(r, w1, 0, 1)
    assert r.may_close(0.0)
    closed = r.close_tick(0.0)
    assert closed.result.missing == {0} and closed.actions == {0: NOOP, 1: 1}


def test_a_corrected_action_after_a_rejected_one_for_the_same_tick_is_accepted():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 99)
    assert list(act(r, w0, 0, 3)) == [ACCEPTED]
    r.barrier.drop(1)
    assert r.close_tick(0.0).actions[0] == 3


def test_a_batch_is_checked_entry_by_entry():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    batch = Actions(
        "run1",
        0,
        1,
        [
            [w0.player, w0.token, 1],
            [w1.player, "forged", 1],
            "junk",
            [w1.player, w1.token],
            [w0.player, w0.token, 2],
            [w1.player, w1.token, 4],
        ],
    )
    outs = r.receive_action(batch, 0.0)
    assert outs.count(ACCEPTED) == 2 and r.barrier.close().actions == {0: 1, 1: 4}
    assert rejections(outs) == [
        Rejection.BAD_TOKEN,
        Rejection.MALFORMED,
        Rejection.MALFORMED,
        Rejection.DUPLICATE,
    ]


def test_rejections_are_counted_by_reason():
    r, (w0, _) = started()
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 1, run="x")
    act(r, w0, 0, 1, run="y")
    act(r, w0, 3, 1)
    assert r.rejected == {Rejection.WRONG_RUN: 2, Rejection.FUTURE_TICK: 1}


# ---------------------------------------------------------------------------- missing actions
def test_a_missing_action_is_replaced_by_the_noop():
    r, (w0, _) = started(mode="deadline")
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 4)
    assert r.close_tick(0.0).actions == {0: 4, 1: NOOP}


def test_on_missing_repeat_replays_the_players_last_action():
    r, (w0, w1) = started(mode="deadline", on_missing="repeat")
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 4)
    act(r, w1, 0, 2)
    r.close_tick(0.0)
    r.begin_tick(1, 1.0)
    act(r, w0, 1, 1)
    assert r.close_tick(0.0).actions == {0: 1, 1: 2}


def test_on_missing_repeat_uses_the_noop_before_a_first_action():
    r, (w0, _) = started(mode="deadline", on_missing="repeat")
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 4)
    assert r.close_tick(0.0).actions == {0: 4, 1: NOOP}


def test_on_missing_repeat_after_a_resume_repeats_the_action_from_before_the_restart():
    r = make_rules(players=3, mode="deadline", on_missing="repeat")
    r.resume_at(40, {0: 3, 1: 2})  # player 2 never answered before the restart
    r.open_lobby(0.0)
    ws = [join(r, f"id{i}".encode(), f"p{i}") for i in range(3)]
    for w in ws:
        prove(r, w)
    assert r.lobby(0.0) is Lobby.START
    r.start(0.0)
    r.begin_tick(40, 0.0)
    act(r, ws[0], 40, 4)
    assert r.close_tick(0.0).actions == {0: 4, 1: 2, 2: NOOP}
    r.begin_tick(41, 1.0)
    act(r, ws[1], 41, 1)
    assert r.close_tick(0.0).actions == {0: 4, 1: 1, 2: NOOP}  # answers replace the memory


def test_last_actions_remembered_after_players_joined_reach_them_too():
    r, _ = started(mode="deadline", on_missing="repeat")
    r.resume_at(7, {1: 3})
    r.begin_tick(7, 0.0)
    assert r.close_tick(0.0).actions == {0: NOOP, 1: 3}


# ---------------------------------------------------------------------------- strikes
def _miss_ticks(r: ServerRules, w_answering: Welcome, ticks: range) -> list:
    outs = []
    for tick in ticks:
        r.begin_tick(tick, float(tick))
        act(r, w_answering, tick, 0, now=float(tick))
        outs += r.close_tick(0.0).changes
    return outs


def test_strikes_make_a_player_inactive_in_deadline_mode():
    r, (w0, _) = started(mode="deadline", strikes=2)
    outs = _miss_ticks(r, w0, range(2))
    assert changes(outs) == [(1, Status.ACTIVE, Status.INACTIVE)]
    assert r.roster.awaited() == [0] and r.roster.accepting() == [0, 1]


def test_strict_mode_has_no_strikes():
    r, (w0, _) = started(mode="strict", strikes=1)
    for tick in range(3):
        r.begin_tick(tick, 0.0)
        act(r, w0, tick, 0)
        r.barrier.drop(1)
        assert r.close_tick(0.0).changes == []
    assert r.roster.players[1].status is Status.ACTIVE


def test_an_inactive_player_is_back_on_a_late_answer():
    r, (w0, w1) = started(mode="deadline", strikes=1)
    _miss_ticks(r, w0, range(1))
    r.begin_tick(1, 1.0)
    outs = act(r, w1, 0, 2, now=1.1)  # its answer to tick 0 arrives during tick 1
    assert rejections(outs) == [Rejection.STALE]
    assert changes(outs) == [(1, Status.INACTIVE, Status.ACTIVE)]
    assert r.roster.players[1].late == 1


def test_an_inactive_player_is_back_on_an_answer_in_time():
    r, (w0, w1) = started(mode="deadline", strikes=1)
    _miss_ticks(r, w0, range(1))
    r.begin_tick(1, 1.0)
    outs = act(r, w1, 1, 2, now=1.01)
    assert ACCEPTED in outs and changes(outs) == [(1, Status.INACTIVE, Status.ACTIVE)]
    act(r, w0, 1, 0, now=1.02)
    r.close_tick(0.0)
    assert r.roster.players[1].streak == 0 and r.roster.awaited() == [0, 1]


def test_when_every_player_is_inactive_a_tick_still_lasts_until_its_deadline_to_let_them_back():
    """Both inactive: the tick awaits nobody, yet it must not close at once (the loop would
    never read their answers and the run would race to its end): it lasts until its
    deadline or until each of them answered, and an answer in it makes that player active."""
    r, (w0, w1) = started(mode="deadline", deadline_ms=50, strikes=1)
    r.begin_tick(0, 0.0)
    assert r.may_close(0.05)
    assert changes(r.close_tick(0.0).changes) == [
        (0, Status.ACTIVE, Status.INACTIVE),
        (1, Status.ACTIVE, Status.INACTIVE),
    ]
    r.begin_tick(1, 1.0)
    assert r.roster.awaited() == [] and not r.may_close(1.0) and r.next_timeout(1.0) <= 0.05
    outs = act(r, w0, 1, 3, now=1.01)
    assert ACCEPTED in outs and changes(outs) == [(0, Status.INACTIVE, Status.ACTIVE)]
    assert not r.may_close(1.02) and r.may_close(1.05)
    closed = r.close_tick(0.0)
    assert closed.actions == {0: 3, 1: NOOP} and closed.result.missing == {1}
    assert r.roster.awaited() == [0]
    r.begin_tick(2, 2.0)  # someone is awaited again: the tick closes once it answered
    act(r, w0, 2, 1, now=2.001)
    assert r.may_close(2.001)


def test_a_stop_with_a_tick_open_drops_it_counted_for_nobody():
    """SIGTERM while player 1 has not answered yet: counting it missed (and stepping with its
    noop) would give a state no uninterrupted run reaches; the tick is dropped, as a crash
    drops it, and the run ends with the ticks done."""
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 1)
    act(r, w1, 0, 2)
    r.close_tick(0.0)
    r.begin_tick(1, 1.0)
    act(r, w0, 1, 3, now=1.01)
    assert not r.may_close(1.02)
    r.drop_tick(0.0)
    assert r.tick == 1 and not r.barrier.is_open
    for p in r.roster.summary():
        assert (p["answered"], p["missed"], p["late"]) == (1, 0, 0)
        assert p["answered"] + p["missed"] + p["dead"] + p["left"] + p["not_joined"] == r.tick
    (end, *_) = r.end(StopReason.STOPPED, [0, 0], 0.0)
    assert end.message.tick == 1


# ---------------------------------------------------------------------------- dead, left
def test_an_unsubscribe_marks_a_playing_player_dead_and_releases_its_place():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 1)
    outs = r.receive_subscription(w1.topic, False, 0.0)
    assert changes(outs) == [(1, Status.ACTIVE, Status.DEAD)]
    assert r.may_close(0.0) and r.close_tick(0.0).result.missing == {1}


def test_a_dead_player_is_active_again_when_it_resubscribes():
    r, (_, w1) = started()
    r.receive_subscription(w1.topic, False, 0.0)
    outs = r.receive_subscription(w1.topic, True, 0.0)
    assert changes(outs) == [(1, Status.DEAD, Status.ACTIVE)]
    assert r.roster.awaited() == [0, 1]


def test_an_unsubscribe_after_leave_changes_nothing():
    r, (w0, _) = started()
    r.receive_control(b"id0", Leave(w0.run, w0.player), 0.0)
    assert changes(r.receive_subscription(w0.topic, False, 0.0)) == []
    assert r.roster.players[0].status is Status.LEFT


def test_a_leave_during_the_run_stops_the_tick_waiting_for_the_player():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    act(r, w0, 0, 1)
    outs = r.receive_control(b"id1", Leave(w1.run, w1.player, "done"), 0.0)
    assert changes(outs) == [(1, Status.ACTIVE, Status.LEFT)]
    assert r.may_close(0.0) and r.close_tick(0.0).result.missing == {1}


def test_a_leave_from_a_peer_that_is_not_that_player_is_rejected():
    r, (w0, _) = started()
    outs = r.receive_control(b"id1", Leave(w0.run, w0.player), 0.0)
    assert rejections(outs) == [Rejection.UNKNOWN_PLAYER] and not sent(outs)
    assert r.roster.players[0].status is Status.ACTIVE


def test_nobody_is_playing_once_everyone_died_or_left():
    r, (w0, w1) = started()
    r.receive_control(b"id0", Leave(w0.run, w0.player), 0.0)
    assert r.anyone_playing()
    r.receive_subscription(w1.topic, False, 0.0)
    assert not r.anyone_playing()


# ------------------------------------------------------- nobody playing (a blip hits everyone)
GRACE = NOBODY_PLAYING_GRACE_S


def test_the_next_tick_plays_while_anyone_plays():
    r, (w0, _) = started()
    r.receive_control(b"id0", Leave(w0.run, w0.player), 0.0)
    assert r.next_tick(0.0) is NextTick.PLAY


def test_when_every_player_dies_at_once_the_run_waits_for_them_without_opening_a_tick():
    r, (w0, w1) = started()
    r.begin_tick(0, 0.0)
    r.receive_subscription(w0.topic, False, 0.0)  # one blip resets every agent's link
    r.receive_subscription(w1.topic, False, 0.0)
    assert r.may_close(0.0)
    r.close_tick(0.0)
    assert r.next_tick(10.0) is NextTick.WAIT
    assert r.next_tick(10.0 + GRACE / 2) is NextTick.WAIT
    assert r.next_timeout(10.0 + GRACE / 2) <= GRACE / 2  # the loop wakes up at the end
    r.receive_subscription(w1.topic, True, 0.0)  # libzmq reconnected one of them
    assert r.next_tick(10.0 + GRACE - 0.01) is NextTick.PLAY
    r.receive_subscription(w0.topic, True, 0.0)
    assert r.tick == 1 and r.roster.awaited() == [0, 1]


def test_nobody_back_within_the_grace_ends_the_run():
    r, (w0, w1) = started()
    r.receive_subscription(w0.topic, False, 0.0)
    r.receive_subscription(w1.topic, False, 0.0)
    assert r.next_tick(5.0) is NextTick.WAIT
    assert r.next_tick(5.0 + GRACE - 0.001) is NextTick.WAIT
    assert r.next_tick(5.0 + GRACE) is NextTick.GIVE_UP


def test_the_grace_counts_again_after_a_player_came_back_and_died_again():
    r, (w0, w1) = started()
    r.receive_subscription(w0.topic, False, 0.0)
    r.receive_subscription(w1.topic, False, 0.0)
    assert r.next_tick(0.0) is NextTick.WAIT
    r.receive_subscription(w0.topic, True, 0.0)
    assert r.next_tick(3.0) is NextTick.PLAY
    r.receive_subscription(w0.topic, False, 0.0)
    assert r.next_tick(GRACE + 1.0) is NextTick.WAIT  # a new wait, from 5 s
    assert r.next_tick(2 * GRACE + 1.0) is NextTick.GIVE_UP


def test_a_rejoin_during_the_wait_brings_the_run_back():
    r, (w0, w1) = started()
    r.receive_subscription(w0.topic, False, 0.0)
    r.receive_subscription(w1.topic, False, 0.0)
    assert r.next_tick(0.0) is NextTick.WAIT
    again = join(r, b"new1", "p1 again", slot=1)  # a restarted process takes slot 1 back
    assert r.next_tick(1.0) is NextTick.WAIT  # joined, not proven yet
    prove(r, again)
    assert r.next_tick(1.5) is NextTick.PLAY


def test_a_run_whose_players_all_left_ends_at_once():
    r, (w0, w1) = started()
    r.receive_control(b"id0", Leave(w0.run, w0.player), 0.0)
    r.receive_control(b"id1", Leave(w1.run, w1.player), 0.0)
    assert r.next_tick(0.0) is NextTick.GIVE_UP  # a LEAVE is final: nobody is coming back


def test_one_dead_player_among_the_left_is_waited_for():
    r, (w0, w1) = started()
    r.receive_control(b"id0", Leave(w0.run, w0.player), 0.0)
    r.receive_subscription(w1.topic, False, 0.0)
    assert r.next_tick(0.0) is NextTick.WAIT
    assert r.next_tick(GRACE) is NextTick.GIVE_UP


def test_the_ticks_not_played_while_waiting_are_counted_for_nobody():
    r, (w0, w1) = started(mode="deadline")
    for tick in range(4):
        if tick == 2:  # everyone dies between ticks 1 and 2, and is back after a wait
            r.receive_subscription(w0.topic, False, 0.0)
            r.receive_subscription(w1.topic, False, 0.0)
            assert r.next_tick(2.0) is NextTick.WAIT
            r.receive_subscription(w0.topic, True, 0.0)
            r.receive_subscription(w1.topic, True, 0.0)
        assert r.next_tick(float(tick) + 3) is NextTick.PLAY
        r.begin_tick(tick, float(tick) + 3)
        for w in (w0, w1):
            act(r, w, tick, 1, now=float(tick) + 3)
        r.close_tick(0.0)
    for p in r.roster.summary():
        assert (p["answered"], p["dead"], p["missed"]) == (4, 0, 0)


def test_every_tick_counts_once_per_player_as_answered_missed_dead_or_left():
    r, (w0, w1) = started(n=2, mode="deadline")
    for tick in range(10):
        if tick == 3:
            r.receive_subscription(w1.topic, False, 0.0)  # dies before tick 3 opens
        if tick == 6:
            r.receive_subscription(w1.topic, True, 0.0)  # back before tick 6
        if tick == 8:
            r.receive_control(b"id0", Leave(w0.run, w0.player), 0.0)
        r.begin_tick(tick, float(tick))
        if tick < 8:
            act(r, w0, tick, 1, now=float(tick))
        if tick in (0, 1):
            act(r, w1, tick, 1, now=float(tick))
        r.close_tick(0.0)
    s0, s1 = (r.roster.players[i].stats() for i in (0, 1))
    assert (s0["answered"], s0["missed"], s0["dead"], s0["left"]) == (8, 0, 0, 2)
    assert (s1["answered"], s1["missed"], s1["dead"], s1["left"]) == (2, 5, 3, 0)
    for s in (s0, s1):
        assert s["answered"] + s["missed"] + s["dead"] + s["left"] + s["not_joined"] == 10


# ---------------------------------------------------------------------------- heartbeat
def test_a_heartbeat_is_due_at_once_when_nothing_was_ever_published():
    r = make_rules(heartbeat_s=1.0)
    (out,) = r.heartbeat(0.0)
    assert out == Publish(Heartbeat("run1", 0))


def test_a_heartbeat_is_due_heartbeat_s_after_the_last_publish():
    r = make_rules(heartbeat_s=1.0)
    r.published(10.0)
    assert r.heartbeat(10.999) == ()
    assert r.heartbeat(11.0) == (Publish(Heartbeat("run1", 0)),)
    assert r.heartbeat(11.5) == ()  # the heartbeat itself counts as a publish


def test_next_timeout_is_the_nearest_of_heartbeat_and_lobby_end():
    r = make_rules(heartbeat_s=1.0, lobby_timeout_s=5)
    r.open_lobby(0.0)
    r.published(0.0)
    assert r.next_timeout(0.25) == pytest.approx(0.75)
    r.published(4.5)
    assert r.next_timeout(4.75) == pytest.approx(0.25)


def test_next_timeout_is_the_nearest_of_heartbeat_and_tick_deadline():
    r, _ = started(mode="deadline", deadline_ms=100, heartbeat_s=1.0)
    r.begin_tick(0, now=20.0)
    r.published(20.0)
    assert r.next_timeout(20.04) == pytest.approx(0.06)


# ---------------------------------------------------------------------------- the end
def test_end_is_published_and_sent_to_every_player():
    r, (w0, w1) = started()
    outs = r.end(StopReason.TICKS_DONE, [3, 4], 0.0)
    end = End("run1", 0, "ticks done", [3, 4])
    assert outs == [Publish(end), SendTo(b"id0", end), SendTo(b"id1", end)]


def test_stop_reasons_print_as_the_summary_strings():
    assert [str(s) for s in StopReason] == [
        "ticks done",
        "world done",
        "no players left",
        "not started",
        "lobby timeout",
        "stopped",
    ]
    assert f"{StopReason.WORLD_DONE}" == "world done" and StopReason.WORLD_DONE == "world done"


# ---------------------------------------------------------------------------- status table
@pytest.mark.parametrize(("status", "event"), sorted(TRANSITIONS))
def test_every_transition_in_the_table_is_legal(status, event):
    assert next_status(0, status, event) is TRANSITIONS[status, event]


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (Status.LEFT, PlayerEvent.START),
        (Status.ACTIVE, PlayerEvent.PROVEN),
        (Status.DEAD, PlayerEvent.STRUCK),
        (Status.INACTIVE, PlayerEvent.START),
        (Status.READY, PlayerEvent.STRUCK),
        (Status.LEFT, PlayerEvent.PROVEN),
    ],
)
def test_a_transition_not_in_the_table_raises(status, event):
    with pytest.raises(IllegalTransition, match="please report this as a bug"):
        next_status(3, status, event)


def test_the_roster_changes_status_only_through_the_table():
    r, _ = started()
    p = r.roster.players[0]
    with pytest.raises(IllegalTransition):
        r.roster.transition(p, PlayerEvent.PROVEN)
    assert p.status is Status.ACTIVE


def test_leaving_is_final():
    after_left = {e: s for (st, e), s in TRANSITIONS.items() if st is Status.LEFT}
    assert set(after_left.values()) == {Status.LEFT}


def test_the_welcome_describes_the_world_as_it_is_when_the_player_joins():
    world = {"size": 16}
    cfg = ServerConfig(bind="inproc://rules", players=2)
    r = ServerRules(cfg, "run1", describe=lambda: dict(world))
    world["size"] = 24  # e.g. World.reset grew the grid after the rules were made
    assert join(r, b"a").world == {"size": 24}


# ---------------------------------------------------------------------------- keys
def test_a_slot_is_bound_to_the_key_that_joined_it():
    r = make_rules(players=2)
    (w,) = sent(r.receive_control(b"a", Join("alice"), 0.0, key="alice"))
    assert r.roster.players[w.player].key == "alice"
    # bob has alice's token: his READY and ACTION are refused, hers are accepted
    assert rejections(r.receive_action(Ready(w.run, w.player, w.token), 0.0, "bob")) == [Rejection.WRONG_KEY]
    assert not r.roster.players[w.player].ready_sent
    r.receive_subscription(w.topic, True, 0.0)
    assert changes(r.receive_action(Ready(w.run, w.player, w.token), 0.0, "alice")) == [
        (w.player, Status.JOINED, Status.READY)
    ]
    r.start(0.0)
    r.begin_tick(0, 0.0)
    assert rejections(r.receive_action(action(w, 0, 1), 0.0, "bob")) == [Rejection.WRONG_KEY]
    assert rejections(r.receive_action(action(w, 0, 1), 0.0, None)) == [Rejection.WRONG_KEY]
    assert r.receive_action(action(w, 0, 1), 0.0, "alice") is ACCEPTED_ONLY
    assert r.roster.players[w.player].late == 0 and r.rejected[Rejection.WRONG_KEY] == 3


def test_a_join_on_an_identity_held_by_another_key_is_refused():
    r = make_rules(players=2)
    sent(r.receive_control(b"a", Join("alice"), 0.0, key="alice"))
    (err,) = sent(r.receive_control(b"a", Join("bob"), 0.0, key="bob"))
    assert isinstance(err, Error) and err.code == Rejection.WRONG_KEY.value
    assert len(r.roster.players) == 1


def test_failed_handshakes_are_counted_as_auth():
    r = make_rules()
    assert rejections(r.receive_auth_failure("HANDSHAKE_FAILED_AUTH on tcp://x", 0.0)) == [
        Rejection.AUTH_FAILED
    ]
    assert "auth" in Rejection.AUTH_FAILED.value and "auth" in Rejection.WRONG_KEY.value


def test_a_joiner_that_never_proves_readiness_loses_its_slot():
    r = make_rules(players=2, ready_timeout_s=5.0, heartbeat_s=60.0, lobby_timeout_s=600.0)
    r.open_lobby(0.0)
    w = join(r, b"squatter", now=100.0)
    r.heartbeat(103.0)
    assert r.release_unready(103.0) == [] and r.next_timeout(103.0) == pytest.approx(2.0)
    outs = r.release_unready(105.5)
    assert changes(outs) == [(w.player, Status.JOINED, Status.DEAD)]
    assert r.roster.players == {} and r.roster.by_topic(w.topic) is None
    ready = join(r, b"honest", now=106.0)
    prove(r, ready)
    assert r.release_unready(1000.0) == []  # a ready player keeps its slot


def test_the_allow_list_gives_a_key_its_fixed_slot_and_name_and_no_one_else_that_slot():
    r = ServerRules(ServerConfig(bind="inproc://rules", players=3), "run1", fixed_slots={"alice": 2})
    (w,) = sent(r.receive_control(b"m", Join("mallory", slot=2), 0.0, key="mallory"))
    assert isinstance(w, Error) and w.code == Rejection.SLOT_TAKEN.value
    bob = [sent(r.receive_control(f"b{i}".encode(), Join("bob"), 0.0, key="bob"))[0] for i in range(2)]
    assert [b.player for b in bob] == [0, 1]
    (a,) = sent(r.receive_control(b"a", Join("whatever", slot=0), 0.0, key="alice"))
    assert (a.player, a.name) == (2, "alice")
    with pytest.raises(ConfigError, match="slot 5"):
        ServerRules(ServerConfig(bind="inproc://rules", players=3), fixed_slots={"x": 5})


def test_the_lobby_report_for_a_wildcard_bind_names_addresses_agents_can_connect_to():
    cfg = ServerConfig(bind="tcp://0.0.0.0:5575", players=2, lobby_timeout_s=2)
    r = ServerRules(cfg, "run1", endpoints=derive("tcp://0.0.0.0:5575"))
    w = join(r, b"b", "halfway")
    r.receive_subscription(w.topic, True, 0.0)
    report = r.lobby_report()
    assert (
        "connect them to tcp://127.0.0.1:5575 (agents on other hosts: "
        "tcp://THIS-HOST'S-ADDRESS:5575)" in report
    )
    assert "reach tcp://127.0.0.1:5575 and tcp://127.0.0.1:5576?" in report
    assert "connect them to tcp://0.0.0.0" not in report
