"""Every code block of README.md and docs/ runs as printed, or says it is a sketch.

The conventions are in tests/support/doc_blocks.py (and docs/maintainers.md). Blocks that need a
server and agents at once, keys or a fresh copy of the repository are run by dedicated tests
(``DEDICATED``); the rest run here, page by page, in a temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.doc_blocks import ROOT, Block, all_blocks, blocks, doc_files

R = "test_readme.py::"
#: A text only the claimed block contains → the test that runs it (the README's test command
#: is what .ci/run runs: that test checks .ci/run's last line is exactly it).
DEDICATED = {
    "&& .venv/bin/tickwire run": R + "test_the_main_command_installs_and_runs_in_a_fresh_copy",
    "&& .venv/bin/python -m pytest": R + "test_ci_runs_exactly_the_readme_test_command",
    "class MyAgent(Agent)": R + "test_the_agent_block_runs_with_tickwire_run_as_printed",
    "my_agent.py:MyAgent --agents 4": R + "test_the_agent_block_runs_with_tickwire_run_as_printed",
    "--players 1 --ticks 1000": R + "test_the_server_and_agent_pair_runs_as_printed",
    "counter.py:CounterWorld --agent": R + "test_the_world_block_runs_with_its_agent_as_printed",
    "class CounterWorld(World)": R + "test_the_world_block_runs_with_its_agent_as_printed",
    "tickwire keys new server --dir keys": R + "test_the_keys_block_runs_as_printed",
    "with PlayerPool(players) as pool:": R + "test_the_playerpool_block_runs_unguarded_from_stdin_as_printed",
    "python chief.py CHIEF_HOST": R + "test_the_keyed_chief_block_runs_as_printed",
    "# chief.py": R + "test_the_keyed_chief_block_runs_as_printed",
    "mkdocs build --strict": "test_docs_site.py::test_the_docs_site_builds_with_warnings_as_errors",
    "FROM ${TICKWIRE_IMAGE}": "test_docs_blocks.py::test_the_dockerfile_block_is_the_example_file",
}

#: extra → a module it installs (a block that needs a missing extra is skipped, saying so)
EXTRA_MODULES = {
    "pool": "cloudpickle",
    "gym": "gymnasium",
    "pettingzoo": "mpe2",
    "metrics": "prometheus_client",
    "bench": "matplotlib",
    "docs": "mkdocs",
}
RUNNABLE_LANGS = {"bash", "python"}


def claims(block: Block) -> list[str]:
    return [text for text in DEDICATED if text in block.text]


def generic(block: Block) -> bool:
    """Run by the generic runner here: not output, not a sketch, not claimed, not a file."""
    return not (block.output or block.sketch or claims(block) or block.file_name)


def test_every_block_is_output_a_sketch_claimed_or_runnable():
    problems = []
    for b in all_blocks():
        if b.output or b.sketch:
            continue
        found = claims(b)
        if len(found) > 1 and len({DEDICATED[t] for t in found}) > 1:
            problems.append(f"{b.where}: claimed by several tests: {found}")
        if not found and b.lang not in RUNNABLE_LANGS:
            problems.append(
                f"{b.where}: a {b.lang or 'plain'} block that no test runs: mark it `# sketch: why`"
            )
        if not b.lang:
            problems.append(f"{b.where}: give the block a language (text for output)")
    assert not problems, "\n".join(problems)


def test_sketches_are_marked_one_way():
    """The first line of the block says it (visible on the page), not an HTML comment."""
    for path in doc_files():
        assert "<!-- sketch" not in path.read_text(), (
            f"{path}: mark a sketch by its first line, # sketch: why"
        )


def test_every_dedicated_test_exists_and_claims_a_block():
    texts = "\n".join(b.text for b in all_blocks())
    for text, test in DEDICATED.items():
        assert text in texts, f"no block contains {text!r} any more: remove it from DEDICATED"
        module, name = test.split("::")
        assert f"def {name}(" in (ROOT / "tests" / module).read_text(), f"{test} does not exist"


def test_copies_of_a_claimed_block_are_identical():
    """A dedicated test runs one text; every page that shows that block shows the same one."""
    for text in DEDICATED:
        versions = {b.text for b in all_blocks() if text in b.text and not b.sketch}
        assert len(versions) <= 1, f"blocks containing {text!r} differ between pages"


def test_every_python_block_compiles():
    for b in all_blocks():
        if b.lang == "python":
            compile(b.text, b.where, "exec")


def test_a_block_that_needs_an_extra_names_a_known_one():
    for b in all_blocks():
        if b.needs:
            extras = re.findall(r"\[(\w+)\]", b.needs)
            assert extras and all(e in EXTRA_MODULES for e in extras), f"{b.where}: {b.needs}"


def test_the_dockerfile_block_is_the_example_file():
    (block,) = {b.text for b in all_blocks() if "FROM ${TICKWIRE_IMAGE}" in b.text}
    example = (ROOT / "examples/docker/Dockerfile.my-agent").read_text()
    code = [ln for ln in example.splitlines() if ln.strip() and not ln.startswith("#")]
    assert block.splitlines() == code


# ------------------------------------------------------------------ the generic runner
def pages_with_generic_blocks() -> list[Path]:
    return [p for p in doc_files() if any(generic(b) for b in blocks(p))]


def missing_extra(page_blocks: list[Block]) -> str | None:
    for b in page_blocks:
        for extra in re.findall(r"\[(\w+)\]", b.needs or ""):
            if importlib.util.find_spec(EXTRA_MODULES[extra]) is None:
                return f"{b.where} needs the {extra} extra: pip install -e '.[{extra}]'"
    return None


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("page", pages_with_generic_blocks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_blocks_of_a_page_run_as_printed(page, tmp_path):
    page_blocks = blocks(page)
    runnable = [b for b in page_blocks if generic(b)]
    reason = missing_extra(runnable)
    if reason:
        pytest.skip(reason)
    for b in page_blocks:
        if b.file_name:
            (tmp_path / b.file_name).write_text(b.text)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TICKWIRE_QUIET": "1",  # no progress line on stderr (a flag, not in the printed text)
    }
    env.pop("TICKWIRE_CONNECT", None)
    for b in runnable:
        if b.lang == "bash":
            argv = ["bash", "-euo", "pipefail", "-c", b.text]
            stdin = None
        elif "def test_" in b.text:
            (tmp_path / "test_doc_block.py").write_text(b.text)
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_doc_block.py"]
            stdin = None
        else:
            argv, stdin = [sys.executable, "-"], b.text
        feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, **feed)
        assert out.returncode == 0, (
            f"{b.where} exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        )
