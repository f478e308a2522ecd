"""Builders for ServerRules specification tests: rules of a two-player run, joins, proofs
of readiness and actions, and readers of what the rules decided. No sockets, no clocks."""

from __future__ import annotations

from tickwire.protocol import Action, Join, Ready, Welcome, derive
from tickwire.protocol.server_rules import (
    InvalidAction,
    Lobby,
    Rejected,
    Rejection,
    SendTo,
    ServerRules,
    StatusChange,
)
from tickwire.server.world_server.config import ServerConfig

SPEC = {"type": "discrete", "n": 5}
NOOP = 0


def validate(action):
    """The action check of a world whose actions are ints 0..4."""
    if type(action) is not int or not 0 <= action < 5:
        raise InvalidAction(f"action {action!r} is not an int in 0..4")
    return action


def make_rules(**settings) -> ServerRules:
    """Rules of a two-player run (``settings`` override ServerConfig fields), not yet open."""
    cfg = ServerConfig(**{"bind": "inproc://rules", "players": 2, **settings})
    return ServerRules(
        cfg,
        "run1",
        describe=lambda: {"name": "Test", "action_spec": SPEC},
        validate=validate,
        noop=lambda: NOOP,
        endpoints=derive("ipc:///tmp/x/run"),
    )


def sent(outs) -> list:
    """The messages among the rules' outputs that go to one peer."""
    return [o.message for o in outs if isinstance(o, SendTo)]


def rejections(outs) -> list[Rejection]:
    """The reasons of the rejections among the outputs."""
    return [o.reason for o in outs if isinstance(o, Rejected)]


def changes(outs) -> list[tuple]:
    """(player, old, new) of each status change among the outputs."""
    return [(o.player, o.old, o.new) for o in outs if isinstance(o, StatusChange)]


def join(
    r: ServerRules, identity: bytes, name: str = "p", slot: int | None = None, now: float = 0.0
) -> Welcome:
    """``identity`` joins as ``name`` (in ``slot``) at ``now``; its Welcome."""
    (welcome,) = sent(r.receive_control(identity, Join(name, slot), now))
    assert isinstance(welcome, Welcome), welcome
    return welcome


def prove(r: ServerRules, w: Welcome) -> None:
    """The welcomed player subscribes and sends READY: it is proven ready."""
    r.receive_subscription(w.topic, True, 0.0)
    r.receive_action(Ready(w.run, w.player, w.token), now=0.0)


def started(n: int = 2, **settings) -> tuple[ServerRules, list[Welcome]]:
    """Rules of a run that has started with ``n`` ready players."""
    r = make_rules(players=n, **settings)
    r.open_lobby(0.0)
    ws = [join(r, f"id{i}".encode(), f"p{i}") for i in range(n)]
    for w in ws:
        prove(r, w)
    assert r.lobby(0.0) is Lobby.START
    r.start(0.0)
    return r, ws


def action(w: Welcome, tick: int, payload, **over) -> Action:
    """An ACTION from the welcomed player for ``tick``; ``over`` replaces fields."""
    fields = {
        "run": w.run,
        "tick": tick,
        "player": w.player,
        "seq": 1,
        "token": w.token,
        "payload": payload,
        **over,
    }
    return Action(**fields)


def act(r: ServerRules, w: Welcome, tick: int, payload, now: float = 0.0, **over) -> list:
    """The rules' outputs for the welcomed player's ACTION for ``tick`` at ``now``."""
    return r.receive_action(action(w, tick, payload, **over), now)
