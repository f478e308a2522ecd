"""The default player name inside a container: the container's hostname.

Only when the agent is the container's main process (PID 1, as with the image's exec-form
entrypoint, or the only child of ``docker run --init``'s init).

Docker sets a container's hostname to its short id (or what ``hostname:`` in a compose file
says), so naming players after it makes the run's summary map containers to players. Outside
a container the default stays the agent's class name; ``--name`` always wins.
"""

from __future__ import annotations

import os
import socket

#: Words in ``/proc/1/cgroup`` that mean "in a container" (Docker, Kubernetes, containerd,
#: Podman, LXC); with cgroup v2 the file says only ``0::/``, so the marker files decide.
CGROUP_MARKERS = ("docker", "kubepods", "containerd", "libpod", "lxc")
#: Files container engines create: Docker's and Podman's.
MARKER_FILES = ("/.dockerenv", "/run/.containerenv")


#: Minimal inits that run the real command as their only child (``docker run --init``).
INIT_PROCESSES = ("tini", "docker-init", "dumb-init", "catatonit")


def container_name_from(*, marker_file: bool, cgroup: str, hostname: str, main_process: bool) -> str | None:
    """The hostname if this is a container and this process is its main one, else None (pure).

    Only the container's main process speaks for the container: several agents started by
    hand inside one container (a dev container, a CI job in a container) keep their class
    names instead of all taking the same hostname."""
    inside = marker_file or any(m in cgroup for m in CGROUP_MARKERS)
    return hostname.strip() or None if inside and main_process else None


def _is_main_process() -> bool:
    """PID 1 (the image's exec-form entrypoint), or the only child of a minimal init."""
    if os.getpid() == 1:
        return True
    if os.getppid() != 1:
        return False
    try:
        with open("/proc/1/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip() in INIT_PROCESSES
    except OSError:
        return False


def container_name() -> str | None:
    """This container's hostname if this process is the container's main one, else None."""
    main = _is_main_process()
    if not main:
        return None
    try:
        with open("/proc/1/cgroup", encoding="utf-8", errors="replace") as f:
            cgroup = f.read(65536)
    except OSError:
        cgroup = ""
    return container_name_from(
        marker_file=any(os.path.exists(p) for p in MARKER_FILES),
        cgroup=cgroup,
        hostname=socket.gethostname(),
        main_process=main,
    )


def name_agents(agents: list, given: str | None, default: str | None) -> None:
    """Name ``agents``: ``given`` (--name) wins over everything; ``default`` (the container's
    name) only names agents whose class sets no name. K agents get NAME-0 .. NAME-K-1."""
    base = given or default
    if not base:
        return
    for i, a in enumerate(agents):
        if given or a.name is None:
            a.name = base if len(agents) == 1 else f"{base}-{i}"
