"""The README's fenced code blocks and the commands in them."""

from __future__ import annotations

import re
import shlex

from support.paths import ROOT

README = (ROOT / "README.md").read_text()


def code_blocks(lang: str) -> list[str]:
    """The README's fenced code blocks in ``lang``, in order."""
    return [m.group(2) for m in re.finditer(r"```(\w*)\n(.*?)```", README, re.S) if m.group(1) == lang]


def block_with(lang: str, text: str) -> str:
    """The one ``lang`` block that contains ``text``."""
    (block,) = [b for b in code_blocks(lang) if text in b]
    return block


def command_lines(block: str) -> list[list[str]]:
    """Each simple command of a shell block as argv, without comments or VAR=value prefixes."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;", line.split(" #", 1)[0]):
            try:
                argv = shlex.split(part, comments=True)
            except ValueError:  # a quote split by ';' inside $(...): not a tickwire command
                continue
            while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
                argv.pop(0)
            if argv:
                commands.append(argv)
    return commands
