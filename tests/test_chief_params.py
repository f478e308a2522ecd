"""Chief → workers parameter broadcast, and workers whose chief is killed: real processes."""

import logging
import os
import signal
import threading
import time

import msgpack
import numpy as np
import pytest
from support.param_workers import echo_params
from tickwire.agents import Worker
from tickwire.protocol import ProtocolError, TransportError
from tickwire.protocol.work import (
    CHIEF_GONE_S,
    WORK_VERSION,
    WorkItem,
    WorkParams,
    decode_work,
    encode_work,
)
from tickwire.server import Chief

N = 300_000  # 2.4 MB of int64: its own zero-copy frame (kept small: the suite shares one
#               process, and a later test measures that process's peak RSS)


def _expected(v):
    return {"sum": N * (N - 1) // 2 + N * v, "n": N, "b": [v, v, v]}


def _check(item):
    data = dict(item.data)
    assert data.pop("seen") == item.version, "an item must carry the version it was made with"
    assert data == _expected(item.version), f"version {item.version} arrived mixed or damaged"


def test_workers_see_whole_increasing_versions_and_items_carry_them():
    a, b = np.arange(N, dtype=np.int64), np.zeros(3, dtype=np.int64)
    seen: dict[int, list[int]] = {}
    with Chief() as chief:
        ids = chief.spawn(echo_params, 2)
        for _burst in range(8):
            for _ in range(3):  # three versions at once: a worker may skip some
                a += 1  # updated in place right after publishing:
                b += 1  # the snapshot keeps each version whole
                v = chief.publish_params({"a": a, "b": b})
            while any(seen.get(w, [0])[-1] < v for w in ids):
                item = chief.recv(timeout=30)
                assert item is not None, f"version {v} did not reach every worker: {seen}"
                _check(item)
                seen.setdefault(item.worker, []).append(item.version)
        assert chief.params_version == v == 24
        rest = chief.stop()
        stats = chief.stats()
    for item in rest:
        _check(item)
        seen[item.worker].append(item.version)
    for w in ids:
        assert seen[w] == sorted(set(seen[w])) and seen[w][-1] == 24, seen[w]
        assert stats[w].gaps == [] and stats[w].received == stats[w].fin == len(seen[w])


def test_a_late_worker_gets_the_current_version_then_the_next():
    with Chief() as chief:
        for v in range(1, 4):
            chief.publish_params({"a": np.arange(N, dtype=np.int64) + v, "b": np.full(3, v, dtype=np.int64)})
        (late,) = chief.spawn(echo_params, 1)
        first = chief.recv(timeout=30)
        assert first is not None and first.worker == late and first.version == 3
        _check(first)
        chief.publish_params({"a": np.arange(N, dtype=np.int64) + 4, "b": np.full(3, 4, dtype=np.int64)})
        second = chief.recv(timeout=30)
        assert second is not None and second.version == 4
        _check(second)


def test_an_external_worker_stamps_its_items_with_the_version_it_holds(ipc_base):
    with Chief(ipc_base) as chief:
        worker = Worker(chief.address, 9)
        try:
            assert worker.params is None and worker.params_version == 0
            worker.send("before")  # no parameters yet: version 0
            assert chief.recv(timeout=10).version == 0  # (the chief saw the subscription)
            chief.publish_params({"w": np.ones(4)})
            assert worker.wait_params(10)
            assert worker.params_version == 1 and worker.params["w"].tolist() == [1.0] * 4
            worker.send("after")
            item = chief.recv(timeout=10)
            assert (item.data, item.version) == ("after", 1)
        finally:
            closing = threading.Thread(target=worker.close)  # waits for the chief's ACK...
            closing.start()
            chief.stop(timeout=30)  # ...which the stopping chief sends
            closing.join(30)
    assert not closing.is_alive() and chief.stats()[9].status == "finished"


# --- the messages (pure) -------------------------------------------------------------------


def test_a_params_message_round_trips_with_its_arrays_as_frames():
    params = {"W": np.arange(N, dtype=np.int64).reshape(1000, -1), "b": np.ones(3)}
    frames = encode_work(WorkParams(5, params))
    assert len(frames) == 2  # the big array in its own frame; the small one inline
    back = decode_work(frames)
    assert back.version == 5 and np.array_equal(back.params["W"], params["W"])
    assert np.array_equal(back.params["b"], params["b"])


def test_an_item_without_a_version_is_version_0_and_a_bad_version_is_rejected():
    assert decode_work(encode_work(WorkItem(1, 1, "x"))).version == 0
    raw = {"v": WORK_VERSION, "kind": "work.item", "worker": 1, "seq": 1, "version": "3"}
    with pytest.raises(ProtocolError, match="work.item.version must be int, got str"):
        decode_work([msgpack.packb(raw)])
    with pytest.raises(ProtocolError, match="lacks field 'version'"):
        decode_work([msgpack.packb({"v": WORK_VERSION, "kind": "work.params"})])


# --- a worker whose chief is killed -----------------------------------------------------

CHIEF_SCRIPT = """
import sys, threading
from tickwire.server import Chief
chief = Chief(sys.argv[1])
item = chief.recv(timeout=30)
print("chief got", item.data, file=sys.stderr, flush=True)
threading.Event().wait(120)   # then reads nothing more: the worker's queue fills up
"""


def _worker_of_a_chief_process(procs, ipc_base):
    chief = procs(["-c", CHIEF_SCRIPT, ipc_base], name="chief")
    worker = Worker(ipc_base, 1, flush_timeout=60)
    worker.send("hello")
    chief.wait_for("chief got hello")
    assert worker.wait_params(0.2) is False and not worker.stopping  # the link is up: no stop
    return chief, worker


def test_a_killed_chief_ends_a_blocked_send_within_seconds(procs, ipc_base, caplog):
    chief, worker = _worker_of_a_chief_process(procs, ipc_base)
    os.kill(chief.pid, signal.SIGKILL)
    chief.wait(10)
    killed = time.monotonic()
    payload = np.zeros(10_000, dtype=np.uint8)
    with pytest.raises(TransportError, match="is gone"):
        for _ in range(100_000):  # the queue fills, then send waits: it must give up
            worker.send(payload, timeout=60)
    assert time.monotonic() - killed < 60 / 2, "send waited for its timeout, not the chief"
    assert worker.stopping and worker.chief_gone
    with caplog.at_level(logging.WARNING, logger="tickwire.agents.worker"):
        start = time.monotonic()
        worker.close()
        assert time.monotonic() - start < CHIEF_GONE_S + 5
    assert any("went away before confirming" in r.getMessage() for r in caplog.records)


def test_a_killed_chief_ends_close_and_wait_stopping_within_seconds(procs, ipc_base, caplog):
    chief, worker = _worker_of_a_chief_process(procs, ipc_base)
    os.kill(chief.pid, signal.SIGKILL)
    start = time.monotonic()
    assert worker.wait_stopping(60) is True  # the producer loop's pacing wait wakes up
    assert time.monotonic() - start < 30
    with caplog.at_level(logging.WARNING, logger="tickwire.agents.worker"):
        worker.close()  # its FIN can never be confirmed
    assert time.monotonic() - start < 30
    assert any("went away before confirming" in r.getMessage() for r in caplog.records)


def test_a_frozen_chief_is_taken_for_gone_after_its_heartbeat_timeout(procs, ipc_base):
    chief, worker = _worker_of_a_chief_process(procs, ipc_base)
    os.kill(chief.pid, signal.SIGSTOP)  # alive, accepts connections, answers nothing
    try:
        start = time.monotonic()
        assert worker.wait_stopping(60) is True  # heartbeat timeout (4 s) + CHIEF_GONE_S
        assert worker.chief_gone and time.monotonic() - start < 30
        worker.close()
    finally:
        os.kill(chief.pid, signal.SIGKILL)
