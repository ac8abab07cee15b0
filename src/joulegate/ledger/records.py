"""The one row the ledger keeps per request: its receipt."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class LedgerRecord:
    """What one request cost, next to what the baseline tier would have cost.

    ``ts`` is the request's start, timezone-aware; it is stored in UTC. The baseline
    figures are what the same tokens would have cost on the reference tier, so savings
    are always ``baseline - actual`` and never need the routing decision to be replayed.
    """

    request_id: str
    ts: datetime
    key_id: str | None
    tier: str
    model: str
    status: str  # "ok" | "error" | "cancelled"
    http_status: int
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ttft_ms: float | None
    energy_j: float
    energy_source: str
    cost_usd: float
    co2e_g: float
    baseline_energy_j: float
    baseline_cost_usd: float
    baseline_co2e_g: float
    fallback_from: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        # A naive timestamp would be read back as UTC and silently shift by the local offset.
        if self.ts.tzinfo is None or self.ts.utcoffset() is None:
            raise ValueError("LedgerRecord.ts must be timezone-aware")

    def to_row(self) -> dict[str, Any]:
        """Column values for the ``requests`` table, timestamp normalised to UTC."""
        row = asdict(self)
        row["ts"] = self.ts.astimezone(UTC)
        return row
