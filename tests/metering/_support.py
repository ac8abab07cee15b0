"""Helpers for the metering tests: real sensors, real CPU work."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

from joulegate.metering import Sensor, TierProfile


@dataclass
class Tier:
    """The smallest object that satisfies ``TierLike``."""

    name: str
    kind: str = "openai"
    model: str = "m"
    profile: TierProfile = field(default_factory=TierProfile)

    @property
    def public_id(self) -> str:
        return f"{self.name}/{self.model}"


class RecordingSensor(Sensor):
    """Wraps a real sensor and keeps every reading, so a test can compare against it."""

    def __init__(self, inner: Sensor) -> None:
        self.inner = inner
        self.name = inner.name
        self.source = inner.source
        self.readings: list[float] = []
        self._lock = threading.Lock()

    def energy_j(self) -> float:
        with self._lock:
            value = self.inner.energy_j()
            self.readings.append(value)
            return value


def burn_cpu(seconds: float) -> None:
    """Busy-loop on this thread until the process has used ``seconds`` more CPU time.

    CPU time, not wall time: on a loaded CI machine a wall-clock loop may get a fraction
    of a core, and the comparisons in these tests are about work done.
    """
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1


def burn_in_threads(seconds: float, threads: int = 2) -> None:
    """``seconds`` of CPU time on each of ``threads`` other threads, GIL released (as
    llama.cpp's compute threads do)."""
    block = b"x" * (1 << 20)

    def work() -> None:
        end = time.thread_time() + seconds  # CPU time of this thread
        while time.thread_time() < end:
            hashlib.sha256(block).digest()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
