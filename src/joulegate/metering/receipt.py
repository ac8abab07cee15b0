"""The receipt: what one request cost in joules, dollars and grams, and what it would have
cost on the largest tier. Pure data; the arithmetic lives in ``pricing.py``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

SOURCES = ("measured:nvml", "measured:rapl", "modeled:cpu", "estimated:profile", "cache")


@dataclass(frozen=True)
class Receipt:
    tier: str
    model: str
    energy_j: float
    energy_source: str  # one of SOURCES
    cost_usd: float
    co2e_g: float
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    baseline_tier: str
    baseline_energy_j: float
    baseline_cost_usd: float
    baseline_co2e_g: float
    # Seconds of local device time attributed to this request (its fair share of the time
    # any request was open); the amortised hardware cost is charged on it. 0 when remote.
    device_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; the server puts it in the response's top-level ``joulegate`` object."""
        # Flat fields only: a shallow copy, not dataclasses.asdict's recursive deepcopy.
        return {name: getattr(self, name) for name in _FIELDS}

    def headers(self) -> dict[str, str]:
        """The headline figures as HTTP headers (``%.6g``: enough for micro-dollars)."""
        return {
            "x-joulegate-energy-j": f"{self.energy_j:.6g}",
            "x-joulegate-cost-usd": f"{self.cost_usd:.6g}",
            "x-joulegate-co2e-g": f"{self.co2e_g:.6g}",
            "x-joulegate-energy-source": self.energy_source,
        }

    @property
    def energy_saved_j(self) -> float:
        return self.baseline_energy_j - self.energy_j

    @property
    def cost_saved_usd(self) -> float:
        return self.baseline_cost_usd - self.cost_usd

    @property
    def co2e_saved_g(self) -> float:
        return self.baseline_co2e_g - self.co2e_g


_FIELDS = tuple(f.name for f in dataclasses.fields(Receipt))
