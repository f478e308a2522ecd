"""``tickwire bench --scale``: thousands of players in one world, per-seat against batched agents.

Each cell is one real ``tickwire run`` (server + agent host processes, ipc, the grid world,
small actions) with N players in ``hosts`` agent processes, once with the per-seat
:class:`~tickwire.bench.harness.BenchAgent` (one ``act`` per player, ACTIONS messages) and
once with :class:`~tickwire.bench.harness.BenchBatchAgent` (one ``act_batch`` per process,
ACTION_ARRAY messages): the same actions, so the same final state.

Measured per cell: ticks/s (the server's, over the ticks alone), the CPU time of the server
and every agent process between the server's ``started`` and ``end`` events (``/proc/PID/stat``
of the server, its own and its reaped children's times, plus each live child's: the lobby and
the shutdown are left out), divided by N × ticks: µs of CPU per player-tick; and the server's
peak RSS, per player above a one-player run's. Speed is reported, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PATHS = {"per-seat": "tickwire.bench:BenchAgent", "batched": "tickwire.bench:BenchBatchAgent"}
DEFAULT_SIZES = (1000, 4000, 10000)
DEFAULT_HOSTS = 8
START_TIMEOUT_S = 900.0  #: for the lobby of the largest run on a loaded machine


@dataclass
class ScaleRecord:
    """One cell of the scale benchmark."""

    n: int
    path: str
    hosts: int
    ticks: int
    ticks_per_s: float
    cpu_us_per_player_tick: float
    server_rss_mb: float
    server_kb_per_player: float
    all_answered: bool
    outcome: str


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 is index 0)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and all its children: its utime + stime, those of
    its children it has reaped (cutime + cstime), and each live (or unreaped) child's."""
    fields = _stat(pid)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                f = _stat(int(child))
            except OSError:  # exited and reaped between the two reads: in cutime next time
                continue
            total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_cell(n: int, path: str, ticks: int, hosts: int, quiet: bool = True) -> tuple[ScaleRecord, dict]:
    """One ``tickwire run`` of ``n`` players (``path``: per-seat or batched) in ``hosts``
    processes; its record and the server's summary."""
    per_process = -(-n // hosts)
    with tempfile.TemporaryDirectory(prefix="tw-scale-") as tmp:
        events = Path(tmp) / "events.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "tickwire",
            "run",
            "--agents",
            str(n),
            "--per-process",
            str(per_process),
            "--agent",
            PATHS[path],
            "--ticks",
            str(ticks),
            "--lobby-timeout",
            str(int(START_TIMEOUT_S)),
            "--events",
            str(events),
            "--json",
            "-q",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            at_start = _wait_event(proc, events, "started", START_TIMEOUT_S)
            at_end = _wait_event(proc, events, "end", START_TIMEOUT_S + 60 * ticks)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    used = (at_end - at_start) if at_start is not None and at_end is not None else float("nan")
    try:
        summary = json.loads(out)
    except json.JSONDecodeError:
        raise RuntimeError(
            f"tickwire run of {n} players ({path}) printed no summary: {err[-2000:]}"
        ) from None
    players = summary.get("players", [])
    done = summary.get("ticks", 0)
    all_answered = len(players) == n and all(p["answered"] == done == ticks for p in players)
    rss = float(summary.get("max_rss_mb", 0.0))
    record = ScaleRecord(
        n=n,
        path=path,
        hosts=-(-n // per_process),
        ticks=done,
        ticks_per_s=float(summary.get("ticks_per_s", 0.0)),
        cpu_us_per_player_tick=round(used / max(1, n * done) * 1e6, 3),
        server_rss_mb=rss,
        server_kb_per_player=0.0,
        all_answered=all_answered,
        outcome=str(summary.get("outcome")),
    )
    return record, summary


def _wait_event(proc: subprocess.Popen, events: Path, name: str, timeout_s: float) -> float | None:
    """Wait (bounded) for the server's event ``name`` in its events file; the CPU seconds it
    and its agent processes had used then (None: the run ended without it)."""
    deadline = time.monotonic() + timeout_s
    needle = f'"event": "{name}"'
    while time.monotonic() < deadline:
        try:
            if needle in events.read_text():
                return cpu_s(proc.pid)
        except OSError:
            pass
        if proc.poll() is not None:
            return None  # it ended without the event: the summary says why
        time.sleep(0.005)  # polling a file the server appends to, bounded by the deadline
    raise RuntimeError(f"no {name!r} event from the run within {timeout_s:g} s")


def scale(sizes: list[int], ticks: int, hosts: int, progress: Any = None) -> list[ScaleRecord]:
    """Every size with both paths, alternating; server memory per player above a 1-player run."""
    base, _ = run_cell(1, "per-seat", min(ticks, 50), 1)
    records = []
    for n in sizes:
        for path in PATHS:
            record, _ = run_cell(n, path, ticks, min(hosts, n))
            record.server_kb_per_player = round(
                max(0.0, record.server_rss_mb - base.server_rss_mb) * 1024 / n, 1
            )
            records.append(record)
            if progress is not None:
                progress(record)
    return records


def format_scale(records: list[ScaleRecord]) -> str:
    """The table: one row per (N, path), with cost ratios to the smallest N of each path and
    the batched path's speed-up over the per-seat one at the same N."""
    lines = [
        f"{'N':>6} {'path':<9} {'hosts':>5} {'ticks':>6} {'ticks/s':>9} {'µs/player-tick':>15} "
        f"{'× cost@N0':>10} {'server MB':>10} {'KB/player':>10} {'all answered':>13}"
    ]
    first: dict[str, ScaleRecord] = {}
    per_seat = {r.n: r for r in records if r.path == "per-seat"}
    for r in records:
        first.setdefault(r.path, r)
        ratio = (
            r.cpu_us_per_player_tick / first[r.path].cpu_us_per_player_tick
            if first[r.path].cpu_us_per_player_tick
            else 0
        )
        lines.append(
            f"{r.n:>6} {r.path:<9} {r.hosts:>5} {r.ticks:>6} {r.ticks_per_s:>9.1f} "
            f"{r.cpu_us_per_player_tick:>15.2f} {ratio:>10.2f} {r.server_rss_mb:>10.1f} "
            f"{r.server_kb_per_player:>10.1f} {'yes' if r.all_answered else 'NO':>13}"
        )
    for n, seat in per_seat.items():
        batched = next((r for r in records if r.n == n and r.path == "batched"), None)
        if batched and seat.ticks_per_s and seat.cpu_us_per_player_tick:
            lines.append(
                f"N={n}: batched {batched.ticks_per_s / seat.ticks_per_s:.2f}× the ticks/s, "
                f"{batched.cpu_us_per_player_tick / seat.cpu_us_per_player_tick:.2f}× the CPU per player-tick"
            )
    return "\n".join(lines)


def scale_main(args: Any, environment: dict) -> int:
    """``tickwire bench --scale``: run, print the table (or JSON), return the exit code."""
    try:
        sizes = (
            [int(s) for s in str(args.sizes).split(",") if s.strip()] if args.sizes else list(DEFAULT_SIZES)
        )
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1 or args.ticks < 1 or args.hosts < 1:
        print(
            "tickwire bench: --sizes takes player counts >= 1, e.g. --sizes 1000,4000 "
            "(and --ticks, --hosts at least 1)",
            file=sys.stderr,
        )
        return 2

    def progress(r: ScaleRecord) -> None:
        if not args.quiet:
            print(f"  N={r.n} {r.path}: {r.ticks_per_s:.1f} ticks/s", file=sys.stderr, flush=True)

    load = os.getloadavg()[0]
    print(f"tickwire bench --scale on {json.dumps(environment)}, load average {load:.2f}", file=sys.stderr)
    records = scale(sizes, args.ticks, args.hosts, progress)
    result = {
        "environment": environment,
        "load_average_1min": [load, os.getloadavg()[0]],
        "records": [asdict(r) for r in records],
    }
    if args.json == "-":
        print(json.dumps(result))
    else:
        print(format_scale(records))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
