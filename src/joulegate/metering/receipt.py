"""The receipt: what one request cost in joules, dollars and grams, and what it would have
cost on the largest tier. Pure data; the arithmetic lives in ``pricing.py``.

The field lists below are the one place that says which receipt figures add up across
requests: the ledger's queries sum them, Prometheus counts them and the reports print them,
each by iterating over these names rather than spelling them out again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

SOURCES = ("measured:nvml", "measured:rapl", "modeled:cpu", "estimated:profile", "cache")

AMOUNTS = ("energy_j", "cost_usd", "co2e_g")
"""What a request is priced in. Each has a ``baseline_`` twin on the receipt (the same tokens
on the baseline tier), so a saving is always ``baseline_<amount> - <amount>``."""

TOKENS = ("prompt_tokens", "completion_tokens", "reasoning_tokens")
"""Token counts. ``reasoning_tokens`` is the part of ``completion_tokens`` a reasoning model
spent thinking: a subset, never added to the other two."""

REASONING_ENERGY = "reasoning_energy_j"
"""The part of ``energy_j`` spent on reasoning tokens (``joulegate report`` splits it out)."""


def baseline_of(amount: str) -> str:
    """The receipt field holding ``amount`` for the same request on the baseline tier."""
    return f"baseline_{amount}"


BASELINE_AMOUNTS = tuple(baseline_of(a) for a in AMOUNTS)

SUMMED = (*TOKENS, *AMOUNTS, *BASELINE_AMOUNTS, REASONING_ENERGY)
"""The figures that add up across requests: per-group totals in the ledger and the reports."""


@dataclass(frozen=True)
class Receipt:
    tier: str
    # The public model id clients name, ``<tier>/<model>`` (as in ``/v1/models``), the same
    # value the response's ``model`` field and the ledger's ``model`` column carry.
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
    # Of completion_tokens, those a reasoning model spent thinking (already metered as
    # output tokens), and the part of energy_j they account for (docs/energy.md).
    reasoning_tokens: int = 0
    reasoning_energy_j: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; the server puts it in the response's top-level ``joulegate`` object."""
        # Flat fields only: a shallow copy, not dataclasses.asdict's recursive deepcopy.
        return {name: getattr(self, name) for name in FIELDS}

    def after(self, discarded: Receipt) -> Receipt:
        """This answer's receipt with an earlier, discarded attempt's spend added.

        A cascade first lets a cheap tier answer and may throw that answer away; the client
        still pays for it. Energy, money, carbon and device time add up; the time to the
        first token and the latency count from the discarded attempt's start, since the
        client waited through it. Tier, model, tokens and the baseline stay this answer's:
        the tokens are what the client got, and the baseline is what that answer would
        have cost on the baseline tier, so the discarded attempt shows as a smaller saving.
        """
        return dataclasses.replace(
            self,
            energy_j=self.energy_j + discarded.energy_j,
            cost_usd=self.cost_usd + discarded.cost_usd,
            co2e_g=self.co2e_g + discarded.co2e_g,
            device_s=self.device_s + discarded.device_s,
            latency_ms=self.latency_ms + discarded.latency_ms,
            ttft_ms=None if self.ttft_ms is None else self.ttft_ms + discarded.latency_ms,
        )

    def headers(self) -> dict[str, str]:
        """The headline figures as HTTP headers (``%.6g``: enough for micro-dollars)."""
        return {
            "x-joulegate-energy-j": f"{self.energy_j:.6g}",
            "x-joulegate-cost-usd": f"{self.cost_usd:.6g}",
            "x-joulegate-co2e-g": f"{self.co2e_g:.6g}",
            "x-joulegate-energy-source": self.energy_source,
        }


FIELDS = tuple(f.name for f in dataclasses.fields(Receipt))
"""Every receipt field, in declaration order (the order ``as_dict`` and ``joulegate chat`` use)."""


def format_field(name: str, value: Any) -> str:
    """One receipt figure for a person: ``latency_ms 384.6``, not ``384.5918760000586``.

    The field's suffix is its unit, so it picks the precision: milliseconds to a tenth,
    dollars to the micro-dollar, everything else to four significant digits.
    """
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if name.endswith("_ms"):
        return f"{value:.1f}"
    if name.endswith("_usd"):
        return f"{value:.6f}"
    return f"{value:.4g}"
