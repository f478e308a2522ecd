"""Chief/worker with real processes: exactly-once delivery, deaths, failures, examples."""
import os
import signal
import subprocess
import sys

import numpy as np
import zmq

from sample_players import fail_after, flood
from server import Chief

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check_exactly_once(items, stats):
    by_worker = {}
    for it in items:
        by_worker.setdefault(it.worker, []).append(it.seq)
    for wid, w in stats.items():
        seqs = by_worker.get(wid, [])
        assert seqs == list(range(1, w.fin + 1)), f"worker {wid}: not 1..{w.fin} exactly once"
        assert w.received == w.fin and w.gaps == [] and w.duplicates == 0


def test_everything_sent_before_shutdown_arrives_exactly_once():
    with Chief() as chief:
        chief.spawn(flood, 3, args=(10**9,))
        seen = list(chief.items(limit=500))  # the consumer stops reading early...
        rest = chief.stop()                  # ...and the drain delivers the remainder
        stats = chief.stats()
    assert len(seen) == 500
    _check_exactly_once(seen + rest, stats)
    assert all(w.status == "finished" and w.exitcode == 0 for w in stats.values())
    assert sum(w.fin for w in stats.values()) == len(seen) + len(rest) > 500


def test_items_end_when_every_worker_has_finished():
    with Chief() as chief:
        chief.spawn(fail_after, 2, args=(25,))
        items = list(chief.items())
        stats = chief.stats()
    assert len(items) == 50
    _check_exactly_once(items, stats)
    for w in stats.values():
        assert w.status == "finished" and "worker gave up after 25 items" in w.error
        assert w.exitcode == 1  # the process re-raised after sending FIN


def test_a_killed_worker_is_reported_and_the_others_go_on():
    with Chief() as chief:
        a, b = chief.spawn(flood, 2, args=(10**9,))
        got = {a: 0, b: 0}
        for item in chief.items():
            got[item.worker] += 1
            if min(got.values()) >= 20:
                break
        os.kill(chief.pid(b), signal.SIGKILL)
        for _ in chief.items(timeout=0.05):
            if chief.stats()[b].status == "dead":
                break
        while chief.stats()[b].status != "dead":  # bounded: recv returns None after 10 s
            assert chief.recv(timeout=10) is not None or chief.stats()[b].status == "dead"
        rest = chief.stop()
        stats = chief.stats()
    assert stats[b].status == "dead" and stats[b].exitcode == -signal.SIGKILL
    assert stats[a].status == "finished" and stats[a].received == stats[a].fin
    assert rest is not None


def test_garbage_on_the_chiefs_socket_is_rejected_and_counted():
    with Chief() as chief:
        ctx = zmq.Context()
        s = ctx.socket(zmq.PUSH)
        s.linger = 0
        s.connect(chief.endpoints.actions)
        for frames in ([b"garbage"], [b"\x93\x01\x02\x03"], [b"\x81\xa1w\xa1x"]):
            s.send_multipart(frames)
        chief.spawn(fail_after, 1, args=(3,))
        assert len(list(chief.items())) == 3
        s.close()
        ctx.term()
        assert chief.rejected == 3


def _run_example(args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": ROOT})


def test_the_classic_chief_worker_example_runs_to_completion(tmp_path):
    out = _run_example([f"{ROOT}/examples/chief_worker.py"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "round 10:" in out.stdout and "round 11" not in out.stdout
    assert "nothing lost" in out.stdout and out.stdout.count("exit code 0") == 2


def test_the_rollouts_example_writes_an_npz(tmp_path):
    out = _run_example([f"{ROOT}/examples/rollouts.py", "--samples", "1000", "--out",
                        "r.npz"], tmp_path)
    assert out.returncode == 0, out.stderr
    data = np.load(tmp_path / "r.npz")
    n = len(data["action"])
    assert n >= 1000 and data["obs"].shape == (n, 256) and data["reward"].shape == (n,)
    assert set(np.unique(data["action"])) <= set(range(5))


def test_the_parallel_players_example_gives_the_same_actions(tmp_path):
    out = _run_example([f"{ROOT}/examples/parallel_players.py", "--ticks", "50",
                        "--work-ms", "0.5"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "same actions: yes" in out.stdout and "PlayerPool" in out.stdout
