"""A circuit breaker per upstream tier.

Without one, every request to a dead tier pays a connect timeout (or worse, a first-token
timeout) before falling back. After ``failure_threshold`` consecutive failed attempts the
breaker *opens*: the tier is skipped instantly, and a background task probes its health
endpoint with exponential backoff (state *half-open* while a probe is in flight) until one
succeeds, which *closes* it again. Each gateway replica keeps its own breaker: the state is
a local observation, cheap to rebuild, and not worth a shared store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerSettings:
    """Thresholds; defaults suit a tier that answers in seconds and restarts in tens."""

    # Consecutive failed attempts (retries included) that open the breaker.
    failure_threshold: int = 5
    # First probe this long after opening; doubled after each failed probe, up to the cap.
    probe_interval_s: float = 1.0
    probe_max_interval_s: float = 30.0


@dataclass(frozen=True)
class ProbeResult:
    """One health probe: what was asked, what came back, how long it took."""

    ok: bool
    detail: str
    latency_ms: float | None
    at: float  # time.time()


Probe = Callable[[], Awaitable[ProbeResult]]


class CircuitBreaker:
    def __init__(self, name: str, probe: Probe, settings: BreakerSettings | None = None) -> None:
        self.name = name
        self.settings = settings or BreakerSettings()
        self._probe = probe
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.last_failure: str | None = None
        self.last_probe: ProbeResult | None = None
        self._task: asyncio.Task[None] | None = None

    def allow(self) -> bool:
        """Whether a request may be sent now (only while closed)."""
        return self.state is BreakerState.CLOSED

    def record_success(self) -> None:
        """The upstream answered: whatever the probes say, it works."""
        self.consecutive_failures = 0
        if self.state is not BreakerState.CLOSED:
            self._close("a request succeeded")

    def record_failure(self, reason: str) -> None:
        self.consecutive_failures += 1
        self.last_failure = reason
        if (
            self.state is BreakerState.CLOSED
            and self.consecutive_failures >= self.settings.failure_threshold
        ):
            self._open()

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        log.warning(
            "tier %s: circuit open after %d consecutive failures (last: %s); probing its health",
            self.name, self.consecutive_failures, self.last_failure,
        )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._probe_until_healthy(), name=f"breaker-{self.name}"
            )

    def _close(self, why: str) -> None:
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        log.info("tier %s: circuit closed (%s)", self.name, why)
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _probe_until_healthy(self) -> None:
        delay = self.settings.probe_interval_s
        while self.state is not BreakerState.CLOSED:
            # Jitter keeps replicas that opened together from probing in lockstep.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            if self.state is BreakerState.CLOSED:
                return
            self.state = BreakerState.HALF_OPEN
            try:
                result = await self._probe()
            except Exception as exc:  # a probe that crashes is a failed probe
                detail = f"probe failed: {type(exc).__name__}"
                result = ProbeResult(False, detail, None, time.time())
            self.last_probe = result
            if result.ok:
                self._close(f"health probe ok: {result.detail}")
                return
            if self.state is BreakerState.HALF_OPEN:
                self.state = BreakerState.OPEN
            delay = min(delay * 2, self.settings.probe_max_interval_s)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["BreakerSettings", "BreakerState", "CircuitBreaker", "ProbeResult"]
