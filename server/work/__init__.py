"""Work distribution outside the lockstep run: :class:`~.pool.PlayerPool` (players in local
host processes, :mod:`.pool_host` being what each host runs), :class:`~.chief.Chief` (items
from remote workers) and the :mod:`.hub` sockets both use.
"""
