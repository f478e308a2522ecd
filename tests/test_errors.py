"""The error tree is truthful: every error ``tickwire`` exports lives in
``tickwire.protocol.errors`` and the transport errors are raised where they belong (real
sockets, real server processes; every wait bounded)."""

from __future__ import annotations

import importlib
import os
import signal
import warnings

import pytest
import zmq
from tickwire.protocol import errors
from tickwire.protocol.errors import BindError, Refused, ServerGone, ServerUnreachable, TickwireError
from tickwire.server.work.hub import Hub
from tickwire.server.world_server.config import ServerConfig
from tickwire.server.world_server.loop import WorldServer
from tickwire.server.worlds.grid_world import GridWorld

import tickwire
from tickwire import Agent, run

#: Raised by a World's ``validate_action`` (a world author raises it); defined beside the rules.
RAISED_BY_WORLDS = {"InvalidAction"}


# ---------------------------------------------------------------------------- the tree
def test_every_exported_error_is_defined_in_the_one_errors_module():
    exported = {
        name: getattr(tickwire, name)
        for name in tickwire.__all__
        if isinstance(getattr(tickwire, name), type) and issubclass(getattr(tickwire, name), BaseException)
    }
    assert {"BindError", "ServerUnreachable", "ServerGone", "Refused", "PlayerError"} <= set(exported)
    for name, cls in exported.items():
        if name in RAISED_BY_WORLDS:
            continue
        assert cls.__module__ == "tickwire.protocol.errors", name
        assert issubclass(cls, TickwireError) and name in errors.__doc__, name


@pytest.mark.parametrize("module", ["tickwire", "tickwire.protocol", "tickwire.protocol.errors"])
def test_agent_error_is_refused_under_its_old_name_with_a_deprecation_warning(module):
    with pytest.warns(DeprecationWarning, match=rf"{module}\.AgentError is deprecated.*{module}\.Refused"):
        old = importlib.import_module(module).AgentError
    assert old is Refused
    assert "AgentError" not in tickwire.__all__


def test_a_name_that_was_never_there_is_still_an_attribute_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="NoSuchError"):
            tickwire.NoSuchError  # noqa: B018


# ---------------------------------------------------------------------------- BindError
def test_a_world_server_on_a_taken_tcp_port_raises_bind_error(tmp_path):
    ctx = zmq.Context()
    taken = ctx.socket(zmq.PULL)
    try:
        port = taken.bind_to_random_port("tcp://127.0.0.1")
        with pytest.raises(BindError, match=rf"cannot bind tcp://127.0.0.1:{port}.*--bind"):
            WorldServer(GridWorld(), ServerConfig(bind=f"tcp://127.0.0.1:{port}", events_path=None))
    finally:
        ctx.destroy(linger=0)


def test_a_second_world_server_on_a_live_ipc_address_raises_bind_error(ipc_base):
    first = WorldServer(GridWorld(), ServerConfig(bind=ipc_base))
    try:
        with pytest.raises(BindError, match="another process is listening"):
            WorldServer(GridWorld(), ServerConfig(bind=ipc_base))
    finally:
        first.close()


def test_a_hub_on_a_live_ipc_address_raises_bind_error(ipc_base):
    hub = Hub(ipc_base, "t")
    try:
        with pytest.raises(BindError, match="another process is listening"):
            Hub(ipc_base, "t")
    finally:
        hub.close()


# ---------------------------------------------------------------------------- the agent's side
class Idle(Agent):
    def act(self, observation):
        return 0


class KillsTheServer(Agent):
    """Kills the server process (SIGKILL: no END, no goodbye) on its first tick."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.killed = False

    def act(self, observation):
        if not self.killed:
            os.kill(self.pid, signal.SIGKILL)
            self.killed = True
        return 0


def test_an_agent_with_no_server_raises_server_unreachable(ipc_base):
    with pytest.raises(ServerUnreachable, match="no WELCOME from a tickwire server"):
        run(Idle(), ipc_base, handle_signals=False, join_timeout_s=1)


def test_an_agent_whose_server_dies_mid_run_raises_server_gone(procs, ipc_base):
    server = procs(["-m", "tickwire.server", "--bind", ipc_base, "--players", "1", "--ticks", "1000000"])
    agent = KillsTheServer(server.pid)
    with pytest.raises(ServerGone, match="silent for more than 2 s"):
        run(agent, ipc_base, handle_signals=False, join_timeout_s=30, server_timeout_s=2)
    assert agent.killed and server.wait(10) == -signal.SIGKILL
