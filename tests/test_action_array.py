"""ACTION_ARRAY (columnar actions) and BatchAgent: codec, rules, vectorised checks, a real run
with batch hosts, and hostile columnar messages on a real server's actions socket."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.raw_player import RawPlayer
from support.rules_pair import RulesPair
from support.servers import start_server
from support.summaries import accounted
from tickwire.agents.batch import BatchAgent, check_seats
from tickwire.protocol import ActionArray, Lobby, Rejection, decode, encode
from tickwire.protocol.spaces import SpaceError, batch_checker
from tickwire.server.worlds.grid_world import GridWorld
from tickwire.server.worlds.world import ActionBatch, InvalidAction

RUN = ["-m", "tickwire.server", "run"]
DISCRETE5 = {"type": "discrete", "n": 5}


# ---------------------------------------------------------------------------- codec
@pytest.mark.parametrize("players", [np.array([3, 0, 7], np.int64), [3, 0, 7]])
def test_codec_an_action_array_round_trips_with_its_columns(players):
    msg = ActionArray(
        "r1", 12, 4, players, ["aa", "bb", "cc"], np.array([[0.5, 1], [2, 3], [4, 5]], np.float32)
    )
    back = decode(encode(msg))
    assert isinstance(back, ActionArray) and (back.run, back.tick, back.seq) == ("r1", 12, 4)
    np.testing.assert_array_equal(back.players, players)
    assert back.tokens == ["aa", "bb", "cc"]
    assert back.actions.dtype == np.float32 and back.actions.shape == (3, 2)
    np.testing.assert_array_equal(back.actions, msg.actions)


# ---------------------------------------------------------------------------- vectorised checks
def test_batch_checker_accepts_exactly_what_the_per_action_checker_accepts():
    check = batch_checker({"type": "discrete", "n": 3, "start": 1})
    values, ok = check(np.array([0, 1, 3, 4]))
    assert ok.tolist() == [False, True, True, False] and values.dtype == np.int64
    with pytest.raises(SpaceError, match="dtype float64"):
        check(np.array([1.0, 2.0]))
    with pytest.raises(SpaceError, match="dtype bool"):
        check(np.array([True]))
    box = batch_checker({"type": "box", "dtype": "<f4", "shape": [2], "low": -1, "high": [1, 2]})
    values, ok = box(np.array([[0, 2], [0, 2.5], [-1.5, 0]]))
    assert ok.tolist() == [True, False, False] and values.dtype == np.float32
    with pytest.raises(SpaceError, match=r"expected \[K, 2\]"):
        box(np.zeros((3, 3)))
    assert batch_checker({"type": "tuple", "spaces": [DISCRETE5]}) is None


# ---------------------------------------------------------------------------- rules
def discrete(action):
    if type(action) is not int or not 0 <= action < 5:
        raise InvalidAction(f"action {action!r} is not an int in 0..4")
    return action


def batch_host(k: int = 4) -> tuple[RulesPair, object]:
    pair = RulesPair(players=k, rules={"validate": discrete, "batch_validate": batch_checker(DISCRETE5)})
    host = pair.add_agent(*(f"s{i}" for i in range(k)))  # no policy: acts sent by hand
    pair.pump()
    assert host.players == list(range(k)) and pair.start() is Lobby.START
    assert all(w.action_array for w in host.welcomes)
    return pair, host


def send_array(pair: RulesPair, host, tick: int, actions) -> None:
    host.pending = None
    send = host.rules.acted_array(tick, np.asarray(actions))
    assert isinstance(send.message, ActionArray)
    host.carry_out([send])
    pair.pump()


def test_rules_a_batch_host_acts_for_its_seats_in_one_columnar_message():
    pair, host = batch_host()
    for tick in range(3):
        pair.begin_tick()
        send_array(pair, host, tick, [(tick + i) % 5 for i in range(4)])
        closed = pair.close_tick()
        assert closed is not None and closed.result.missing == set()
        assert closed.actions == {i: (tick + i) % 5 for i in range(4)}
    assert pair.rejected == []
    assert [p["answered"] for p in pair.server.roster.summary()] == [3, 3, 3, 3]


def test_rules_an_invalid_entry_rejects_that_players_action_alone():
    pair, host = batch_host()
    pair.begin_tick()
    send_array(pair, host, 0, [1, 2, 9, 3])  # player 2: out of range
    closed = pair.close_tick()  # the tick does not wait for player 2: it answered, badly
    assert closed is not None and closed.result.missing == {2}
    assert {p: a for p, a in closed.actions.items() if p != 2} == {0: 1, 1: 2, 3: 3}
    assert [(r.reason, r.player) for r in pair.rejected] == [(Rejection.INVALID_ACTION, 2)]
    assert pair.server.rejected == {Rejection.INVALID_ACTION: 1}


def test_rules_a_wrong_dtype_rejects_every_entry_as_invalid_and_a_resent_tick_is_a_duplicate():
    pair, host = batch_host(3)
    pair.begin_tick()
    send_array(pair, host, 0, [0.5, 1.0, 2.0])
    assert [r.reason for r in pair.rejected] == [Rejection.INVALID_ACTION] * 3
    closed = pair.close_tick()
    assert closed is not None and closed.result.missing == {0, 1, 2}
    pair.begin_tick()
    send_array(pair, host, 1, [1, 1, 1])
    send_array(pair, host, 1, [2, 2, 2])  # a second batch for the same tick
    closed = pair.close_tick()
    assert closed.actions == {0: 1, 1: 1, 2: 1}
    assert [r.reason for r in pair.rejected[3:]] == [Rejection.DUPLICATE] * 3


def test_rules_foreign_players_and_bad_tokens_are_rejected_per_entry_and_the_rest_accepted():
    pair, host = batch_host(3)
    pair.begin_tick()
    w = host.welcomes
    forged = ActionArray(
        w[0].run,
        0,
        9,
        np.array([0, 1, 7]),
        [w[0].token, "0" * 16, "x"],
        np.array([4, 4, 4]),
    )
    outs = pair.server.receive_action(decode(encode(forged)), pair.now)
    reasons = sorted((o.reason.value, o.player) for o in outs if hasattr(o, "reason"))
    assert reasons == [("bad_token", 1), ("unknown_player", None)]
    send_array(pair, host, 0, [1, 1, 1])  # the honest batch: 0 already answered (its token was right)
    closed = pair.close_tick()
    assert closed.actions == {0: 4, 1: 1, 2: 1}
    assert pair.rejected[-1].reason is Rejection.DUPLICATE and pair.rejected[-1].player == 0


@pytest.mark.parametrize(
    "players, tokens, actions, why",
    [
        (np.array([0, 1]), ["a"], np.array([1, 1]), "one length K"),
        (np.array([0, 1]), ["a", "b"], np.array([1]), "one length K"),
        (np.array([0.0, 1.0]), ["a", "b"], np.array([1, 1]), "1-D int array"),
        ("01", ["a", "b"], np.array([1, 1]), "list or array of ints"),
        (np.zeros(0, np.int64), [], np.zeros(0), "one length K"),
        (list(range(50)), ["t"] * 50, np.ones(50, np.int64), "run of 3 players"),
    ],
)
def test_rules_a_malformed_action_array_is_one_malformed_rejection(players, tokens, actions, why):
    pair, host = batch_host(3)
    pair.begin_tick()
    outs = pair.server.receive_action(
        ActionArray(host.welcomes[0].run, 0, 1, players, tokens, actions), pair.now
    )
    assert [(o.reason, why in o.text) for o in outs] == [(Rejection.MALFORMED, True)], outs


def test_rules_an_older_server_is_sent_actions_entries_instead():
    pair, host = batch_host(2)
    host.rules.welcomes = [w.__class__(**{**w.__dict__, "action_array": False}) for w in host.rules.welcomes]
    pair.begin_tick()
    send = host.rules.acted_array(0, np.array([3, 4]))
    assert send.message.KIND == "actions" and send.message.actions[1][2] == 4
    host.carry_out([send])
    pair.pump()
    assert pair.close_tick().actions == {0: 3, 1: 4}


# ---------------------------------------------------------------------------- world
def test_grid_world_steps_the_same_on_an_action_batch_as_on_the_dict():
    world = GridWorld()
    actions = {i: (i * 7) % 5 for i in range(40) if i % 3}
    by_dict = world.step(world.reset(3, 40), actions)  # each from its own reset: the rng moves
    by_batch = world.step(world.reset(3, 40), ActionBatch.of(actions))
    for key in ("grid", "positions", "scores"):
        np.testing.assert_array_equal(by_dict[key], by_batch[key])
    assert ActionBatch.of({2: 1, 0: 4}).to_dict() == {0: 4, 2: 1}


def test_grid_world_steps_as_its_rules_say_player_by_player():
    """GridWorld.step against the rules written out per player (move in id order, the
    lowest id on a resource cell collects it, as many resources respawn): every player
    answering, and some missing, over many ticks."""
    from tickwire.server.worlds.grid_world import MOVES

    def by_the_rules(world, state, actions):
        grid, pos, scores = state["grid"].copy(), state["positions"].copy(), state["scores"].copy()
        for pid in sorted(actions):
            pos[pid] = np.clip(pos[pid] + MOVES[actions[pid]], 0, world.size - 1)
        collected = 0
        for pid in sorted(actions):
            r, c = pos[pid]
            if grid[r, c]:
                collected, grid[r, c] = collected + int(grid[r, c]), 0
                scores[pid] += 1
        if collected:
            grid.flat[state["rng"].choice(np.flatnonzero(grid == 0), size=collected, replace=False)] = 1
        return {"grid": grid, "positions": pos, "scores": scores}

    world, rules = GridWorld(), GridWorld()
    state, expected = world.reset(5, 60), rules.reset(5, 60)
    rng = np.random.default_rng(0)
    for tick in range(200):
        ids = range(60) if tick % 3 else sorted(rng.choice(60, size=int(rng.integers(1, 60)), replace=False))
        actions = {int(i): int(rng.integers(0, 5)) for i in ids}
        state = world.step(state, ActionBatch.of(actions))
        expected = {**expected, **by_the_rules(rules, expected, actions)}
        for key in ("grid", "positions", "scores"):
            np.testing.assert_array_equal(state[key], expected[key], err_msg=f"{key} at tick {tick}")
    assert state["scores"].sum() > 0


# ---------------------------------------------------------------------------- BatchAgent set-up
def test_seats_with_different_action_spaces_or_unstackable_private_views_are_refused_at_setup():
    from tickwire.protocol import Welcome

    def welcome(action, obs=None, private=False):
        return Welcome("r", 0, "n", 0, "t", b"x", "strict", None, 1, 2, {}, private, obs, action)

    with pytest.raises(ValueError, match="different action spaces.*per-seat tickwire.Agent"):
        check_seats(BatchAgent(), [welcome(DISCRETE5), welcome({"type": "discrete", "n": 3})])
    dict_obs = {"type": "dict", "spaces": {"a": DISCRETE5}}
    with pytest.raises(ValueError, match="private view.*per-seat tickwire.Agent"):
        check_seats(BatchAgent(), [welcome(DISCRETE5, dict_obs, True)] * 2)
    check_seats(BatchAgent(), [welcome(DISCRETE5, DISCRETE5, True)] * 2)  # stackable: fine


# ---------------------------------------------------------------------------- real processes
def test_end_to_end_batch_hosts_play_every_tick_and_give_the_per_seat_state(procs):
    runs = {
        agent: procs(
            [
                *RUN,
                "--agents",
                "6",
                "--per-process",
                "3",
                "--ticks",
                "60",
                "--seed",
                "5",
                "--agent",
                f"tickwire.bench:{agent}",
                "--json",
            ],
            name=agent,
        ).json(timeout=180)
        for agent in ("BenchBatchAgent", "BenchAgent")
    }
    s = runs["BenchBatchAgent"]
    assert s["outcome"] == "ok" and s["ticks"] == 60 and len(s["players"]) == 6
    for p in s["players"]:
        assert accounted(p) == 60 and (p["answered"], p["missed"], p["dead"]) == (60, 0, 0), p
    assert s["rejected"] == {}
    assert s["state_hash"] == runs["BenchAgent"]["state_hash"]


def test_attack_hostile_action_arrays_are_rejected_counted_and_the_run_goes_on(procs, tmp_path, zctx):
    ticks = 5
    server, eps, _ = start_server(procs, tmp_path, "--players", "2", "--ticks", str(ticks))
    a, b = RawPlayer(zctx, eps["base"], "a"), RawPlayer(zctx, eps["base"], "b")
    wa, wb = a.join(), b.join()
    run, ids, tokens = wa.run, np.array([wa.player, wb.player]), [wa.token, wb.token]
    hostile = [
        ActionArray(run, 0, 1, ids, tokens[:1], np.array([1, 1])),  # wrong lengths
        ActionArray(run, 0, 1, ids.astype(np.float64), tokens, np.array([1, 1])),  # players not ints
        ActionArray(run, 0, 1, np.array([5, 6]), tokens, np.array([1, 1])),  # foreign players
        ActionArray(run, 0, 1, ids, ["f" * 16, "0" * 16], np.array([1, 1])),  # bad tokens
        ActionArray(run, 0, 1, ids, ["é", 3], np.array([1, 1])),  # tokens that are not ASCII strings
        ActionArray(run, 0, 1, np.arange(20_000), ["t"] * 10, np.zeros(3)),  # long and inconsistent
        ActionArray("other", 0, 1, ids, tokens, np.array([1, 1])),  # another run
    ]
    for tick in range(ticks):
        state = a.next_state()
        b.next_state()
        assert state.KIND == "state" and state.tick == tick
        for msg in hostile:
            a.push.send_multipart(
                encode(ActionArray(msg.run, tick, msg.seq, msg.players, msg.tokens, msg.actions))
            )
        a.push.send_multipart(encode(ActionArray(run, tick, tick + 2, ids, tokens, np.array([tick % 5, 1]))))
    assert a.next_state().KIND == "end"
    s = server.json(timeout=60)
    assert s["ticks"] == ticks and s["reason"] == "ticks done"
    for p in s["players"]:
        assert (p["answered"], p["missed"]) == (ticks, 0) and accounted(p) == ticks, p
    r = s["rejected"]
    assert r.get("malformed") == 3 * ticks, r
    assert r.get("unknown_player") == 2 * ticks and r.get("bad_token") == 4 * ticks, r
    assert r.get("wrong_run") == ticks and "invalid_action" not in r, r


# ---------------------------------------------------------------------------- barrier
def test_barrier_offer_batch_gives_each_entry_what_offer_would():
    from tickwire.protocol.barrier import Offer, TickBarrier

    b = TickBarrier()
    b.begin(0, [0, 1, 2, 3], [0, 1, 2, 3], now=0.0)
    assert b.offer_batch([0, 1], 0, ["a", "b"], now=0.5) == []  # the set-algebra path
    assert b.offer_batch([2, 1, 9, 2], 0, ["c", "x", "y", "z"], now=0.75) == [
        (1, Offer.DUPLICATE),
        (9, Offer.UNKNOWN),
        (2, Offer.DUPLICATE),  # a repeated id within the batch: the first one counts
    ]
    assert b.offer_batch([3], 1, ["f"], now=1.0) == [(3, Offer.FUTURE)]
    assert b.waiting_for == {3}
    result = b.close()
    assert result.actions == {0: "a", 1: "b", 2: "c"} and result.missing == {3}
    assert result.response_s == {0: 0.5, 1: 0.5, 2: 0.75}
    assert b.offer_batch([3], 0, ["g"], now=2.0) == [(3, Offer.STALE)]


def test_one_process_may_host_more_players_than_libzmqs_default_socket_count(tmp_path):
    from tickwire.agents.runtime import AgentSockets

    sockets = AgentSockets(f"ipc://{tmp_path}/run", 1100)  # 1,100 DEALERs + SUB + PUSH
    try:
        assert len(sockets.controls) == 1100 and sockets.ctx.max_sockets >= 1108
    finally:
        sockets.close()


def test_end_to_end_private_views_are_stacked_for_a_batch_agent_and_done_seats_left_out(procs):
    s = procs(
        [
            *RUN,
            "-q",
            "--json",
            "--world",
            "support.batch_worlds:SameSpaceCounter",
            "--agents",
            "3",
            "--per-process",
            "3",
            "--ticks",
            "20",
            "--agent",
            "support.batch_worlds:CounterBatch",
        ],
        name="private-batch",
    ).json(120)
    by_id = {p["id"]: p for p in s["players"]}
    assert by_id[0]["done"] == 4 and by_id[0]["answered"] == 16  # out on ticks 4, 9, 14, 19
    assert by_id[1]["answered"] == by_id[2]["answered"] == 20
    assert all(accounted(p) == 20 for p in s["players"]) and s["rejected"] == {}


def test_end_to_end_seats_whose_private_views_do_not_stack_stop_at_setup_naming_agent(procs):
    run = procs(
        [
            *RUN,
            "-q",
            "--json",
            "--world",
            "support.marl_worlds:PrivateCounter",
            "--agents",
            "2",
            "--per-process",
            "2",
            "--ticks",
            "5",
            "--agent",
            "support.batch_worlds:CounterBatch",
        ],
        name="unstackable",
    )
    assert run.wait(120) != 0
    s = json.loads(run.stdout)
    assert s["outcome"] == "players_crashed" and s["ticks"] == 0
    assert "do not stack into one array" in run.stderr and "per-seat tickwire.Agent" in run.stderr


def test_tickwire_agent_count_hosts_a_batch_agent_for_its_seats(procs, tmp_path):
    server, eps, _ = start_server(procs, tmp_path, "--players", "3", "--ticks", "20")
    agent = procs(
        [
            "-m",
            "tickwire",
            "agent",
            "--connect",
            eps["base"],
            "--count",
            "3",
            "--name",
            "swarm",
            "--agent",
            "tickwire.bench:BenchBatchAgent",
            "--json",
        ],
        name="swarm",
    )
    a, s = agent.json(60), server.json(60)
    assert [r["name"] for r in a["agents"]] == ["swarm-0", "swarm-1", "swarm-2"]
    assert sorted(p["name"] for p in s["players"]) == ["swarm-0", "swarm-1", "swarm-2"]
    assert all(p["answered"] == 20 for p in s["players"]) and s["rejected"] == {}
