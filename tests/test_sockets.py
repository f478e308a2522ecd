"""The server's sockets from outside: who may bind an ipc address, and which lost actions
connections count (real server processes, raw sockets; every wait bounded)."""
from __future__ import annotations

import pytest
from conftest import event, wait_event
from tickwire.protocol import TransportError, derive
from tickwire.server.hub import Hub

SERVER = ["-m", "tickwire.server"]
AGENT = ["-m", "tickwire.agents"]


# ---------------------------------------------------------------------------- ipc binds
def test_a_second_server_on_a_live_ipc_address_exits_4_and_a_dead_ones_files_are_reused(
        procs, ipc_base, tmp_path):
    events = tmp_path / "events.jsonl"
    first = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--events", str(events)],
                  name="first")
    wait_event(events, event("listening"), first)
    second = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--ticks", "30", "--json"],
                   name="second")
    assert second.wait(30) == 4, second.stderr
    path = derive(ipc_base).state.removeprefix("ipc://")
    assert f"another process is listening on {path}" in second.stderr, second.stderr
    assert "Stop it first, or choose another address" in second.stderr
    first.kill()  # kill -9: its socket files stay behind, nobody listens on them any more
    third = procs([*SERVER, "--bind", ipc_base, "--players", "1", "--ticks", "30", "--json"],
                  name="third")
    agent = procs([*AGENT, "--connect", ipc_base, "--json"], name="agent")
    s = third.json()
    assert s["reason"] == "ticks done" and s["players"][0]["answered"] == 30, s
    assert agent.wait(15) == 0, agent.stderr


def test_the_hub_refuses_a_live_ipc_address_too(ipc_base):
    hub = Hub(ipc_base, "t")
    try:
        with pytest.raises(TransportError, match="another process is listening"):
            Hub(ipc_base, "t")
        assert hub.poll(0) == (False, False)
    finally:
        hub.close()
