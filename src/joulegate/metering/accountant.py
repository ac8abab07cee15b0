"""Fair split of one sensor's energy between the requests open at the same time.

The rule (docs/energy.md, "Fair split"): the sensor is read whenever a window opens, closes
or changes weight. Between two consecutive readings the set of open windows is constant,
so that interval's energy, and its wall time, are divided among exactly those windows in
proportion to their weights (equal by default). Energy read while no window is open is
idle time between requests and is attributed to nobody. Hence, exactly (up to float
rounding): the sum over windows of attributed joules equals the sensor's increase over the
union of the windows' lifetimes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from joulegate.metering.sensors import Sensor


@dataclass
class Share:
    """What one open window has been attributed so far."""

    weight: float = 1.0
    joules: float = 0.0
    seconds: float = 0.0


class EnergyAccountant:
    """Thread-safe: every method takes the one lock, and reads the sensor under it."""

    def __init__(self, sensor: Sensor, clock: Callable[[], float] = time.monotonic) -> None:
        self.sensor = sensor
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[int, Share] = {}
        self._ids = itertools.count()
        self._last_j = sensor.energy_j()
        self._last_t = clock()
        self.attributed_j = 0.0  # running total handed to windows, for checks and metrics

    def _advance(self) -> None:
        """Read the sensor; split the energy since the last reading among open windows."""
        now_j, now_t = self.sensor.energy_j(), self._clock()
        d_j = max(0.0, now_j - self._last_j)
        d_t = max(0.0, now_t - self._last_t)
        self._last_j, self._last_t = now_j, now_t
        if not self._open:
            return
        total_w = sum(s.weight for s in self._open.values())
        n = len(self._open)
        for share in self._open.values():
            frac = share.weight / total_w if total_w > 0 else 1.0 / n
            share.joules += d_j * frac
            share.seconds += d_t * frac
        self.attributed_j += d_j

    def open(self, weight: float = 1.0) -> int:
        if weight < 0:
            raise ValueError("weight must be >= 0")
        with self._lock:
            self._advance()
            key = next(self._ids)
            self._open[key] = Share(weight=weight)
            return key

    def set_weight(self, key: int, weight: float) -> None:
        """Change a window's weight from now on (e.g. 0 while queued, 1 while computing)."""
        if weight < 0:
            raise ValueError("weight must be >= 0")
        with self._lock:
            if key in self._open:
                self._advance()
                self._open[key].weight = weight

    def close(self, key: int) -> Share:
        """Close a window and return its final share; closing twice returns an empty share."""
        with self._lock:
            if key not in self._open:
                return Share()
            self._advance()
            return self._open.pop(key)

    @property
    def open_windows(self) -> int:
        with self._lock:
            return len(self._open)
