"""Rebuilding a recorded run: ``--resume`` (checkpoint + log tail) and ``tickwire replay``.

Both step the world with the recorded actions and compare each state hash with the recorded
one, so a world that is not deterministic (or a record that does not belong to it) is
caught at the first tick that differs instead of going on from a wrong state.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tickwire.protocol.errors import ReplayMismatch

from ..worlds.snapshot import SnapshotError
from .log import (
    Damage,
    RecordError,
    RunReader,
    TickRecord,
    describe_holder,
    fsync_directory,
    lock_record,
    read_checkpoint,
    record_holder,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Difference:
    tick: int
    recorded: str
    replayed: str


def replay_ticks(
    world: Any,
    state: Any,
    records: Iterable[TickRecord],
    start: int,
    on_step: Callable[[TickRecord, Any, str], None] | None = None,
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
            raise RecordError(
                f"the record jumps from tick {done - 1} to tick {rec.tick} "
                f"(epoch {rec.epoch}): it is incomplete"
            )
        state = world.step(state, rec.actions)
        last_hash = world.digest(state)
        done += 1
        if on_step is not None:
            on_step(rec, state, last_hash)
        if last_hash != rec.state_hash:
            return state, done, last_hash, Difference(rec.tick, rec.state_hash, last_hash)
    return state, done, last_hash, None


def _reported(records: Iterable[TickRecord], progress: Callable[[int], None]) -> Iterator[TickRecord]:
    """``records`` unchanged, calling ``progress(tick + 1)`` as each one is handed on."""
    for rec in records:
        yield rec
        progress(rec.tick + 1)


# ---------------------------------------------------------------------------- resume
@dataclass(frozen=True, slots=True)
class Restored:
    """A run rebuilt for ``--resume``: continue from ``tick`` with ``state`` in ``epoch``."""

    state: Any
    tick: int  #: ticks done (the summary's ``resumed_from``)
    epoch: int  #: the new epoch's number
    previous_run: str
    header: dict[str, Any]  #: the first epoch's header (seed, config, world)
    checkpoint: int | None = None  #: ticks done at the checkpoint used (None: start)
    repaired: dict[str, Any] | None = None  #: what was truncated (torn tail or damage)
    bad_checkpoints: list[str] = field(default_factory=list)
    #: checkpoint temp files a killed server left half written ({file, bytes}): never used
    #: (the recorder of the new epoch removes them)
    incomplete_checkpoints: list[dict[str, Any]] = field(default_factory=list)
    #: each player's last answered action before ``tick`` (what ``--on-missing repeat``
    #: repeats); a player that never answered has none
    last_actions: dict[int, Any] = field(default_factory=dict)
    #: checkpoints after the log's last complete tick, removed (no log leads to them)
    dropped_checkpoints: list[str] = field(default_factory=list)
    #: each player's name as last recorded: a slot taken back keeps it (names do not swap
    #: with the order in which the agents come back)
    names: dict[int, str] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """What the summary shows under ``resume``."""
        hidden = ("state", "header", "last_actions", "names")
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
        out["remembered_players"] = sorted(self.last_actions)
        return out


def restore_run(directory: str | os.PathLike, world: Any) -> Restored:
    """Repair the log tail, restore the newest good checkpoint, re-apply the log after it.

    DIR is locked meanwhile (:func:`~tickwire.server.record.log.lock_record`): a server still
    writing it makes this fail with RecordLocked before anything is read or changed (its
    tail would look torn, and truncating it would cut a live log)."""
    with lock_record(directory):
        return _restore(Path(directory), world)


def _restore(directory: Path, world: Any) -> Restored:
    reader = RunReader(directory)
    first = reader.first
    done, repaired, last_actions, hashes, names = _last_complete_tick(reader)
    if done >= int(first["config"]["ticks"]):
        raise RecordError(
            f"the run in {reader.directory} is already complete ({done} of "
            f"{first['config']['ticks']} ticks): nothing to resume; "
            f"`tickwire replay {reader.directory}` checks it"
        )
    orphans = _drop_orphan_checkpoints(reader, done)
    state, used, bad = _restore_checkpoint(reader, world, done, hashes)
    state, reached, _, diff = replay_ticks(world, state, RunReader(reader.directory).ticks(), used or 0)
    if diff is not None:
        raise ReplayMismatch(
            f"resume: tick {diff.tick} re-simulated to state hash "
            f"{diff.replayed[:16]}…, the record says {diff.recorded[:16]}…: the "
            "world is not deterministic (or is not the world that was recorded)"
        )
    assert reached == done, (reached, done)
    last = reader.headers[-1]
    return Restored(
        state,
        done,
        int(last["epoch"]) + 1,
        str(last["run"]),
        first,
        used,
        repaired,
        bad,
        _incomplete_checkpoints(reader.directory),
        last_actions,
        orphans,
        names,
    )


def _incomplete_checkpoints(directory: Path) -> list[dict[str, Any]]:
    """The ``checkpoint-*.tmp`` files in ``directory``: checkpoints a killed server never
    finished (only a complete one is renamed to ``.twc``), reported and never read."""
    found = []
    for path in sorted(directory.glob("checkpoint-*.tmp")):
        size = path.stat().st_size
        log.warning(
            "record: %s is a checkpoint the server was killed while writing (%d bytes): ignored",
            path.name,
            size,
        )
        found.append({"file": path.name, "bytes": size})
    return found


def _last_complete_tick(
    reader: RunReader,
) -> tuple[int, dict[str, Any] | None, dict[int, Any], dict[int, str], dict[int, str]]:
    """Ticks done according to the log, what was repaired, each player's last answered
    action (across every epoch), the log's state hash at every checkpoint's tick, and each
    player's last recorded name.

    A torn tail of the newest log (nothing valid after it) is truncated; damage with good
    records after it is refused (ReplayMismatch, exit 8) and nothing in DIR is changed."""
    wanted = {tick for tick, _ in reader.checkpoints()}
    done, last_actions, hashes, names = _scan(reader, wanted)
    damage = reader.damage
    if damage is None:
        return done, None, last_actions, hashes, names
    if not damage.torn:
        raise ReplayMismatch(_damage_text(reader, damage, done))
    _truncate(reader.directory / damage.file, damage)
    return done, {**damage.as_dict(), "after_tick": done}, last_actions, hashes, names


def _damage_text(reader: RunReader, damage: Damage, done: int) -> str:
    """Why a damaged record is not resumed, and what the user can do instead."""
    where = reader.directory / damage.file
    follows = (
        f"a good record follows at byte {damage.next_frame}"
        if damage.next_frame is not None
        else "it is in an older epoch's log"
    )
    return (
        f"resume refused: {where} is damaged at byte {damage.offset} ({damage.reason}) and "
        f"{follows}, so this is not a torn tail (a crash mid-write) and truncating it would "
        f"throw away the ticks after it; the record reads up to tick {done - 1}. Nothing in "
        f"{reader.directory} was changed. `tickwire replay {reader.directory}` shows what is "
        f"readable; to go on from tick {done} anyway, copy the directory, and in the copy "
        f"cut {damage.file} at byte {damage.offset} (truncate -s {damage.offset} "
        f"COPY/{damage.file}) and remove every later log-*.twr, then "
        "`tickwire server --resume COPY` (checkpoints after that tick are dropped)"
    )


def _scan(
    reader: RunReader, wanted: AbstractSet[int] = frozenset()
) -> tuple[int, dict[int, Any], dict[int, str], dict[int, str]]:
    """(ticks done, {player: its last answered action}, {ticks done: state hash} for the
    tick counts in ``wanted``, {player: its last recorded name}) over every good tick record.

    A filled-in action (the player missed the tick) is not an answer: the roster's
    ``last_action`` of an uninterrupted run only ever holds answers, and with
    ``--on-missing repeat`` a fill repeats that answer anyway."""
    done, last_actions = int(reader.first.get("start_tick", 0)), {}
    hashes: dict[int, str] = {}
    names: dict[int, str] = {}
    for rec in reader.ticks():
        done = rec.tick + 1
        if done in wanted:
            hashes[done] = rec.state_hash
        for pid, action in rec.actions.items():
            if pid not in rec.missing:
                last_actions[pid] = action
        names.update(rec.names)
    return done, last_actions, hashes, names


def _drop_orphan_checkpoints(reader: RunReader, done: int) -> list[str]:
    """Remove the checkpoints after the log's last complete tick ``done``: the log that led to
    them is gone (a torn tail, ticks lost in a machine crash), so they belong to no tick the
    resumed run will play, and left in place they would crowd the resumed run's own
    checkpoints out of the newest :data:`KEEP_CHECKPOINTS`."""
    dropped = []
    for tick, path in reader.checkpoints():
        if tick > done:
            log.warning(
                "record: removing %s: it is after the log's last complete tick %d, so no log leads to it",
                path.name,
                done,
            )
            path.unlink(missing_ok=True)
            dropped.append(path.name)
    if dropped:
        fsync_directory(reader.directory)
    return dropped


def _truncate(path: Path, damage: Damage) -> None:
    """Drop a torn tail: everything from ``damage.offset`` on (a file without a header is
    removed). Only ever called for a torn tail: nothing valid is lost."""
    assert damage.torn, damage
    log.warning(
        "record: torn tail in %s at byte %d (%s, nothing valid after it): dropping %d byte(s)",
        path.name,
        damage.offset,
        damage.reason,
        damage.size,
    )
    if damage.offset == 0:
        path.unlink(missing_ok=True)
    else:
        with open(path, "r+b") as f:
            f.truncate(damage.offset)
            f.flush()
            os.fsync(f.fileno())
    fsync_directory(path.parent)


def _restore_checkpoint(
    reader: RunReader, world: Any, done: int, hashes: dict[int, str]
) -> tuple[Any, int | None, list[str]]:
    """(state, its tick, checkpoints that could not be used): the newest good checkpoint at
    or before ``done`` whose hash is the log's at its tick, else the start (``reset`` with the
    recorded seed)."""
    first, bad = reader.first, list[str]()
    initial = world.reset(first["seed"], first["players"])
    for tick, path in reader.checkpoints():  # none is after ``done`` any more
        try:
            record = read_checkpoint(path)
            if record.get("hash") != hashes.get(tick):
                raise RecordError(
                    f"{path}: its state hash is not the log's at tick {tick - 1} "
                    "(a checkpoint of another run or of ticks the log lost)"
                )
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
@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What ``tickwire replay`` found (``--json`` prints it)."""

    dir: str
    world: str
    seed: int
    runs: list[str]
    epochs: int
    ticks: int  #: ticks re-simulated (and checked)
    final_hash: str | None
    identical: bool
    first_difference: dict[str, Any] | None = None
    damage: dict[str, Any] | None = None  #: a damaged record (not a torn tail)
    #: an incomplete last frame: a crash, or (``live``) the tick being written now
    torn_tail: dict[str, Any] | None = None
    #: a server was writing DIR while it was replayed (its pid and host): only the ticks
    #: complete when replay began were read
    live: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def replay_run(
    directory: str | os.PathLike,
    world: Any,
    progress: Callable[[int], None] | None = None,
    on_step: Callable[[TickRecord, Any, str], None] | None = None,
) -> ReplayReport:
    """Re-simulate the whole record from ``reset`` and check every recorded state hash.
    Read-only: a torn tail is reported, not truncated (``--resume`` truncates it).
    A DIR a server is writing is replayed as far as it is complete (``live`` names the
    server; each log is read up to its size when it is opened).
    ``progress(ticks read)`` is called once per recorded tick (a status line);
    ``on_step(record, state, replayed hash)`` once per re-simulated tick (the replay page)."""
    live = record_holder(directory)
    if live is not None:
        log.warning(
            "%s is being recorded by %s: replaying the ticks complete so far",
            directory,
            describe_holder(live),
        )
    reader = RunReader(Path(directory))
    first = reader.first
    state = world.reset(first["seed"], first["players"])
    records = reader.ticks() if progress is None else _reported(reader.ticks(), progress)
    state, done, last_hash, diff = replay_ticks(world, state, records, 0, on_step)
    damage = reader.damage
    return ReplayReport(
        str(reader.directory),
        str(first["world"]),
        int(first["seed"]),
        [str(h["run"]) for h in reader.headers],
        len(reader.headers),
        done,
        last_hash if last_hash is not None else world.digest(state),
        diff is None and (damage is None or damage.torn),
        asdict(diff) if diff else None,
        damage.as_dict() if damage and not damage.torn else None,
        damage.as_dict() if damage and damage.torn else None,
        live,
    )
