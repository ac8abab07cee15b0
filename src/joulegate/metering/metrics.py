"""Prometheus series for receipts: counts, latency, joules, CO2e and dollars by tier.

The baseline counters sit beside the actual ones so a dashboard computes savings as
``baseline - actual`` from the same requests, rather than from a claimed ratio.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from joulegate.metering.receipt import Receipt

# Seconds. From a cached answer (~1 ms) to a long CPU generation (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class MeteringMetrics:
    """The collectors, registered once on ``registry`` (a test passes its own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._bound: dict[tuple[str, str, str], tuple[Any, ...]] = {}
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
        self.energy = Counter(
            "joulegate_energy_joules",
            "Energy attributed to requests, by tier and provenance.",
            ["tier", "energy_source"],
            registry=registry,
        )
        self.co2e = Counter(
            "joulegate_co2e_grams",
            "CO2-equivalent attributed to requests.",
            ["tier"],
            registry=registry,
        )
        self.cost = Counter(
            "joulegate_cost_usd",
            "Cost attributed to requests, USD.",
            ["tier"],
            registry=registry,
        )
        self.tokens = Counter(
            "joulegate_tokens", "Tokens processed.", ["tier", "kind"], registry=registry
        )
        self.baseline_energy = Counter(
            "joulegate_baseline_energy_joules",
            "Energy the same requests would have used on the baseline (largest) tier.",
            ["tier"],
            registry=registry,
        )
        self.baseline_cost = Counter(
            "joulegate_baseline_cost_usd",
            "Cost the same requests would have had on the baseline tier, USD.",
            ["tier"],
            registry=registry,
        )
        self.baseline_co2e = Counter(
            "joulegate_baseline_co2e_grams",
            "CO2e the same requests would have emitted on the baseline tier.",
            ["tier"],
            registry=registry,
        )

    def observe(self, receipt: Receipt, status: str = "ok") -> None:
        # ``labels()`` validates and locks on every call; bind each label set once.
        key = (receipt.tier, status, receipt.energy_source)
        bound = self._bound.get(key)
        if bound is None:
            t, src = receipt.tier, receipt.energy_source
            bound = self._bound[key] = (
                self.requests.labels(t, status, src),
                self.latency.labels(t),
                self.ttft.labels(t),
                self.energy.labels(t, src),
                self.co2e.labels(t),
                self.cost.labels(t),
                self.tokens.labels(t, "prompt"),
                self.tokens.labels(t, "completion"),
                self.baseline_energy.labels(t),
                self.baseline_cost.labels(t),
                self.baseline_co2e.labels(t),
            )
        req, lat, ttft, energy, co2e, cost, tok_p, tok_c, b_energy, b_cost, b_co2e = bound
        req.inc()
        lat.observe(receipt.latency_ms / 1000.0)
        if receipt.ttft_ms is not None:
            ttft.observe(receipt.ttft_ms / 1000.0)
        energy.inc(max(0.0, receipt.energy_j))
        co2e.inc(max(0.0, receipt.co2e_g))
        cost.inc(max(0.0, receipt.cost_usd))
        tok_p.inc(receipt.prompt_tokens)
        tok_c.inc(receipt.completion_tokens)
        b_energy.inc(max(0.0, receipt.baseline_energy_j))
        b_cost.inc(max(0.0, receipt.baseline_cost_usd))
        b_co2e.inc(max(0.0, receipt.baseline_co2e_g))


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
