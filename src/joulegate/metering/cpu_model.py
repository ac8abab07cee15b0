"""A CPU power model for machines with no energy counter (every CI machine we have).

    energy = process CPU seconds x (max - min) W per vCPU        (work done)
           + wall seconds x vCPUs x min W per vCPU               (idle floor of the machine)
           + wall seconds x memory GB x W per GB                 (memory)

This is the Cloud Carbon Footprint model, W = min + utilisation x (max - min) per vCPU,
integrated over time with utilisation measured rather than assumed: summed over the vCPUs,
utilisation x wall time is exactly CPU time.

Why *process* CPU time: llama.cpp runs its matrix work in its own compute threads, so the
CPU time of the Python thread that calls it misses most of the work. ``time.process_time``
(CLOCK_PROCESS_CPUTIME_ID) counts every thread of the process, llama.cpp's included. It
also counts HTTP handling for other requests; the accountant splits it between the requests
open at the time, which is the fair share we want (docs/energy.md).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable

from joulegate._platform import vcpu_count
from joulegate.metering.sensors import Sensor
from joulegate.metering.settings import MeteringSettings

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_gb() -> float:
    """This process's resident set size in GB (1e9 bytes), current where Linux says so."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE / 1e9
    except (OSError, ValueError, IndexError):
        # Peak, not current: the best portable figure (KiB on Linux, bytes on macOS).
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss * (1 if os.uname().sysname == "Darwin" else 1024) / 1e9


class CpuModelSensor(Sensor):
    """Modelled joules for this process; see the module docstring for the formula."""

    name = "cpu-model"
    source = "modeled:cpu"
    process_scoped = True

    def __init__(
        self,
        *,
        min_w_per_vcpu: float,
        max_w_per_vcpu: float,
        vcpus: int | None = None,
        memory_w_per_gb: float = 0.0,
        memory_gb: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        if max_w_per_vcpu < min_w_per_vcpu:
            raise ValueError("cpu_max_w_per_vcpu must be >= cpu_min_w_per_vcpu")
        self.min_w = min_w_per_vcpu
        self.max_w = max_w_per_vcpu
        self.vcpus = vcpus or vcpu_count()
        self.memory_w_per_gb = memory_w_per_gb
        self._memory_gb = memory_gb
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._lock = threading.Lock()
        self._total = 0.0
        self._last_t = clock()
        self._last_cpu = cpu_clock()

    @classmethod
    def from_settings(cls, settings: MeteringSettings) -> CpuModelSensor:
        return cls(
            min_w_per_vcpu=settings.cpu_min_w_per_vcpu,
            max_w_per_vcpu=settings.cpu_max_w_per_vcpu,
            vcpus=settings.vcpus,
            memory_w_per_gb=settings.memory_w_per_gb,
            memory_gb=settings.memory_gb,
        )

    @property
    def idle_w(self) -> float:
        """The power drawn with no work: every vCPU at its minimum, plus memory."""
        return self.vcpus * self.min_w + self.memory_w_per_gb * self.memory_gb()

    def memory_gb(self) -> float:
        return self._memory_gb if self._memory_gb is not None else resident_gb()

    def energy_j(self) -> float:
        with self._lock:
            now, cpu = self._clock(), self._cpu_clock()
            wall = max(0.0, now - self._last_t)
            busy = max(0.0, cpu - self._last_cpu)
            self._total += busy * (self.max_w - self.min_w) + wall * self.idle_w
            self._last_t, self._last_cpu = now, cpu
            return self._total
