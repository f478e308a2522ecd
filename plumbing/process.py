"""Process hygiene for the child processes tickwire spawns: die with the parent, pin to a
core, reap."""

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


def pin_to_cpu(cpu: int, batch: bool = True, strict: bool = False) -> None:
    """Pin this process to one core (Linux; no privilege needed) and, with ``batch``, run it
    as SCHED_BATCH: a batch task does not preempt on wake-up, so a process waking for new work
    does not interrupt the thread it shares the core with (the server's serial tick work, or a
    PlayerPool caller; bench/README.md measures both levers). A core that cannot be had is
    logged at debug level, or with ``strict`` raises OSError (a ``tickwire run --pin-cpus``
    agent fails rather than run unpinned); SCHED_BATCH is always best effort."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as e:  # the core was taken away from us meanwhile
            if strict:
                raise
            log.debug("could not pin to core %d: %s", cpu, e)
    if batch and hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError as e:  # a seccomp profile may forbid it: pinning alone still helps
            log.debug("SCHED_BATCH not available: %s", e)


#: How long :func:`cores_are_free` watches the machine before a pool pins its hosts.
FREE_WINDOW_S = 0.05


def cpu_times(cores: list[int], stat: str | None = None) -> dict[int, tuple[int, int]] | None:
    """(idle, total) jiffies of each of ``cores`` from /proc/stat (None where unavailable)."""
    if stat is None:
        try:
            with open("/proc/stat") as f:
                stat = f.read()
        except OSError:
            return None
    out = {}
    for line in stat.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks = [int(x) for x in fields]
            out[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks[:8]))  # idle + iowait; no guest
    return out if len(out) == len(cores) else None


def idle_share(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> float:
    """The share of CPU time the cores spent idle between two :func:`cpu_times` samples."""
    idle = sum(after[c][0] - before[c][0] for c in after)
    total = sum(after[c][1] - before[c][1] for c in after)
    return idle / total if total > 0 else 1.0


def cores_are_free(cores: list[int], window_s: float = FREE_WINDOW_S) -> bool:
    """True when ``cores`` were at least half idle over the last ``window_s`` (Linux
    /proc/stat; elsewhere: the 1-minute load average is below the number of cores).
    Pinning processes to cores pays off then, and costs throughput on an oversubscribed
    machine (bench/README.md). An instant sample, not the load average, which lags by a
    minute after a burst."""
    before = cpu_times(cores)
    if before is not None:
        time.sleep(window_s)  # a measurement window, not a wait for an event
        after = cpu_times(cores)
        if after is not None:
            return idle_share(before, after) >= 0.5
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
