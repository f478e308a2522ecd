"""The one world loader: ``--world``, ``tickwire check-world`` and the pytest plugin's
``world=`` all name a world the same ways (a World subclass or instance, ``module:Name``,
``path/file.py:Name`` or ``pettingzoo:MODULE``)."""

from __future__ import annotations

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
    obj = load_object(spec, "world") if isinstance(spec, str) else spec
    world = obj() if isinstance(obj, type) else obj
    if not isinstance(world, World):
        raise ConfigError(f"world {spec!r} is not a tickwire World (subclass tickwire.World)", "--world")
    return world
