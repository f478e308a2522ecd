"""The server's I/O loop around the rules, with its sockets replaced by an in-memory fake."""

from __future__ import annotations

from collections import deque

from tickwire.protocol import Action, Ready, encode
from tickwire.server.world_server.config import ServerConfig
from tickwire.server.world_server.loop import MAX_MESSAGES_PER_TURN, WorldServer
from tickwire.server.world_server.transport import ACTIONS
from tickwire.server.worlds.grid_world import GridWorld


class FakeSockets:
    """Stands in for ServerSockets: a queue of action frames, and a record of what was sent."""

    keyed = False
    last_user = None
    unproven = False  # every message comes on a connection already known (settle is not called)

    def __init__(self) -> None:
        self.actions: deque = deque()
        self.sent: list = []
        self.published: list = []

    def poll(self, timeout_ms: float) -> list[str]:
        return [ACTIONS] if self.actions else []

    def recv_action(self):
        return self.actions.popleft() if self.actions else None

    def recv_control(self):
        return None

    def recv_subscription(self):
        return None

    def publish(self, frames) -> None:
        self.published.append(frames)

    def send_control(self, identity: bytes, frames) -> None:
        self.sent.append((identity, frames))

    def close(self) -> None:
        pass


def _server(tmp_path) -> tuple[WorldServer, FakeSockets]:
    server = WorldServer(
        GridWorld(),
        ServerConfig(bind="inproc://loop-test", players=1, events_path=str(tmp_path / "events.jsonl")),
    )
    server.sockets.close()
    server.sockets = fake = FakeSockets()
    return server, fake


def test_one_loop_turn_handles_a_bounded_batch_of_a_flood(tmp_path):
    server, fake = _server(tmp_path)
    fake.actions.extend([b"junk"] for _ in range(3 * MAX_MESSAGES_PER_TURN))
    server._turn(0)
    assert len(fake.actions) == 2 * MAX_MESSAGES_PER_TURN  # the rest waits for the next turn
    assert server.rejected["malformed"] == MAX_MESSAGES_PER_TURN


def test_accepted_actions_send_nothing_and_rejected_ones_are_counted(tmp_path):
    server, fake = _server(tmp_path)
    rules = server.rules
    w = rules.roster.add(0, "p", b"id0")
    rules.receive_subscription(w.topic, True, 0.0)
    fake.actions.append(encode(Ready(rules.run_id, 0, w.token)))
    server._turn(0)
    server._start()
    rules.begin_tick(0, 0.0)
    fake.actions.extend(
        [encode(Action(rules.run_id, 0, 0, 1, w.token, 2)), encode(Action(rules.run_id, 0, 0, 2, w.token, 3))]
    )
    server._turn(0)
    assert rules.may_close(0.0) and fake.sent == []
    assert dict(server.rejected) == {"duplicate": 1}
    assert rules.close_tick(0.0).actions == {0: 2}


def test_an_undecodable_action_is_counted_under_its_codec_reason(tmp_path):
    server, fake = _server(tmp_path)
    fake.actions.append([b"\xc1"])  # never valid msgpack
    server._turn(0)
    assert dict(server.rejected) == {"malformed": 1} and fake.sent == []  # only counted
