"""The measurement API the server calls: ``begin`` a window per request, ``end`` it with the
token counts, get a :class:`Receipt`. Local tiers are measured through the accountant's fair
split of the sensor; remote tiers are estimated from their profile.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from joulegate._platform import vcpu_count
from joulegate.metering.accountant import EnergyAccountant, Share
from joulegate.metering.pricing import Figures, TierLike, TierPricing
from joulegate.metering.receipt import Receipt
from joulegate.metering.sensors import Sensor
from joulegate.metering.settings import MeteringSettings

log = logging.getLogger(__name__)


@dataclass
class _Observed:
    """Running totals of a local tier's measured requests, for estimating it as a baseline."""

    device_j: float = 0.0
    device_s: float = 0.0
    tokens: int = 0
    completion_tokens: int = 0


class Meter:
    """One per server. ``tiers`` are ordered cheapest first; the last is the baseline.

    The sensor is given, not chosen here: ``joulegate.metering.select_sensor`` picks it from
    the settings, and tests hand in a sensor they control.
    """

    def __init__(
        self,
        settings: MeteringSettings,
        tiers: Sequence[TierLike],
        sensor: Sensor,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not tiers:
            raise ValueError("the meter needs at least one tier")
        self.settings = settings
        self._sensor = sensor
        wide = not self._sensor.process_scoped
        self._pricing = {
            t.name: TierPricing.resolve(t, settings, sensor_sees_other_processes=wide)
            for t in tiers
        }
        if len(self._pricing) != len(tiers):
            raise ValueError("tier names must be unique")
        for t in tiers:
            if t.kind != "embedded" and t.profile.measured and not wide:
                unset = t.profile.joules_per_output_token is None
                log.warning(
                    "tier %s asks to be measured, but the %s sensor sees only this process: "
                    "its receipts are estimated from its profile instead, priced at this "
                    "machine's electricity%s",
                    t.name,
                    self._sensor.name,
                    " (set its joules_per_*_token: the hosted-model defaults apply, far too "
                    "high for a small local model)"
                    if unset
                    else "",
                )
        self._baseline = self._pricing[tiers[-1].name]
        self._accountant = EnergyAccountant(self._sensor, clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._observed = {name: _Observed() for name, p in self._pricing.items() if p.local}
        _warn_if_costlier_first(list(self._pricing.values()))

    @property
    def sensor(self) -> Sensor:
        return self._sensor

    @property
    def baseline_tier(self) -> str:
        return self._baseline.name

    def pricing(self, tier: str) -> TierPricing:
        try:
            return self._pricing[tier]
        except KeyError:
            raise KeyError(f"unknown tier {tier!r}; configured: {list(self._pricing)}") from None

    def begin(self, tier: str, *, weight: float = 1.0) -> MeterWindow:
        """Open a window for one request on ``tier``; local tiers start sharing the sensor."""
        pricing = self.pricing(tier)
        key = self._accountant.open(weight) if pricing.local else None
        return MeterWindow(self, pricing, key)

    def cached(
        self,
        tier: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        latency_ms: float = 0.0,
        energy_j: float | None = None,
        baseline: Figures | None = None,
    ) -> Receipt:
        """A cache hit for a response first produced by ``tier``: no model ran.

        ``energy_j``: what the lookup cost, when the cache measured it (else
        ``cache_hit_j``). ``baseline``: what the cached answer cost when it was made, which
        the cache entry keeps; else the baseline tier's estimate for the same tokens.
        """
        _check_tokens(prompt_tokens, completion_tokens)
        pricing = self.pricing(tier)
        energy = self.settings.cache_hit_j if energy_j is None else energy_j
        own = Figures(energy, energy / 3.6e6 * self.settings.usd_per_kwh, pricing.co2e_g(energy))
        base = baseline or self._baseline_figures(
            pricing, prompt_tokens, completion_tokens, own=None
        )
        return _receipt(
            pricing,
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
        pricing = self.pricing(tier)
        if not pricing.local:
            return pricing.estimated(prompt_tokens, completion_tokens)
        s = self.settings
        out = max(completion_tokens, 1)
        with self._lock:
            obs = self._observed[pricing.name]
            rate_j = obs.device_j / obs.completion_tokens if obs.completion_tokens else None
            rate_s = obs.device_s / obs.completion_tokens if obs.completion_tokens else None
        cold_s = s.cold_s_per_token * (out + prompt_tokens / 10)
        device_s = rate_s * out * s.worst_case_margin if rate_s is not None else cold_s
        if pricing.has_token_profile:
            device_j = (pricing.joules_per_input_token or 0.0) * prompt_tokens + (
                pricing.joules_per_output_token or 0.0
            ) * completion_tokens
        elif rate_j is not None:
            device_j = rate_j * out * s.worst_case_margin
        else:
            vcpus = s.vcpus or vcpu_count()
            device_j = cold_s * vcpus * s.cpu_max_w_per_vcpu
        return pricing.measured(device_j, device_s)

    def close(self) -> None:
        self._sensor.close()

    # -- internals used by MeterWindow --------------------------------------------------

    def _finish(
        self,
        pricing: TierPricing,
        share: Share | None,
        latency_ms: float,
        ttft_ms: float | None,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> Receipt:
        if share is not None:  # local, measured
            own = pricing.measured(share.joules, share.seconds)
            source = self._sensor.source
            device_s = share.seconds
            with self._lock:
                obs = self._observed[pricing.name]
                obs.device_j += share.joules
                obs.device_s += share.seconds
                obs.tokens += prompt_tokens + completion_tokens
                obs.completion_tokens += completion_tokens
        else:
            own = pricing.estimated(prompt_tokens, completion_tokens)
            source = "estimated:profile"
            device_s = 0.0
        base = self._baseline_figures(pricing, prompt_tokens, completion_tokens, own=own)
        return _receipt(
            pricing,
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
        self, pricing: TierPricing, prompt_tokens: int, completion_tokens: int, own: Figures | None
    ) -> Figures | None:
        """The same request priced on the baseline tier; ``None`` when it cannot be known."""
        base = self._baseline
        if base.name == pricing.name and own is not None:
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

    def __init__(self, meter: Meter, pricing: TierPricing, key: int | None) -> None:
        self._meter = meter
        self._pricing = pricing
        self._key = key
        self._t0 = meter._clock()
        self._ttft_ms: float | None = None
        self._lock = threading.Lock()
        self._share: Share | None = None
        self._closed_at: float | None = None
        self._receipt: Receipt | None = None

    @property
    def tier(self) -> str:
        return self._pricing.name

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

    def end(self, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> Receipt:
        """Close the window and price it; a second call returns the first receipt.

        ``reasoning_tokens`` are part of ``completion_tokens`` (metered as output tokens
        like the rest); the receipt names them and the energy they account for.
        """
        _check_tokens(prompt_tokens, completion_tokens)
        reasoning_tokens = min(max(reasoning_tokens, 0), completion_tokens)
        with self._lock:
            if self._receipt is None:
                self._close()
                assert self._closed_at is not None
                receipt = self._meter._finish(
                    self._pricing,
                    self._share,
                    (self._closed_at - self._t0) * 1000.0,
                    self._ttft_ms,
                    prompt_tokens,
                    completion_tokens,
                )
                if reasoning_tokens:
                    receipt = dataclasses.replace(
                        receipt,
                        reasoning_tokens=reasoning_tokens,
                        reasoning_energy_j=self._reasoning_j(receipt, reasoning_tokens),
                    )
                self._receipt = receipt
            return self._receipt

    def _reasoning_j(self, receipt: Receipt, reasoning_tokens: int) -> float:
        """The part of the receipt's energy that reasoning tokens account for.

        Estimated tiers: exactly their output-token term, ``J_out x r x pue``. Measured
        tiers: the energy split over the output tokens, ``E x r / c``; that charges prompt
        processing to the output too, a small overstatement for reasoning answers, whose
        energy is nearly all in generating (docs/energy.md, "Reasoning tiers").
        """
        if receipt.energy_source == "estimated:profile":
            return self._pricing.estimated(0, reasoning_tokens).energy_j
        return receipt.energy_j * reasoning_tokens / receipt.completion_tokens

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


# A typical chat exchange for comparing tiers' expected cost per answer: ML.ENERGY v3's
# chat responses run ~350 output tokens (docs/energy.md, Remote tiers).
TYPICAL_PROMPT_TOKENS = 100
TYPICAL_OUTPUT_TOKENS = 350


def _warn_if_costlier_first(pricings: list[TierPricing]) -> None:
    """Tiers are listed cheapest first, and routing trusts that order: the router takes
    the first good-enough tier. A reasoning tier costs many times more per answer than its
    per-token price suggests, so say so when one comes before a tier whose typical answer
    is cheaper (only estimated tiers compare: a local tier's cost is measured)."""
    for i, tier in enumerate(pricings):
        if tier.output_multiplier <= 1.0 or tier.local:
            continue
        mine = tier.expected_answer(TYPICAL_PROMPT_TOKENS, TYPICAL_OUTPUT_TOKENS)
        for later in pricings[i + 1 :]:
            if later.local:
                continue
            theirs = later.expected_answer(TYPICAL_PROMPT_TOKENS, TYPICAL_OUTPUT_TOKENS)
            if theirs.energy_j < mine.energy_j or theirs.cost_usd < mine.cost_usd:
                log.warning(
                    "tier %s is a reasoning tier listed before %s, yet a typical answer costs "
                    "%.0f J / $%.6f there against %.0f J / $%.6f on %s (reasoning answers "
                    "run ~%gx the tokens); tiers are listed cheapest first",
                    tier.name,
                    later.name,
                    mine.energy_j,
                    mine.cost_usd,
                    theirs.energy_j,
                    theirs.cost_usd,
                    later.name,
                    tier.output_multiplier,
                )


def _check_tokens(prompt_tokens: int, completion_tokens: int) -> None:
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("token counts must be >= 0")


def _receipt(
    pricing: TierPricing,
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
        tier=pricing.name,
        model=pricing.model,
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
