"""Process hygiene for the child processes tickwire spawns."""
from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> None:
    """Linux: ask the kernel to SIGTERM this process when its parent dies (no orphans)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the SDK's server timeout still ends orphaned agents


def reap_resource_tracker() -> None:
    """Stop and wait for multiprocessing's resource tracker before this process exits.

    ``spawn`` starts that helper process; it exits when we do, but then as an orphan that
    an init which does not reap (some containers, sandboxes) leaves as a zombie. Only for
    entry points that own the whole process: stopping it cleans up whatever is registered.
    """
    try:
        from multiprocessing import resource_tracker
        stop = getattr(resource_tracker._resource_tracker, "_stop", None)
        if stop is not None:
            stop()
    except Exception:  # best effort at exit; never mask the real exit status
        pass


def reap(proc, grace_s: float) -> bool:
    """Wait up to ``grace_s`` for a multiprocessing.Process to exit, then terminate, then
    kill it. True if it had to be stopped."""
    proc.join(grace_s)
    stopped = False
    for stop in (proc.terminate, proc.kill):
        if not proc.is_alive():
            break
        stop()
        stopped = True
        proc.join(1.0)
    return stopped
