"""The one world loader: ``--world``, ``tickwire check-world`` and the pytest plugin's
``world=`` all name a world the same ways (a World subclass or instance, ``module:Name``,
``path/file.py:Name`` or ``pettingzoo:MODULE``)."""
from __future__ import annotations

from tickwire.protocol.errors import ConfigError
from tickwire.protocol.loading import load_object

from .world import World


def load_world(spec: str | type | World) -> World:
    """The world ``spec`` names: a World subclass (instantiated) or instance, a spec string
    naming one, or ``pettingzoo:MODULE`` (``MODULE.parallel_env()`` hosted by
    :class:`~tickwire.server.pettingzoo_world.PettingZooWorld`)."""
    if isinstance(spec, str) and spec.startswith("pettingzoo:"):
        from .pettingzoo_world import PREFIX, PettingZooWorld  # imports pettingzoo: on demand
        return PettingZooWorld(spec[len(PREFIX):])
    obj = load_object(spec, "world") if isinstance(spec, str) else spec
    world = obj() if isinstance(obj, type) else obj
    if not isinstance(world, World):
        raise ConfigError(f"world {spec!r} is not a tickwire World (subclass tickwire.World)",
                          "--world")
    return world
