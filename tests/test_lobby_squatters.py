"""Squatters in the lobby: peers that JOIN but never prove readiness hold every slot.

The server's ``full`` then carries ``retry_ms`` (their slots are freed after
``--ready-timeout``), and the agent SDK JOINs again by itself until its join timeout,
instead of giving up at once with "start the server with a larger --players".
"""

from __future__ import annotations

import json

import zmq
from test_server_rules import join, make_rules, prove, sent
from tickwire.protocol import Error, Join, Welcome, decode, derive, encode


# ---------------------------------------------------------------------- the server's rules
def test_full_with_unready_joiners_says_when_a_slot_may_be_freed():
    r = make_rules(players=2, ready_timeout_s=5.0, lobby_timeout_s=600.0)
    r.open_lobby(0.0)
    join(r, b"squatter1", now=100.0)
    join(r, b"squatter2", now=101.0)
    (err,) = sent(r.receive_control(b"agent", Join("agent"), 103.0))
    assert isinstance(err, Error) and err.code == "full"
    assert err.retry_ms == 2000  # the first squatter's slot is freed 5 s after its JOIN
    assert "2 of them by players that joined but have not proved readiness" in err.text
    assert "JOIN again in 2.0 s" in err.text and "--ready-timeout" in err.text
    assert r.rejected["full"] == 1


def test_full_with_every_player_ready_has_no_retry():
    r = make_rules(players=2, ready_timeout_s=5.0)
    prove(r, join(r, b"a", now=100.0))
    squatter = join(r, b"b", now=100.0)
    (err,) = sent(r.receive_control(b"c", Join("c"), 100.0))
    assert err.retry_ms == 5000  # one joiner not ready yet: a retry is offered
    prove(r, squatter)
    (err,) = sent(r.receive_control(b"d", Join("d"), 100.0))
    assert err.code == "full" and err.retry_ms is None and "larger --players" in err.text


def test_an_error_without_retry_ms_decodes_as_before():
    import msgpack

    old = decode([msgpack.packb({"v": 1, "kind": "error", "code": "full", "text": "t"})])
    assert old == Error("full", "t") and old.retry_ms is None
    assert decode(encode(Error("full", "t", "r", 250))).retry_ms == 250


# ---------------------------------------------------------------------- real processes
def _squat(ctx: zmq.Context, base: str, n: int) -> list[tuple[zmq.Socket, Welcome]]:
    """``n`` raw peers that JOIN and never subscribe or send READY: (socket, WELCOME) each.
    Their sockets stay open (a closed control connection would free the slot at once)."""
    squatters = []
    for i in range(n):
        dealer = ctx.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.connect(derive(base).control)
        dealer.send_multipart(encode(Join(f"squatter{i}")))
        assert dealer.poll(30_000), "no answer to a squatter's JOIN"
        welcome = decode(dealer.recv_multipart())
        assert isinstance(welcome, Welcome), welcome
        squatters.append((dealer, welcome))
    return squatters


def test_an_agent_waits_for_squatted_slots_and_the_run_starts_when_they_are_freed(procs, ipc_base, zctx):
    """Two squatters hold both slots of a 2-player lobby (ready timeout 5 s); two real agents
    arriving then are told ``full`` with retry_ms, wait, JOIN again, and play the run once
    the squatters' slots are freed (the old agent gave up at once with exit 5, and the
    server's lobby timed out)."""
    server = procs(
        [
            "-m",
            "tickwire",
            "server",
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--ticks",
            "5",
            "--ready-timeout",
            "5",
            "--lobby-timeout",
            "60",
            "--json",
            "-q",
        ],
        name="server",
    )
    squatters = _squat(zctx, ipc_base, 2)
    assert sorted(w.player for _, w in squatters) == [0, 1]
    agents = procs(
        ["-m", "tickwire", "agent", "--connect", ipc_base, "--count", "2", "--join-timeout", "30", "--json"],
        name="agents",
    )
    agents.wait_for("the server is full for now", 60)  # it came while the slots were held
    summary = server.json(120)
    assert summary["ticks"] == 5 and summary["reason"] == "ticks done"
    assert summary["rejected"]["full"] >= 2  # each agent was refused at least once
    assert sorted(p["answered"] for p in summary["players"]) == [5, 5]
    assert agents.wait(60) == 0, agents.stderr[-2000:]
    out = json.loads(agents.stdout)
    assert [a["ticks"] for a in out["agents"]] == [5, 5]
    assert "the server is full for now" in agents.stderr
    assert "have not proved readiness" in agents.stderr
