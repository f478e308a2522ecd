"""The run record: snapshots, framing, torn tails, damaged checkpoints, resume and replay (files only)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import stderr_on_a_terminal
from tickwire.protocol.errors import RecordError, ReplayMismatch
from tickwire.server.record.log import (
    FRAME_HEADER,
    Recorder,
    RunReader,
    checkpoint_path,
    log_path,
    read_frames,
    read_run,
    record_logs,
    refuse_existing_record,
    run_header,
)
from tickwire.server.record.replay import replay_run, restore_run
from tickwire.server.world_server.config import ServerConfig
from tickwire.server.worlds.grid_world import GridWorld
from tickwire.server.worlds.snapshot import SnapshotError, restore_state, snapshot_state
from tickwire.server.worlds.world import World

PLAYERS = 3


def _actions(tick: int) -> dict[int, int]:
    return {p: (tick * 7 + p * 3) % 5 for p in range(PLAYERS)}


def _statuses(tick: int) -> dict[int, str]:
    return {0: "active", 1: "active", 2: "dead" if 10 <= tick < 15 else "active"}


def _record(
    directory: Path,
    ticks: int,
    checkpoint_every: int = 0,
    seed: int = 4,
    tamper_at: int | None = None,
    planned: int = 100,
) -> str:
    """Record ``ticks`` of a ``planned``-tick GridWorld run (as if killed there); returns the
    final state's hash. ``tamper_at``: record that tick's actions but step with other ones."""
    world, cfg = GridWorld(), ServerConfig(players=PLAYERS, seed=seed, ticks=planned)
    rec = Recorder(
        directory,
        run_header(world, "tickwire.server.worlds.grid_world:GridWorld", cfg, "run0", 0),
        world,
        0,
        checkpoint_every,
    )
    state = world.reset(seed, PLAYERS)
    for t in range(ticks):
        acts = _actions(t)
        state = world.step(state, {p: (a + 1) % 5 for p, a in acts.items()} if t == tamper_at else acts)
        rec.tick(t, acts, frozenset({1}) if t % 4 == 0 else frozenset(), _statuses(t), state)
    rec.close()
    return world.digest(state)


def _frame_offsets(path: Path) -> list[int]:
    data, offs, off = path.read_bytes(), [], 0
    while off < len(data):
        offs.append(off)
        off += FRAME_HEADER.size + FRAME_HEADER.unpack_from(data, off)[0]
    return offs


# ------------------------------------------------------------------ snapshots
def test_the_grid_world_round_trips_bit_exactly_with_its_rng():
    world = GridWorld()
    state = world.reset(11, 5)
    for t in range(40):
        state = world.step(state, _actions(t))
    restored = world.restore(world.snapshot(state))
    assert world.digest(restored) == world.digest(state)
    assert restored["rng"].bit_generator.state == state["rng"].bit_generator.state
    a, b = state, restored
    for t in range(300):  # respawns draw from the rng: any drift would show
        a, b = world.step(a, _actions(t)), world.step(b, _actions(t))
    assert world.digest(a) == world.digest(b)
    assert all(np.array_equal(a[k], b[k]) for k in ("grid", "positions", "scores"))


def test_the_default_snapshot_keeps_arrays_big_ints_and_structure():
    state = {
        "a": np.arange(6, dtype="<f4").reshape(2, 3),
        "n": [1, (2, 3)],
        "big": 2**100,
        "rng": np.random.default_rng(3),
    }
    back = restore_state(snapshot_state(state))
    assert back["a"].dtype == np.float32 and np.array_equal(back["a"], state["a"])
    back["a"][0, 0] = 5  # writable
    assert back["n"] == [1, [2, 3]] and back["big"] == 2**100
    assert back["rng"].random() == state["rng"].random()


def test_a_state_the_default_cannot_snapshot_names_the_part_and_the_fix():
    with pytest.raises(SnapshotError, match=r"state\['obj'\].*override World.snapshot"):
        snapshot_state({"obj": object()})


# ------------------------------------------------------------------ log and reader
def test_the_reader_returns_every_tick_with_actions_statuses_and_hashes(tmp_path):
    final = _record(tmp_path, 30)
    reader = RunReader(tmp_path)
    head = reader.first
    assert (head["world_name"], head["seed"], head["players"], head["epoch"]) == ("GridWorld", 4, PLAYERS, 0)
    ticks = list(read_run(tmp_path))
    assert [t.tick for t in ticks] == list(range(30))
    assert ticks[5].actions == _actions(5) and ticks[4].missing == {1}
    assert [t.statuses for t in ticks] == [_statuses(t) for t in range(30)]
    assert ticks[-1].state_hash == final


def test_a_clean_record_replays_identically(tmp_path):
    final = _record(tmp_path, 50, checkpoint_every=20)
    report = replay_run(tmp_path, GridWorld())
    assert report.identical and report.ticks == 50 and report.final_hash == final
    assert report.torn_tail is None and report.damage is None


def test_replay_names_the_first_tick_that_differs(tmp_path):
    _record(tmp_path, 30, tamper_at=12)
    report = replay_run(tmp_path, GridWorld())
    assert not report.identical and report.first_difference["tick"] == 12


@pytest.mark.parametrize("cut", [1, 7, 8, 20, -1])
def test_a_torn_tail_is_reported_and_resume_truncates_it(tmp_path, cut):
    _record(tmp_path, 20)
    log = log_path(tmp_path, 0)
    last = _frame_offsets(log)[-1]
    end = len(log.read_bytes())

    keep = last + cut if cut > 0 else end + cut
    with open(log, "r+b") as f:
        f.truncate(keep)
    report = replay_run(tmp_path, GridWorld())
    assert report.identical and report.ticks == 19
    assert report.torn_tail["offset"] == last and report.torn_tail["torn"]
    restored = restore_run(tmp_path, GridWorld())
    assert restored.tick == 19 and restored.repaired["offset"] == last
    assert log.stat().st_size == last and restored.epoch == 1


def test_a_zeroed_last_frame_is_a_torn_tail(tmp_path):
    _record(tmp_path, 10)
    log = log_path(tmp_path, 0)
    last = _frame_offsets(log)[-1]
    data = bytearray(log.read_bytes())
    data[last + 8 :] = bytes(len(data) - last - 8)
    log.write_bytes(bytes(data))
    assert replay_run(tmp_path, GridWorld()).torn_tail["offset"] == last


def test_damage_inside_the_log_is_reported_with_its_position(tmp_path):
    _record(tmp_path, 20)
    log = log_path(tmp_path, 0)
    offs = _frame_offsets(log)
    data = bytearray(log.read_bytes())
    data[offs[6] + 12] ^= 0xFF
    log.write_bytes(bytes(data))
    report = replay_run(tmp_path, GridWorld())
    assert not report.identical and report.ticks == 5
    assert report.damage == {
        "file": log.name,
        "offset": offs[6],
        "bytes": len(data) - offs[6],
        "torn": False,
        "reason": "CRC mismatch",
        "next_frame": offs[7],
    }


def test_resume_uses_the_newest_good_checkpoint_and_falls_back_past_a_damaged_one(tmp_path):
    final = _record(tmp_path, 45, checkpoint_every=10)
    assert [t for t, _ in RunReader(tmp_path).checkpoints()] == [40, 30, 20]
    restored = restore_run(tmp_path, GridWorld())
    assert (restored.tick, restored.checkpoint) == (45, 40)
    assert GridWorld().digest(restored.state) == final
    newest = checkpoint_path(tmp_path, 40)
    data = bytearray(newest.read_bytes())
    data[-3] ^= 1
    newest.write_bytes(bytes(data))
    world = GridWorld()
    restored = restore_run(tmp_path, world)
    assert restored.checkpoint == 30 and "checkpoint-000000000040" in restored.bad_checkpoints[0]
    assert world.digest(restored.state) == final


def test_without_a_usable_checkpoint_resume_replays_from_the_start(tmp_path):
    final = _record(tmp_path, 25, checkpoint_every=10)
    for _, path in RunReader(tmp_path).checkpoints():
        path.write_bytes(b"\x00" * 10)
    world = GridWorld()
    restored = restore_run(tmp_path, world)
    assert restored.checkpoint is None and len(restored.bad_checkpoints) == 2
    assert world.digest(restored.state) == final


def test_resume_refuses_a_world_that_does_not_re_simulate(tmp_path):
    _record(tmp_path, 30, checkpoint_every=20, tamper_at=25)
    with pytest.raises(ReplayMismatch, match="tick 25.*not deterministic"):
        restore_run(tmp_path, GridWorld())


def test_a_complete_run_is_not_resumed(tmp_path):
    _record(tmp_path, 10, planned=10)
    with pytest.raises(RecordError, match="already complete"):
        restore_run(tmp_path, GridWorld())


def test_a_resumed_epoch_continues_the_ticks_and_replays_across_epochs(tmp_path):
    _record(tmp_path, 10)
    world = GridWorld()
    restored = restore_run(tmp_path, world)
    cfg = ServerConfig(players=PLAYERS, seed=4, ticks=20)
    rec = Recorder(
        tmp_path,
        run_header(
            world,
            "tickwire.server.worlds.grid_world:GridWorld",
            cfg,
            "run1",
            restored.epoch,
            restored.tick,
            "run0",
        ),
        world,
        0,
        0,
    )
    state = restored.state
    for t in range(10, 20):
        state = world.step(state, _actions(t))
        rec.tick(t, _actions(t), frozenset(), {}, state)
    rec.close()
    report = replay_run(tmp_path, GridWorld())
    assert report.identical and report.ticks == 20 and report.runs == ["run0", "run1"]
    assert report.final_hash == _record(tmp_path / "straight", 20)


def _epoch(directory: Path, epoch: int, start: int, rows: list[tuple[dict, set]]) -> None:
    """Record one epoch of a 3-player GridWorld run (ticks from ``start``): each row is the
    tick's actions (the world stepped with) and who missed it (their action filled in)."""
    world, cfg = GridWorld(), ServerConfig(players=PLAYERS, seed=4, ticks=100)
    state = world.reset(4, PLAYERS) if epoch == 0 else restore_run(directory, world).state
    rec = Recorder(
        directory,
        run_header(world, "tickwire.server.worlds.grid_world:GridWorld", cfg, f"run{epoch}", epoch, start),
        world,
        0,
        0,
    )
    for t, (acts, missing) in enumerate(rows, start):
        state = world.step(state, acts)
        rec.tick(t, acts, frozenset(missing), {}, state)
    rec.close()


def test_resume_restores_each_players_last_answered_action_across_epochs(tmp_path):
    # player 2 never answers (its noop is filled in); player 1 misses tick 9 (a fill is not
    # an answer: its tick-8 action 4 is remembered); in epoch 1 player 0 is gone (no action)
    _epoch(
        tmp_path,
        0,
        0,
        [
            ({0: t % 4 + 1, 1: 4 - t % 4 if t < 9 else 3, 2: 0}, {2} | ({1} if t == 9 else set()))
            for t in range(10)
        ],
    )
    assert restore_run(tmp_path, GridWorld()).last_actions == {0: 2, 1: 4}
    _epoch(tmp_path, 1, 10, [({1: 2, 2: 0}, {2}) for _ in range(5)])
    restored = restore_run(tmp_path, GridWorld())
    assert (restored.tick, restored.last_actions) == (15, {0: 2, 1: 2})
    assert restored.report()["remembered_players"] == [0, 1]


def test_a_directory_without_a_record_is_refused_clearly(tmp_path):
    with pytest.raises(RecordError, match="no log-.*twr file"):
        RunReader(tmp_path)


def test_frames_are_length_and_crc32_framed(tmp_path):
    _record(tmp_path, 2)
    data = log_path(tmp_path, 0).read_bytes()
    length, crc = struct.unpack_from("<II", data, 0)
    assert zlib.crc32(data[8 : 8 + length]) == crc
    records, damage = read_frames(log_path(tmp_path, 0), last=True)
    assert damage is None and [r["type"] for r in records] == ["header", "tick", "tick"]


class _Plain(World):
    """A msgpack-able state with no numpy: the default hooks suffice."""

    def reset(self, seed, players):
        return {"n": seed, "hist": []}

    def step(self, state, actions):
        return {"n": state["n"] + sum(actions.values()), "hist": state["hist"][-3:] + [state["n"]]}


def test_the_default_hooks_serve_a_plain_world():
    w = _Plain()
    s = w.step(w.step(w.reset(2, 1), {0: 3}), {0: 4})
    assert w.digest(w.restore(w.snapshot(s))) == w.digest(s)


def test_a_checkpoint_left_half_written_is_ignored_and_removed(tmp_path):
    final = _record(tmp_path, 25, checkpoint_every=10)
    stale = checkpoint_path(tmp_path, 30).with_suffix(".tmp")
    stale.write_bytes(b"half a checkpoint")
    world = GridWorld()
    restored = restore_run(tmp_path, world)
    assert restored.checkpoint == 20 and world.digest(restored.state) == final
    assert restored.report()["incomplete_checkpoints"] == [{"file": stale.name, "bytes": 17}]
    Recorder(
        tmp_path,
        run_header(world, "x:y", ServerConfig(players=PLAYERS), "run1", restored.epoch, restored.tick),
        world,
        0,
        0,
    ).close()
    assert not stale.exists()


def test_an_epoch_killed_before_its_header_was_written_is_dropped(tmp_path):
    final = _record(tmp_path, 12)
    log_path(tmp_path, 1).write_bytes(b"\x10\x00")  # a torn header of the next epoch
    assert replay_run(tmp_path, GridWorld()).torn_tail["file"] == log_path(tmp_path, 1).name
    world = GridWorld()
    restored = restore_run(tmp_path, world)
    assert (restored.tick, restored.epoch) == (12, 1) and world.digest(restored.state) == final
    assert not log_path(tmp_path, 1).exists()


def test_a_failed_fsync_stops_the_recorder_and_is_never_retried(tmp_path, monkeypatch):
    import errno

    world = GridWorld()
    rec = Recorder(tmp_path, run_header(world, "x:y", ServerConfig(players=PLAYERS), "r", 0), world, 2, 0)
    calls = []

    def failing_fsync(fd):
        calls.append(fd)
        raise OSError(errno.EIO, "Input/output error")

    state = world.reset(0, PLAYERS)
    rec.tick(0, _actions(0), frozenset(), {}, state)  # creates the log; the next fsync not due
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(
        RecordError,
        match=r"could not write or fsync the log .*Input/output error.*"
        r"--resume",
    ):
        rec.tick(1, _actions(1), frozenset(), {}, state)  # due: fsync fails
    with pytest.raises(RecordError, match="already failed"):
        rec.tick(2, _actions(2), frozenset(), {}, state)
    rec.close()
    assert len(calls) == 1  # never retried, not even by close()


def test_replay_shows_a_progress_line_on_a_terminal(tmp_path):
    _record(tmp_path, 30, planned=30)
    drawn = stderr_on_a_terminal(["-m", "tickwire", "replay", str(tmp_path)])
    assert f"\r\x1b[2Ktick 0/30  replaying {tmp_path}" in drawn
    assert f"tick 30/30  replaying {tmp_path}" in drawn
    assert drawn.endswith("\r\x1b[2K")  # erased at the end: the terminal is left clean


def test_replay_progress_is_quiet_with_q_or_when_stderr_is_not_a_terminal(tmp_path):
    _record(tmp_path, 30, planned=30)
    assert "tick 0/" not in stderr_on_a_terminal(["-m", "tickwire", "replay", str(tmp_path), "-q"])
    out = subprocess.run(
        [sys.executable, "-m", "tickwire", "replay", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "\x1b" not in out.stderr and "tick 0/" not in out.stderr
    assert "identical" in out.stdout


def test_late_answers_and_names_are_recorded_and_statuses_carried_on_when_not_given(tmp_path):
    world, cfg = GridWorld(), ServerConfig(players=PLAYERS, seed=1, ticks=10)
    rec = Recorder(
        tmp_path,
        run_header(world, "tickwire.server.worlds.grid_world:GridWorld", cfg, "run0", 0),
        world,
        0,
        0,
    )
    state = world.reset(1, PLAYERS)
    names = {0: "a", 1: "b", 2: "c"}
    for t in range(4):
        state = world.step(state, _actions(t))
        changed = t in (0, 2)  # the loop passes statuses and names only when they changed
        rec.tick(
            t,
            _actions(t),
            frozenset(),
            _statuses(12 if t >= 2 else 0) if changed else None,
            state,
            {1: 2} if t == 1 else {},
            names if changed else None,
        )
    rec.close()
    got = list(read_run(tmp_path))
    assert [r.late for r in got] == [{}, {1: 2}, {}, {}]
    assert [r.statuses[2] for r in got] == ["active", "active", "dead", "dead"]
    assert all(r.names == names for r in got)
    frames, _ = read_frames(log_path(tmp_path, 0), last=True)
    assert ["status" in f for f in frames[1:]] == [True, False, True, False]  # only on changes
    assert ["names" in f for f in frames[1:]] == [True, False, False, False]  # same names: once


def test_a_record_written_before_late_and_names_existed_still_reads(tmp_path):
    _record(tmp_path, 5)
    frames, _ = read_frames(log_path(tmp_path, 0), last=True)
    assert not any("late" in f or "names" in f for f in frames)
    assert all(r.late == {} and r.names == {} for r in read_run(tmp_path))


def test_a_damaged_length_inside_the_log_is_damage_not_a_torn_tail(tmp_path):
    """A length that runs past the end of the file looks torn, but good frames follow."""
    _record(tmp_path, 20)
    log = log_path(tmp_path, 0)
    offs = _frame_offsets(log)
    data = bytearray(log.read_bytes())
    data[offs[6] + 3] = 0x7F  # the length's high byte: ~2 GB
    log.write_bytes(bytes(data))
    report = replay_run(tmp_path, GridWorld())
    assert report.torn_tail is None and report.damage["next_frame"] == offs[7]
    with pytest.raises(
        ReplayMismatch, match=f"damaged at byte {offs[6]} .*follows at byte {offs[7]}.*Nothing in"
    ):
        restore_run(tmp_path, GridWorld())
    assert log.read_bytes() == bytes(data)


def test_a_torn_frame_followed_by_zeros_is_a_torn_tail(tmp_path):
    """A crash that leaves preallocated zeros after half a frame: nothing valid follows."""
    _record(tmp_path, 20)
    log = log_path(tmp_path, 0)
    last = _frame_offsets(log)[-1]
    with open(log, "r+b") as f:
        f.truncate(last + 11)
        f.seek(0, 2)
        f.write(bytes(100_000))
    restored = restore_run(tmp_path, GridWorld())
    assert restored.tick == 19 and restored.repaired["torn"] and log.stat().st_size == last


def test_an_epoch_that_plays_no_tick_leaves_no_log(tmp_path):
    _record(tmp_path, 10)
    world = GridWorld()
    restored = restore_run(tmp_path, world)
    Recorder(
        tmp_path,
        run_header(world, "x:y", ServerConfig(players=PLAYERS), "run1", restored.epoch, restored.tick),
        world,
        0,
        0,
    ).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [log_path(tmp_path, 0).name]


def test_a_checkpoint_the_log_does_not_lead_to_is_not_used(tmp_path):
    """Checkpoint 20 replaced by another run's (same tick, different state): its hash is not
    the log's at tick 19, so resume falls back to checkpoint 10 and still reaches the log's
    state; a checkpoint after the log's end is removed."""
    final = _record(tmp_path, 25, checkpoint_every=10)
    _record(tmp_path / "other", 30, checkpoint_every=10, seed=5)
    checkpoint_path(tmp_path, 20).write_bytes(checkpoint_path(tmp_path / "other", 20).read_bytes())
    checkpoint_path(tmp_path, 30).write_bytes(checkpoint_path(tmp_path / "other", 30).read_bytes())
    world = GridWorld()
    restored = restore_run(tmp_path, world)
    assert restored.checkpoint == 10 and "not the log's at tick 19" in restored.bad_checkpoints[0]
    assert restored.dropped_checkpoints == [checkpoint_path(tmp_path, 30).name]
    assert not checkpoint_path(tmp_path, 30).exists() and world.digest(restored.state) == final


def test_damage_in_an_older_epochs_log_is_refused_and_nothing_changes(tmp_path):
    _epoch(tmp_path, 0, 0, [({0: 1, 1: 2, 2: 3}, set()) for _ in range(10)])
    _epoch(tmp_path, 1, 10, [({0: 2, 1: 3, 2: 4}, set()) for _ in range(5)])
    log = log_path(tmp_path, 0)
    offs = _frame_offsets(log)
    data = bytearray(log.read_bytes())
    data[offs[4] + 10] ^= 0x01
    log.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(
        ReplayMismatch, match=f"{log.name} is damaged at byte {offs[4]} .*older epoch's log.*Nothing in"
    ):
        restore_run(tmp_path, GridWorld())
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_lone_log_without_a_header_is_refused_clearly(tmp_path):
    log_path(tmp_path, 0).write_bytes(b"\x10\x00")  # killed while writing the first header
    with pytest.raises(RecordError, match="no log with a readable header"):
        RunReader(tmp_path)


_TRY_LOCK = (
    "import sys; from tickwire.server.record.log import lock_record, RecordLocked\n"
    "try:\n    lock_record(sys.argv[1])\nexcept RecordLocked as e:\n"
    "    print(e.holder['pid']); sys.exit(7)\n"
)


def test_the_record_lock_nests_in_a_process_and_refuses_another_process(tmp_path):
    """Holds of one process nest (the command, the resume and the recorder); another process
    is refused while any is held and gets the lock once the last is released, which also
    removes the lock file and the directory the hold created."""
    from tickwire.server.record.log import LOCK_NAME, lock_record, record_holder

    rec = tmp_path / "new" / "rec"
    outer = lock_record(rec, create=True)
    inner = lock_record(rec)
    assert record_holder(rec)["pid"] == os.getpid()  # what a reader's look finds
    inner.release()
    other = subprocess.run(
        [sys.executable, "-c", _TRY_LOCK, str(rec)], capture_output=True, text=True, timeout=60
    )
    assert (other.returncode, other.stdout.strip()) == (7, str(os.getpid())), other.stderr
    outer.release()
    assert not (rec / LOCK_NAME).exists() and not rec.exists() and (tmp_path / "new").exists()
    rec.mkdir()
    other = subprocess.run(
        [sys.executable, "-c", _TRY_LOCK, str(rec)], capture_output=True, text=True, timeout=60
    )
    assert other.returncode == 0, other.stderr
    # it exited without releasing (as a kill -9'd server): the kernel dropped the lock, the
    # file with its pid stays, and blocks nobody
    assert json.loads((rec / LOCK_NAME).read_text())["pid"] != os.getpid()
    lock_record(rec).release()


def test_the_lock_file_names_the_whole_command_line_within_what_a_reader_reads(tmp_path, monkeypatch):
    import json as _json

    from tickwire.server.record.log import LOCK_NAME, lock_record

    args = [
        "tickwire",
        "server",
        "--players",
        "2",
        "--ticks",
        "9",
        "--seed",
        "3",
        "--mode",
        "strict",
        "--record",
        str(tmp_path / "run"),
    ]
    monkeypatch.setattr("sys.argv", args)
    with lock_record(tmp_path / "run", create=True):
        held = _json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    assert held["argv"] == args  # --record DIR came after the 8th item
    monkeypatch.setattr("sys.argv", ["tickwire", *["x" * 500] * 40])
    with lock_record(tmp_path / "run2", create=True):
        text = (tmp_path / "run2" / LOCK_NAME).read_text()
    held = _json.loads(text)
    assert len(text) < 4096 and held["argv"][-1] == "..." and held["pid"]


def test_a_directory_holds_a_record_when_it_holds_an_epoch_log(tmp_path):
    """One check (record_logs) for both refusing a new --record and reading a record."""
    refuse_existing_record(tmp_path / "absent")  # nothing there: fine
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "log-1.twr").write_bytes(b"")  # not an epoch log's name
    refuse_existing_record(tmp_path)
    with pytest.raises(RecordError, match="holds no log-\\*.twr file"):
        RunReader(tmp_path)
    (tmp_path / "log-000001.twr").write_bytes(b"")
    (tmp_path / "log-000000.twr").write_bytes(b"")
    assert [p.name for p in record_logs(tmp_path)] == ["log-000000.twr", "log-000001.twr"]
    with pytest.raises(RecordError, match="already holds a record: continue it with --resume"):
        refuse_existing_record(tmp_path)
    with pytest.raises(RecordError, match="log-000000.twr: the first frame is not a good header"):
        RunReader(tmp_path)  # read as a record: its first log is (empty, so) damaged
