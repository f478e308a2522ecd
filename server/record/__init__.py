"""Run records: the append-only tick log a server writes with ``--record`` (:mod:`.log`), its
replay and resume (``tickwire replay``, ``--resume``) and the self-contained HTML replay page.
"""

from .log import read_run

__all__ = ["read_run"]
