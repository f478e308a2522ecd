"""Subscriptions on the state socket, measured from outside: a peer that subscribes to many
distinct topics the server does not use is cut before it grows the server's memory.

Each distinct subscription stays in libzmq's XPUB trie (~9 KB for a 192-byte topic) until its
connection closes; the per-frame cap bounds each one, not their number. The attacker speaks
raw ZMTP as a SUB (as ``tests/test_security.py`` does) and reconnects whenever it is cut.
"""
from __future__ import annotations

import os

from conftest import accounted
from test_security import AGENT, rss_mb, start_server, wait_run, zmtp

from tickwire.server.transport import SocketOptions

TOPIC_BYTES = 192
BATCH = 256  #: subscriptions per sendall


def _subscribe_flood(endpoint: str, total: int, server) -> tuple[int, int]:
    """Send ``total`` subscriptions to distinct random topics over raw ZMTP SUB connections,
    opening a new one each time the server cuts the last; stops early if ``server`` exits.
    Returns (subscriptions sent, connections used)."""
    sent = connections = 0
    while sent < total and server.popen.poll() is None:
        s = zmtp(endpoint, b"SUB")
        connections += 1
        try:
            while sent < total:
                n = min(BATCH, total - sent)
                s.sendall(b"".join(b"\x00" + bytes([TOPIC_BYTES + 1]) + b"\x01"
                                   + os.urandom(TOPIC_BYTES) for _ in range(n)))
                sent += n
        except OSError:  # cut (reset, broken pipe) or stalled: the server stopped reading it
            pass
        finally:
            s.close()
    return sent, connections


def test_a_flood_of_distinct_subscriptions_is_cut_and_costs_little_memory(procs, tmp_path):
    # strict ticks of agents that take 100 ms each: the run outlasts the flood
    ticks = 40
    server, eps, events = start_server(procs, tmp_path, "--players", "2", "--ticks", str(ticks))
    agents = [procs([*AGENT, "--connect", eps["base"], "--name", f"a{i}", "--agent",
                     "tickwire.agents.examples.slow_agent:SlowAgent"], name=f"a{i}",
                    env={"TICKWIRE_SLOW_MS": "100"}) for i in range(2)]
    wait_run(events, server)
    before = rss_mb(server.pid)
    sent, connections = _subscribe_flood(eps["state"], 60_000, server)
    grown = rss_mb(server.pid, "VmHWM") - before
    summary = server.json()
    print(f"{sent} subscriptions over {connections} connections: server peak RSS "
          f"+{grown:.0f} MB, rejected {summary['rejected']}")
    assert sent == 60_000, f"the run ended before the flood did ({sent} sent)"
    assert grown < 100, f"{sent} subscriptions added {grown:.0f} MB to the server's peak RSS"
    unknown = summary["rejected"].get("unknown_topic", 0)
    assert unknown > SocketOptions().max_unknown_subscriptions, summary["rejected"]
    assert connections > 1  # each connection was cut, the attacker had to come back
    assert summary["reason"] == "ticks done", summary
    for p in summary["players"]:
        assert p["answered"] == ticks and p["missed"] == 0 and accounted(p) == ticks, p
    for a in agents:
        assert a.wait(15) == 0, a.stderr

