"""The server's sockets from outside: who may bind an ipc address, and which lost actions
connections count (real server processes, raw sockets; every wait bounded)."""

from __future__ import annotations

import socket
from collections import Counter

import pytest
import zmq
from conftest import accounted, event, wait_event
from test_security import start_server, tcp_address, zmtp
from tickwire.protocol import Action, BindError, State, decode, derive, encode
from tickwire.server.work.hub import Hub

SERVER = ["-m", "tickwire.server"]
AGENT = ["-m", "tickwire.agents"]


# ---------------------------------------------------------------------------- ipc binds
def test_a_second_server_on_a_live_ipc_address_exits_4_and_a_dead_ones_files_are_reused(
    procs, ipc_base, tmp_path
):
    events = tmp_path / "events.jsonl"
    first = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--events", str(events)], name="first")
    wait_event(events, event("listening"), first)
    second = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--ticks", "30", "--json"], name="second")
    assert second.wait(30) == 4, second.stderr
    path = derive(ipc_base).state.removeprefix("ipc://")
    assert f"another process is listening on {path}" in second.stderr, second.stderr
    assert "Stop it first, or choose another address" in second.stderr
    first.kill()  # kill -9: its socket files stay behind, nobody listens on them any more
    third = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--ticks", "30", "--json"], name="third")
    agent = procs([*AGENT, "--connect", ipc_base, "--json"], name="agent")
    s = third.json()
    assert s["reason"] == "ticks done" and s["players"][0]["answered"] == 30, s
    assert agent.wait(15) == 0, agent.stderr


def test_the_hub_refuses_a_live_ipc_address_too(ipc_base):
    hub = Hub(ipc_base, "t")
    try:
        with pytest.raises(BindError, match="another process is listening"):
            Hub(ipc_base, "t")
        assert hub.poll(0) == (False, False)
    finally:
        hub.close()


# ---------------------------------------------------------------------------- lost connections
def _stranger_connections(eps: dict, run: str, n: int) -> None:
    """``n`` actions connections from a stranger, each closed by itself: bare TCP, a raw ZMTP
    PUSH that sends nothing, and one that sends an ACTION with a wrong token first."""
    for i in range(n):
        if i % 3 == 0:
            socket.create_connection(tcp_address(eps["actions"]), timeout=10).close()
            continue
        s = zmtp(eps["actions"], b"PUSH")
        if i % 3 == 2:
            body = encode(Action(run, 0, 0, i, "0" * 16, 0))[0]
            s.sendall(b"\x00" + bytes([len(body)]) + body)
        s.close()


def test_a_strangers_actions_connections_that_come_and_go_republish_nothing(procs, tmp_path, zctx):
    ticks = 40
    server, eps, events = start_server(procs, tmp_path, "--players", "2", "--ticks", str(ticks))
    spy = zctx.socket(zmq.SUB)  # counts the STATEs of each tick
    spy.linger = 0
    spy.subscribe(b"")
    spy.connect(eps["state"])
    assert spy.poll(10_000), "no heartbeat on the state socket within 10 s"  # subscribed
    agents = [
        procs(
            [
                *AGENT,
                "--connect",
                eps["base"],
                "--name",
                f"a{i}",
                "--agent",
                "tickwire.agents.examples.slow_agent:SlowAgent",
            ],
            name=f"a{i}",
            env={"TICKWIRE_SLOW_MS": "50"},
        )
        for i in range(2)
    ]  # the run lasts > 2 s
    run = wait_event(events, event("started"), server)["run"]
    _stranger_connections(eps, run, 30)
    summary = server.json()
    states = Counter()
    while spy.poll(0):
        msg = decode(spy.recv_multipart())
        if isinstance(msg, State):
            states[msg.tick] += 1
    assert states == {t: 1 for t in range(ticks)}, states  # no tick published again
    assert "dropped_connection" not in summary["rejected"], summary["rejected"]
    assert summary["rejected"].get("bad_token") == 10, summary["rejected"]
    for p in summary["players"]:
        assert p["answered"] == ticks and p["late"] == 0 and accounted(p) == ticks, p
    for a in agents:
        assert a.wait(15) == 0, a.stderr
