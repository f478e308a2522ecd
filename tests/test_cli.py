"""The command line: one option table, one exit-code map, real commands as subprocesses."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
from tickwire.protocol.errors import (
    BindError,
    ConfigError,
    LobbyTimeout,
    ProtocolError,
    Refused,
    ServerGone,
    ServerUnreachable,
    TransportError,
)
from tickwire.server.world_server.config import RANGES, ServerConfig

from tickwire import options
from tickwire.cli import build_parser
from tickwire.exitcodes import ExitCode, for_error, for_summary


def _resolve(command: str, argv: list[str], environ: dict[str, str]) -> dict:
    args = build_parser().parse_args([command, *argv])
    return options.resolve(args, command, environ)


# ------------------------------------------------------------------ the option table
def test_a_flag_wins_over_its_variable_which_wins_over_the_default():
    assert _resolve("run", [], {})["ticks"] == 1000
    assert _resolve("run", [], {"TICKWIRE_TICKS": "7"})["ticks"] == 7
    assert _resolve("run", ["--ticks", "9"], {"TICKWIRE_TICKS": "7"})["ticks"] == 9


def test_an_empty_variable_counts_as_unset():
    assert _resolve("server", [], {"TICKWIRE_MIN_PLAYERS": ""})["min_players"] is None


def test_switches_come_from_flags_or_variables():
    assert _resolve("agent", ["-q"], {})["quiet"] is True
    assert _resolve("agent", [], {"TICKWIRE_JSON": "1"})["json"] is True
    assert _resolve("agent", [], {"TICKWIRE_JSON": "0"})["json"] is False
    with pytest.raises(ConfigError, match=r"--json \(TICKWIRE_JSON\) must be 1/0"):
        _resolve("agent", [], {"TICKWIRE_JSON": "maybe"})


@pytest.mark.parametrize(
    "argv, environ, message",
    [
        (
            [],
            {"TICKWIRE_TICKS": "abc"},
            r"--ticks \(TICKWIRE_TICKS\) must be an integer, got 'abc' from TICKWIRE_TICKS",
        ),
        (["--players", "0"], {}, r"--players \(TICKWIRE_PLAYERS\) must be at least 1, got 0"),
        ([], {"TICKWIRE_MODE": "fast"}, r"--mode \(TICKWIRE_MODE\) must be one of strict, deadline"),
        (["--lobby-timeout", "0"], {}, r"--lobby-timeout \(TICKWIRE_LOBBY_TIMEOUT\) must be greater"),
        (["--deadline-ms", "nan"], {}, r"--deadline-ms \(TICKWIRE_DEADLINE_MS\) must be a finite"),
    ],
)
def test_bad_values_name_the_flag_and_the_variable(argv, environ, message):
    with pytest.raises(ConfigError, match=message):
        _resolve("server", argv, environ)


def test_the_cli_checks_the_ranges_server_config_states():
    checked = set()
    for o in options.OPTIONS:
        role, _, name = (o.field or "").partition(".")
        if role == "server" and name in RANGES:
            rng = RANGES[name][1]
            assert (o.minimum, o.above) == (rng.minimum, rng.above), o.flag
            checked.add(name)
    assert checked == set(RANGES) - {"heartbeat_s"}  # heartbeat_s has no flag
    # one range, each layer in its own words: the CLI names the flag, the variable, the source
    with pytest.raises(ConfigError, match=r"--strikes \(TICKWIRE_STRIKES\) must be at least 0, got -1 from"):
        _resolve("server", [], {"TICKWIRE_STRIKES": "-1"})
    with pytest.raises(ConfigError, match=r"^--strikes must be at least 0 \(0 = never\), got -1$"):
        ServerConfig(strikes=-1)
    with pytest.raises(ConfigError, match=r"--tick-rate must be greater than 0 Hz and finite, got inf"):
        ServerConfig(tick_rate=float("inf"))
    with pytest.raises(ConfigError, match=r"--memory-budget-mb must be at least 0 MB and finite"):
        ServerConfig(memory_budget_mb=float("nan"))
    assert ServerConfig(strikes=0, tick_rate=None, memory_budget_mb=0).strikes == 0


def test_the_cli_checks_the_ranges_agent_config_states():
    from tickwire.agents.config import RANGES as AGENT_RANGES
    from tickwire.agents.config import AgentConfig

    checked = set()
    for o in options.OPTIONS:
        role, _, name = (o.field or "").partition(".")
        if role == "agent" and name in AGENT_RANGES:
            rng = AGENT_RANGES[name][1]
            assert (o.minimum, o.above) == (rng.minimum, rng.above), o.flag
            checked.add(name)
    assert checked == set(AGENT_RANGES) - {"stop_grace_s"}  # stop_grace_s has no flag
    with pytest.raises(ConfigError, match=r"--slot \(TICKWIRE_SLOT\) must be at least 0"):
        _resolve("agent", ["--slot", "-1"], {})
    with pytest.raises(
        ConfigError, match=r"^join_timeout_s \(--join-timeout\) must be greater than 0 s, got 0$"
    ):
        AgentConfig(connect="tcp://127.0.0.1:5555", join_timeout_s=0)
    with pytest.raises(ConfigError, match=r"^stop_grace_s must be at least 0 s \(0: only a second"):
        AgentConfig(connect="tcp://127.0.0.1:5555", stop_grace_s=-1)


def test_a_config_check_across_options_also_names_the_variables():
    values = _resolve("server", ["--players", "2", "--min-players", "3"], {})
    with pytest.raises(
        ConfigError,
        match=r"--min-players \(TICKWIRE_MIN_PLAYERS\) must be in "
        r"1\.\.--players \(TICKWIRE_PLAYERS\)",
    ):
        options.server_config(values)


def test_the_server_config_is_filled_from_the_table():
    values = _resolve(
        "server",
        ["--ticks", "5", "--mode", "deadline"],
        {"TICKWIRE_LOBBY_TIMEOUT": "2.5", "TICKWIRE_PLAYERS": "3"},
    )
    cfg = options.server_config(values)
    assert (cfg.ticks, cfg.mode, cfg.lobby_timeout_s, cfg.players) == (5, "deadline", 2.5, 3)


def test_run_fills_players_from_agents():
    assert options.server_config(_resolve("run", ["--agents", "6"], {})).players == 6


def test_events_reach_the_server_config_when_it_has_the_field(tmp_path):
    values = _resolve("run", ["--events", str(tmp_path / "e.jsonl")], {})
    if "events_path" in {f.name for f in dataclasses.fields(ServerConfig)}:
        assert options.server_config(values).events_path == str(tmp_path / "e.jsonl")
    else:
        with pytest.raises(ConfigError, match=r"--events \(TICKWIRE_EVENTS\) is not supported"):
            options.server_config(values)


def test_an_agent_needs_a_server_address():
    with pytest.raises(ConfigError, match=r"--connect \(TICKWIRE_CONNECT\)"):
        options.agent_config(_resolve("agent", [], {}))
    cfg = options.agent_config(
        _resolve("agent", ["--slot", "2"], {"TICKWIRE_CONNECT": "tcp://h:1", "TICKWIRE_JOIN_TIMEOUT": "3"})
    )
    assert (cfg.connect, cfg.slot, cfg.join_timeout_s) == ("tcp://h:1", 2, 3.0)


def test_every_option_has_help_a_variable_and_a_known_command():
    flags = [o.flag for o in options.OPTIONS]
    assert len(flags) == len(set(flags))
    for o in options.OPTIONS:
        assert o.help and o.env == "TICKWIRE_" + o.flag[2:].upper().replace("-", "_")
        assert o.commands and set(o.commands) <= set(options.COMMANDS)


@pytest.mark.parametrize("command", options.COMMANDS)
def test_every_command_has_quiet_verbose_and_json(command):
    values = _resolve(command, ["-q", "-v", "--json"], {})
    assert values["quiet"] and values["verbose"] and values["json"]


def test_the_help_shows_each_variable_and_the_exit_codes(capsys):
    for command in options.COMMANDS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        out = capsys.readouterr().out
        for o in options.for_command(command):
            assert o.env in out
        assert "130  interrupted" in out


# ------------------------------------------------------------------ the exit-code map
def test_exit_codes_are_distinct_and_interrupted_is_130():
    assert len({int(c) for c in ExitCode}) == len(ExitCode) and ExitCode.INTERRUPTED == 130
    assert ExitCode.LOBBY_TIMEOUT != ExitCode.REFUSED


@pytest.mark.parametrize(
    "error, code",
    [
        (ConfigError("x"), ExitCode.USAGE),
        (LobbyTimeout("x"), ExitCode.LOBBY_TIMEOUT),
        (Refused("full", "x"), ExitCode.REFUSED),
        (TransportError("x"), ExitCode.TRANSPORT),
        (ServerGone("x"), ExitCode.TRANSPORT),
        (ServerUnreachable("x"), ExitCode.TRANSPORT),
        (BindError("x"), ExitCode.TRANSPORT),
        (ProtocolError("malformed", "x"), ExitCode.ERROR),
        (KeyError("positions"), ExitCode.ERROR),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    ],
)
def test_each_error_maps_to_its_exit_code(error, code):
    assert for_error(error) is code


def test_a_run_with_no_player_left_is_players_crashed():
    gone = {"reason": "no players left", "players": [{"status": "left"}, {"status": "dead"}]}
    one_left = {"reason": "ticks done", "players": [{"status": "left"}, {"status": "active"}]}
    assert for_summary(gone) is ExitCode.PLAYERS_CRASHED
    assert for_summary(one_left) is ExitCode.OK
    assert for_summary(gone, interrupted=True) is ExitCode.INTERRUPTED
    assert (
        for_summary({"reason": "stopped in the lobby (agent process exited)", "players": []})
        is ExitCode.PLAYERS_CRASHED
    )


def test_a_run_every_player_left_without_a_crash_is_players_left():
    def left(reason):
        return {"status": "left", "leave_reason": reason}

    assert for_summary({"players": [left("signal SIGTERM"), left("done for today")]}) is ExitCode.PLAYERS_LEFT
    assert for_summary({"players": [left("signal SIGTERM"), {"status": "dead"}]}) is ExitCode.PLAYERS_CRASHED
    crash = left("agent error: RuntimeError: boom")
    assert for_summary({"players": [left("signal SIGINT"), crash]}) is ExitCode.PLAYERS_CRASHED


# ------------------------------------------------------------------ real commands
TW = ["-m", "tickwire"]


def test_a_bad_flag_exits_with_the_usage_code_naming_flag_and_variable(procs):
    p = procs([*TW, "server", "--players", "0"])
    assert p.wait(30) == ExitCode.USAGE
    assert "--players (TICKWIRE_PLAYERS) must be at least 1, got 0" in p.stderr


def test_a_bad_variable_with_json_prints_one_error_object(procs):
    p = procs([*TW, "run", "--json"], env={"TICKWIRE_TICKS": "abc"})
    assert p.wait(30) == ExitCode.USAGE
    out = json.loads(p.stdout)
    assert out["outcome"] == "usage" and out["exit_code"] == 2 and out["reason"] == "usage error"
    assert "TICKWIRE_TICKS" in out["error"]["message"]


def test_an_agent_with_no_server_exits_with_the_transport_code(procs, ipc_base):
    p = procs([*TW, "agent", "-q", "--connect", ipc_base, "--join-timeout", "1", "--json"])
    assert p.wait(30) == ExitCode.TRANSPORT
    out = json.loads(p.stdout)
    assert out["outcome"] == "transport" and "no WELCOME" in out["error"]["message"]


def test_a_lobby_timeout_with_json_prints_the_summary_with_the_reason(procs, ipc_base):
    p = procs([*TW, "server", "--bind", ipc_base, "--players", "2", "--lobby-timeout", "1", "--json", "-q"])
    assert p.wait(30) == ExitCode.LOBBY_TIMEOUT
    out = json.loads(p.stdout)
    assert out["reason"] == "lobby timeout" and out["outcome"] == "lobby_timeout"
    assert "2 slot(s) were never joined" in out["lobby"] and out["players"] == []


def test_a_run_whose_agents_all_crash_exits_with_players_crashed(procs):
    p = procs(
        [
            *TW,
            "run",
            "--agents",
            "2",
            "--ticks",
            "50",
            "--agent",
            "support.sample_agents:CrashingAgent",
            "--json",
            "-q",
        ]
    )
    assert p.wait(60) == ExitCode.PLAYERS_CRASHED
    out = json.loads(p.stdout)
    assert out["outcome"] == "players_crashed" and out["ticks"] < 50
    assert {pl["status"] for pl in out["players"]} <= {"left", "dead"}
    assert "boom at tick 5" in p.stderr


def test_python_m_tickwire_agents_is_tickwire_agent(procs):
    p = procs(["-m", "tickwire.agents", "--count", "0"])
    assert p.wait(30) == ExitCode.USAGE and "--count (TICKWIRE_COUNT)" in p.stderr


def test_parse_keeps_raw_values_for_the_table_to_check():
    args = build_parser().parse_args(["run", "--ticks", "abc"])
    assert isinstance(args, argparse.Namespace) and args.ticks == "abc"


def test_an_unknown_flag_with_json_prints_one_error_object(capsys):
    from tickwire.cli import main

    assert main(["agent", "--no-such-flag", "--json"]) == ExitCode.USAGE
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "usage" and "--no-such-flag" in out["error"]["message"]


def test_resume_warns_about_given_run_settings_it_ignores(tmp_path, caplog):
    from tickwire.server.record.log import Recorder, run_header
    from tickwire.server.worlds.grid_world import GridWorld

    from tickwire.cli import _resumed_values

    world = GridWorld()
    config = ServerConfig(players=2, ticks=50, seed=0)
    rec = Recorder(tmp_path, run_header(world, options.DEFAULT_WORLD, config, "r0", 0, 0, None), world, 0, 0)
    state = world.step(world.reset(0, 2), {0: 0, 1: 0})
    rec.tick(0, {0: 0, 1: 0}, frozenset(), {0: "active", 1: "active"}, state)  # the log's start
    rec.close()
    given = {
        "resume": str(tmp_path),
        "world": options.DEFAULT_WORLD,
        **{
            k: getattr(ServerConfig(), k)
            for k in ("players", "ticks", "seed", "mode", "deadline_ms", "on_missing", "strikes")
        },
    }
    with caplog.at_level("WARNING", logger="tickwire.cli"):
        out = _resumed_values({**given, "players": 5, "seed": 3})
    assert (out["players"], out["seed"], out["ticks"]) == (2, 0, 50)
    assert "ignoring players=5, seed=3" in caplog.text and "record a new run" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tickwire.cli"):
        _resumed_values(given)  # defaults only: the recorded ticks=50 replace 1000 quietly
    assert "ignoring" not in caplog.text


def _events(path) -> list[str]:
    """The event names in an ``--events`` file (none if it was never written)."""
    if not path.exists():
        return []
    return [json.loads(line)["event"] for line in path.read_text().splitlines() if line]


def test_run_over_an_existing_record_fails_before_any_socket_or_agent(procs, tmp_path):
    record = tmp_path / "rec"
    first = procs([*TW, "run", "--agents", "1", "--ticks", "5", "--record", str(record), "-q"])
    assert first.wait(120) == 0, first.stderr[-2000:]
    events = tmp_path / "events.jsonl"
    again = procs(
        [
            *TW,
            "run",
            "--agents",
            "4",
            "--ticks",
            "1000",
            "--record",
            str(record),
            "--events",
            str(events),
            "--json",
            "-q",
        ]
    )
    assert again.wait(60) == ExitCode.RECORD_FAILED
    out = json.loads(again.stdout)
    assert out["outcome"] == "record_failed"
    assert "already holds a record: continue it with --resume" in out["error"]["message"]
    assert "did not exit" not in again.stderr  # no agent was ever started
    assert "listening" not in _events(events)  # nor a server bound


def test_render_into_a_missing_folder_is_a_usage_error_before_the_run(procs, tmp_path):
    events = tmp_path / "events.jsonl"
    p = procs(
        [
            *TW,
            "run",
            "--agents",
            "2",
            "--ticks",
            "3000",
            "--render",
            str(tmp_path / "nonexist" / "x.png"),
            "--events",
            str(events),
            "--json",
            "-q",
        ]
    )
    assert p.wait(60) == ExitCode.USAGE
    out = json.loads(p.stdout)
    assert out["outcome"] == "usage"
    assert "--render (TICKWIRE_RENDER): cannot write" in out["error"]["message"]
    assert "create it or choose another path" in out["error"]["message"]
    assert "listening" not in _events(events)  # nothing was played


def test_a_render_that_fails_at_the_end_keeps_the_summary_and_the_outcome(procs, tmp_path):
    """/dev/full: every write fails with ENOSPC, as on a full disk."""
    summary_file = tmp_path / "summary.json"
    p = procs(
        [
            *TW,
            "run",
            "--agents",
            "2",
            "--ticks",
            "20",
            "--render",
            "/dev/full",
            "--summary",
            str(summary_file),
            "--json",
            "-q",
        ]
    )
    assert p.wait(120) == ExitCode.OK, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["outcome"] == "ok" and out["ticks"] == 20 and out["state_hash"]
    assert out["render"]["written"] is False and "No space left" in out["render"]["error"]
    assert "could not write the picture '/dev/full'" in p.stderr
    assert json.loads(summary_file.read_text()) == out


def test_render_writes_the_picture_and_says_so_in_the_summary(procs, tmp_path):
    png = tmp_path / "final.png"
    p = procs([*TW, "run", "--agents", "2", "--ticks", "20", "--render", str(png), "--json", "-q"])
    assert p.wait(120) == ExitCode.OK, p.stderr[-2000:]
    assert json.loads(p.stdout)["render"] == {"file": str(png), "written": True}
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_version_prints_the_package_version(capsys):
    from tickwire import __version__

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"tickwire {__version__}"


def test_a_summary_file_that_cannot_be_written_at_the_end_exits_7_keeping_the_outcome(procs, tmp_path):
    """A full disk at the end: writing /dev/full fails with ENOSPC. Reached through a symlink,
    so that even the old code (which renamed a temp file over the path) cannot replace the
    device node. The old code printed a line and exited 0: a script never noticed."""
    full = tmp_path / "summary.json"
    full.symlink_to("/dev/full")
    p = procs([*TW, "run", "--agents", "2", "--ticks", "20", "--summary", str(full), "--json", "-q"])
    assert p.wait(120) == ExitCode.RECORD_FAILED, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["outcome"] == "record_failed" and out["exit_code"] == 7
    assert out["run_outcome"] == "ok" and out["run_exit_code"] == 0  # the run itself was fine
    assert out["ticks"] == 20 and out["state_hash"] and out["reason"] == "ticks done"
    assert out["summary_file"]["written"] is False
    assert "No space left" in out["summary_file"]["error"]
    assert f"record failed: could not write the summary to '{full}'" in p.stderr
    assert "The run itself ended with ok (exit 0)" in p.stderr
    assert full.is_symlink() and [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_a_summary_folder_where_no_file_can_be_created_fails_before_the_run(procs, tmp_path):
    """Root may write any folder (so the old check, os.access, passed and the run played,
    then exited 0 without the file), but not sysfs; others get a read-only folder."""
    import os

    if os.geteuid() == 0:
        target = "/sys/tickwire-summary.json"
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        target = str(tmp_path / "ro" / "summary.json")
    events = tmp_path / "events.jsonl"
    p = procs(
        [
            *TW,
            "run",
            "--agents",
            "1",
            "--ticks",
            "5",
            "--summary",
            target,
            "--events",
            str(events),
            "--json",
            "-q",
        ]
    )
    assert p.wait(60) == ExitCode.USAGE, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert "--summary (TICKWIRE_SUMMARY): cannot write" in out["error"]["message"]
    assert "is not writable" in out["error"]["message"] and not events.exists()


def test_a_summary_file_that_cannot_be_written_after_a_lobby_timeout_is_named_in_the_json(
    procs, tmp_path, ipc_base
):
    """The run failed (exit 3) and its summary file is missing too: the JSON says both."""
    full = tmp_path / "summary.json"
    full.symlink_to("/dev/full")
    p = procs(
        [
            *TW,
            "server",
            "--bind",
            ipc_base,
            "--players",
            "2",
            "--lobby-timeout",
            "1",
            "--summary",
            str(full),
            "--json",
        ]
    )
    assert p.wait(60) == ExitCode.LOBBY_TIMEOUT, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["outcome"] == "lobby_timeout" and out["summary_file"]["written"] is False
    assert "No space left" in out["summary_file"]["error"]
    assert f"tickwire server: could not write the summary to '{full}'" in p.stderr


# ------------------------------------------------------------------ usage errors (issue 19)
def test_a_misspelt_flag_names_the_commands_help_and_the_flag_meant(procs):
    p = procs([*TW, "run", "--agentz", "3"])
    assert p.wait(30) == ExitCode.USAGE
    last = p.stderr.strip().splitlines()[-1]
    assert last == (
        "tickwire run: usage error: unrecognized arguments: --agentz 3: did you mean "
        "--agent or --agents? (see tickwire run --help)"
    )
    assert "usage: tickwire run " in p.stderr  # the command's usage, not the top level's


def test_misspelt_flags_commands_and_choices_get_suggestions(capsys):
    from tickwire.cli import main

    assert main(["server", "--tiks", "4", "--lobby-timout=3", "--json"]) == ExitCode.USAGE
    message = json.loads(capsys.readouterr().out)["error"]["message"]
    assert "(--tiks: did you mean --ticks?; --lobby-timout: did you mean --lobby-timeout?)" in message
    assert message.endswith("(see tickwire server --help)")
    assert main(["keys", "new", "alice", "--dri", "x"]) == ExitCode.USAGE
    assert "--dri x: did you mean --dir? (see tickwire keys new --help)" in capsys.readouterr().err
    assert main(["runn"]) == ExitCode.USAGE
    assert "invalid choice: 'runn': did you mean run?" in capsys.readouterr().err
    assert main(["run", "--mode", "stirct"]) == ExitCode.USAGE
    assert "got 'stirct' from --mode: did you mean strict?" in capsys.readouterr().err
    assert main(["run", "--nothing-like-it"]) == ExitCode.USAGE
    assert "did you mean" not in capsys.readouterr().err


def test_a_summary_file_in_a_missing_folder_is_one_error(procs, tmp_path):
    p = procs([*TW, "run", "--ticks", "5", "-q", "--summary", str(tmp_path / "nope" / "s.json")])
    assert p.wait(60) == ExitCode.USAGE
    assert p.stderr.strip().splitlines() == [
        f"tickwire run: usage error: --summary (TICKWIRE_SUMMARY): cannot write "
        f"'{tmp_path / 'nope' / 's.json'}': folder '{tmp_path / 'nope'}' does not exist; "
        "create it or choose another path"
    ]


def test_the_help_lists_the_options_in_the_tables_groups(procs):
    p = procs([*TW, "run", "--help"])
    assert p.wait(30) == 0
    out = p.stdout
    assert out.startswith("usage: tickwire run [-h] [OPTIONS]\n")
    headings = [title for title, _ in options.GROUPS.values() if f"\n{title}:\n" in out]
    assert headings == [options.GROUPS[g][0] for g, _ in options.grouped(options.for_command("run"))]
    assert headings[:2] == ["World", "Players and agents"] and len(headings) >= 6
    for group, opts in options.grouped(options.for_command("run")):
        section = out.split(f"\n{options.GROUPS[group][0]}:\n", 1)[1].split("\n\n", 1)[0]
        for o in opts:
            assert f"  {o.short + ', ' if o.short else ''}{o.flag}" in section, (group, o.flag)


def test_every_option_has_a_group_and_the_docs_table_has_a_heading_per_group():
    assert {o.group for o in options.OPTIONS} == set(options.GROUPS)
    table = options.markdown_table()
    assert [line[4:] for line in table.splitlines() if line.startswith("### ")] == [
        title for title, _ in options.GROUPS.values()
    ]
    assert all(f"`{o.env}`" in table for o in options.OPTIONS)
