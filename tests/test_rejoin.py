"""Rejoin, no stalled ticks, prompt lobby cleanup and launcher hygiene: real processes and
real sockets (issue 9, items 1, 4 and 5). Every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from support.events import event, wait_event
from support.raw_player import RawPlayer
from support.servers import wait_tick
from support.summaries import accounted, player

SERVER = ["-m", "tickwire.server"]
AGENT = ["-m", "tickwire.agents"]


def test_an_agent_killed_mid_run_is_replaced_by_a_new_process_that_takes_its_slot_back(
    procs, ipc_base, zctx, tmp_path
):
    ticks, events = 4000, tmp_path / "events.jsonl"
    server = procs(
        [
            *SERVER,
            "--bind",
            ipc_base,
            "--players",
            "3",
            "--ticks",
            str(ticks),
            "--json",
            "--events",
            str(events),
        ],
        name="server",
    )
    agents = [procs([*AGENT, "--connect", ipc_base, "--slot", str(i)], name=f"a{i}") for i in range(3)]
    wait_tick(zctx, ipc_base, 50)
    victim = 1
    agents[victim].popen.send_signal(signal.SIGKILL)
    wait_event(events, event("player", id=victim, new="dead"), server)
    # an impostor cannot take a live slot
    live = next(i for i in range(3) if i != victim)
    impostor = procs([*AGENT, "--connect", ipc_base, "--slot", str(live)], name="impostor")
    assert impostor.wait(30) != 0 and "slot_taken" in impostor.stderr
    procs([*AGENT, "--connect", ipc_base, "--slot", str(victim)], name="again")
    wait_event(
        events,
        lambda e: (
            e["event"] == "player" and e["id"] == victim and e["old"] == "ready" and e["new"] == "active"
        ),
        server,
    )
    s = server.json(timeout=120)
    assert s["reason"] == "ticks done" and all(p["status"] == "active" for p in s["players"])
    back = player(s, victim)
    assert back["rejoins"] == 1 and back["dead"] > 0 and back["answered"] > 50
    assert all(accounted(p) == ticks for p in s["players"]), s["players"]
    assert s["rejected"].get("slot_taken") == 1


def test_the_sdk_rejoins_a_new_server_at_the_same_address_asking_for_its_old_slot(procs, ipc_base, zctx):
    first = procs([*SERVER, "--bind", ipc_base, "--players", "2", "--ticks", "100000"], name="first")
    agents = [
        procs([*AGENT, "--connect", ipc_base, "--slot", str(i), "--json"], name=f"a{i}") for i in (1, 0)
    ]
    wait_tick(zctx, ipc_base, 20)
    first.kill()  # kill -9: a new server with a new run id comes up at the same address
    second = procs([*SERVER, "--bind", ipc_base, "--players", "2", "--ticks", "200", "--json"], name="second")
    s = second.json(timeout=60)
    assert s["run"] and s["reason"] == "ticks done"
    assert [p["answered"] for p in s["players"]] == [200, 200]
    for a, slot in zip(agents, (1, 0)):
        assert a.wait(30) == 0, a.stderr[-2000:]
        (result,) = json.loads(a.stdout)["agents"]
        assert result["player"] == slot and result["reason"] == "end: ticks done"
        assert "rejoined as player" in a.stderr and result["rejoins"] == 1


def test_an_oversized_message_then_a_valid_action_on_one_push_socket_never_stalls_a_strict_tick(
    procs, ipc_base, zctx
):
    server = procs([*SERVER, "--bind", ipc_base, "--players", "2", "--ticks", "3", "--json"], name="server")
    p1, p2 = RawPlayer(zctx, ipc_base, "raw1"), RawPlayer(zctx, ipc_base, "raw2")
    p1.join(), p2.join()

    def next_tick(p: RawPlayer, tick: int) -> None:
        while (state := p.next_state()).tick < tick:  # tick 0 is published again (asked again)
            pass
        assert state.tick == tick

    for tick in range(3):
        next_tick(p1, tick)
        next_tick(p2, tick)
        if tick == 0:  # over the 64 MiB limit: the server cuts p1's actions connection
            p1.push.send_multipart([b"\x00" * (64 * 1024 * 1024 + 1)])
        p1.act(tick, 0)
        p2.act(tick, 0)
    s = server.json(timeout=60)
    assert s["ticks"] == 3 and s["reason"] == "ticks done"
    assert s["rejected"].get("dropped_connection") == 1, s["rejected"]
    assert all(accounted(p) == 3 for p in s["players"])


def test_an_agent_killed_in_setup_frees_its_lobby_slot_within_seconds(procs, ipc_base, tmp_path):
    events = tmp_path / "events.jsonl"
    server = procs(
        [
            *SERVER,
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--ticks",
            "20",
            "--json",
            "--lobby-timeout",
            "60",
            "--events",
            str(events),
        ],
        name="server",
    )
    stuck = procs(
        [*AGENT, "--connect", ipc_base, "--agent", "support.sample_agents:StuckInSetup"], name="stuck"
    )
    wait_event(events, event("player", new="joined"), server)
    stuck.popen.send_signal(signal.SIGKILL)
    wait_event(events, event("player", old="joined", new="dead"), server, timeout=10)
    for i in range(2):
        procs([*AGENT, "--connect", ipc_base], name=f"a{i}")
    s = server.json(timeout=60)
    assert s["reason"] == "ticks done" and [p["answered"] for p in s["players"]] == [20, 20]


def _agents_of(tmpdir: Path) -> list[int]:
    """Live processes started with TMPDIR=tmpdir: the run itself and its children."""
    needle = f"TMPDIR={tmpdir}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_tickwire_run_stopped_in_its_first_second_leaves_no_agent_and_no_ipc_directory(tmp_path):
    # SIGTERM as soon as the ipc directory exists (before the agents do); SIGKILL as soon
    # as the agent processes exist (before they could arm their parent-death signal)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        tmpdir = tmp_path / sig.name
        tmpdir.mkdir()
        env = {**os.environ, "TMPDIR": str(tmpdir)}
        run = subprocess.Popen(
            [sys.executable, "-m", "tickwire", "run", "--agents", "4", "--ticks", "100000"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = (
            (lambda: any(tmpdir.iterdir()))
            if sig is signal.SIGTERM
            else (lambda: set(_agents_of(tmpdir)) - {run.pid})
        )
        try:
            while not started() and run.poll() is None:
                try:
                    run.wait(0.01)
                except subprocess.TimeoutExpired:
                    pass
            run.send_signal(sig)
            run.wait(15)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(5)
        gone = _wait_gone(tmpdir, 10)
        left = _agents_of(tmpdir)
        for pid in left:  # leave nothing behind, even when failing
            os.kill(pid, signal.SIGKILL)
        assert gone, f"agents still running 10 s after {sig.name}: {left}"
        if sig is signal.SIGTERM:
            assert run.returncode != 0 and list(tmpdir.iterdir()) == []


def _wait_gone(tmpdir: Path, timeout: float) -> bool:
    """True once no process of the run is alive (bounded by ``timeout``)."""
    import time

    deadline = time.monotonic() + timeout
    while _agents_of(tmpdir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling /proc: there is nothing to block on for foreign processes
    return True
