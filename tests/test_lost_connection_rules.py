"""Which actions messages mark their connection as a player's (pure: no sockets, no clocks).

Only a connection that carried such a message is reported when it goes away (republish,
``dropped_connection``); the sockets side is tested from outside in test_sockets.py."""

from __future__ import annotations

from test_server_rules import action, make_rules, started
from tickwire.protocol import Actions, Join, ProtocolError, Ready, Welcome
from tickwire.protocol.server_rules import SendTo


def test_a_ready_or_action_with_this_run_a_player_and_its_token_is_from_a_player():
    r, (w0, w1) = started()
    assert r.from_player(Ready(w0.run, w0.player, w0.token))
    assert r.from_player(action(w1, 0, 1))
    assert r.from_player(action(w1, 7, "not even a valid payload"))  # the sender is what counts


def test_a_wrong_run_player_or_token_is_not_and_nothing_is_counted():
    r, (w0, _) = started()
    for msg in (
        action(w0, 0, 1, run="other"),
        action(w0, 0, 1, player=9),
        action(w0, 0, 1, token="0" * len(w0.token)),
        action(w0, 0, 1, token="é"),
        Ready(w0.run, w0.player, "x"),
        ProtocolError("malformed", "junk"),
    ):
        assert not r.from_player(msg), msg
    assert not r.rejected  # a question, not a rejection


def test_a_batch_is_from_a_player_if_one_entry_is():
    r, (w0, w1) = started()
    assert r.from_player(Actions(w0.run, 0, 1, [[5, "x", 0], [w1.player, w1.token, 1]]))
    assert not r.from_player(Actions(w0.run, 0, 1, []))
    assert not r.from_player(
        Actions(w0.run, 0, 1, [[w0.player, "x", 0], "junk", [[1], "t", 0], [w0.player, 5, 0]])
    )
    assert not r.from_player(Actions("other", 0, 1, [[w1.player, w1.token, 1]]))


def test_with_keys_the_players_key_must_match():
    r = make_rules(players=1)
    r.open_lobby(0.0)
    (w,) = [o.message for o in r.receive_control(b"id", Join("k"), 0.0, key="alice") if isinstance(o, SendTo)]
    assert isinstance(w, Welcome)
    assert r.from_player(Ready(w.run, w.player, w.token), "alice")
    assert not r.from_player(Ready(w.run, w.player, w.token), "bob")
    assert not r.from_player(Ready(w.run, w.player, w.token))
