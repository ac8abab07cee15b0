"""The measurement API the server calls: ``begin`` a window per request, ``end`` it with the
token counts, get a :class:`Receipt`. Local tiers are measured through the accountant's fair
split of the sensor; remote tiers are estimated from their profile.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from joulegate.metering.accountant import EnergyAccountant, Share
from joulegate.metering.pricing import Figures, TierLike, TierPlan
from joulegate.metering.receipt import Receipt
from joulegate.metering.sensors import Sensor, select_sensor
from joulegate.metering.settings import MeteringSettings

log = logging.getLogger("joulegate.metering")


@dataclass
class _Observed:
    """Running totals of a local tier's measured requests, for estimating it as a baseline."""

    device_j: float = 0.0
    device_s: float = 0.0
    tokens: int = 0
    completion_tokens: int = 0


class Meter:
    """One per server. ``tiers`` are ordered cheapest first; the last is the baseline."""

    def __init__(
        self,
        settings: MeteringSettings,
        tiers: Sequence[TierLike],
        sensor: Sensor | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not tiers:
            raise ValueError("the meter needs at least one tier")
        self.settings = settings
        self._sensor = sensor if sensor is not None else select_sensor(settings)
        wide = not self._sensor.process_scoped
        self._plans = {
            t.name: TierPlan.resolve(t, settings, sensor_sees_other_processes=wide) for t in tiers
        }
        if len(self._plans) != len(tiers):
            raise ValueError("tier names must be unique")
        for t in tiers:
            if t.kind != "embedded" and t.profile.measured and not wide:
                log.warning(
                    "tier %s asks to be measured, but the %s sensor sees only this process: "
                    "its receipts are estimated from its profile instead",
                    t.name,
                    self._sensor.name,
                )
        self._baseline = self._plans[tiers[-1].name]
        self._accountant = EnergyAccountant(self._sensor, clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._observed = {name: _Observed() for name, p in self._plans.items() if p.local}

    @property
    def sensor(self) -> Sensor:
        return self._sensor

    @property
    def baseline_tier(self) -> str:
        return self._baseline.name

    def plan(self, tier: str) -> TierPlan:
        try:
            return self._plans[tier]
        except KeyError:
            raise KeyError(f"unknown tier {tier!r}; configured: {list(self._plans)}") from None

    def begin(self, tier: str, *, weight: float = 1.0) -> MeterWindow:
        """Open a window for one request on ``tier``; local tiers start sharing the sensor."""
        plan = self.plan(tier)
        key = self._accountant.open(weight) if plan.local else None
        return MeterWindow(self, plan, key)

    def cached(
        self, tier: str, prompt_tokens: int, completion_tokens: int, *, latency_ms: float = 0.0
    ) -> Receipt:
        """A cache hit for a response first produced by ``tier``: no model ran."""
        _check_tokens(prompt_tokens, completion_tokens)
        plan = self.plan(tier)
        energy = self.settings.cache_hit_j
        own = Figures(energy, energy / 3.6e6 * self.settings.usd_per_kwh, plan.co2e_g(energy))
        base = self._baseline_figures(plan, prompt_tokens, completion_tokens, own=None)
        return _receipt(
            plan,
            self._baseline.name,
            own,
            "cache",
            latency_ms,
            None,
            prompt_tokens,
            completion_tokens,
            base or own,
            0.0,
        )

    def worst_case(self, tier: str, prompt_tokens: int, completion_tokens: int) -> Figures:
        """An upper estimate of a request's figures before it runs, for budget reservations.

        Remote tiers are priced per token, so this is exact for the given token counts. A
        local tier's energy is known only afterwards. Generation dominates it (prompt tokens
        are evaluated in batches, and a repeated prefix is cached), so the estimate is the
        energy measured per *generated* token so far, prompt cost included, times
        ``completion_tokens`` and ``worst_case_margin``. Before the tier's first request:
        every vCPU at full power for ``cold_s_per_token`` per generated token, a tenth of
        that per prompt token. A per-token profile, when set, is used as given.
        """
        plan = self.plan(tier)
        if not plan.local:
            return plan.estimated(prompt_tokens, completion_tokens)
        s = self.settings
        out = max(completion_tokens, 1)
        with self._lock:
            obs = self._observed[plan.name]
            rate_j = obs.device_j / obs.completion_tokens if obs.completion_tokens else None
            rate_s = obs.device_s / obs.completion_tokens if obs.completion_tokens else None
        cold_s = s.cold_s_per_token * (out + prompt_tokens / 10)
        device_s = rate_s * out * s.worst_case_margin if rate_s is not None else cold_s
        if plan.has_token_profile:
            device_j = (plan.joules_per_input_token or 0.0) * prompt_tokens + (
                plan.joules_per_output_token or 0.0
            ) * completion_tokens
        elif rate_j is not None:
            device_j = rate_j * out * s.worst_case_margin
        else:
            vcpus = s.vcpus or len(os.sched_getaffinity(0))
            device_j = cold_s * vcpus * s.cpu_max_w_per_vcpu
        return plan.measured(device_j, device_s)

    def close(self) -> None:
        self._sensor.close()

    # -- internals used by MeterWindow --------------------------------------------------

    def _finish(
        self,
        plan: TierPlan,
        share: Share | None,
        latency_ms: float,
        ttft_ms: float | None,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> Receipt:
        if share is not None:  # local, measured
            own = plan.measured(share.joules, share.seconds)
            source = self._sensor.source
            device_s = share.seconds
            with self._lock:
                obs = self._observed[plan.name]
                obs.device_j += share.joules
                obs.device_s += share.seconds
                obs.tokens += prompt_tokens + completion_tokens
                obs.completion_tokens += completion_tokens
        else:
            own = plan.estimated(prompt_tokens, completion_tokens)
            source = "estimated:profile"
            device_s = 0.0
        base = self._baseline_figures(plan, prompt_tokens, completion_tokens, own=own)
        return _receipt(
            plan,
            self._baseline.name,
            own,
            source,
            latency_ms,
            ttft_ms,
            prompt_tokens,
            completion_tokens,
            base or own,
            device_s,
        )

    def _baseline_figures(
        self, plan: TierPlan, prompt_tokens: int, completion_tokens: int, own: Figures | None
    ) -> Figures | None:
        """The same request priced on the baseline tier; ``None`` when it cannot be known."""
        base = self._baseline
        if base.name == plan.name and own is not None:
            return own  # the request ran on the baseline tier: its own figures
        if not base.local:
            return base.estimated(prompt_tokens, completion_tokens)
        tokens = prompt_tokens + completion_tokens
        with self._lock:
            obs = self._observed[base.name]
            per_token_s = obs.device_s / obs.tokens if obs.tokens else 0.0
            per_token_j = obs.device_j / obs.tokens if obs.tokens else None
        if base.has_token_profile:
            device_j = (base.joules_per_input_token or 0.0) * prompt_tokens + (
                base.joules_per_output_token or 0.0
            ) * completion_tokens
        elif per_token_j is not None:
            device_j = per_token_j * tokens
        else:
            return None  # a local baseline that has not served yet: nothing to compare with
        return base.measured(device_j, per_token_s * tokens)


class MeterWindow:
    """One request's measurement. ``end`` and ``abort`` are safe to call more than once."""

    def __init__(self, meter: Meter, plan: TierPlan, key: int | None) -> None:
        self._meter = meter
        self._plan = plan
        self._key = key
        self._t0 = meter._clock()
        self._ttft_ms: float | None = None
        self._lock = threading.Lock()
        self._share: Share | None = None
        self._closed_at: float | None = None
        self._receipt: Receipt | None = None

    @property
    def tier(self) -> str:
        return self._plan.name

    def first_token(self) -> None:
        """Mark time to first token; later calls are ignored."""
        with self._lock:
            if self._ttft_ms is None and self._closed_at is None:
                self._ttft_ms = (self._meter._clock() - self._t0) * 1000.0

    def set_weight(self, weight: float) -> None:
        """This window's weight in the fair split from now on (e.g. 0 while queued)."""
        if self._key is not None:
            self._meter._accountant.set_weight(self._key, weight)

    def _close(self) -> None:
        # Caller holds self._lock.
        if self._closed_at is None:
            self._closed_at = self._meter._clock()
            if self._key is not None:
                self._share = self._meter._accountant.close(self._key)

    def end(self, prompt_tokens: int, completion_tokens: int) -> Receipt:
        """Close the window and price it; a second call returns the first receipt."""
        _check_tokens(prompt_tokens, completion_tokens)
        with self._lock:
            if self._receipt is None:
                self._close()
                assert self._closed_at is not None
                self._receipt = self._meter._finish(
                    self._plan,
                    self._share,
                    (self._closed_at - self._t0) * 1000.0,
                    self._ttft_ms,
                    prompt_tokens,
                    completion_tokens,
                )
            return self._receipt

    def abort(self) -> None:
        """Close without a receipt (the request failed before any work was done)."""
        with self._lock:
            self._close()

    def __enter__(self) -> MeterWindow:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


def _check_tokens(prompt_tokens: int, completion_tokens: int) -> None:
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("token counts must be >= 0")


def _receipt(
    plan: TierPlan,
    baseline_tier: str,
    own: Figures,
    source: str,
    latency_ms: float,
    ttft_ms: float | None,
    prompt_tokens: int,
    completion_tokens: int,
    base: Figures,
    device_s: float,
) -> Receipt:
    return Receipt(
        tier=plan.name,
        model=plan.model,
        energy_j=own.energy_j,
        energy_source=source,
        cost_usd=own.cost_usd,
        co2e_g=own.co2e_g,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        baseline_tier=baseline_tier,
        baseline_energy_j=base.energy_j,
        baseline_cost_usd=base.cost_usd,
        baseline_co2e_g=base.co2e_g,
        device_s=device_s,
    )
