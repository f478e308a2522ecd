"""The pool's and chief/worker's messages: typed, versioned, validated at decode (pure)."""

import subprocess
import sys
from dataclasses import dataclass, field
from typing import ClassVar

import msgpack
import numpy as np
import pytest
from tickwire.protocol import ProtocolError, messages, work
from tickwire.protocol.schema import compile_message
from tickwire.protocol.work import (
    WORK_KINDS,
    WORK_VERSION,
    HostFailed,
    HostResults,
    PoolCall,
    WorkEnd,
    WorkFin,
    WorkItem,
    decode_work,
    encode_work,
)


@pytest.mark.parametrize(
    "msg",
    [
        PoolCall("p1", 3, {"grid": np.arange(100_000, dtype=np.float32), "tick": 3}),
        HostResults("p1", 0, 3, [[0, True, 4], [1, False, "Traceback ..."]]),
        HostFailed("p1", 1, None, "ImportError: no module named x"),
        WorkItem(2, 7, {"x": [1, 2]}),
        WorkFin(2, 7),
        WorkFin(2, 7, "RuntimeError"),
        WorkEnd(),
    ],
)
def test_every_message_round_trips(msg):
    back = decode_work(encode_work(msg))
    assert type(back) is type(msg)
    if isinstance(msg, PoolCall):
        assert back.call == 3 and np.array_equal(back.state["grid"], msg.state["grid"])
    else:
        assert back == msg


def _raw(**fields):
    return [msgpack.packb(fields)]


def test_another_version_is_rejected_saying_what_to_do():
    with pytest.raises(ProtocolError, match="same tickwire version") as e:
        decode_work(_raw(v=WORK_VERSION + 1, kind="work.end"))
    assert e.value.reason == "version"


@pytest.mark.parametrize(
    "fields, text",
    [
        ({"kind": "pool.nope"}, "unknown work message kind"),
        ({"kind": "work.item", "worker": 1}, "lacks field 'seq'"),
        ({"kind": "work.item", "worker": 1, "seq": "2"}, "work.item.seq must be int, got str"),
        ({"kind": "work.item", "worker": True, "seq": 2}, "work.item.worker must be int, got bool"),
        ({"kind": "pool.results", "pool": "p", "host": 0, "call": 1, "results": {}}, "must be list"),
    ],
)
def test_malformed_messages_are_rejected_naming_the_field(fields, text):
    with pytest.raises(ProtocolError, match=text) as e:
        decode_work(_raw(v=WORK_VERSION, **fields))
    assert e.value.reason == "malformed"


def test_kinds_are_namespaced_by_role():
    assert all(k.startswith(("pool.", "work.")) for k in WORK_KINDS)


def test_the_work_protocol_does_not_import_zeromq():
    code = "import sys, tickwire.protocol.work; assert 'zmq' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


@dataclass(frozen=True)
class _Tagged:
    """A work message with a ``default_factory`` field (none of the real ones has one yet)."""

    KIND: ClassVar[str] = "work.tagged"
    worker: int
    tags: list = field(default_factory=list)
    note: str | None = None


def test_a_field_with_a_default_factory_may_be_absent_from_a_work_message(monkeypatch):
    # the work family's own tables, extended by one kind: decoded by work.from_map
    names, build = compile_message(_Tagged)
    monkeypatch.setitem(work.WORK_KINDS, _Tagged.KIND, _Tagged)
    monkeypatch.setitem(work._SCHEMAS, _Tagged.KIND, names)
    monkeypatch.setitem(work._BUILDERS, _Tagged.KIND, build)
    assert work.from_map({"v": WORK_VERSION, "kind": "work.tagged", "worker": 3}) == _Tagged(3, [])
    assert decode_work(encode_work(_Tagged(4, ["a"]))) == _Tagged(4, ["a"])
    with pytest.raises(ProtocolError, match="work.tagged message lacks field 'worker'"):
        work.from_map({"v": WORK_VERSION, "kind": "work.tagged", "tags": []})
    with pytest.raises(ProtocolError, match="work.tagged.tags must be list, got str"):
        work.from_map({"v": WORK_VERSION, "kind": "work.tagged", "worker": 1, "tags": "x"})


def test_both_message_families_are_compiled_by_the_one_compiler():
    # a float field takes an int, a nullable one nil, an int field never a bool: in both
    assert messages.decode(messages.encode(messages.Observation("r", 1, 0, reward=1))).reward == 1
    for build, obj in (
        (messages._BUILDERS["state"], {"run": "r", "tick": True}),
        (work._BUILDERS["work.item"], {"worker": True, "seq": 1}),
    ):
        with pytest.raises(ProtocolError, match="must be int, got bool"):
            build(obj)
    assert work._BUILDERS["work.fin"]({"worker": 1, "fin": 2, "error": None}) == WorkFin(1, 2)
