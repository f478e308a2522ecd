"""Find a user's class from a ``pkg.module:Name`` or ``path/to/file.py:Name`` spec."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError


def load_object(spec: str, what: str) -> Any:
    """Import ``pkg.mod:Name`` or ``path/to/file.py:Name`` and return ``Name``."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise ConfigError(f"{what} {spec!r} must look like pkg.module:ClassName or path/to/file.py:ClassName")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            if mod_spec is None or not path.exists():
                raise ConfigError(f"{what} file {module_name!r} does not exist")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[path.stem] = module
            mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import {what} module {module_name!r}: {e}") from e
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no {attr!r} (from {what} {spec!r})") from None
