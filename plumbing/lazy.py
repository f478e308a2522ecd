"""Lazy re-exports for a package's ``__init__`` (PEP 562): ``from tickwire import World`` or
``from tickwire.server import Chief`` imports the defining module on first use, so importing
the package itself stays cheap (a spawned agent imports the root package before it arms its
parent-death signal; a PlayerPool host imports ``tickwire.server`` on its way to its module)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str,
    namespace: dict[str, Any],
    exports: dict[str, str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose globals are ``namespace``: each name
    in ``exports`` (name → defining module) is imported on first use, then kept."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # resolve once
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
