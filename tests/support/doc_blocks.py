"""The code blocks of README.md and docs/**/*.md, and the conventions that say how each runs.

Conventions (docs/maintainers.md describes them for writers):

* ```` ```text ```` blocks are printed output, not code: never run.
* A block whose first line is a comment starting with ``sketch`` (``# sketch: why``) is
  shown, not run (python sketches must still compile).
* A block whose first line is ``# needs: pip install ...`` needs that extra.
* A python block whose first line (after a ``needs`` line) is ``# NAME.py`` is a file: the
  tests write it as NAME.py next to the page's other files before running the page's shell
  blocks, which use it as printed.
* Every other block runs in the tests: either a dedicated test claims it (by a text only it
  contains, see ``DEDICATED`` in tests/test_docs_blocks.py) or the generic runner runs it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from support.paths import ROOT

OUTPUT_LANGS = {"text"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
SKETCH = re.compile(r"^\s*(#|//|<!--)\s*sketch\b")
NEEDS = re.compile(r"^#\s*needs:\s*(.+)$")
FILE_LINE = re.compile(r"^#\s*([\w.-]+\.py)\s*$")


def doc_files() -> list[Path]:
    """README.md, then every page under docs/ (sorted)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @property
    def sketch(self) -> bool:
        return bool(self.lines) and bool(SKETCH.match(self.lines[0]))

    @property
    def output(self) -> bool:
        return self.lang in OUTPUT_LANGS

    @property
    def needs(self) -> str | None:
        m = NEEDS.match(self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    @property
    def file_name(self) -> str | None:
        """NAME.py for a python file block (its first line, after a ``needs`` line)."""
        if self.lang != "python":
            return None
        for line in self.lines[:2]:
            if NEEDS.match(line):
                continue
            m = FILE_LINE.match(line)
            return m.group(1) if m else None
        return None


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [
        Block(path, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)
    ]


def all_blocks() -> list[Block]:
    return [b for p in doc_files() for b in blocks(p)]


def all_text() -> str:
    return "\n".join(p.read_text() for p in doc_files())


def code_blocks(lang: str) -> list[str]:
    """The fenced code blocks in ``lang`` of the README and the docs, in order."""
    return [b.text for b in all_blocks() if b.lang == lang]


def block_with(lang: str, text: str) -> str:
    """The one block (shown on one page or several) in ``lang`` that contains ``text``."""
    (block,) = {b for b in code_blocks(lang) if text in b}
    return block


def command_lines(block: str) -> list[list[str]]:
    """Each simple command of a shell block as argv, without comments or VAR=value prefixes."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|(?<![>&])&(?![&>])", line.split(" #", 1)[0]):
            try:
                argv = shlex.split(part, comments=True)
            except ValueError:  # a quote split by ';' inside $(...): not a tickwire command
                continue
            while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
                argv.pop(0)
            if argv:
                commands.append(argv)
    return commands
