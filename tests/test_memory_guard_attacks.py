"""The memory guard against a real server process, where a cheaper guard could be evaded:
a server whose own memory grew (as a big run's does) with an attacker on top, and an attacker
that brings its many-frame message slowly, in bursts with pauses.

Memory is the server's own peak RSS (``VmHWM``) over its level just before the attack."""

from __future__ import annotations

import struct
import time

import pytest
from support.events import event, wait_event
from support.processes import rss_mb
from support.raw_zmtp import zmtp
from support.summaries import accounted

SERVER = ["-m", "tickwire.server"]
AGENT = ["-m", "tickwire.agents"]
MB = 1024 * 1024
GROW_MB = 40  # the world's own growth: over the watch level (ipc 16 MB, tcp 32 MB), under 64


def _server(procs, tmp_path, transport: str, ticks: int):
    """A server of two slow players (100 ms a tick) in a world that grows by ``GROW_MB`` at its
    second step; (server, endpoints, events file, its RSS once the world has grown)."""
    events = tmp_path / "events.jsonl"
    bind = "tcp://127.0.0.1:0" if transport == "tcp" else f"ipc://{tmp_path}/tw"
    server = procs(
        [
            *SERVER,
            "--bind",
            bind,
            "--json",
            "-q",
            "--events",
            str(events),
            "--world",
            "support.growing_world:GrowingWorld",
            "--players",
            "2",
            "--ticks",
            str(ticks),
        ],
        name="server",
        env={"TICKWIRE_GROW_MB": str(GROW_MB)},
    )
    eps = wait_event(events, event("listening"), server)
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
            env={"TICKWIRE_SLOW_MS": "100"},
        )
        for i in range(2)
    ]
    wait_event(events, event("started"), server)
    start = rss_mb(server.pid)
    deadline = time.monotonic() + 30
    while rss_mb(server.pid) < start + GROW_MB * 0.9:  # the world's own growth, no peer's
        assert time.monotonic() < deadline, "the world did not grow within 30 s"
        assert server.popen.poll() is None, server.stderr
        time.sleep(0.05)
    return server, eps, events, agents


def _many_frames(endpoint: str, frames: int, size: int, burst: int, pause_s: float) -> bool:
    """One message of ``frames`` frames of ``size`` bytes on a raw PUSH connection, sent
    ``burst`` frames at a time with ``pause_s`` between bursts; True if all of it was sent,
    False once the server cut the link."""
    s = zmtp(endpoint, b"PUSH")
    head = b"\x03" + struct.pack(">Q", size)
    frame = head + b"\x00" * size
    try:
        for sent in range(0, frames - 1, burst):
            s.sendall(frame * min(burst, frames - 1 - sent))
            if pause_s:
                time.sleep(pause_s)  # the attacker's pacing, not a synchronisation
        s.sendall(b"\x02" + head[1:] + b"\x00" * size)  # the last frame
        complete = True
    except OSError:  # the server cut the link
        complete = False
    s.close()
    return complete


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_an_attacker_on_top_of_memory_the_server_grew_by_itself_is_cut(procs, tmp_path, transport):
    """The world's own 40 MB keep the server over the guard's watch level for the rest of the
    run (as a 1,000-player server's roster and queues do): that is no reason to cut anyone,
    and no cover for a peer that brings more."""
    server, eps, events, agents = _server(procs, tmp_path, transport, ticks=40)
    before = rss_mb(server.pid)
    # 2,000 frames × 200 KiB, each under the actions cap: 400 MB if the server held it all
    assert not _many_frames(eps["actions"], 2000, 200 * 1024, burst=1, pause_s=0)
    grown = rss_mb(server.pid, "VmHWM") - before
    cut = wait_event(events, event("memory_guard"), server)
    summary = server.json()
    print(f"{transport}: server peak RSS +{grown:.0f} MB over its own {GROW_MB} MB, cut {cut}")
    assert grown < 150, f"the message added {grown:.0f} MB to the server's peak RSS"
    assert cut["socket"] == "actions", cut
    assert summary["rejected"] == {"memory_guard": 1}  # the attacker, and no honest player
    for p in summary["players"]:
        assert p["answered"] == 40 and p["missed"] == 0 and accounted(p) == 40, p
    for a in agents:
        assert a.wait(15) == 0, a.stderr


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_an_attacker_that_brings_its_message_in_bursts_with_pauses_is_cut(procs, tmp_path, transport):
    """One 200 KiB frame at a time, then a pause of 100 ms (~2 MB/s): memory climbs in small
    steps with calm between them, over seconds. A guard that forgot what it had seen, or
    moved its baseline, whenever memory was calm for a while would let the message grow the
    server without bound; over ipc, one that sampled the connections only once memory had
    climbed (the step's bytes already read by then), or sparsely while it climbed slowly,
    let the message grow the server by ~280 MB, or past this test's bound."""
    server, eps, events, _ = _server(procs, tmp_path, transport, ticks=300)
    before = rss_mb(server.pid)
    assert not _many_frames(eps["actions"], 2000, 200 * 1024, burst=1, pause_s=0.1)
    grown = rss_mb(server.pid, "VmHWM") - before
    cut = wait_event(events, event("memory_guard"), server)
    print(f"{transport}: server peak RSS +{grown:.0f} MB over its own {GROW_MB} MB, cut {cut}")
    assert grown < 150, f"the message added {grown:.0f} MB to the server's peak RSS"
    assert cut["socket"] == "actions", cut
