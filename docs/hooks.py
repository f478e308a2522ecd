"""MkDocs hooks: the API reference's source tree and the generated reference tables.

* The repository installs as one namespace with a package-dir mapping (the folder
  ``protocol/`` is ``tickwire.protocol``, ``server/`` is ``tickwire.server``, ...), which a
  static reader such as griffe cannot see in the source tree. ``on_config`` asks the
  *installed* package where each sub-package lives and lays out ``build/api/tickwire`` as
  symlinks in the installed shape; mkdocstrings reads from there (``paths`` in mkdocs.yml).
  The build runs with ``build/`` as its working directory (see :func:`on_config`).
* ``<!-- generated: options -->`` becomes the flag table of ``tickwire/options.py`` and
  ``<!-- generated: exit-codes -->`` the exit-code table of ``tickwire/exitcodes.py``, so
  the pages cannot drift from the command line.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from mkdocs.plugins import event_priority

from tickwire import exitcodes, options

ROOT = Path(__file__).resolve().parent.parent
API_TREE = ROOT / "build" / "api"
SUBPACKAGES = ("protocol", "plumbing", "agents", "server", "bench")

GENERATED = {
    "<!-- generated: options -->": options.markdown_table,
    "<!-- generated: exit-codes -->": exitcodes.markdown_table,
}


def package_dir(name: str) -> Path:
    """Where the installed package ``name`` lives (editable or not)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not installed: run .venv/bin/python -m pip install -e '.[docs]'")
    return Path(list(spec.submodule_search_locations)[0])


def lay_out_api_tree(target: Path = API_TREE) -> Path:
    """``target/tickwire``: the root package's files plus one symlink per sub-package."""
    pkg = target / "tickwire"
    if target.exists():
        shutil.rmtree(target)
    pkg.mkdir(parents=True)
    root = package_dir("tickwire")
    for entry in root.iterdir():
        if entry.name != "__pycache__" and entry.name not in SUBPACKAGES:
            os.symlink(entry, pkg / entry.name)
    for sub in SUBPACKAGES:
        os.symlink(package_dir(f"tickwire.{sub}"), pkg / sub, target_is_directory=True)
    return target


def fill(markdown: str) -> str:
    """``markdown`` with every generated-table marker replaced by its table."""
    for marker, table in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, table())
    return markdown


_cwd: str | None = None


@event_priority(100)  # before mkdocstrings reads its paths: build/api must exist by then
def on_config(config, **_):
    """Lay out the API tree and build from ``build/``: griffe first tries a module name as a
    path relative to the working directory, where ``tickwire/`` is the root folder alone."""
    global _cwd
    lay_out_api_tree()
    config["mdx_configs"]["pymdownx.snippets"]["base_path"] = [str(ROOT)]
    _cwd = _cwd or os.getcwd()  # `mkdocs serve` calls this again on every rebuild
    os.chdir(API_TREE.parent)
    return config


def on_shutdown(**_):
    if _cwd is not None:
        os.chdir(_cwd)


def on_page_markdown(markdown: str, **_: object) -> str:
    return fill(markdown)
