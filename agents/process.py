"""Process hygiene for the child processes tickwire spawns."""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time

log = logging.getLogger(__name__)


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


def usable_cores() -> list[int]:
    """The cores this process may run on (its affinity mask), in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pin_to_cpu(cpu: int, batch: bool = True) -> None:
    """Pin this process to one core (Linux; no privilege needed) and, with ``batch``, run it
    as SCHED_BATCH: a batch task does not preempt on wake-up, so a host waking for a new
    state does not interrupt the caller's thread on the core they share (bench/README.md
    measures both levers)."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as e:  # the core was taken away from us meanwhile
            log.debug("could not pin to core %d: %s", cpu, e)
    if batch and hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError as e:  # a seccomp profile may forbid it: pinning alone still helps
            log.debug("SCHED_BATCH not available: %s", e)


def cores_are_free(cores: list[int]) -> bool:
    """True when the machine's 1-minute load average is below the number of ``cores``:
    pinning processes to cores pays off then, and costs throughput on an oversubscribed
    machine (bench/README.md). False where the load average is unknown."""
    try:
        return os.getloadavg()[0] < len(cores)
    except (AttributeError, OSError):
        return False


def stop_popens(popens: list[subprocess.Popen], grace_s: float) -> list[subprocess.Popen]:
    """Wait up to ``grace_s`` (shared) for child processes to exit, then terminate, then
    kill what is left; every one is waited for (no zombie). The ones that had to be stopped."""
    deadline = time.monotonic() + grace_s
    stopped = []
    for p in popens:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stopped.append(p)
    for stop in ("terminate", "kill"):
        for p in stopped:
            if p.poll() is None:
                getattr(p, stop)()
        for p in stopped:
            try:
                p.wait(1.0)
            except subprocess.TimeoutExpired:
                pass
    return stopped
