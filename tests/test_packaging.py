"""Packaging: one import namespace (``tickwire``), in a wheel and in an editable install."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _py(
    args: list[str],
    cwd: Path,
    python: str = sys.executable,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    (whl,) = out.glob("tickwire-*.whl")
    return whl


def test_the_wheel_installs_no_top_level_name_but_tickwire(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"tickwire"}
    for module in (
        "tickwire/protocol/codec.py",
        "tickwire/server/world_server/loop.py",
        "tickwire/agents/runtime.py",
        "tickwire/agents/examples/greedy_agent.py",
        "tickwire/plumbing/child.py",
        "tickwire/cli.py",
        "tickwire/bench/harness.py",
        "tickwire/server/record/replay_page.html",
    ):
        assert module in names


def test_the_installed_wheel_runs_a_match_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120
    )
    # The dependencies (pyzmq, msgpack, numpy) from wherever this interpreter has them, also
    # when that is itself a venv (the README's test command): a plain path .pth line adds the
    # directory without running its .pth files, so our editable tickwire stays out.
    (site_dir,) = venv.glob("lib/python*/site-packages")
    (site_dir / "_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    py = str(venv / "bin" / "python")
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    where = _py(["-c", "import tickwire.server as s; print(s.__file__)"], tmp_path, py)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    run = _py(["-m", "tickwire", "run", "--agents", "2", "--ticks", "30", "--json", "-q"], tmp_path, py)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)
    assert summary["ticks"] == 30 and all(p["answered"] == 30 for p in summary["players"])


def test_a_user_project_with_its_own_agents_server_and_protocol_packages(tmp_path: Path) -> None:
    for name in ("agents", "server", "protocol"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ImportError('the user\\'s own {name} package was imported by tickwire')\n"
        )
    (tmp_path / "agents" / "__init__.py").write_text("MINE = True\n")
    (tmp_path / "my_game.py").write_text(
        "import agents\n"
        "from tickwire import Agent, PlayerPool\n"
        "class Echo:\n"
        "    def get_action(self, state):\n"
        "        return state + 1\n"
        "if __name__ == '__main__':\n"
        "    with PlayerPool([Echo(), Echo()]) as pool:\n"
        "        print(agents.MINE, pool.get_actions(41))\n"
    )
    pool = _py(["my_game.py"], tmp_path)
    assert pool.returncode == 0, pool.stderr[-2000:]
    assert pool.stdout.strip() == "True [42, 42]"
    run = _py(["-m", "tickwire", "run", "--agents", "2", "--ticks", "20", "--json", "-q"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["ticks"] == 20


def test_importing_the_protocol_does_not_import_pyzmq_or_the_server(tmp_path: Path) -> None:
    code = (
        "import sys, tickwire.protocol, tickwire.protocol.codec; "
        "print(sorted(m for m in sys.modules if m == 'zmq' or m.startswith('tickwire.server')"
        " or m.startswith('tickwire.agents')))"
    )
    out = _py(["-c", code], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
