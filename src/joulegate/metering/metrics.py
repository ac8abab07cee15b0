"""Prometheus series for receipts: counts, latency, joules, CO2e and dollars by tier.

The baseline counters sit beside the actual ones so a dashboard computes savings as
``baseline - actual`` from the same requests, rather than from a claimed ratio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from joulegate.metering.receipt import TOKENS, Receipt

# Seconds. From a cached answer (~1 ms) to a long CPU generation (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

# One counter per priced amount and its baseline twin (receipt.AMOUNTS and
# BASELINE_AMOUNTS), by tier; energy is also split by provenance.
# Receipt field -> (series name, help).
_AMOUNT_SERIES = {
    "energy_j": (
        "joulegate_energy_joules",
        "Energy attributed to requests, by tier and provenance.",
    ),
    "cost_usd": ("joulegate_cost_usd", "Cost attributed to requests, USD."),
    "co2e_g": ("joulegate_co2e_grams", "CO2-equivalent attributed to requests."),
    "baseline_energy_j": (
        "joulegate_baseline_energy_joules",
        "Energy the same requests would have used on the baseline (largest) tier.",
    ),
    "baseline_cost_usd": (
        "joulegate_baseline_cost_usd",
        "Cost the same requests would have had on the baseline tier, USD.",
    ),
    "baseline_co2e_g": (
        "joulegate_baseline_co2e_grams",
        "CO2e the same requests would have emitted on the baseline tier.",
    ),
}
_BY_SOURCE = ("energy_j",)


@dataclass(frozen=True)
class _Bound:
    """One label set's children, so ``observe`` never looks a label up twice."""

    requests: Any
    latency: Any
    ttft: Any
    tokens: dict[str, Any]
    amounts: dict[str, Any]


class MeteringMetrics:
    """The collectors, registered once on ``registry`` (a test passes its own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._bound: dict[tuple[str, str, str], _Bound] = {}
        self.registry = registry
        self.requests = Counter(
            "joulegate_requests",
            "Requests answered, by tier, outcome and energy provenance.",
            ["tier", "status", "energy_source"],
            registry=registry,
        )
        self.latency = Histogram(
            "joulegate_request_latency_seconds",
            "Wall time from the start of metering to the last token.",
            ["tier"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "joulegate_time_to_first_token_seconds",
            "Wall time to the first generated token.",
            ["tier"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "joulegate_tokens",
            "Tokens processed, by kind: prompt, completion, and reasoning (a part of completion).",
            ["tier", "kind"],
            registry=registry,
        )
        self.amounts = {
            field: Counter(
                name,
                doc,
                ["tier", "energy_source"] if field in _BY_SOURCE else ["tier"],
                registry=registry,
            )
            for field, (name, doc) in _AMOUNT_SERIES.items()
        }

    def _bind(self, tier: str, status: str, source: str) -> _Bound:
        """``labels()`` validates and locks on every call; bind each label set once."""
        key = (tier, status, source)
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = _Bound(
                requests=self.requests.labels(tier, status, source),
                latency=self.latency.labels(tier),
                ttft=self.ttft.labels(tier),
                tokens={f: self.tokens.labels(tier, f.removesuffix("_tokens")) for f in TOKENS},
                amounts={
                    f: c.labels(tier, source) if f in _BY_SOURCE else c.labels(tier)
                    for f, c in self.amounts.items()
                },
            )
        return bound

    def observe(self, receipt: Receipt, status: str = "ok") -> None:
        bound = self._bind(receipt.tier, status, receipt.energy_source)
        bound.requests.inc()
        bound.latency.observe(receipt.latency_ms / 1000.0)
        if receipt.ttft_ms is not None:
            bound.ttft.observe(receipt.ttft_ms / 1000.0)
        for field, counter in bound.tokens.items():
            counter.inc(getattr(receipt, field))
        for field, counter in bound.amounts.items():
            counter.inc(max(0.0, getattr(receipt, field)))


_default: MeteringMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> MeteringMetrics:
    """The process-wide collectors on prometheus_client's default registry (created once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MeteringMetrics(REGISTRY)
        return _default


def observe(
    receipt: Receipt, status: str = "ok", *, metrics: MeteringMetrics | None = None
) -> None:
    """Count one receipt: on ``metrics`` if given, else on the default registry."""
    (metrics or default_metrics()).observe(receipt, status)
