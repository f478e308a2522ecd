"""Builders for AgentRules specification tests: rules hosting N players at ``now = T0``,
welcomes and states from the server, and a reader of the messages the rules send."""

from __future__ import annotations

from tickwire.protocol import State, Welcome, derive
from tickwire.protocol.agent_rules import AgentRules, Send

T0 = 100.0
RUN = "run1"
EPS = derive("tcp://127.0.0.1:5555")


def rules(
    n: int = 1, slot: int | None = None, join_timeout_s: float = 60.0, server_timeout_s: float = 10.0
) -> AgentRules:
    """Rules hosting ``n`` players (p0, p1, ...) created at T0."""
    return AgentRules(
        [f"p{i}" for i in range(n)],
        EPS,
        now=T0,
        slot=slot,
        join_timeout_s=join_timeout_s,
        server_timeout_s=server_timeout_s,
    )


def welcome(player: int, run: str = RUN) -> Welcome:
    """The server's WELCOME for ``player``."""
    return Welcome(
        run=run,
        player=player,
        name=f"p{player}",
        seed=7,
        token=f"tok{player}",
        topic=f"tw.{run}.{player}".encode(),
        mode="strict",
        deadline_ms=None,
        ticks=100,
        players=4,
    )


def playing(n: int = 1, **kw) -> AgentRules:
    """Rules with every hosted player welcomed and READY sent, at T0."""
    r = rules(n, **kw)
    r.due(T0)
    for i in range(n):
        r.control_received(i, welcome(10 + i), T0)
    assert r.playing
    return r


def state(tick: int, run: str = RUN) -> State:
    """The STATE of ``tick``."""
    return State(run, tick, {"tick": tick})


def sends(decisions: list) -> list:
    """The messages the decisions send."""
    return [d.message for d in decisions if isinstance(d, Send)]
