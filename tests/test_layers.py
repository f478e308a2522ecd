"""The layering contract: every import in the package points down the layers, never up.

    protocol (pure, sans-IO) < plumbing (shared I/O) < agents < server < entry points

The entry points are ``tickwire/`` (cli, options, the pytest plugin, exitcodes, health, the
root package's lazy exports), ``bench/`` and every ``__main__.py``: they may import anything.
Every import statement counts, also one inside a function or under ``TYPE_CHECKING``: an
import hidden in a function is still a dependency, and hiding one is how cycles were made.
Imports by string (``importlib.import_module``, ``python -m`` launch strings) are not seen.

The tests have a contract too: the helpers they share live in ``tests/support/``; no file
under tests/ imports a test module or ``conftest`` (fixtures and hooks only), neither in its
code nor in Python source it hands a child process as a string.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: folder → the package it installs as (pyproject.toml's package-dir)
FOLDERS = {
    "protocol": "tickwire.protocol",
    "plumbing": "tickwire.plumbing",
    "agents": "tickwire.agents",
    "server": "tickwire.server",
    "tickwire": "tickwire",
    "bench": "tickwire.bench",
}
LAYERS = ["protocol", "plumbing", "agents", "server", "entry points"]
#: package prefix → layer (the longest prefix wins; anything else under tickwire is an entry point)
PREFIXES = {"tickwire.protocol": 0, "tickwire.plumbing": 1, "tickwire.agents": 2, "tickwire.server": 3}
ENTRY = len(LAYERS) - 1
#: What the pure protocol package must never import (sockets, logging, clocks).
PROTOCOL_FORBIDDEN = ("zmq", "logging", "time")


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [FOLDERS[folder], *rest]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """True if ``name`` (``tickwire.x.y``) is a module or package in this repository."""
    for folder, package in sorted(FOLDERS.items(), key=lambda kv: -len(kv[1])):
        if name == package or name.startswith(package + "."):
            path = ROOT / folder / name[len(package) + 1 :].replace(".", "/")
            return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
    return False


def layer_of(module: str) -> int | None:
    """The layer of a tickwire module; None for one outside tickwire."""
    if module != "tickwire" and not module.startswith("tickwire."):
        return None
    for prefix, layer in sorted(PREFIXES.items(), key=lambda kv: -len(kv[0])):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return ENTRY


def root_exports() -> dict[str, str]:
    """``from tickwire import Name``: the module each lazy export comes from (tickwire/__init__)."""
    tree = ast.parse((ROOT / "tickwire" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("tickwire/__init__.py has no _EXPORTS table")


def imports(path: Path, module: str) -> list[tuple[int, str, str]]:
    """(line, imported module, the statement's text) for every import in the file."""
    source = path.read_text()
    is_package = path.name == "__init__.py"
    exports = root_exports()
    out = []
    for node in ast.walk(ast.parse(source, str(path))):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        text = " ".join((ast.get_source_segment(source, node) or "").split())
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, text) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if target == "tickwire" and alias.name in exports:
                    out.append((node.lineno, exports[alias.name], text))
                elif target == "tickwire" and alias.name.startswith("__"):
                    continue  # __version__: package metadata, not code of a layer
                else:
                    named = f"{target}.{alias.name}"  # a submodule, or a name in target
                    out.append((node.lineno, named if is_module(named) else target, text))
    return sorted(set(out))


def modules() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def violations() -> list[str]:
    found = []
    for path in modules():
        module = module_name(path)
        own = ENTRY if path.name == "__main__.py" else layer_of(module)
        for line, target, text in imports(path, module):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module.startswith("tickwire.protocol") and target.split(".")[0] in PROTOCOL_FORBIDDEN:
                found.append(f"{where}: `{text}`: protocol/ is sans-IO and imports no {target.split('.')[0]}")
            layer = layer_of(target)
            if layer is not None and layer > own:
                found.append(
                    f"{where}: `{text}`: {module} ({LAYERS[own]}) imports {target} "
                    f"({LAYERS[layer]}), a higher layer"
                )
    return found


def test_no_module_imports_a_higher_layer() -> None:
    found = violations()
    assert not found, (
        "imports against the layering (protocol < plumbing < agents < server < "
        "entry points); move the code down or the import up:\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "module, layer",
    [
        ("tickwire.protocol.codec", "protocol"),
        ("tickwire.plumbing.keys", "plumbing"),
        ("tickwire.agents.runtime", "agents"),
        ("tickwire.server.world_server.loop", "server"),
        ("tickwire.cli", "entry points"),
        ("tickwire.bench.harness", "entry points"),
        ("zmq", None),
    ],
)
def test_modules_map_to_their_layer(module: str, layer: str | None) -> None:
    got = layer_of(module)
    assert (None if got is None else LAYERS[got]) == layer


def test_the_check_sees_imports_inside_functions_relative_ones_and_lazy_exports(tmp_path: Path) -> None:
    fake = tmp_path / "m.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from ..server import x\ndef f():\n    from tickwire.cli import main\n"
        "    from tickwire import World, __version__\n"
    )
    got = sorted((line, target) for line, target, _ in imports(fake, "tickwire.agents.sub.m"))
    assert got == [
        (1, "typing"),
        (3, "tickwire.agents.server"),
        (5, "tickwire.cli"),
        (6, "tickwire.server.worlds.world"),
    ]
    assert module_name(ROOT / "agents" / "sub" / "__init__.py") == "tickwire.agents.sub"


# ---------------------------------------------------------------------------- the tests' contract
TESTS = ROOT / "tests"
#: ``from X import`` / ``import X`` at the start of a line of Python source held in a string
SOURCE_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w.]*)", re.M)


def suite_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in ``path``: statements anywhere,
    and import lines inside string constants (source a test runs in a child process)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, m.group(1).split(".")[0]) for m in SOURCE_IMPORT.finditer(node.value)]
    return sorted(set(found))


def suite_module_names() -> set[str]:
    """The names test modules and conftest import as (pytest puts tests/ on sys.path)."""
    return {"conftest"} | {p.stem for p in TESTS.glob("test_*.py")}


def test_no_file_in_tests_imports_a_test_module_or_conftest() -> None:
    forbidden = suite_module_names()
    found = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in suite_imports(path)
        if module in forbidden
    ]
    assert not found, (
        "tests import shared helpers from tests/support/ (`from support.x import y`), never from "
        "a test module or conftest (fixtures and hooks only); move the helper there:\n" + "\n".join(found)
    )


def test_the_suite_check_sees_imports_in_functions_and_in_child_source(tmp_path: Path) -> None:
    fake = tmp_path / "test_fake.py"
    fake.write_text(  # names as placeholders: this file's own strings are checked too
        "import support.paths\nfrom support.events import event\nfrom . import sibling\n"
        "def test_x():\n    from {test} import keyring\n"
        "CHILD = '''\nimport sys\nfrom {conftest} import alive\n'''\n".format(
            test="test_security", conftest="conftest"
        )
    )
    assert suite_imports(fake) == [
        (1, "support"),
        (2, "support"),
        (5, "test_security"),
        (6, "conftest"),
        (6, "sys"),
    ]
    assert {"conftest", "test_layers", "test_security"} <= suite_module_names()
    assert "support" not in suite_module_names()
