"""The README and the docs work as printed: their code blocks run or parse.

The blocks are searched in README.md and docs/**/*.md (tests/support/doc_blocks.py); a block shown on
several pages is the same text everywhere (tests/test_docs_blocks.py checks), so each one
is run once here. tests/test_docs_blocks.py runs the other blocks."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.doc_blocks import all_text, block_with, code_blocks, command_lines
from support.paths import ROOT

from tickwire import options
from tickwire.cli import build_parser

README = all_text()  # README.md and every docs page


def tickwire_commands() -> list[list[str]]:
    """Every ``tickwire ...`` command in the shell blocks (argv after the program), each once."""
    found: dict[tuple[str, ...], None] = {}
    for block in code_blocks("bash"):
        for argv in command_lines(block):
            if argv[0] in ("tickwire", ".venv/bin/tickwire"):
                found[tuple(argv[1:])] = None
    return [list(argv) for argv in found]


MAIN_COMMAND = "&& .venv/bin/tickwire run"
TEST_COMMAND = "&& .venv/bin/python -m pytest"


# ------------------------------------------------------------------ commands
def test_ci_runs_exactly_the_readme_test_command():
    readme_test = command_text(block_with("bash", TEST_COMMAND))
    ci_lines = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip()]
    assert ci_lines[-1] == readme_test


def command_text(block: str) -> str:
    (line,) = [ln for ln in block.splitlines() if ln.strip()]
    return line


def test_the_two_commands_make_and_use_a_virtualenv():
    for text in (MAIN_COMMAND, TEST_COMMAND):
        line = command_text(block_with("bash", text))
        assert line.startswith("python3 -m venv .venv && .venv/bin/python -m pip install -e ")


@pytest.mark.parametrize("argv", tickwire_commands(), ids=" ".join)
def test_every_tickwire_command_in_the_readme_parses(argv, capsys):
    if argv[0] == "bench":
        from tickwire.bench import main as bench_main

        with pytest.raises(SystemExit):
            bench_main(["--help"])
        help_text = capsys.readouterr().out
        assert all(a in help_text for a in argv[1:] if a.startswith("--")), argv
        return
    if argv[0] == "conformance":
        from tickwire.server.conformance import build_parser as conformance_parser

        flags, command = argv[1 : argv.index("--")], argv[argv.index("--") + 1 :]
        conformance_parser().parse_args(flags)  # the flags before --; the command after it
        assert command, argv
        return
    if argv[0] == "check-world":
        from tickwire.server.worlds.check import build_parser as check_parser

        check_parser().parse_args(argv[1:])
        return
    args = build_parser().parse_args(argv)
    options.resolve(args, args.command, environ={})  # values convert and pass their checks


INLINE = sorted({m.group(1) for m in re.finditer(r"`tickwire ((?:run|server|agent) [^`…]+)`", README)})


@pytest.mark.parametrize("text", INLINE)
def test_every_tickwire_command_in_the_text_has_those_flags(text):
    build_parser().parse_args(shlex.split(text))  # placeholders (K) are values: flags must exist


def test_the_readme_shows_quiet_only_where_it_exists():
    for argv in tickwire_commands():
        if "-q" in argv:
            assert argv[0] in options.COMMANDS


def test_every_python_block_compiles():
    for i, block in enumerate(code_blocks("python")):
        compile(block, f"README python block {i}", "exec")


# ------------------------------------------------------------------ blocks run for real
def test_the_agent_block_runs_with_tickwire_run_as_printed(procs, tmp_path):
    (tmp_path / "my_agent.py").write_text(block_with("python", "class MyAgent"))
    (argv,) = [a for a in tickwire_commands() if "my_agent.py:MyAgent" in a and a[0] == "run"]
    s = procs(["-m", "tickwire", *argv, "--json", "-q"]).json(timeout=120)
    assert s["reason"] == "ticks done" and len(s["players"]) == 4
    assert all(p["answered"] == s["ticks"] for p in s["players"])


def test_the_server_and_agent_pair_runs_as_printed(procs, tmp_path, ipc_base):
    """The two terminals of "Write an agent", on a private ipc address instead of port 5555."""
    agent = block_with("python", "class MyAgent").replace("tcp://localhost:5555", ipc_base)
    (tmp_path / "my_agent.py").write_text(agent)
    server_cmd, agent_cmd = command_lines(block_with("bash", "--players 1"))
    assert server_cmd[:2] == ["tickwire", "server"] and agent_cmd == ["python", "my_agent.py"]
    argv = [ipc_base if a == "tcp://127.0.0.1:5555" else a for a in server_cmd[1:]]
    server = procs(["-m", "tickwire", *argv, "--json", "-q"], name="server")
    player = procs(["my_agent.py"], name="agent")
    s = server.json(timeout=120)
    assert s["reason"] == "ticks done" and s["players"][0]["answered"] == s["ticks"]
    assert player.wait(30) == 0
    assert f"acted on {s['ticks']} ticks" in player.stdout


def test_the_world_block_runs_with_its_agent_as_printed(procs, tmp_path):
    (tmp_path / "counter.py").write_text(block_with("python", "class CounterWorld"))
    (argv,) = [a for a in tickwire_commands() if "counter.py:CounterWorld" in a]
    s = procs(["-m", "tickwire", *argv, "--json", "-q"]).json(timeout=120)
    assert s["reason"] == "world done" and s["outcome"] == "ok"
    assert all(p["answered"] == s["ticks"] for p in s["players"])
    assert all(p["score"] == s["players"][0]["score"] > 0 for p in s["players"])
    check = procs(["-m", "tickwire", "check-world", "counter.py:CounterWorld", "--players", "2"])
    assert check.wait(60) == 0, check.stdout + check.stderr  # the example passes the checker


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_main_command_installs_and_runs_in_a_fresh_copy(tmp_path):
    """The first of the two commands, verbatim, in a copy of the repository."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: cannot list the repository's files")
    files = (
        subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    copy = tmp_path / "repo"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    main = command_text(block_with("bash", MAIN_COMMAND))
    out = subprocess.run(
        ["bash", "-c", main + " --ticks 100 --json -q"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads(out.stdout.strip().splitlines()[-1])
    assert s["reason"] == "ticks done" and s["outcome"] == "ok"


def test_the_keys_block_runs_as_printed(procs, tmp_path, ipc_base):
    """Make keys, start a keyed server and two keyed agents (on a private ipc address)."""
    lines = [line for line in block_with("bash", "tickwire keys new server").splitlines() if line.strip()]
    setup = "\n".join(line for line in lines if not line.startswith(("tickwire server", "tickwire agent")))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", "-ec", setup], cwd=tmp_path, env=env, check=True, timeout=60, capture_output=True)
    runs = [
        [ipc_base if a.startswith("tcp://") else a for a in argv[1:]]
        for argv in command_lines("\n".join(lines))
        if argv[1] in ("server", "agent")
    ]
    server = procs(["-m", "tickwire", *runs[0], "--ticks", "50", "--json", "-q"], name="server")
    agents = [procs(["-m", "tickwire", *argv], name=f"agent{i}") for i, argv in enumerate(runs[1:])]
    s = server.json(timeout=120)
    assert s["reason"] == "ticks done" and [p["answered"] for p in s["players"]] == [50, 50]
    for a in agents:
        assert a.wait(30) == 0, a.stderr


def test_the_playerpool_block_runs_unguarded_from_stdin_as_printed(tmp_path):
    """Pasted into `python -`: no main guard, the players' class lives in __main__."""
    block = block_with("python", "with PlayerPool(players) as pool:")
    expected = re.search(r"print\(actions\)\s+# (\[.*\])", block).group(1)
    out = subprocess.run(
        [sys.executable, "-"], input=block, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == expected


def test_the_keyed_chief_block_runs_as_printed(procs, tmp_path):
    """Make the keys, run chief.py (with its spawned worker) and a worker with its own key;
    only the port is changed, to a free one."""
    from tickwire.server.work.chief import Chief

    keys = [
        line
        for line in block_with("bash", "python chief.py CHIEF_HOST").splitlines()
        if line.startswith(("tickwire", "mkdir"))
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        ["bash", "-ec", "\n".join(keys)], cwd=tmp_path, env=env, check=True, timeout=60, capture_output=True
    )
    probe = Chief("tcp://127.0.0.1:0")  # two consecutive free ports
    port = probe.address.rpartition(":")[2]
    probe.close()
    block = block_with("python", "# chief.py")
    (tmp_path / "chief.py").write_text(block.replace(":5600", f":{port}"))
    chief = procs(["-u", str(tmp_path / "chief.py")], name="chief")
    # the worker elsewhere comes after the spawned one has finished (it once raced it):
    # the chief must still wait for it (expect=2)
    deadline = time.monotonic() + 60
    while "100 from a spawned worker" not in chief.stdout:
        assert time.monotonic() < deadline and chief.popen.poll() is None, chief.stderr
        with contextlib.suppress(subprocess.TimeoutExpired):
            chief.popen.wait(0.05)
    worker = procs([str(tmp_path / "chief.py"), "127.0.0.1"], name="worker")
    assert worker.wait(60) == 0, worker.stderr
    assert chief.wait(60) == 0, chief.stderr
    assert sorted(chief.stdout.splitlines()) == ["1 hello", "100 from a spawned worker"]
