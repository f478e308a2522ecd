"""``tickwire conformance -- COMMAND`` against real agent programs: the C reference agent
(built here with gcc from examples/c_agent), its deliberately broken variants, and
tickwire's own Python agent. Each run is the real command in its own process, with real
sockets and real agent processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
C_AGENT = ROOT / "examples" / "c_agent" / "agent.c"
VARIANTS = {"agent": [], "broken-resend": ["-DBROKEN_RESEND"], "broken-backlog": ["-DBROKEN_BACKLOG"]}


@pytest.fixture(scope="module")
def c_agents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The C agent and its broken variants, compiled into a temp dir."""
    missing = [h for h in ("/usr/include/zmq.h", "/usr/include/msgpack.h") if not os.path.exists(h)]
    if shutil.which("gcc") is None or missing:
        pytest.skip(f"needs gcc, libzmq3-dev and libmsgpack-dev (.ci/run installs them); missing: {missing}")
    out = tmp_path_factory.mktemp("c_agent")
    built = {}
    for name, flags in VARIANTS.items():
        built[name] = out / name
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-Werror", "-std=c11", "-D_POSIX_C_SOURCE=200809L", *flags]
            + ["-o", str(built[name]), str(C_AGENT), "-lzmq", "-lmsgpackc"],
            check=True,
            timeout=120,
        )
    return built


def conformance(tmp_path: Path, *args: str) -> tuple[int, dict | str]:
    """Run ``tickwire conformance ARGS``; (exit code, the JSON object or the text)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [sys.executable, "-m", "tickwire", "conformance", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert list(tmp.iterdir()) == [], "conformance left files behind in its temp dir"
    out = json.loads(proc.stdout) if "--json" in args else proc.stdout + proc.stderr
    return proc.returncode, out


def statuses(report: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_c_agent_passes_every_check_with_keys(tmp_path: Path, c_agents: dict[str, Path]) -> None:
    code, report = conformance(tmp_path, "--json", "--keys", "--", str(c_agents["agent"]))
    assert code == 0, report
    assert report["outcome"] == "passed" and report["failed"] == []
    assert set(statuses(report).values()) == {"PASS"}, report
    assert len(report["checks"]) == 12


def test_broken_resend_fails_the_resend_check(tmp_path: Path, c_agents: dict[str, Path]) -> None:
    code, text = conformance(tmp_path, "--", str(c_agents["broken-resend"]))
    assert code == 1, text
    fails = [line for line in text.splitlines() if line.startswith("FAIL ")]
    assert len(fails) == 1 and fails[0].startswith("FAIL resend: "), text
    assert "send the same ACTION again" in fails[0]
    assert "SKIP keys: " in text  # not asked for: not required
    assert "conformance: FAILED" in text and "failed: resend" in text


def test_broken_backlog_fails_the_newest_state_check(tmp_path: Path, c_agents: dict[str, Path]) -> None:
    code, report = conformance(tmp_path, "--json", "--", str(c_agents["broken-backlog"]))
    assert code == 1
    assert report["failed"] == ["newest_state"], report
    check = next(c for c in report["checks"] if c["name"] == "newest_state")
    assert "newest" in check["fix"] and "11 of the 11 older" in check["seen"]


def test_a_plaintext_agent_fails_keys(tmp_path: Path, c_agents: dict[str, Path]) -> None:
    """The command ignores the key files it is given: the handshakes fail, and keys says so."""
    env_less = ["env", "-u", "TICKWIRE_KEY", "-u", "TICKWIRE_SERVER_KEY", str(c_agents["agent"])]
    code, report = conformance(tmp_path, "--json", "--keys", "--timeout", "1.5", "--", *env_less)
    assert code == 1
    checks = statuses(report)
    assert checks["keys"] == checks["join"] == "FAIL", report
    keys = next(c for c in report["checks"] if c["name"] == "keys")
    assert "HANDSHAKE_FAILED" in keys["seen"] and "TICKWIRE_KEY" in keys["fix"]


def test_the_python_agent_passes(tmp_path: Path) -> None:
    code, report = conformance(tmp_path, "--json", "--", sys.executable, "-m", "tickwire", "agent")
    assert code == 0, report
    assert statuses(report)["keys"] == "SKIP"
    assert {s for n, s in statuses(report).items() if n != "keys"} == {"PASS"}, report


def test_usage_errors_and_a_command_that_cannot_start(tmp_path: Path) -> None:
    code, text = conformance(tmp_path)
    assert code == 2 and "no COMMAND after --" in text
    code, text = conformance(tmp_path, "--timeout", "0", "--", "true")
    assert code == 2 and "--timeout must be > 0" in text
    code, report = conformance(tmp_path, "--json", "--no-such-flag", "--", "true")
    assert code == 2 and report["outcome"] == "usage_error"
    code, report = conformance(tmp_path, "--json", "--", str(tmp_path / "no-such-agent"))
    assert code == 3 and report["outcome"] == "not_started"
    code, text = conformance(tmp_path, "--help")
    assert code == 0 and "TICKWIRE_CONNECT" in text and "exit codes" in text
