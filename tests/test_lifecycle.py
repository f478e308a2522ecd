"""Player accounting and lifecycle with real processes and real sockets: a late joiner, a
newcomer taking a dead slot, ipc socket files at the end. Every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import zmq
from support.events import event, wait_event
from support.paths import TESTS
from support.replay_html import page_data
from support.servers import wait_tick
from support.summaries import accounted, player
from tickwire.server.record.log import RunReader
from tickwire.server.world_server.transport import ServerSockets

from tickwire.cli import main

SERVER = ["-m", "tickwire.server"]
AGENT = ["-m", "tickwire.agents"]


def test_a_late_joiner_and_a_renamed_newcomer_are_accounted_for_every_tick(procs, ipc_base, zctx, tmp_path):
    events, rec = tmp_path / "events.jsonl", tmp_path / "rec"
    server = procs(
        [
            *SERVER,
            "--bind",
            ipc_base,
            "--players",
            "3",
            "--min-players",
            "2",
            "--lobby-timeout",
            "1",
            "--late-join",
            "--ticks",
            "100000000",
            "--json",
            "--events",
            str(events),
            "--record",
            str(rec),
        ],
        name="server",
    )
    procs([*AGENT, "--connect", ipc_base, "--slot", "0", "--name", "keeper"], name="keeper")
    victim = procs([*AGENT, "--connect", ipc_base, "--slot", "1", "--name", "victim"], name="victim")
    wait_tick(zctx, ipc_base, 20)
    late = procs([*AGENT, "--connect", ipc_base, "--slot", "2", "--json"], name="late")
    joined = wait_event(events, event("player", id=2, new="active"), server)
    victim.kill()
    wait_event(events, event("player", id=1, new="dead"), server)
    procs([*AGENT, "--connect", ipc_base, "--slot", "1", "--name", "newcomer"], name="newcomer")
    rejoined = wait_event(events, event("player", id=1, old="dead", new="joined"), server)
    assert rejoined["name"] == "newcomer"
    back = wait_event(
        events, lambda e: event("player", id=1, new="active")(e) and e["tick"] >= rejoined["tick"], server
    )
    wait_tick(zctx, ipc_base, back["tick"] + 30)
    server.popen.send_signal(signal.SIGINT)
    server.wait(30)
    s = json.loads(server.stdout)
    assert all(accounted(p) == s["ticks"] for p in s["players"]), s["players"]
    late_player = player(s, 2)
    assert late_player["not_joined"] >= joined["tick"] and late_player["answered"] > 0
    assert late_player["late"] <= late_player["missed"]
    assert player(s, 1)["name"] == "newcomer" and player(s, 1)["rejoins"] == 1
    assert late.wait(30) == 0, late.stderr[-2000:]
    (result,) = json.loads(late.stdout)["agents"]
    assert result["skipped"] < joined["tick"], result  # it never had the ticks before it
    _names_in_record_and_page(rec, tmp_path / "page.html", back["tick"])


def _names_in_record_and_page(rec: Path, page: Path, renamed_at: int) -> None:
    """The record's names change to the newcomer's at its rejoin; the page shows both."""
    names = {t.tick: t.names.get(1) for t in RunReader(rec).ticks()}
    assert names[0] == "victim" and names[max(names)] == "newcomer"
    assert all(n == "newcomer" for t, n in names.items() if t >= renamed_at)
    sys.path.insert(0, str(TESTS))
    try:
        assert main(["replay", str(rec), "--html", str(page), "-q"]) == 0
    finally:
        sys.path.remove(str(TESTS))
    data = page_data(page.read_text())
    shown = [data["names"][i].get("1") for i in data["cols"]["nm"]]
    assert shown[0] == "victim" and shown[-1] == "newcomer"


def _socket_files(ipc_base: str) -> list[str]:
    directory = Path(ipc_base.partition("://")[2]).parent
    return sorted(os.listdir(directory))


def test_a_server_on_ipc_removes_its_socket_files_after_a_normal_end(procs, ipc_base):
    server = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--ticks", "20", "--json"], name="server")
    procs([*AGENT, "--connect", ipc_base], name="agent")
    assert server.json()["reason"] == "ticks done"
    assert _socket_files(ipc_base) == []


def test_a_server_on_ipc_removes_its_socket_files_after_a_lobby_timeout(procs, ipc_base):
    server = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--lobby-timeout", "0.5"], name="server")
    assert server.wait(30) != 0 and "lobby" in server.stderr
    assert _socket_files(ipc_base) == []


def test_closing_leaves_the_socket_files_of_a_newer_server_that_rebound_the_path(ipc_base, zctx):
    old = ServerSockets(ipc_base, context=zctx)
    # a server refuses a live address, but any other libzmq program replaces the files
    newer = [zctx.socket(zmq.ROUTER) for _ in range(3)]
    for s, addr in zip(newer, (old.endpoints.state, old.endpoints.actions, old.endpoints.control)):
        s.linger = 0
        s.bind(addr)
    try:
        old.close()
        assert _socket_files(ipc_base) == ["run.actions", "run.control", "run.state"]
        probe = zctx.socket(zmq.DEALER)
        probe.linger = 0
        probe.connect(old.endpoints.control)
        probe.send(b"still there")
        assert newer[2].poll(5000), "the newer program's control socket is unreachable"
        probe.close()
    finally:
        for s in newer:
            s.close()  # their files stay (libzmq leaves them): the ipc_base fixture removes them
