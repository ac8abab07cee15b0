"""One interface for everything that can say how many joules this process has driven.

A sensor is a cumulative counter, like NVML's total-energy counter: callers read it twice
and subtract. Keeping the interface that small is what lets the accountant (``meter.py``)
split energy between overlapping requests without knowing which device it talks to.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from joulegate.metering.settings import MeteringSettings

log = logging.getLogger(__name__)


class MeteringError(Exception):
    """Base class for metering errors."""


class SensorUnavailable(MeteringError):
    """The requested sensor cannot be used on this machine; the message says why."""


class Sensor(ABC):
    """A cumulative, monotonically non-decreasing energy counter, in joules.

    ``source`` is the provenance written on every receipt the sensor contributes to.
    Implementations must be safe to call from several threads.
    """

    name: str
    source: str
    # True when the counter sees only this process (the CPU model): it then cannot measure
    # a model served by another process on this machine, however local that process is.
    process_scoped: bool = False

    @abstractmethod
    def energy_j(self) -> float:
        """Joules since the sensor was opened (an arbitrary but fixed origin)."""

    def close(self) -> None:  # optional hook: most sensors hold nothing to release
        """Release what the sensor holds (NVML handle); reading after close is undefined."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source}>"


def select_sensor(settings: MeteringSettings) -> Sensor:
    """Open the sensor ``settings.sensor`` names, or the best available one for "auto".

    "auto" tries NVML only when the local model runs on the GPU (``local_uses_gpu``); a GPU
    that the model does not use would meter the wrong device. Then RAPL, when the powercap
    counters are readable (usually root only). Then the CPU power model, which always works.
    An explicit choice that cannot be opened raises :class:`SensorUnavailable`.
    """
    from joulegate.metering.cpu_model import CpuModelSensor
    from joulegate.metering.nvml import NvmlSensor
    from joulegate.metering.rapl import RaplSensor

    choice = settings.sensor
    if choice == "nvml":
        return NvmlSensor.open(settings.nvml_devices)
    if choice == "rapl":
        return RaplSensor.open(settings.rapl_root)
    if choice == "cpu-model":
        return CpuModelSensor.from_settings(settings)

    reasons: list[str] = []
    if settings.local_uses_gpu:
        try:
            return NvmlSensor.open(settings.nvml_devices)
        except SensorUnavailable as exc:
            reasons.append(f"nvml: {exc}")
    else:
        reasons.append("nvml: skipped, local_uses_gpu is false")
    try:
        return RaplSensor.open(settings.rapl_root)
    except SensorUnavailable as exc:
        reasons.append(f"rapl: {exc}")
    log.info("metering with the CPU power model (%s)", "; ".join(reasons))
    return CpuModelSensor.from_settings(settings)
