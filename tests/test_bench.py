"""`tickwire bench --quick --json` as a smoke test: it runs and reports; no timing asserted."""

import json
import subprocess
import sys

import pytest
from support.processes import stderr_on_a_terminal
from tickwire.bench import all_backends


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~100 s idle; several times that when the machine is shared
def test_quick_benchmark_runs_every_backend_and_reports_json():
    out = subprocess.run(
        [sys.executable, "-m", "tickwire", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    records = json.loads(out.stdout)
    cells = {(r["n"], r["payload"], r["compute_ms"]) for r in records}
    assert cells == {(n, p, 0.0) for n in (4, 16) for p in ("small", "large")}
    assert {r["backend"] for r in records} == set(all_backends())
    for r in records:
        assert set(r) >= {"backend", "n", "payload", "compute_ms", "ticks_per_s", "p50_ms", "p99_ms"}
        assert r["ticks_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"] and r["windows"] >= 3


def test_bench_refuses_an_unknown_backend():
    out = subprocess.run(
        [sys.executable, "-m", "tickwire", "bench", "--backends", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "not available here" in out.stderr


SMALL_BENCH = [
    "-m",
    "tickwire",
    "bench",
    "--backends",
    "serial",
    "--n",
    "1",
    "2",
    "--payload",
    "small",
    "--compute-ms",
    "0",
    "--reps",
    "1",
    "--min-ticks",
    "5",
    "--min-s",
    "0.01",
]


def test_bench_shows_a_progress_line_on_a_terminal():
    drawn = stderr_on_a_terminal(SMALL_BENCH)
    assert "\r\x1b[2Kwindow 0/4  cell 1/2 (N=1, small, 0 ms)  serial" in drawn
    assert "window 4/4  cell 2/2 done" in drawn
    assert drawn.endswith("\r\x1b[2K")  # erased at the end: the terminal is left clean


def test_bench_progress_is_quiet_with_q_or_when_stderr_is_not_a_terminal():
    assert "window 0/" not in stderr_on_a_terminal([*SMALL_BENCH, "-q"])
    out = subprocess.run([sys.executable, *SMALL_BENCH], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "\x1b" not in out.stderr and "window 0/" not in out.stderr
    assert "serial" in out.stderr  # the per-cell tables are still printed


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_scale_benchmark_reports_both_paths_per_size_and_every_player_answered_every_tick():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickwire",
            "bench",
            "--scale",
            "--sizes",
            "20,40",
            "--ticks",
            "50",
            "--hosts",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert set(result) == {"environment", "load_average_1min", "records"}
    records = result["records"]
    assert [(r["n"], r["path"]) for r in records] == [
        (n, path) for n in (20, 40) for path in ("per-seat", "batched")
    ]
    for r in records:  # what was measured is reported, not judged: no speed is asserted
        assert r["outcome"] == "ok" and r["ticks"] == 50 and r["hosts"] == 2, r
        assert r["all_answered"] is True, r
        assert r["ticks_per_s"] > 0 and r["cpu_us_per_player_tick"] > 0 and r["server_rss_mb"] > 0, r
        assert r["server_kb_per_player"] >= 0, r


def test_scale_benchmark_refuses_bad_sizes():
    out = subprocess.run(
        [sys.executable, "-m", "tickwire", "bench", "--scale", "--sizes", "0,10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--sizes takes player counts" in out.stderr
