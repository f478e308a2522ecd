"""The first code a spawned agent process runs: arm the parent-death signal, then import.

It lives in the root package (whose imports are lazy) so that a ``spawn`` child reaches
``prctl(PR_SET_PDEATHSIG)`` before the slow imports (pyzmq, numpy, the server): a parent
killed in its first second otherwise left its agents running until their join timeout.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys


def agent_entry(parent_pid: int, *args: object) -> None:
    """Die with the parent (and at once if it is already gone), then run the agent."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the SDK's join/server timeouts still end orphaned agents
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        sys.exit(0)
    from tickwire.server.launcher import agent_process
    agent_process(*args)  # type: ignore[arg-type]
