"""The agent runtime over real sockets: a real WorldServer in a thread of the test, agents
in the test or in child processes; signals sent to real processes. Every wait is bounded."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tickwire.agents import Agent, AgentConfig, AgentResult, run
from tickwire.agents.runtime import check_action_size
from tickwire.protocol import ConfigError, ProtocolError, Refused, encode
from tickwire.protocol.messages import Action
from tickwire.server import GridWorld, ServerConfig, WorldServer

ROOT = Path(__file__).resolve().parent.parent

AGENT_SCRIPT = '''
import logging, sys
from tickwire import Agent, run

class Spinner(Agent):
    """Never returns from act() at tick 2 (a busy loop: signals only set flags)."""
    def act(self, observation):
        if self.tick == 2:
            print("spinning", flush=True)
            while True:
                pass
        return 0

class Steady(Agent):
    def act(self, observation):
        if self.tick == 2:
            print("playing", flush=True)
        return 0

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
kind, address, grace = sys.argv[1], sys.argv[2], float(sys.argv[3])
agent = {"spin": Spinner, "steady": Steady}[kind]()
print(run(agent, address, stop_grace_s=grace), flush=True)
'''


class ServerThread:
    """A WorldServer (grid world) running in a thread; stopped and joined at exit."""

    def __init__(self, bind: str, **config: object) -> None:
        self.server = WorldServer(GridWorld(), ServerConfig(bind=bind, **config))
        self.summary: dict | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="world-server", daemon=True)

    def _run(self) -> None:
        try:
            self.summary = self.server.run()
        except BaseException as e:  # reported by finish()
            self.error = e

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def finish(self, timeout: float = 30) -> dict:
        """The summary, once the run ended by itself (within ``timeout``)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the server did not end within {timeout} s"
        if self.error is not None:
            raise self.error
        return self.summary

    def __exit__(self, *exc: object) -> None:
        self.server.stop("test over")
        self.thread.join(15)


class AgentProcess:
    """A child python running AGENT_SCRIPT; stdout piped (read with a bound), stderr to a file."""

    def __init__(self, workdir: Path, *args: str) -> None:
        script = workdir / "agent_script.py"
        script.write_text(AGENT_SCRIPT)
        self.err_path = workdir / "agent.err"
        with open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
            )

    def read_line(self, timeout: float = 30) -> str:
        with selectors.DefaultSelector() as sel:
            sel.register(self.popen.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise AssertionError(f"no output within {timeout} s; stderr:\n{self.stderr}")
        return self.popen.stdout.readline().decode()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the agent did not exit within {timeout} s; stderr:\n{self.stderr[-3000:]}"
            ) from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        self.popen.stdout.close()


@pytest.fixture
def agent_process(tmp_path: Path):
    started: list[AgentProcess] = []

    def start(*args: str) -> AgentProcess:
        started.append(AgentProcess(tmp_path, *args))
        return started[-1]

    yield start
    for p in started:
        p.kill()


class Idle(Agent):
    def act(self, observation):
        return 0


class Joined(Agent):
    """Tells the test when it has joined."""

    def __init__(self) -> None:
        self.joined = threading.Event()

    def setup(self, info):
        self.joined.set()

    def act(self, observation):
        return 0


# ---------------------------------------------------------------------- playing
def test_run_plays_every_tick_and_its_result_says_so(ipc_base):
    with ServerThread(ipc_base, players=1, ticks=40) as server:
        result = run(Idle(), ipc_base, handle_signals=False, join_timeout_s=20)
        summary = server.finish()
    assert isinstance(result, AgentResult)
    assert (result.player, result.ticks, result.skipped, result.reason) == (0, 40, 0, "end: ticks done")
    assert str(result).startswith(
        "Idle (player 0): acted on 40 ticks, skipped 0; run ended at tick 40 (ticks done); score 0"
    )
    assert summary["players"][0]["answered"] == 40


class TooBig(Agent):
    """Plays tick 0, then returns an array over the actions socket's 256 KiB frame cap."""

    def act(self, observation):
        return 0 if self.tick == 0 else np.zeros(300 * 1024 // 8)


def test_an_action_over_the_servers_limits_stops_the_agent_saying_why(ipc_base):
    """The server would cut the connection and the tick would be missed with nothing said;
    the agent refuses to send it and stops, naming the size and the cap."""
    with ServerThread(ipc_base, players=1, ticks=40) as server:
        with pytest.raises(
            ProtocolError,
            match=r"tick 1 cannot be sent: one of its parts is "
            r"307,200 bytes, over the server's cap of 262,144",
        ) as e:
            run(TooBig(), ipc_base, handle_signals=False, join_timeout_s=20)
        summary = server.finish()
    assert e.value.reason == "oversized" and "return a smaller action" in str(e.value)
    (p,) = summary["players"]
    assert (p["answered"], p["status"]) == (1, "left") and summary["rejected"] == {}, summary


@pytest.mark.parametrize(
    "payload, words",
    [
        ([[0] * 20] * 1000, "within limits"),  # 21 KB of header, every array under 10,000 items
        ("x" * 70 * 1024, "max_str_len"),
    ],
)
def test_an_action_message_over_a_decode_limit_is_refused_before_sending(payload, words):
    msg = Action("r", 3, 0, 1, "t", payload)
    frames = encode(msg)
    if words == "within limits":
        check_action_size(frames, msg)  # large, yet legal: sent
    else:
        with pytest.raises(ProtocolError, match=f"tick 3 cannot be sent: .*{words}"):
            check_action_size(frames, msg)


def test_players_hosted_in_one_process_each_answer_every_tick_with_one_batch(ipc_base):
    with ServerThread(ipc_base, players=3, ticks=30) as server:
        results = run([Idle(), Idle(), Idle()], ipc_base, handle_signals=False, join_timeout_s=20)
        summary = server.finish()
    assert sorted(r.player for r in results) == [0, 1, 2]
    assert all(r.ticks == 30 and r.reason == "end: ticks done" for r in results)
    assert [p["answered"] for p in summary["players"]] == [30, 30, 30]
    assert summary["rejected"] == {}


def test_a_refused_agent_raises_refused_with_the_servers_code(ipc_base):
    first = Joined()
    with ServerThread(ipc_base, players=1, ticks=1_000_000) as server:
        playing = threading.Thread(
            target=run, args=(first, ipc_base), kwargs={"handle_signals": False, "join_timeout_s": 20}
        )
        playing.start()
        assert first.joined.wait(20)
        with pytest.raises(Refused) as refused:
            run(Idle(), ipc_base, handle_signals=False, join_timeout_s=20)
        server.server.stop("test over")
        playing.join(15)
        assert not playing.is_alive()
    assert refused.value.code in ("full", "run_in_progress")
    assert "refused Idle" in str(refused.value)


# ---------------------------------------------------------------------- the example
@pytest.mark.parametrize("how", ["argv", "env"])
def test_the_example_agent_prints_how_its_run_went(ipc_base, how):
    args, env = [str(ROOT / "examples" / "my_agent.py")], dict(os.environ)
    if how == "argv":
        args.append(ipc_base)
    else:
        env["TICKWIRE_CONNECT"] = ipc_base
    with ServerThread(ipc_base, players=1, ticks=50) as server:
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, env=env)
        server.finish()
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"MyAgent \(player 0\): acted on 50 ticks, skipped 0; run ended at "
        r"tick 50 \(ticks done\); score \d+ \(all: \d+\)\n",
        done.stdout,
    )


# ---------------------------------------------------------------------- signals
def test_sigterm_to_a_playing_agent_leaves_cleanly_and_exits_zero(ipc_base, agent_process):
    with ServerThread(ipc_base, players=1, ticks=10_000_000) as server:
        agent = agent_process("steady", ipc_base, "30")
        assert agent.read_line() == "playing\n"
        agent.popen.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        assert "stopped (signal SIGTERM)" in agent.read_line()
        summary = server.finish()  # its only player left: the run ends
    assert summary["players"][0]["status"] == "left"


# SIGTERM ends with SystemExit(143); SIGINT with KeyboardInterrupt, which Python turns into
# death by SIGINT (shell status 130).
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, -signal.SIGINT)])
def test_a_signal_to_an_agent_spinning_in_act_ends_it_after_the_grace_period(
    ipc_base, agent_process, sig, code
):
    with ServerThread(ipc_base, players=1, ticks=10_000_000) as server:
        agent = agent_process("spin", ipc_base, "1")
        assert agent.read_line() == "spinning\n"
        sent = time.monotonic()
        agent.popen.send_signal(sig)
        assert agent.wait(10) == code
        assert time.monotonic() - sent < 8
        assert f"act() is still running 1 s after {sig.name}: interrupting it" in agent.stderr
        summary = server.finish()  # it sent LEAVE on the way out
    assert summary["players"][0]["status"] == "left"


def test_a_second_sigterm_interrupts_act_without_waiting_for_the_grace_period(ipc_base, agent_process):
    with ServerThread(ipc_base, players=1, ticks=10_000_000):
        agent = agent_process("spin", ipc_base, "60")
        assert agent.read_line() == "spinning\n"
        sent = time.monotonic()
        agent.popen.send_signal(signal.SIGTERM)
        while agent.popen.poll() is None and time.monotonic() - sent < 20:
            try:  # signals sent close together may coalesce into one: repeat until it exits
                agent.popen.wait(0.3)
            except subprocess.TimeoutExpired:
                agent.popen.send_signal(signal.SIGTERM)
        # 143: it exited by the interrupt's SystemExit. A repeat sent while it was already
        # exiting (a loaded machine: > 0.3 s) meets the default handler, put back on the way
        # out, and ends it as SIGTERM's default does (-15): the interrupt had worked all the same
        assert agent.wait(1) in (143, -signal.SIGTERM) and time.monotonic() - sent < 20
        assert "a second SIGTERM arrived while act() is running: interrupting it" in agent.stderr


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "field, flag", [("join_timeout_s", "--join-timeout"), ("server_timeout_s", "--server-timeout")]
)
def test_a_timeout_that_is_not_positive_is_refused_naming_the_flag(field, flag):
    with pytest.raises(ConfigError, match=f"^{field} \\({flag}\\) must be greater than 0 s, got 0$"):
        AgentConfig("tcp://127.0.0.1:5555", **{field: 0})
