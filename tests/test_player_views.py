"""Per-player views and spaces in the pure rules (server and agent): no sockets, no clocks.

A world with private views sends each playing player an OBSERVATION addressed to its control
identity; a terminated or truncated view takes that player out of the tick (counted
``done``); a described action space checks that player's actions.
"""

from __future__ import annotations

from tickwire.protocol import Action, Join, Observation, Ready, State, Welcome, derive
from tickwire.protocol.agent_rules import Act, AgentRules, Send
from tickwire.protocol.server_rules import ACCEPTED, Rejected, Rejection, SendTo, ServerRules
from tickwire.server.world_server.config import ServerConfig
from tickwire.server.worlds.world import PlayerView

ACT_SPACE = {"type": "discrete", "n": 3}
OBS_SPACE = {"type": "box", "dtype": "<f4", "shape": [2], "low": -1.0, "high": 1.0}


def server(players: int = 2) -> tuple[ServerRules, list[Welcome]]:
    """Rules of a private-view world with spaces; every player joined, proven, running."""
    cfg = ServerConfig(bind="inproc://views", players=players)
    r = ServerRules(cfg, "run1", private=True, spaces=lambda p: (OBS_SPACE, ACT_SPACE))
    welcomes = []
    for i in range(players):
        (w,) = [
            o.message
            for o in r.receive_control(f"id{i}".encode(), Join(f"p{i}"), 0.0)
            if isinstance(o, SendTo)
        ]
        r.receive_subscription(w.topic, True, 0.0)
        r.receive_action(Ready(w.run, w.player, w.token), now=0.0)
        welcomes.append(w)
    r.start(0.0)
    return r, welcomes


def views(done: set[int] = frozenset()):
    return lambda p: PlayerView([float(p), 0.5], reward=p + 0.25, terminated=p in done, info={"who": p})


def test_welcome_carries_private_and_the_players_spaces():
    _, (w0, w1) = server()
    assert w0.private and w1.private
    assert w0.observation_space == OBS_SPACE and w0.action_space == ACT_SPACE


def test_each_observation_is_sent_to_its_own_player_only():
    r, ws = server()
    outs = r.begin_tick(0, 0.0, views())
    assert all(isinstance(o, SendTo) for o in outs)
    by_identity = {o.identity: o.message for o in outs}
    assert set(by_identity) == {b"id0", b"id1"}
    for i, w in enumerate(ws):
        obs = by_identity[f"id{i}".encode()]
        assert isinstance(obs, Observation)
        assert (obs.player, obs.tick, obs.payload, obs.reward, obs.info) == (
            w.player,
            0,
            [float(i), 0.5],
            i + 0.25,
            {"who": i},
        )


def test_a_terminated_player_leaves_the_barrier_and_counts_done():
    r, (w0, w1) = server()
    r.begin_tick(0, 0.0, views(done={1}))
    assert r.receive_action(Action("run1", 0, 0, 1, w0.token, 2), 0.0) == (ACCEPTED,)
    assert r.may_close(0.0)  # player 1 is not waited for
    late = r.receive_action(Action("run1", 0, 1, 1, w1.token, 2), 0.0)
    assert [o.reason for o in late if isinstance(o, Rejected)] == [Rejection.UNKNOWN_PLAYER]
    closed = r.close_tick(0.0)
    assert set(closed.actions) == {0}
    r.begin_tick(1, 0.0, views())  # a new episode: it plays again
    assert not r.may_close(0.0)
    stats = {p["id"]: p for p in r.roster.summary()}
    assert stats[1]["done"] == 1 and stats[1]["missed"] == 0
    assert stats[0]["answered"] == 1 and stats[0]["done"] == 0


def test_accounting_identity_holds_with_done_ticks():
    r, (w0, w1) = server()
    for tick in range(6):
        r.begin_tick(tick, 0.0, views(done={1} if tick % 2 else set()))
        r.receive_action(Action("run1", tick, 0, tick + 1, w0.token, 1), 0.0)
        if tick % 2 == 0:
            r.receive_action(Action("run1", tick, 1, tick + 1, w1.token, 1), 0.0)
        r.close_tick(0.0)
    for p in r.roster.summary():
        assert p["answered"] + p["missed"] + p["dead"] + p["left"] + p["not_joined"] + p["done"] == 6


def test_an_action_outside_the_action_space_is_rejected_and_explained_once():
    r, (w0, _) = server()
    r.begin_tick(0, 0.0, views())
    outs = r.receive_action(Action("run1", 0, 0, 1, w0.token, 7), 0.0)
    assert [o.reason for o in outs if isinstance(o, Rejected)] == [Rejection.INVALID_ACTION]
    (error,) = [o.message for o in outs if isinstance(o, SendTo)]
    assert "0..2" in error.text and "action space" in error.text
    again = r.receive_action(Action("run1", 0, 0, 2, w0.token, 1.5), 0.0)
    assert not [o for o in again if isinstance(o, SendTo)]  # told once


def test_worlds_without_views_send_no_observation():
    cfg = ServerConfig(bind="inproc://plain", players=1)
    r = ServerRules(cfg, "run1")
    assert r.begin_tick(0, 0.0) == ()


# ---------------------------------------------------------------------------- agent side
EPS = derive("tcp://127.0.0.1:5555")


def agent(n: int = 1) -> AgentRules:
    a = AgentRules([f"p{i}" for i in range(n)], EPS, now=0.0)
    for i in range(n):
        a.control_received(
            i,
            Welcome(
                run="run1",
                player=i,
                name=f"p{i}",
                seed=1,
                token=f"t{i}",
                topic=b"t",
                mode="strict",
                deadline_ms=None,
                ticks=9,
                players=n,
                private=True,
            ),
            0.0,
        )
    return a


def obs(player: int, tick: int, **kw) -> Observation:
    return Observation("run1", tick, player, [player, tick], **kw)


def test_the_agent_acts_only_once_state_and_its_observation_are_in():
    a = agent()
    assert a.states_received([State("run1", 0, "shared")], 1.0) == []
    (act,) = a.control_received(0, obs(0, 0, reward=1.5), 1.0)
    assert isinstance(act, Act) and act.state.tick == 0
    assert act.observations[0].payload == [0, 0] and act.observations[0].reward == 1.5


def test_an_observation_before_its_state_waits_for_the_state():
    a = agent()
    assert a.control_received(0, obs(0, 0), 1.0) == []
    (act,) = a.states_received([State("run1", 0, None)], 1.0)
    assert act.observations[0].tick == 0


def test_a_process_hosting_two_waits_for_both_observations():
    a = agent(2)
    a.states_received([State("run1", 0, None)], 1.0)
    assert a.control_received(0, obs(0, 0), 1.0) == []
    (act,) = a.control_received(1, obs(1, 0), 1.0)
    assert [o.player for o in act.observations] == [0, 1]


def test_only_the_acting_players_are_sent_and_counted():
    a = agent(2)
    send = a.acted(0, [4], acting=[1])
    assert isinstance(send, Send) and send.message.actions == [[1, "t1", 4]]
    assert [r.ticks for r in a.results] == [0, 1]
    assert a.acted(1, [], acting=[]) is None


def test_an_observation_for_another_player_is_ignored():
    a = agent()
    a.states_received([State("run1", 0, None)], 1.0)
    assert a.control_received(0, obs(3, 0), 1.0) == []


# ---------------------------------------------------------------------------- command line
def test_a_world_with_its_own_player_count_sets_agents_and_players_unless_given():
    from tickwire import options
    from tickwire.cli import _world_defaults

    class Sized(PrivateWorldStub):
        default_players = 3

    for command, key in (("run", "agents"), ("server", "players")):
        values = options.resolve({}, command, environ={})
        values["world"] = "pettingzoo:x"
        assert _world_defaults(values, command, set(), Sized())[key] == 3
        given = _world_defaults({**values, key: 5}, command, {key}, Sized())
        assert given[key] == 5
    run_values = _world_defaults(
        {**options.resolve({}, "run", environ={}), "world": "pettingzoo:x"}, "run", set(), Sized()
    )
    assert run_values["agent"] == options.SAMPLING_AGENT


class PrivateWorldStub:
    default_players = None
