"""NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``), via nvidia-ml-py.

The counter is the board's energy in millijoules since the driver was loaded, on Volta and
newer GPUs; it is updated every 20-100 ms, so a request shorter than that is resolved
poorly, but sums over many requests are right. It measures the whole board: another process
on the same GPU is counted too (docs/energy.md).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pynvml  # nvidia-ml-py, a dependency: importing it needs no driver, nvmlInit does

from joulegate.metering.sensors import Sensor, SensorUnavailable


class NvmlSensor(Sensor):
    """Sum of the total-energy counters of the chosen GPUs, in joules from opening."""

    name = "nvml"
    source = "measured:nvml"

    def __init__(self, handles: list[Any], indices: list[int]) -> None:
        self._handles = handles
        self.indices = indices
        self._lock = threading.Lock()
        self._origin_mj = self._read_mj()
        self._last_mj = self._origin_mj

    @classmethod
    def open(cls, devices: list[int] | None = None) -> NvmlSensor:
        """Initialise NVML and check every chosen device has an energy counter."""
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise SensorUnavailable(
                f"NVML cannot initialise ({exc}): no NVIDIA driver/GPU"
            ) from exc
        try:
            count = pynvml.nvmlDeviceGetCount()
            indices = list(range(count)) if devices is None else list(devices)
            if not indices:
                raise SensorUnavailable("NVML reports no NVIDIA GPU")
            bad = [i for i in indices if not 0 <= i < count]
            if bad:
                raise SensorUnavailable(f"NVML devices {bad} do not exist (found {count})")
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            for i, h in zip(indices, handles, strict=True):
                try:
                    pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
                except pynvml.NVMLError as exc:
                    raise SensorUnavailable(
                        f"GPU {i} has no total-energy counter ({exc}); needs Volta or newer"
                    ) from exc
            return cls(handles, indices)
        except BaseException:
            pynvml.nvmlShutdown()
            raise

    def _read_mj(self) -> int:
        return sum(int(pynvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles)

    def energy_j(self) -> float:
        with self._lock:
            # The counter only resets with the driver; never let the sum run backwards.
            self._last_mj = max(self._last_mj, self._read_mj())
            return (self._last_mj - self._origin_mj) / 1000.0

    def close(self) -> None:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
