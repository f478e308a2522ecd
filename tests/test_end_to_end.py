"""Server and agents as real processes over real sockets; every wait bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

import pytest
import zmq
from support.events import event, read_events, wait_event
from support.paths import SUPPORT
from support.processes import alive, children_of
from support.raw_player import RawPlayer
from support.summaries import accounted, player
from tickwire.protocol import Actions, End, Error, Join, State, decode, derive, encode

RUN = ["-m", "tickwire.server", "run"]


def _all_answered(summary: dict, ticks: int, n: int) -> None:
    assert summary["ticks"] == ticks and len(summary["players"]) == n
    for p in summary["players"]:
        assert (p["answered"], p["missed"], p["late"], p["dead"]) == (ticks, 0, 0, 0), p
    assert summary["rejected"] == {}


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_four_agents_answer_every_tick_in_strict_mode(procs, transport):
    run = procs([*RUN, "--agents", "4", "--ticks", "200", "--transport", transport, "--json"])
    s = run.json()
    _all_answered(s, 200, 4)
    assert s["reason"] == "ticks done" and len(s["state_hash"]) == 64
    assert s["ticks_per_s"] > 0 and set(s) >= {"elapsed_s", "players", "rejected"}


def test_max_rss_is_the_servers_own_not_its_big_parents(procs):
    # Linux keeps getrusage's ru_maxrss across execve: a run started from a process holding
    # 400 MB reported 400+ MB; the summary reads VmHWM, which execve resets
    ballast = bytearray(400 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: resident, not virtual
    s = procs([*RUN, "--agents", "1", "--ticks", "5", "--json"]).json()
    assert 0 < s["max_rss_mb"] < 250, s["max_rss_mb"]
    del ballast


def test_human_summary_and_progress_line(procs):
    run = procs([*RUN, "--agents", "2", "--ticks", "50"])
    assert run.wait(60) == 0
    assert "50 ticks in" in run.stdout and "state hash" in run.stdout
    assert "tick 50/50" in run.stderr  # the progress line (stderr, not stdout)


def test_thirty_two_agents_joining_at_once_all_see_tick_zero(procs):
    # Deadline mode turns a lost tick 0 into a counted miss instead of a hang.
    run = procs(
        [
            *RUN,
            "--agents",
            "32",
            "--per-process",
            "1",
            "--ticks",
            "20",
            "--mode",
            "deadline",
            "--deadline-ms",
            "5000",
            "--json",
        ]
    )
    s = run.json(timeout=180)
    _all_answered(s, 20, 32)


def test_same_seed_gives_same_state_hash_and_other_seed_does_not(procs):
    hashes = []
    for seed, agent in ((7, "random"), (7, "random"), (8, "random"), (7, "greedy")):
        spec = f"tickwire.agents.examples.{agent}_agent:{agent.title()}Agent"
        hashes.append(
            procs(
                [*RUN, "--agents", "3", "--ticks", "150", "--seed", str(seed), "--agent", spec, "--json"]
            ).json()["state_hash"]
        )
    assert hashes[0] == hashes[1]
    assert len({hashes[0], hashes[2], hashes[3]}) == 3


def test_server_and_agents_started_separately_over_tcp(procs, tmp_path):
    events = tmp_path / "events.jsonl"
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            "tcp://127.0.0.1:0",
            "--players",
            "3",
            "--ticks",
            "300",
            "--json",
            "--events",
            str(events),
        ],
        name="server",
    )
    base = wait_event(events, event("listening"), server)["base"]
    assert base.startswith("tcp://127.0.0.1:") and not base.endswith(":0")
    agents = [
        procs(
            [
                "-m",
                "tickwire.server",
                "agent",
                "--connect",
                base,
                "--agent",
                "tickwire.agents.examples.greedy_agent:GreedyAgent",
            ],
            name=f"agent{i}",
        )
        for i in range(3)
    ]
    _all_answered(server.json(), 300, 3)
    for a in agents:
        assert a.wait(15) == 0, a.stderr


def _slow_pair_over_tcp(procs, events, *flags: str) -> tuple:
    """A server for 2 players over TCP (``flags`` added) and two agents taking 50 ms a tick
    (the run outlasts a cut), once the run started: (server, its base port)."""
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            "tcp://127.0.0.1:0",
            "--players",
            "2",
            "--json",
            "--events",
            str(events),
            *flags,
        ],
        name="server",
    )
    base = wait_event(events, event("listening"), server)["base"]
    for i in range(2):
        procs(
            [
                "-m",
                "tickwire.agents",
                "--connect",
                base,
                "--name",
                f"a{i}",
                "--agent",
                "tickwire.agents.examples.slow_agent:SlowAgent",
            ],
            name=f"a{i}",
            env={"TICKWIRE_SLOW_MS": "50"},
        )
    wait_event(events, event("started"), server)
    return server, int(base.rpartition(":")[2])


def _reset_connections(port_filter: str) -> None:
    """Reset the established TCP connections ``port_filter`` selects, from outside (the
    kernel resets them, as a NAT or a firewall would; libzmq reconnects)."""
    cut = subprocess.run(
        ["ss", "-K", "-tn", "state", "established", f"( {port_filter} )"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert cut.returncode == 0, cut.stderr


@pytest.mark.skipif(not shutil.which("ss"), reason="needs ss (iproute2) to cut connections")
def test_agents_whose_actions_connections_are_cut_mid_run_resend_and_miss_nothing(procs, tmp_path):
    server, base_port = _slow_pair_over_tcp(procs, tmp_path / "events.jsonl", "--ticks", "60")
    _reset_connections(f"sport = :{base_port + 1}")  # both actions connections
    s = server.json()
    assert s["rejected"] == {"dropped_connection": 2}  # both were cut ...
    assert s["ticks"] == 60 and len(s["players"]) == 2
    for p in s["players"]:  # ... and each action was sent again: nobody missed a tick
        assert (p["answered"], p["missed"], p["late"], p["dead"]) == (60, 0, 0, 0), p


@pytest.mark.skipif(not shutil.which("ss"), reason="needs ss (iproute2) to cut connections")
@pytest.mark.parametrize("mode", ["strict", "deadline"])
def test_a_blip_that_resets_every_agents_state_connection_at_once_is_survived(procs, tmp_path, mode):
    # Every player went dead in the same millisecond and the run ended at once ("no players
    # left", exit 6) while both agents were alive and reconnected within ~0.1 s.
    events, ticks = tmp_path / "events.jsonl", 60
    server, base_port = _slow_pair_over_tcp(
        procs, events, "--ticks", str(ticks), "--mode", mode, "--deadline-ms", "1000"
    )
    _reset_connections(f"dport = :{base_port}")  # every agent's state connection at once
    for name in ("a0", "a1"):  # both were cut off ...
        wait_event(events, event("player", name=name, new="dead"), server)
    s = server.json()  # ... and both came back: the run played to its end
    assert s["reason"] == "ticks done" and s["ticks"] == ticks, s
    for p in s["players"]:
        assert p["status"] == "active" and accounted(p) == ticks, p


def test_environment_variables_stand_in_for_flags_and_agents_may_start_first(procs, ipc_base, tmp_path):
    agents = [
        procs(
            ["-m", "tickwire.agents"],
            name=f"agent{i}",
            env={"TICKWIRE_CONNECT": ipc_base, "TICKWIRE_NAME": f"env-{i}"},
        )
        for i in range(2)
    ]  # started before the server exists: they keep trying
    server = procs(
        ["-m", "tickwire.server", "--json"],
        name="server",
        env={
            "TICKWIRE_BIND": ipc_base,
            "TICKWIRE_PLAYERS": "2",
            "TICKWIRE_TICKS": "100",
            "TICKWIRE_SEED": "5",
            "TICKWIRE_EVENTS": str(tmp_path / "events.jsonl"),
        },
    )
    s = server.json()
    _all_answered(s, 100, 2)
    assert s["seed"] == 5 and {p["name"] for p in s["players"]} == {"env-0", "env-1"}
    kinds = [e["event"] for e in read_events(tmp_path / "events.jsonl")]
    assert kinds[0] == "listening" and kinds[-2:] == ["started", "end"]
    for a in agents:
        assert a.wait(15) == 0, a.stderr


def test_user_world_and_agent_loaded_from_files(procs, tmp_path):
    s = procs(
        [
            *RUN,
            "--agents",
            "2",
            "--ticks",
            "5000",
            "--json",
            "--world",
            f"{SUPPORT}/counter_world.py:CounterWorld",
            "--agent",
            f"{SUPPORT}/sample_agents.py:CountingAgent",
        ]
    ).json()
    # players add 1 and 2 per tick; the world says it is done once the total reaches 1000
    assert s["reason"] == "world done" and s["ticks"] == 334 and s["players"][0]["score"] == 1002


def test_deadline_mode_does_not_wait_for_a_slow_agent(procs, ipc_base):
    # 100 ms ticks (--tick-rate 10: each tick's deadline is its period's end, so the run lasts
    # ~4 s however fast the others answer), a 400 ms agent: it misses every tick and its
    # answers arrive late. The fast agents answer nearly every tick; a loaded machine may make
    # one miss a deadline now and then, which is what deadline mode is for.
    ticks = 40
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            ipc_base,
            "--players",
            "3",
            "--ticks",
            str(ticks),
            "--mode",
            "deadline",
            "--tick-rate",
            "10",
            "--json",
        ],
        name="server",
    )
    fast = [
        procs(["-m", "tickwire.agents", "--connect", ipc_base, "--name", f"fast{i}"], name=f"f{i}")
        for i in range(2)
    ]
    slow = procs(
        [
            "-m",
            "tickwire.agents",
            "--connect",
            ipc_base,
            "--name",
            "slow",
            "--agent",
            "tickwire.agents.examples.slow_agent:SlowAgent",
        ],
        name="slow",
        env={"TICKWIRE_SLOW_MS": "400"},
    )
    s = server.json()
    assert s["ticks"] == ticks
    by_name = {p["name"]: p for p in s["players"]}
    for name in ("fast0", "fast1"):
        p = by_name[name]
        assert p["answered"] + p["missed"] == ticks and p["missed"] <= 3, p
    assert by_name["slow"]["missed"] >= ticks // 2 and by_name["slow"]["late"] >= 1
    assert s["rejected"].get("stale", 0) == sum(p["late"] for p in s["players"])
    for a in (*fast, slow):
        assert a.wait(15) == 0
    # `tickwire agent` prints the result line a script's print(run(...)) prints, on stdout
    assert "fast0 (player" in fast[0].stdout and f"acted on {ticks} ticks" in fast[0].stdout


@pytest.mark.parametrize("mode", ["strict", "deadline"])
def test_an_agent_killed_mid_run_does_not_stop_the_run(procs, ipc_base, zctx, mode, tmp_path):
    ticks = 3000
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            ipc_base,
            "--players",
            "3",
            "--ticks",
            str(ticks),
            "--mode",
            mode,
            "--deadline-ms",
            "200",
            "--json",
            "--events",
            str(tmp_path / "events.jsonl"),
        ],
        name="server",
    )
    agents = [procs(["-m", "tickwire.agents", "--connect", ipc_base], name=f"a{i}") for i in range(3)]
    watch = zctx.socket(zmq.SUB)
    watch.linger = 0
    watch.subscribe(b"")
    watch.connect(derive(ipc_base).state)
    while True:  # wait (bounded by poll) until the run is well under way
        assert watch.poll(30_000), "no state published within 30 s"
        msg = decode(watch.recv_multipart())
        if isinstance(msg, State) and msg.tick >= 50:
            break
    agents[1].popen.send_signal(signal.SIGKILL)
    s = server.json()
    assert s["ticks"] == ticks and s["reason"] == "ticks done"
    dead = [p for p in s["players"] if p["status"] == "dead"]
    assert len(dead) == 1 and 50 <= dead[0]["answered"] < ticks and dead[0]["dead"] > 0
    assert all(p["answered"] == ticks for p in s["players"] if p["status"] != "dead")
    assert all(accounted(p) == ticks for p in s["players"]), s["players"]
    became_dead = wait_event(tmp_path / "events.jsonl", event("player", new="dead"), server)
    assert became_dead["id"] == dead[0]["id"] and became_dead["old"] in ("active", "inactive")


def test_garbage_on_actions_and_control_is_counted_and_the_run_finishes(procs, ipc_base, zctx):
    server = procs(
        ["-m", "tickwire.server", "--bind", ipc_base, "--players", "2", "--ticks", "30", "--json"],
        name="server",
    )
    p1, p2 = RawPlayer(zctx, ipc_base, "raw1"), RawPlayer(zctx, ipc_base, "raw2")
    w1, w2 = p1.join(), p2.join()
    s0 = p1.next_state()
    assert isinstance(s0, State) and s0.tick == 0 and p2.next_state().tick == 0
    # On p1's PUSH socket (ordered): garbage, then a real action, a duplicate, an invalid one.
    for frames in (
        [b"garbage"],
        [b"\x81", b"x"],
        [b"\x91" + b"\x00" * (200 << 10)],
        p1.action(0, 1, run="old-run"),
        p1.action(0, 1, player=w2.player),
        p1.action(0, 1, player=7),
        p1.action(5, 1),
        encode(State(w1.run, 0)),
        p1.action(0, 1),
        p1.action(0, 2),
        p1.action(0, 99),
    ):
        p1.push.send_multipart(frames)
    # The ERROR for the invalid action proves everything before it was processed.
    err = p1.control()
    assert isinstance(err, Error) and err.code == "invalid_action" and "0..4" in err.text
    # Control garbage gets an ERROR reply each, saying what was wrong and what to do.
    p1.dealer.send_multipart([b"junk"])
    err = p1.control()
    assert isinstance(err, Error) and err.code == "malformed"
    assert "could not decode your message" in err.text and "PROTOCOL.md" in err.text
    p1.dealer.send_multipart(encode(State(w1.run, 0)))
    err = p1.control()
    assert isinstance(err, Error) and err.code == "wrong_kind" and "only join and leave" in err.text
    late_joiner = RawPlayer(zctx, ipc_base, "late")
    late_joiner.dealer.send_multipart(encode(Join("late")))
    refused = late_joiner.control()
    assert refused.code == "run_in_progress" and "before it starts" in refused.text
    p2.act(0, 0)
    assert p1.next_state().tick == 1 and p2.next_state().tick == 1
    p2.push.send_multipart(p2.action(0, 3))  # stale: tick 0 is closed
    # invalid → ERROR → proves the stale one arrived (for the closed tick 0: an invalid answer
    # to the open tick would release p2's place in it and race with its valid answer)
    p2.push.send_multipart(p2.action(0, 50))
    assert p2.control().code == "invalid_action"
    for tick in range(1, 30):
        p1.act(tick, 4)
        p2.act(tick, 2)
        if tick < 29:
            assert p1.next_state().tick == tick + 1 and p2.next_state().tick == tick + 1
    assert isinstance(p1.next_state(), End)
    s = server.json()
    assert s["ticks"] == 30 and s["reason"] == "ticks done"
    assert s["rejected"] == {
        "malformed": 3,
        "oversized": 1,
        "wrong_run": 1,
        "bad_token": 1,
        "unknown_player": 1,
        "future_tick": 1,
        "wrong_kind": 2,
        "duplicate": 1,
        "invalid_action": 2,
        "stale": 1,
        "run_in_progress": 1,
    }
    # p2's stale action repeats tick 0, which it answered in time: stale, but not late
    assert player(s, w1.player)["answered"] == 30 and player(s, w2.player)["late"] == 0


def test_sigint_to_tickwire_run_exits_quickly_and_leaves_no_process(procs, tmp_path):
    events = tmp_path / "events.jsonl"
    run = procs([*RUN, "--agents", "4", "--ticks", "100000000", "--events", str(events)], name="run")
    wait_event(events, event("started"), run)
    kids = children_of(run.pid)
    assert len(kids) >= 4
    run.popen.send_signal(signal.SIGINT)
    assert run.wait(5) == 130
    assert "signal SIGINT" in run.stdout
    assert not [k for k in kids if alive(k)]
    assert event("end", reason="signal SIGINT")(read_events(events)[-1])


def test_lobby_timeout_names_who_is_missing(procs, ipc_base):
    server = procs(["-m", "tickwire.server", "--bind", ipc_base, "--players", "2", "--lobby-timeout", "2"])
    agent = procs(["-m", "tickwire.agents", "--connect", ipc_base, "--server-timeout", "30"])
    assert server.wait(30) == 3
    assert "1 of 2" in server.stderr and "1 slot(s) were never joined" in server.stderr
    assert agent.wait(15) == 0  # it got END and left cleanly


def test_a_full_lobby_refuses_an_extra_agent_with_a_clear_message(procs, ipc_base, zctx):
    # the holder keeps the only slot for the whole test (its ready timeout is 60 s), so the
    # extra agent, told `full` with retry_ms, keeps asking until its own join timeout
    server = procs(
        ["-m", "tickwire.server", "--bind", ipc_base, "--players", "1", "--ready-timeout", "60"],
        name="server",
    )
    holder = RawPlayer(zctx, ipc_base, "holder")
    holder.join(ready=False)  # holds the only slot; never ready, so the lobby stays open
    extra = procs(["-m", "tickwire.agents", "--connect", ipc_base, "--join-timeout", "3"], name="extra")
    assert extra.wait(30) == 5  # ExitCode.REFUSED
    assert "refused" in extra.stderr and "still full after the join timeout" in extra.stderr
    server.popen.send_signal(signal.SIGTERM)
    assert server.wait(10) == 130
    assert "stopped in the lobby (signal SIGTERM)" in server.stdout


def test_an_agent_joining_a_run_in_progress_is_refused_with_a_clear_message(procs, ipc_base, tmp_path):
    events = tmp_path / "events.jsonl"
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            ipc_base,
            "--players",
            "1",
            "--ticks",
            "1000000",
            "--events",
            str(events),
        ],
        name="server",
    )
    procs(["-m", "tickwire.agents", "--connect", ipc_base], name="first")
    wait_event(events, event("started"), server)
    extra = procs(["-m", "tickwire.agents", "--connect", ipc_base], name="extra")
    assert extra.wait(30) == 5  # ExitCode.REFUSED
    assert "refused" in extra.stderr and "players must join before it starts" in extra.stderr
    server.popen.send_signal(signal.SIGTERM)
    assert server.wait(10) == 130


def test_agent_exits_when_the_server_goes_away(procs, ipc_base, tmp_path):
    events = tmp_path / "events.jsonl"
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            ipc_base,
            "--players",
            "1",
            "--ticks",
            "100000000",
            "--events",
            str(events),
        ]
    )
    agent = procs(["-m", "tickwire.agents", "--connect", ipc_base, "--server-timeout", "2"])
    wait_event(events, event("started"), server)
    server.popen.send_signal(signal.SIGKILL)
    assert agent.wait(20) == 4
    assert "silent" in agent.stderr and "so this agent stops." in agent.stderr
    assert "--key" not in agent.stderr  # it had joined: keys are not what went wrong


def test_invalid_actions_are_rejected_and_the_agent_is_told(procs, ipc_base):
    server = procs(
        ["-m", "tickwire.server", "--bind", ipc_base, "--players", "1", "--ticks", "20", "--json"],
        name="server",
    )
    agent = procs(
        ["-m", "tickwire.agents", "--connect", ipc_base, "--agent", "support.sample_agents:InvalidAgent"],
        name="agent",
    )
    s = server.json()
    assert s["rejected"] == {"invalid_action": 20} and s["players"][0]["missed"] == 20
    assert agent.wait(15) == 0 and "is not an int in 0..4" in agent.stderr


def test_an_agent_that_raises_exits_nonzero_with_traceback_and_the_run_goes_on(procs, ipc_base):
    server = procs(
        ["-m", "tickwire.server", "--bind", ipc_base, "--players", "2", "--ticks", "100", "--json"],
        name="server",
    )
    good = procs(["-m", "tickwire.agents", "--connect", ipc_base], name="good")
    bad = procs(
        ["-m", "tickwire.agents", "--connect", ipc_base, "--agent", "support.sample_agents:CrashingAgent"],
        name="bad",
    )
    s = server.json()
    assert bad.wait(15) != 0 and "boom at tick 5" in bad.stderr
    crashed = next(p for p in s["players"] if p["name"] == "CrashingAgent")
    assert crashed["status"] == "left" and crashed["answered"] == 5
    assert all(accounted(p) == 100 for p in s["players"]), s["players"]
    assert good.wait(15) == 0 and s["ticks"] == 100


def test_the_readme_example_agent_runs_from_its_file(procs):
    root = os.path.dirname(os.path.dirname(__file__))
    s = procs(
        [*RUN, "--agents", "2", "--ticks", "100", "--json", "--agent", f"{root}/examples/my_agent.py:MyAgent"]
    ).json()
    _all_answered(s, 100, 2)
    assert sum(p["score"] for p in s["players"]) > 0


def test_a_frozen_agent_is_declared_dead_then_rejoins_after_sigcont(procs, ipc_base, zctx, tmp_path):
    events = tmp_path / "events.jsonl"
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--ticks",
            "100000000",
            "--json",
            "--events",
            str(events),
        ],
        name="server",
    )
    agents = [
        procs(
            ["-m", "tickwire.agents", "--connect", ipc_base, "--name", f"a{i}", "--server-timeout", "60"],
            name=f"a{i}",
        )
        for i in range(2)
    ]
    wait_event(events, event("started"), server)
    agents[0].popen.send_signal(signal.SIGSTOP)
    try:  # the ZMTP heartbeat timeout notices the frozen process
        wait_event(events, event("player", name="a0", new="dead"), server, timeout=20)
    finally:
        agents[0].popen.send_signal(signal.SIGCONT)
    wait_event(events, event("player", name="a0", old="dead", new="active"), server, timeout=20)
    watch = zctx.socket(zmq.SUB)
    watch.linger = 0
    watch.subscribe(b"")
    watch.connect(derive(ipc_base).state)
    first = None
    while True:  # let both play on for a few hundred ticks
        assert watch.poll(20_000), "the run stopped advancing after the agent came back"
        msg = decode(watch.recv_multipart())
        if isinstance(msg, State):
            first = msg.tick if first is None else first
            if msg.tick >= first + 300:
                break
    server.popen.send_signal(signal.SIGTERM)
    assert server.wait(10) == 130
    s = json.loads(server.stdout)
    a0, a1 = (next(p for p in s["players"] if p["name"] == n) for n in ("a0", "a1"))
    assert a0["status"] == "active" and a1["status"] == "active"
    assert a1["answered"] >= first + 300 and 0 < a0["answered"] < a1["answered"]
    assert a0["dead"] > 0 and accounted(a0) == accounted(a1) == s["ticks"], (a0, a1)


def test_hosting_players_in_fewer_processes_gives_the_same_run(procs):
    runs = [
        procs(
            [
                *RUN,
                "--agents",
                "6",
                "--per-process",
                str(k),
                "--ticks",
                "150",
                "--seed",
                "4",
                "--agent",
                "tickwire.agents.examples.random_agent:RandomAgent",
                "--json",
            ],
            name=f"k{k}",
        ).json()
        for k in (1, 3, 6)
    ]
    for s in runs:
        _all_answered(s, 150, 6)
    assert len({s["state_hash"] for s in runs}) == 1


def test_a_batch_is_checked_entry_by_entry(procs, ipc_base, zctx):
    server = procs(
        ["-m", "tickwire.server", "--bind", ipc_base, "--players", "2", "--ticks", "3", "--json"],
        name="server",
    )
    p1, p2 = RawPlayer(zctx, ipc_base, "raw1"), RawPlayer(zctx, ipc_base, "raw2")
    w1, w2 = p1.join(), p2.join()
    assert p1.next_state().tick == 0 and p2.next_state().tick == 0
    batch = Actions(
        w1.run,
        0,
        1,
        [
            [w1.player, w1.token, 1],
            [w2.player, "forged", 1],
            "junk",
            [w2.player, w2.token],
            [w1.player, w1.token, 2],
        ],
    )
    p1.push.send_multipart(encode(batch))
    p1.push.send_multipart(p1.action(0, 99))  # invalid → ERROR: the batch before it was handled
    assert p1.control().code == "invalid_action"
    for tick in range(3):
        p2.act(tick, 0)
        if tick:
            p1.act(tick, 0)
        if tick < 2:
            assert p1.next_state().tick == tick + 1 and p2.next_state().tick == tick + 1
    s = server.json()
    assert s["rejected"] == {"bad_token": 1, "malformed": 2, "duplicate": 1, "invalid_action": 1}
    assert player(s, w1.player)["answered"] == 3 and player(s, w2.player)["answered"] == 3


def test_pinned_hosted_agents_run_on_their_cores_as_batch_tasks(procs, tmp_path):
    s = procs(
        [
            *RUN,
            "--agents",
            "4",
            "--per-process",
            "2",
            "--pin-cpus",
            "--ticks",
            "100",
            "--agent",
            "support.sample_agents:PlacementProbe",
            "--json",
        ],
        env={"PROBE_DIR": str(tmp_path)},
    ).json()
    _all_answered(s, 100, 4)
    cores = sorted(os.sched_getaffinity(0))
    placed = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(4)]
    # two processes of two players: process j is pinned to core j mod cores
    assert sorted(p["cpus"] for p in placed) == sorted([cores[j % len(cores)]] for j in (0, 0, 1, 1))
    assert all(p["batch"] for p in placed)
