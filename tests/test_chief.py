"""Chief/worker with real processes: exactly-once delivery, deaths, failures, examples."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import zmq
from support.sample_players import fail_after, flood
from tickwire.agents import Worker
from tickwire.protocol import TickwireError
from tickwire.protocol.work import WorkFin, WorkItem
from tickwire.server import Chief
from tickwire.server.work.chief import Ledger

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
        rest = chief.stop()  # ...and the drain delivers the remainder
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
        seen = []
        for item in chief.items():
            seen.append(item)
            if min(sum(i.worker == w for i in seen) for w in (a, b)) >= 20:
                break
        os.kill(chief.pid(b), signal.SIGKILL)
        while chief.stats()[b].status != "dead":  # bounded: recv returns None after 10 s
            item = chief.recv(timeout=10)
            assert item is not None or chief.stats()[b].status == "dead"
            if item is not None:
                seen.append(item)
        rest = chief.stop()
        stats = chief.stats()
    assert stats[b].status == "dead" and stats[b].exitcode == -signal.SIGKILL
    assert stats[a].status == "finished" and stats[a].received == stats[a].fin
    got = seen + rest
    # the survivor's items all arrived, exactly once; the killed one's arrived in order up to its death
    assert [i.seq for i in got if i.worker == a] == list(range(1, stats[a].fin + 1))
    assert [i.seq for i in got if i.worker == b] == list(range(1, stats[b].received + 1))
    assert stats[b].received >= 20 and stats[b].fin is None


def test_garbage_on_the_chiefs_socket_is_rejected_and_counted():
    with Chief() as chief:
        ctx = zmq.Context()
        s = ctx.socket(zmq.PUSH)
        s.linger = 0
        s.connect(chief.endpoints.actions)
        for frames in (
            [b"garbage"],
            [b"\x93\x01\x02\x03"],
            [b"\x81\xa1w\xa1x"],
            [b"\x82\xa1w\x00\xa3seq\xa1x"],
            [b"\x82\xa1w\x00\xa3fin\x90"],
        ):
            s.send_multipart(frames)
        chief.spawn(fail_after, 1, args=(3,))
        assert len(list(chief.items())) == 3
        s.close()
        ctx.term()
        assert chief.rejected == 5


def test_a_worker_whose_chief_is_gone_gives_up_at_once_not_after_its_flush_timeout(caplog):
    chief = Chief()
    worker = Worker(chief.address, 7, flush_timeout=60)
    try:
        worker.send("x")
        assert chief.recv(timeout=10).data == "x"  # the data link is up...
        for _ in range(50):  # ...and the chief's END reaches us
            with pytest.raises(TickwireError):
                chief.stop(timeout=0.2)  # (END sent; our FIN is not: it times out)
            if worker.stopping:
                break
        assert worker.stopping
        chief.close(timeout=0.5)  # the chief goes away without our FIN
        worker.close()  # waits for no confirmation that can't come
    finally:
        chief.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "tickwire.agents.worker"]
    assert any("went away before confirming" in m for m in messages), messages


def _run_example(args, cwd):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_the_classic_chief_worker_example_runs_to_completion(tmp_path):
    out = _run_example([f"{ROOT}/examples/chief_worker.py"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "round 10:" in out.stdout and "round 11" not in out.stdout
    assert "nothing lost" in out.stdout and out.stdout.count("exit code 0") == 2


def test_the_rollouts_example_writes_an_npz(tmp_path):
    out = _run_example([f"{ROOT}/examples/rollouts.py", "--samples", "1000", "--out", "r.npz"], tmp_path)
    assert out.returncode == 0, out.stderr
    data = np.load(tmp_path / "r.npz")
    n = len(data["action"])
    assert n >= 1000 and data["obs"].shape == (n, 256) and data["reward"].shape == (n,)
    assert set(np.unique(data["action"])) <= set(range(5))


def test_the_parallel_players_example_gives_the_same_actions(tmp_path):
    out = _run_example(
        [f"{ROOT}/examples/parallel_players.py", "--ticks", "50", "--work-ms", "0.5"], tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "same actions: yes" in out.stdout and "PlayerPool" in out.stdout


def test_the_a3c_example_learns_cartpole_and_loses_nothing(tmp_path):
    pytest.importorskip("gymnasium")
    out = _run_example(
        [f"{ROOT}/examples/a3c_cartpole.py", "--target", "150", "--episodes", "1500", "--time-limit", "45"],
        tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nothing lost" in out.stdout and "LOST" not in out.stdout
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("mean return of the last 20 episodes: "), out.stdout
    assert float(last.split(": ")[1]) >= 100, out.stdout  # a random policy scores ~22


# --- the ledger's rules, with an explicit clock (pure unit: no processes) ----------------


def _item(w, seq):
    return WorkItem(w, seq, seq)


def test_ledger_an_exited_workers_backlog_keeps_it_alive_until_its_fin():
    """The CI race: the process exited long ago, but its items still stream in behind a
    backlog. Silence, not time since exit, is what makes a worker dead."""
    led = Ledger(grace=2.0)
    led.on_exit(0, 0, now=0.0)
    for t in range(1, 50):  # 49 s of draining, never 2 s apart
        assert led.on_message(_item(0, t), now=float(t)) is not None
        led.expire(now=t + 1.9)
        assert led.workers[0].status == "running"
    led.on_message(WorkFin(0, 49), now=50.0)
    led.expire(now=100.0)
    assert led.workers[0].status == "finished" and led.workers[0].fin == 49
    assert led.all_done()


def test_ledger_an_exited_worker_silent_past_the_grace_is_dead():
    led = Ledger(grace=2.0)
    led.on_message(_item(0, 1), now=0.0)
    led.on_exit(0, 0, now=1.0)
    led.expire(now=2.9)
    assert led.workers[0].status == "running"
    led.expire(now=3.1)
    assert led.workers[0].status == "dead" and led.all_done()


def test_ledger_a_killed_worker_is_dead_at_once_and_a_dropped_link_can_come_back():
    led = Ledger(grace=2.0)
    led.worker(0), led.worker(1)
    led.on_exit(0, -9, now=0.0)
    assert led.workers[0].status == "dead"
    led.on_unsubscribe(1, now=0.0)  # link lost, process still running
    led.on_message(_item(1, 1), now=1.0)  # ...and it talks again: not gone
    led.expire(now=10.0)
    assert led.workers[1].status == "running"
    led.on_unsubscribe(1, now=10.0)
    led.expire(now=12.5)
    assert led.workers[1].status == "dead"
    assert led.on_message(_item(1, 2), now=13.0) is not None  # reconnected
    assert led.workers[1].status == "running"


def test_ledger_counts_gaps_and_drops_duplicates():
    led = Ledger()
    assert [led.on_message(_item(0, s), now=0.0) is not None for s in (1, 2, 2, 5, 3)] == [
        True,
        True,
        False,
        True,
        False,
    ]
    w = led.workers[0]
    assert (w.received, w.last_seq, w.gaps, w.duplicates) == (3, 5, [(3, 5)], 2)
