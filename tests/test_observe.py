"""Following a run from outside: the loop's per-tick reports, Prometheus metrics over real
HTTP, the progress line, real-time pacing, the summary file, and players named after their
container."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import socket
import urllib.request
from types import MappingProxyType

import pytest
from support.summaries import accounted
from tickwire.agents.container import container_name, container_name_from, name_agents
from tickwire.protocol.errors import ConfigError
from tickwire.protocol.server_rules import Rejection
from tickwire.protocol.server_status import Status
from tickwire.server.observers.metrics import MetricsServer, parse_address
from tickwire.server.observers.progress import Progress
from tickwire.server.observers.report import PlayerReport, TickReport
from tickwire.server.world_server.config import ServerConfig
from tickwire.server.world_server.launcher import LocalRun
from tickwire.server.worlds.grid_world import GridWorld

from tickwire.exitcodes import ExitCode

TW = ["-m", "tickwire"]
GREEDY = "tickwire.agents.examples.greedy_agent:GreedyAgent"


def scrape(url: str) -> dict[str, float]:
    """The samples of one scrape of a real endpoint: ``'name{labels}' → value``."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


# ---------------------------------------------------------------------------- tick reports
def test_observers_get_one_frozen_report_per_tick_from_a_real_run():
    reports: list[TickReport] = []
    summary = LocalRun(
        GridWorld(), ServerConfig(ticks=30, lobby_timeout_s=60), GREEDY, 2, progress=reports.append
    ).run()
    lobby = [r for r in reports if not r.running]
    start, *ticks = [r for r in reports if r.running]
    assert lobby and all(r.tick == 0 and r.tick_s is None for r in lobby)
    assert lobby[-1].ready == 2  # who became ready is seen before the run starts
    assert start.tick == 0 and start.tick_s is None and start.live == 2
    assert [r.tick for r in ticks] == list(range(1, 31))
    assert all(r.tick_s is not None and r.tick_s > 0 and r.run == summary["run"] for r in ticks)
    assert [r.now for r in reports] == sorted(r.now for r in reports)
    last = ticks[-1]
    assert last.answered == 60 == sum(p["answered"] for p in summary["players"])
    assert {p.name: p.answered for p in last.players} == {p["name"]: 30 for p in summary["players"]}
    # a snapshot: the first tick's report was not changed by the ticks after it
    assert ticks[0].answered == 2 and ticks[0] is not last
    with pytest.raises(dataclasses.FrozenInstanceError):
        last.tick = 0
    with pytest.raises(TypeError):
        last.rejected[Rejection.MALFORMED] = 1


def report(tick: int, now: float, tick_s: float | None = 0.001, running: bool = True) -> TickReport:
    players = (
        PlayerReport(0, "a", Status.ACTIVE, tick, 0, 1),
        PlayerReport(1, "b", Status.DEAD, tick - 2, 2, 0),
    )
    return TickReport(
        "r", tick, 100, 2, running, now, tick_s, players, MappingProxyType({Rejection.MALFORMED: 3})
    )


def test_a_report_of_columns_reads_as_the_tuple_of_player_reports():
    """The loop snapshots the roster's counters as columns; the report reads the same as one
    built from a PlayerReport per player, and the snapshot does not change with the roster."""
    import numpy as np
    from tickwire.protocol.roster import Roster
    from tickwire.server.observers.report import PlayerReports

    roster = Roster("r", seed=1, capacity=3, strikes=0)
    for i, status in ((2, Status.ACTIVE), (0, Status.DEAD), (1, Status.READY)):
        p = roster.add(i, f"p{i}", f"id{i}".encode())
        p.status = status
        p.answered, p.missed, p.late = 10 * i, i, i % 2
    roster.version += 1
    columns = PlayerReports(*roster.report_columns())
    by_player = tuple(
        PlayerReport(p.id, p.name, p.status, p.answered, p.missed, p.late) for p in roster.players.values()
    )
    assert tuple(columns) == by_player and len(columns) == 3
    assert columns[-1] == by_player[-1] and columns[1:] == by_player[1:]
    reports = [
        TickReport("r", 5, 10, 3, True, 1.0, None, ps, MappingProxyType({})) for ps in (columns, by_player)
    ]
    for what in ("answered", "missed", "late", "live", "ready"):
        assert getattr(reports[0], what) == getattr(reports[1], what), what
    roster.players[2].answered += 1
    assert columns[0].answered == 20 and reports[0].answered == 30  # a snapshot
    with pytest.raises(ValueError):
        columns.answered[0] = 1  # read-only
    assert isinstance(columns.answered, np.ndarray)


def test_the_progress_line_is_drawn_from_reports_alone():
    out = io.StringIO()
    progress = Progress(100, out, every_s=1.0)
    progress(report(0, 10.0, None, running=False))  # lobby: nothing drawn, no rate started
    progress(report(0, 50.0, None))  # the run starts: the rate is measured from here
    progress(report(10, 50.5))  # within every_s: not drawn
    progress(report(20, 51.0))
    progress(report(100, 51.2))  # the last tick is always drawn
    assert out.getvalue().splitlines() == [
        "tick 20/100  20 ticks/s  players 1  late 1  missed 2  rejected 3",
        "tick 100/100  400 ticks/s  players 1  late 1  missed 2  rejected 3",
    ]


# ---------------------------------------------------------------------------- metrics
def test_metrics_are_served_over_http_during_and_after_a_real_run():
    metrics = MetricsServer("127.0.0.1:0")
    during: list[dict] = []

    def progress(report):
        if report.tick == 20 and report.tick_s is not None:  # mid-run; the HTTP thread answers meanwhile
            during.append(scrape(metrics.url))

    try:
        run = LocalRun(
            GridWorld(),
            ServerConfig(ticks=50, lobby_timeout_s=60),
            GREEDY,
            2,
            progress=progress,
            metrics=metrics,
        )
        summary = run.run()
        after = scrape(metrics.url)
    finally:
        metrics.close()
    assert during[0]["tickwire_ticks_total"] == 20
    assert after["tickwire_ticks_total"] == 50
    assert after["tickwire_tick_duration_seconds_count"] == 50
    assert after['tickwire_players{status="active"}'] == 2
    assert after['tickwire_players{status="dead"}'] == 0
    assert after['tickwire_rejected_total{reason="malformed"}'] == 0
    for p in summary["players"]:
        labels = f'{{name="{p["name"]}",player="{p["id"]}"}}'
        assert after["tickwire_player_answered_total" + labels] == p["answered"] == 50
        assert after["tickwire_player_missed_total" + labels] == 0
        assert after["tickwire_player_late_total" + labels] == 0
    with pytest.raises(OSError):  # closed: nothing listens any more
        urllib.request.urlopen(metrics.url, timeout=5)


def test_metrics_have_their_own_registry_not_the_global_one():
    import prometheus_client

    metrics = MetricsServer("127.0.0.1:0")
    try:
        assert metrics.registry is not prometheus_client.REGISTRY
        assert prometheus_client.REGISTRY.get_sample_value("tickwire_ticks_total") is None
        assert scrape(metrics.url)["tickwire_ticks_total"] == 0  # served before any server
    finally:
        metrics.close()


def test_a_metrics_port_in_use_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ConfigError, match=r"cannot serve metrics on 127.0.0.1:\d+.*free port"):
            MetricsServer(f"127.0.0.1:{s.getsockname()[1]}")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("9100", ("0.0.0.0", 9100)),
        (":9100", ("0.0.0.0", 9100)),
        ("[::1]:0", ("::1", 0)),
    ],
)
def test_metrics_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["host", "host:port", "1.2.3.4:70000", ""])
def test_a_bad_metrics_address_names_the_flag_and_an_example(text):
    with pytest.raises(ConfigError, match=r"--metrics \(TICKWIRE_METRICS\) must be HOST:PORT"):
        parse_address(text)


def test_without_prometheus_client_metrics_says_what_to_install(procs, ipc_base):
    code = (
        "import sys; sys.modules['prometheus_client'] = None; from tickwire.cli import main; "
        f"sys.exit(main(['server', '--bind', '{ipc_base}', '--metrics', '127.0.0.1:0']))"
    )
    p = procs(["-c", code])
    assert p.wait(30) == ExitCode.USAGE
    assert "pip install 'tickwire[metrics]'" in p.stderr


# ---------------------------------------------------------------------------- a real paced run
def test_a_paced_run_with_metrics_and_a_summary_file(procs, tmp_path):
    out = tmp_path / "summary.json"
    p = procs(
        [
            *TW,
            "run",
            "--agents",
            "2",
            "--ticks",
            "40",
            "--tick-rate",
            "20",
            "--metrics",
            "127.0.0.1:0",
            "--summary",
            str(out),
            "--json",
        ]
    )
    url = p.wait_for(r"metrics on (http://\S+)", timeout=60).group(1)
    seen = scrape(url)  # while the run goes on (it lasts at least 39/20 s)
    assert "tickwire_ticks_total" in seen
    summary = p.json(timeout=120)
    assert json.loads(out.read_text()) == summary  # the file holds exactly what --json printed
    assert summary["ticks"] == 40 and summary["outcome"] == "ok"
    assert all(accounted(pl) == 40 for pl in summary["players"])
    pacing = summary["pacing"]
    assert pacing["target_hz"] == 20.0 and pacing["start_error_ms"]["p99"] is not None
    # the clock is fixed: 40 ticks at 20 Hz cannot take less than 39 periods
    assert summary["elapsed_s"] >= 39 / 20
    assert pacing["achieved_hz"] <= 20.0 * 1.001
    assert not list(tmp_path.glob(".tickwire-summary-*"))  # no temp file left behind


def test_the_human_summary_shows_the_pacing():
    from tickwire.server.observers.summary import format_summary

    s = {
        "run": "r",
        "world": "W",
        "seed": 0,
        "mode": "strict",
        "reason": "ticks done",
        "ticks": 10,
        "elapsed_s": 1.0,
        "lobby_s": 0.1,
        "ticks_per_s": 10.0,
        "state_hash": "h",
        "players": [],
        "rejected": {},
        "pacing": {
            "target_hz": 10.0,
            "achieved_hz": 9.95,
            "skipped_slots": 1,
            "start_error_ms": {"p50": 0.25, "p99": 3.5, "max": 120.0},
        },
    }
    assert (
        "paced at 10 Hz: achieved 9.9 Hz, tick start error p50 0.25 ms, p99 3.50 ms, "
        "max 120.00 ms; 1 slot(s) skipped"
    ) in format_summary(s)
    assert "paced" not in format_summary({**s, "pacing": None})


def test_an_unpaced_run_reports_no_pacing(procs):
    p = procs([*TW, "run", "--agents", "1", "--ticks", "5", "--json", "-q"])
    assert p.json(timeout=60)["pacing"] is None


# ---------------------------------------------------------------------------- summary file
def test_a_lobby_timeout_is_written_to_the_summary_file_from_the_variable(procs, ipc_base, tmp_path):
    out = tmp_path / "s.json"
    p = procs(
        [*TW, "server", "--bind", ipc_base, "--players", "1", "--lobby-timeout", "0.5", "-q"],
        env={"TICKWIRE_SUMMARY": str(out)},
    )
    assert p.wait(30) == ExitCode.LOBBY_TIMEOUT
    s = json.loads(out.read_text())
    assert s["outcome"] == "lobby_timeout" and s["reason"] == "lobby timeout" and s["ticks"] == 0


def test_a_usage_error_is_written_to_the_summary_file(procs, tmp_path):
    out = tmp_path / "s.json"
    p = procs([*TW, "run", "--ticks", "abc", "--summary", str(out)])
    assert p.wait(30) == ExitCode.USAGE
    s = json.loads(out.read_text())
    assert s["outcome"] == "usage" and "--ticks" in s["error"]["message"]


def test_a_summary_folder_that_does_not_exist_fails_before_the_run(procs, tmp_path):
    p = procs([*TW, "run", "--ticks", "5", "--summary", str(tmp_path / "no" / "s.json")])
    assert p.wait(30) == ExitCode.USAGE
    assert re.search(r"--summary \(TICKWIRE_SUMMARY\): cannot write .*does not exist", p.stderr)
    assert "tick" not in p.stdout


# ---------------------------------------------------------------------------- container names
@pytest.mark.parametrize(
    "marker, cgroup, main, expected",
    [
        (True, "0::/", True, "3f2a9c1b7d4e"),  # Docker, cgroup v2
        (False, "12:pids:/docker/3f2a9c1b7d4e0011\n", True, "3f2a9c1b7d4e"),  # Docker, cgroup v1
        (False, "0::/kubepods/besteffort/pod1\n", True, "3f2a9c1b7d4e"),  # Kubernetes
        (False, "0::/user.slice/user-1000.slice\n", True, None),  # a desktop
        (True, "0::/", False, None),  # one of several agents started by hand in one container
    ],
)
def test_the_container_name_is_the_hostname_only_for_a_containers_main_process(
    marker, cgroup, main, expected
):
    assert (
        container_name_from(marker_file=marker, cgroup=cgroup, hostname="3f2a9c1b7d4e", main_process=main)
        == expected
    )


def test_an_agent_started_here_is_not_the_main_process_of_a_container():
    # this test process is not PID 1: agents it starts keep their class names
    assert container_name() is None


class Named:
    name = "Bob"


class Unnamed:
    name = None


def test_name_wins_over_the_container_name_which_wins_over_the_class_name():
    agents = [Unnamed(), Unnamed()]
    name_agents(agents, None, "c0ffee")
    assert [a.name for a in agents] == ["c0ffee-0", "c0ffee-1"]
    own = [Named()]
    name_agents(own, None, "c0ffee")
    assert own[0].name == "Bob"  # the class chose a name: the container's does not replace it
    flagged = [Named()]
    name_agents(flagged, "alice", "c0ffee")
    assert flagged[0].name == "alice"
    plain = [Unnamed()]
    name_agents(plain, None, None)
    assert plain[0].name is None  # outside a container: the runtime uses the class name
