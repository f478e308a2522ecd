"""Rebuilding a recorded run: ``--resume`` (checkpoint + log tail) and ``tickwire replay``.

Both step the world with the recorded actions and compare each state hash with the recorded
one, so a world that is not deterministic (or a record that does not belong to it) is
caught at the first tick that differs instead of going on from a wrong state.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tickwire.protocol.errors import ReplayMismatch

from .record import (
    Damage,
    RecordError,
    RunReader,
    TickRecord,
    fsync_directory,
    read_checkpoint,
)
from .snapshot import SnapshotError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Difference:
    tick: int
    recorded: str
    replayed: str


def replay_ticks(world: Any, state: Any, records: Iterable[TickRecord], start: int,
                 on_step: Callable[[TickRecord, Any, str], None] | None = None
                 ) -> tuple[Any, int, str | None, Difference | None]:
    """Step ``state`` (``start`` ticks done) through ``records`` from tick ``start`` on.

    Returns (state, ticks done, last hash, the first difference or None); earlier records
    are skipped, a gap in the tick numbers raises RecordError. ``on_step(record, state,
    replayed hash)`` sees every stepped tick, the differing one included."""
    done, last_hash = start, None
    for rec in records:
        if rec.tick < done:
            continue
        if rec.tick != done:
            raise RecordError(f"the record jumps from tick {done - 1} to tick {rec.tick} "
                              f"(epoch {rec.epoch}): it is incomplete")
        state = world.step(state, rec.actions)
        last_hash = world.digest(state)
        done += 1
        if on_step is not None:
            on_step(rec, state, last_hash)
        if last_hash != rec.state_hash:
            return state, done, last_hash, Difference(rec.tick, rec.state_hash, last_hash)
    return state, done, last_hash, None


def _reported(records: Iterable[TickRecord], progress: Callable[[int], None]
              ) -> Iterator[TickRecord]:
    """``records`` unchanged, calling ``progress(tick + 1)`` as each one is handed on."""
    for rec in records:
        yield rec
        progress(rec.tick + 1)


# ---------------------------------------------------------------------------- resume
@dataclass
class Restored:
    """A run rebuilt for ``--resume``: continue from ``tick`` with ``state`` in ``epoch``."""
    state: Any
    tick: int                                  #: ticks done (the summary's ``resumed_from``)
    epoch: int                                 #: the new epoch's number
    previous_run: str
    header: dict[str, Any]                     #: the first epoch's header (seed, config, world)
    checkpoint: int | None = None              #: ticks done at the checkpoint used (None: start)
    repaired: dict[str, Any] | None = None     #: what was truncated (torn tail or damage)
    bad_checkpoints: list[str] = field(default_factory=list)
    #: checkpoint temp files a killed server left half written ({file, bytes}): never used
    #: (the recorder of the new epoch removes them)
    incomplete_checkpoints: list[dict[str, Any]] = field(default_factory=list)
    #: each player's last answered action before ``tick`` (what ``--on-missing repeat``
    #: repeats); a player that never answered has none
    last_actions: dict[int, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """What the summary shows under ``resume``."""
        out = {k: v for k, v in vars(self).items()
               if k not in ("state", "header", "last_actions")}
        out["remembered_players"] = sorted(self.last_actions)
        return out


def restore_run(directory: str | os.PathLike, world: Any) -> Restored:
    """Repair the log tail, restore the newest good checkpoint, re-apply the log after it."""
    reader = RunReader(Path(directory))
    first = reader.first
    done, repaired, last_actions = _last_complete_tick(reader)
    if done >= int(first["config"]["ticks"]):
        raise RecordError(f"the run in {reader.directory} is already complete ({done} of "
                          f"{first['config']['ticks']} ticks): nothing to resume; "
                          f"`tickwire replay {reader.directory}` checks it")
    state, used, bad = _restore_checkpoint(reader, world, done)
    state, reached, _, diff = replay_ticks(world, state, RunReader(reader.directory).ticks(),
                                           used or 0)
    if diff is not None:
        raise ReplayMismatch(f"resume: tick {diff.tick} re-simulated to state hash "
                             f"{diff.replayed[:16]}…, the record says {diff.recorded[:16]}…: the "
                             "world is not deterministic (or is not the world that was recorded)")
    assert reached == done, (reached, done)
    last = reader.headers[-1]
    return Restored(state, done, int(last["epoch"]) + 1, str(last["run"]), first, used,
                    repaired, bad, _incomplete_checkpoints(reader.directory), last_actions)


def _incomplete_checkpoints(directory: Path) -> list[dict[str, Any]]:
    """The ``checkpoint-*.tmp`` files in ``directory``: checkpoints a killed server never
    finished (only a complete one is renamed to ``.twc``), reported and never read."""
    found = []
    for path in sorted(directory.glob("checkpoint-*.tmp")):
        size = path.stat().st_size
        log.warning("record: %s is a checkpoint the server was killed while writing (%d "
                    "bytes): ignored", path.name, size)
        found.append({"file": path.name, "bytes": size})
    return found


def _last_complete_tick(reader: RunReader
                        ) -> tuple[int, dict[str, Any] | None, dict[int, Any]]:
    """Ticks done according to the log, what was repaired, and each player's last answered
    action (across every epoch); a bad tail of the newest log is truncated."""
    done, last_actions = _scan(reader)
    damage = reader.damage
    if damage is None:
        return done, None, last_actions
    newest = reader.logs[-1].name if reader.logs else None
    if damage.file != newest and not (damage.offset == 0 and damage.torn):
        raise RecordError(f"{reader.directory / damage.file}: damaged at byte {damage.offset} "
                          f"({damage.reason}) in an older epoch's log; cannot resume past it "
                          f"(`tickwire replay {reader.directory}` shows what is readable)")
    _truncate(reader.directory / damage.file, damage)
    return done, {**damage.as_dict(), "after_tick": done}, last_actions


def _scan(reader: RunReader) -> tuple[int, dict[int, Any]]:
    """(ticks done, {player: its last answered action}) over every good tick record.

    A filled-in action (the player missed the tick) is not an answer: the roster's
    ``last_action`` of an uninterrupted run only ever holds answers, and with
    ``--on-missing repeat`` a fill repeats that answer anyway."""
    done, last_actions = int(reader.first.get("start_tick", 0)), {}
    for rec in reader.ticks():
        done = rec.tick + 1
        for pid, action in rec.actions.items():
            if pid not in rec.missing:
                last_actions[pid] = action
    return done, last_actions


def _truncate(path: Path, damage: Damage) -> None:
    """Drop everything from ``damage.offset`` on (a file without a header is removed)."""
    kind = "torn tail" if damage.torn else "damaged tail"
    log.warning("record: %s in %s at byte %d (%s): dropping %d byte(s)", kind, path.name,
                damage.offset, damage.reason, damage.size)
    if damage.offset == 0:
        path.unlink(missing_ok=True)
    else:
        with open(path, "r+b") as f:
            f.truncate(damage.offset)
            f.flush()
            os.fsync(f.fileno())
    fsync_directory(path.parent)


def _restore_checkpoint(reader: RunReader, world: Any, done: int
                        ) -> tuple[Any, int | None, list[str]]:
    """(state, its tick, checkpoints that could not be used): the newest good checkpoint at
    or before ``done``, else the start (``reset`` with the recorded seed)."""
    first, bad = reader.first, []
    initial = world.reset(first["seed"], first["players"])
    for tick, path in reader.checkpoints():
        if tick > done:
            bad.append(f"{path.name}: after the log's last complete tick {done}")
            continue
        try:
            record = read_checkpoint(path)
            state = world.restore(record["state"])
            if world.digest(state) != record["hash"]:
                raise RecordError(f"{path}: restored state hash differs from the recorded one")
            return state, tick, bad
        except (RecordError, SnapshotError, KeyError) as e:
            log.warning("record: checkpoint %s is unusable (%s); trying an older one", path.name, e)
            bad.append(f"{path.name}: {e}")
            world.reset(first["seed"], first["players"])  # undo what a failed restore set
    return initial, None, bad


# ---------------------------------------------------------------------------- replay
@dataclass
class ReplayReport:
    """What ``tickwire replay`` found (``--json`` prints it)."""
    dir: str
    world: str
    seed: int
    runs: list[str]
    epochs: int
    ticks: int                                   #: ticks re-simulated (and checked)
    final_hash: str | None
    identical: bool
    first_difference: dict[str, Any] | None = None
    damage: dict[str, Any] | None = None         #: a damaged record (not a torn tail)
    torn_tail: dict[str, Any] | None = None      #: an incomplete last frame (a crash)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def replay_run(directory: str | os.PathLike, world: Any,
               progress: Callable[[int], None] | None = None,
               on_step: Callable[[TickRecord, Any, str], None] | None = None) -> ReplayReport:
    """Re-simulate the whole record from ``reset`` and check every recorded state hash.
    Read-only: a torn tail is reported, not truncated (``--resume`` truncates it).
    ``progress(ticks read)`` is called once per recorded tick (a status line);
    ``on_step(record, state, replayed hash)`` once per re-simulated tick (the replay page)."""
    reader = RunReader(Path(directory))
    first = reader.first
    state = world.reset(first["seed"], first["players"])
    records = reader.ticks() if progress is None else _reported(reader.ticks(), progress)
    state, done, last_hash, diff = replay_ticks(world, state, records, 0, on_step)
    damage = reader.damage
    return ReplayReport(
        str(reader.directory), str(first["world"]), int(first["seed"]),
        [str(h["run"]) for h in reader.headers], len(reader.headers), done,
        last_hash if last_hash is not None else world.digest(state),
        diff is None and (damage is None or damage.torn),
        asdict(diff) if diff else None,
        damage.as_dict() if damage and not damage.torn else None,
        damage.as_dict() if damage and damage.torn else None)
