"""What PROTOCOL.md tells an agent written in another language, checked against the code."""

from __future__ import annotations

import msgpack
import pytest
from support.raw_player import RawPlayer
from support.summaries import player
from tickwire.protocol import Action, Error, Join, ProtocolError, decode, encode


def _decode(obj, *frames: bytes):
    return decode([msgpack.packb(obj), *frames])


def test_slot_and_capabilities_may_be_omitted():
    assert _decode({"v": 1, "kind": "join", "name": "c"}) == Join("c", None, {})


@pytest.mark.parametrize(
    "obj, frames, reason",
    [
        ({"v": 1, "kind": "join", "name": "c", "capabilities": None}, (), "malformed"),
        ({"v": 1, "kind": "join", "name": "c", "slot": True}, (), "malformed"),
        ({"v": 1, "kind": "teleport"}, (), "malformed"),
        ({"v": 1, "kind": "state", "run": "r", "tick": 0}, (b"unreferenced",), "malformed"),
        ({"kind": "join", "name": "c"}, (), "version"),
        ([1, 2], (), "malformed"),
    ],
)
def test_what_the_decoder_rejects_and_why(obj, frames, reason):
    with pytest.raises(ProtocolError) as e:
        _decode(obj, *frames)
    assert e.value.reason == reason


def test_a_lower_seq_is_accepted_and_a_corrected_action_replaces_an_invalid_one(procs, ipc_base, zctx):
    server = procs(
        ["-m", "tickwire", "server", "--bind", ipc_base, "--players", "2", "--ticks", "2", "--json", "-q"],
        name="server",
    )
    p1, p2 = RawPlayer(zctx, ipc_base, "c1"), RawPlayer(zctx, ipc_base, "c2")
    w1, _ = p1.join(), p2.join()
    assert p1.next_state().tick == 0 and p2.next_state().tick == 0
    p1.act(0, 99)  # invalid: ERROR, but the tick stays open (p2 awaited)
    assert isinstance(err := p1.control(), Error) and err.code == "invalid_action"
    p1.push.send_multipart(encode(Action(w1.run, 0, w1.player, 0, w1.token, 1)))  # seq 0 < 1
    p1.push.send_multipart(p2.action(0, 0))  # same connection: arrives after the correction
    assert p1.next_state().tick == 1 and p2.next_state().tick == 1
    p1.act(1, 0)
    p2.act(1, 0)
    s = server.json()
    assert s["rejected"] == {"invalid_action": 1}
    assert player(s, w1.player)["answered"] == 2 and player(s, w1.player)["missed"] == 0
