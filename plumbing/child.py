"""The first code a spawned agent process runs: arm the parent-death signal, then import.

It lives in a package whose ``__init__`` imports nothing (and under the root package, whose
imports are lazy) so that a ``spawn`` child reaches ``prctl(PR_SET_PDEATHSIG)`` before the slow
imports (pyzmq, numpy, the server): a parent killed in its first second otherwise left its
agents running until their join timeout. The function to run is named by a string, so that
unpickling the child's arguments imports nothing either.
"""

from __future__ import annotations

import importlib
import os
import sys

from .process import die_with_parent


def agent_entry(parent_pid: int, target: str, *args: object) -> None:
    """Die with the parent (and at once if it is already gone), then run ``target``
    (``"package.module:function"``) with ``args``."""
    die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        sys.exit(0)
    module, _, name = target.partition(":")
    getattr(importlib.import_module(module), name)(*args)
