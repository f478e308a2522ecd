"""The one world loader: ``--world``, ``tickwire check-world`` and the pytest plugin's
``world=`` all name a world the same ways (a World subclass or instance, ``module:Name``,
``path/file.py:Name`` or ``pettingzoo:MODULE``)."""

from __future__ import annotations

import traceback

from tickwire.protocol.errors import ConfigError
from tickwire.protocol.loading import load_object

from .world import World

#: Modules that moved when server/ was split into sub-packages (after 0.2.0): world specs
#: that name the old place (in run records, scripts, TICKWIRE_WORLD) still load.
MOVED = {"tickwire.server.grid_world": "tickwire.server.worlds.grid_world"}


def load_world(spec: str | type | World) -> World:
    """The world ``spec`` names: a World subclass (instantiated) or instance, a spec string
    naming one, or ``pettingzoo:MODULE`` (``MODULE.parallel_env()`` hosted by
    :class:`~tickwire.server.worlds.pettingzoo_world.PettingZooWorld`)."""
    if isinstance(spec, str) and spec.startswith("pettingzoo:"):
        from .pettingzoo_world import PREFIX, PettingZooWorld  # imports pettingzoo: on demand

        return PettingZooWorld(spec[len(PREFIX) :])
    if isinstance(spec, str):
        module, colon, name = spec.partition(":")
        spec = MOVED.get(module, module) + colon + name
    obj = _load(spec) if isinstance(spec, str) else spec
    world = obj() if isinstance(obj, type) else obj
    if not isinstance(world, World):
        raise ConfigError(f"world {spec!r} is not a tickwire World (subclass tickwire.World)", "--world")
    return world


def _load(spec: str) -> object:
    """``load_object`` for a world spec; a SyntaxError or ImportError raised inside the user's
    module (or one it imports) becomes one ConfigError naming the file and line."""
    try:
        return load_object(spec, "world")
    except SyntaxError as e:
        where = f"{e.filename}:{e.lineno}" if e.filename else spec
        code = f": {e.text.strip()}" if e.text and e.text.strip() else ""
        raise ConfigError(
            f"world {spec!r}: {where}: SyntaxError: {e.msg}{code}; fix that line and run again",
            "--world",
        ) from e
    except ConfigError as e:
        cause = e.__cause__
        if not isinstance(cause, ImportError) or _missing_itself(cause, spec):
            raise
        where = _user_frame(cause)
        raise ConfigError(
            f"world {spec!r}: {where}{type(cause).__name__}: {cause}; install what it imports "
            "(or fix the import) and run again",
            "--world",
        ) from cause


def _missing_itself(error: ImportError, spec: str) -> bool:
    """True if the module the spec names is what is missing (not an import inside it): the
    plain "cannot import world module" message says all there is then."""
    module = spec.partition(":")[0]
    name = error.name
    if module.endswith(".py") or name is None:
        return False
    return module == name or module.startswith(name + ".")


def _user_frame(error: BaseException) -> str:
    """``file:line: `` of the innermost frame of ``error`` outside the import machinery."""
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not f.filename.startswith("<") and "/importlib/" not in f.filename
    ]
    frames = [f for f in frames if not f.filename.endswith("/protocol/loading.py")]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
