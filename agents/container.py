"""The default player name inside a container: the container's hostname.

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


def container_name_from(*, marker_file: bool, cgroup: str, hostname: str) -> str | None:
    """The hostname if the evidence says this is a container, else None (pure)."""
    inside = marker_file or any(m in cgroup for m in CGROUP_MARKERS)
    return hostname.strip() or None if inside else None


def container_name() -> str | None:
    """This process's container's hostname, or None when not in a container."""
    try:
        with open("/proc/1/cgroup", encoding="utf-8", errors="replace") as f:
            cgroup = f.read(65536)
    except OSError:
        cgroup = ""
    return container_name_from(marker_file=any(os.path.exists(p) for p in MARKER_FILES),
                               cgroup=cgroup, hostname=socket.gethostname())


def name_agents(agents: list, given: str | None, default: str | None) -> None:
    """Name ``agents``: ``given`` (--name) wins over everything; ``default`` (the container's
    name) only names agents whose class sets no name. K agents get NAME-0 .. NAME-K-1."""
    base = given or default
    if not base:
        return
    for i, a in enumerate(agents):
        if given or a.name is None:
            a.name = base if len(agents) == 1 else f"{base}-{i}"
