"""Facts about the machine that several layers need, with no joulegate imports.

It sits below every package (metering, backends, the CLI and the benchmarks all read it),
so any of them can import it without an arrow pointing up.
"""

from __future__ import annotations

import os

__all__ = ["vcpu_count"]


def vcpu_count() -> int:
    """The vCPUs this process may run on.

    The affinity mask, not the machine's core count: in a container or under ``taskset`` the
    process (and llama.cpp's threads, and the CPU power model) get only those CPUs. Platforms
    without ``os.sched_getaffinity`` (macOS, Windows) fall back to ``os.cpu_count()``.
    """
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0))
    return os.cpu_count() or 1
