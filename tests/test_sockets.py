"""The server's sockets from outside: who may bind an ipc address, and which lost actions
connections count (real server processes, raw sockets; every wait bounded)."""

from __future__ import annotations

import socket
from collections import Counter

import pytest
import zmq
from support.events import event, wait_event
from support.raw_zmtp import tcp_address, zmtp
from support.servers import start_server
from support.summaries import accounted
from tickwire.agents.runtime import AgentSockets
from tickwire.plumbing.sockets import (
    curve_server,
    hub_bind_refused,
    is_public,
    open_socket,
    server_bind_refused,
)
from tickwire.protocol import Action, BindError, ConfigError, State, decode, derive, encode
from tickwire.protocol.limits import MAX_ACTION_FRAME
from tickwire.protocol.work import HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS
from tickwire.server.work.hub import Hub
from tickwire.server.world_server.transport import ServerSockets, SocketOptions

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


# ---------------------------------------------------------------------------- socket set-up
def test_configure_sets_what_it_is_given_and_leaves_the_rest_at_libzmqs_defaults(zctx):
    plain = open_socket(zctx, zmq.PUSH, linger_ms=7)
    tuned = open_socket(
        zctx,
        zmq.DEALER,
        linger_ms=0,
        sndhwm=3,
        max_frame=4096,
        heartbeat_ms=(250, 900),
        immediate=True,
        identity=b"me",
    )
    try:
        assert plain.getsockopt(zmq.LINGER) == 7
        assert plain.getsockopt(zmq.SNDHWM) == 1000 and plain.getsockopt(zmq.MAXMSGSIZE) == -1
        assert plain.getsockopt(zmq.HEARTBEAT_IVL) == 0 and plain.getsockopt(zmq.IMMEDIATE) == 0
        assert [tuned.getsockopt(o) for o in (zmq.LINGER, zmq.SNDHWM, zmq.MAXMSGSIZE)] == [0, 3, 4096]
        assert tuned.getsockopt(zmq.HEARTBEAT_IVL) == 250 and tuned.getsockopt(zmq.HEARTBEAT_TIMEOUT) == 900
        assert tuned.getsockopt(zmq.IMMEDIATE) == 1 and tuned.getsockopt(zmq.ROUTING_ID) == b"me"
    finally:
        plain.close()
        tuned.close()


def test_a_curve_client_reaches_a_curve_server_and_a_plaintext_one_does_not(zctx, ipc_base):
    (spub, ssec), (cpub, csec) = zmq.curve_keypair(), zmq.curve_keypair()
    addr = derive(ipc_base).actions
    server = open_socket(zctx, zmq.PULL, linger_ms=0)
    curve_server(server, spub, ssec)
    assert server.getsockopt(zmq.CURVE_SERVER) == 1
    server.bind(addr)
    plain = open_socket(zctx, zmq.PUSH, linger_ms=0)
    plain.connect(addr)
    plain.send(b"plain")  # queued: the handshake fails, so it is never delivered
    client = open_socket(zctx, zmq.PUSH, linger_ms=0, curve=(cpub, csec, spub))
    assert client.getsockopt(zmq.CURVE_SERVER) == 0 and client.getsockopt(zmq.MECHANISM) == zmq.CURVE
    client.connect(addr)
    client.send(b"keyed")
    assert server.poll(10_000) and server.recv() == b"keyed"
    assert not server.poll(200)


def test_the_server_sockets_keep_their_values(ipc_base):
    socks = ServerSockets(ipc_base)
    try:
        o = SocketOptions()
        state, actions, control = socks.state, socks.actions, socks.control
        assert {s.getsockopt(zmq.LINGER) for s in (state, actions, control)} == {o.linger_ms}
        assert state.getsockopt(zmq.SNDHWM) == control.getsockopt(zmq.SNDHWM) == 8
        assert actions.getsockopt(zmq.SNDHWM) == 1000  # libzmq's: a PULL sends nothing
        assert (state.getsockopt(zmq.HEARTBEAT_IVL), state.getsockopt(zmq.HEARTBEAT_TIMEOUT)) == (1000, 4000)
        assert control.getsockopt(zmq.HEARTBEAT_IVL) == 0
        assert [s.getsockopt(zmq.MAXMSGSIZE) for s in (state, actions, control)] == [
            1024,
            MAX_ACTION_FRAME,
            64 * 1024,
        ]
    finally:
        socks.close()


@pytest.mark.parametrize("unlimited_out, heartbeat", [(False, False), (True, True)])
def test_the_hubs_sockets_keep_their_values(unlimited_out, heartbeat):
    hub = Hub(None, "t", unlimited_out=unlimited_out, heartbeat=heartbeat, max_in_frame=12345)
    try:
        pub, pull = hub._pub, hub._pull
        assert pub.getsockopt(zmq.LINGER) == pull.getsockopt(zmq.LINGER) == 0
        assert pub.getsockopt(zmq.MAXMSGSIZE) == 1024 and pull.getsockopt(zmq.MAXMSGSIZE) == 12345
        assert pub.getsockopt(zmq.SNDHWM) == (0 if unlimited_out else 1000)
        assert pub.getsockopt(zmq.HEARTBEAT_IVL) == (HEARTBEAT_IVL_MS if heartbeat else 0)
        assert pub.getsockopt(zmq.HEARTBEAT_TIMEOUT) == (HEARTBEAT_TIMEOUT_MS if heartbeat else -1)
    finally:
        hub.close()


def test_an_agent_processes_sockets_keep_their_values(ipc_base):
    socks = AgentSockets(ipc_base, players=2)
    try:
        assert socks.state.getsockopt(zmq.LINGER) == 0 and socks.state.getsockopt(zmq.IMMEDIATE) == 0
        for s in (socks.actions, *socks.controls):
            assert s.getsockopt(zmq.LINGER) == 500 and s.getsockopt(zmq.IMMEDIATE) == 1
        ids = [c.getsockopt(zmq.ROUTING_ID) for c in socks.controls]
        assert len(set(ids)) == 2 and all(len(i) == 16 for i in ids)
    finally:
        socks.close()


def test_a_public_bind_without_keys_is_refused_with_the_fix():
    assert is_public("tcp://0.0.0.0:5555") and is_public("tcp://example.org:1")
    assert not any(map(is_public, ("tcp://127.0.0.1:5555", "tcp://[::1]:1", "ipc:///tmp/x", "inproc://x")))
    server = server_bind_refused("tcp://0.0.0.0:5555")
    assert server.option == "--bind" and "refusing to bind tcp://0.0.0.0:5555 without keys" in str(server)
    assert "--key keys/server.key_secret --allow DIR" in str(server) and "--insecure" in str(server)
    hub = hub_bind_refused("tcp://0.0.0.0:7000", "PlayerPool")
    assert hub.option == "address" and "PlayerPool refuses to bind tcp://0.0.0.0:7000" in str(hub)
    assert "PlayerPool(address, key=" in str(hub) and "insecure=True" in str(hub)
    with pytest.raises(ConfigError, match="Chief refuses to bind tcp://0.0.0.0:1 without keys"):
        Hub("tcp://0.0.0.0:1", "t")
