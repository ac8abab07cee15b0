"""What the numbers were measured on, and how the benchmark shares out the machine's CPUs."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._output import REPO


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip() or None
    return None


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on; the load average matters on a shared machine."""
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),  # the machine's; the benchmark may be pinned to fewer
        "mem_gib": _mem_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "load_average_1_5_15": load_average(),
        "command": " ".join(["python", "-m", _module_name(), *sys.argv[1:]]),
    }


def cpu_layout() -> tuple[set[int], set[int]]:
    """(gateway CPUs, load-generator + upstream CPUs): half each, the gateway never shares.

    On one CPU there is nothing to split and everything shares it; where the platform has no
    affinity API both sets are empty, which pins nothing.
    """
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is None:
        return set(), set()
    cpus = sorted(affinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def pin_self(cpus: set[int]) -> None:
    """Pin this (load-generator) process; a no-op where affinity cannot be set."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, cpus)
