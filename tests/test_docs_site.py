"""The docs site builds with warnings as errors, and its generated pages say what the code says."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
from support.doc_blocks import ROOT

from tickwire import exitcodes, options

needs_docs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs extra is not installed: .venv/bin/python -m pip install -e '.[docs]'",
)


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_docs
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    shutil.rmtree(ROOT / "build" / "api", ignore_errors=True)  # as in a fresh clone: the hook makes it
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=540,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-4000:]
    # the API reference really rendered from the docstrings (not an empty page)
    api = (site / "reference/api/index.html").read_text()
    for name in ("agents.agent.Agent.act", "server.worlds.world.World.step", "server.work.pool.PlayerPool"):
        assert f'id="tickwire.{name}"' in api, f"the API page lacks tickwire.{name}"
    # the generated tables are in the built pages, and PROTOCOL.md is included
    cli = (site / "reference/cli/index.html").read_text()
    assert all(f"TICKWIRE_{o.dest.upper()}" in cli for o in options.OPTIONS)
    codes = (site / "reference/exit-codes/index.html").read_text()
    assert all(c.label in codes for c in exitcodes.ExitCode)
    assert (
        "Incompatible changes made within version 1" in (site / "reference/protocol/index.html").read_text()
    )
    for picture in ("architecture.svg", "render.png", "replay.png", "bench.png"):
        assert (site / picture).stat().st_size > 0


@needs_docs
def test_the_hook_fills_the_generated_tables():
    hooks = load_hooks()
    cli = hooks.fill((ROOT / "docs/reference/cli.md").read_text())
    assert options.markdown_table() in cli and "<!-- generated" not in cli
    codes = hooks.fill((ROOT / "docs/reference/exit-codes.md").read_text())
    assert exitcodes.markdown_table() in codes


@needs_docs
def test_the_api_tree_has_the_installed_shape(tmp_path):
    tree = load_hooks().lay_out_api_tree(tmp_path / "api")
    for module in ("protocol/messages.py", "server/worlds/world.py", "agents/agent.py", "cli.py"):
        assert (tree / "tickwire" / module).is_file(), module


def test_the_summary_page_names_every_field_json_prints(tmp_path):
    """One real run with --json (and --record, --render): every top-level and per-player key
    is in docs/reference/summary-json.md."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickwire",
            "run",
            "--agents",
            "2",
            "--ticks",
            "20",
            "--json",
            "-q",
            "--record",
            str(tmp_path / "rec"),
            "--render",
            str(tmp_path / "final.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    page = (ROOT / "docs/reference/summary-json.md").read_text()
    keys = set(summary) | {k for p in summary["players"] for k in p}
    missing = sorted(k for k in keys if f"`{k}`" not in page)
    assert not missing, f"docs/reference/summary-json.md does not name {missing}"
