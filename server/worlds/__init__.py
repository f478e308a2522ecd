"""The worlds a server hosts: the :class:`~.world.World` base class users subclass, the
built-in GridWorld, PettingZoo environments (``pettingzoo:MODULE``), the one loader that turns
a ``--world`` spec into a World, ``tickwire check-world``, world snapshots and PNG rendering.
"""
