"""One interface for everything that can say how many joules this process has driven.

A sensor is a cumulative counter, like NVML's total-energy counter: callers read it twice
and subtract. Keeping the interface that small is what lets the accountant
(``accountant.py``) split energy between overlapping requests without knowing which device
it talks to. The implementations (``nvml.py``, ``rapl.py``, ``cpu_model.py``) import this
module, never the other way round; ``joulegate.metering.select_sensor`` picks one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


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
