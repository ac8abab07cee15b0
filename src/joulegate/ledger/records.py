"""The one row the ledger keeps per request: its receipt, and what happened to the request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from joulegate.ledger.learning import LEARNING_PURPOSES
from joulegate.metering.receipt import BASELINE_AMOUNTS, Receipt
from joulegate.metering.receipt import FIELDS as RECEIPT_FIELDS


@dataclass(frozen=True)
class LedgerRecord:
    """What one request cost, next to what the baseline tier would have cost.

    Build it with :meth:`from_receipt`: the receipt's figures are copied by name, so a
    field exists once, on :class:`~joulegate.metering.Receipt`, and here only as a column.
    ``ts`` is the request's start, timezone-aware; it is stored in UTC. The baseline
    figures are what the same tokens would have cost on the reference tier, so savings
    are always ``baseline - actual`` and never need the routing decision to be replayed.
    """

    request_id: str
    ts: datetime
    key_id: str | None
    tier: str
    model: str  # the public id, ``<tier>/<model>``, as in the response's ``model`` field
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
    fallback_from: str | None = None  # comma-separated tiers that failed before this one
    error: str | None = None
    # Why the request was made: "serve" for clients, "calibration" for ``joulegate calibrate``.
    purpose: str = "serve"
    # Of completion_tokens, a reasoning model's thinking, and the energy it accounts for.
    reasoning_tokens: int = 0
    reasoning_energy_j: float = 0.0

    def __post_init__(self) -> None:
        # A naive timestamp would be read back as UTC and silently shift by the local offset.
        if self.ts.tzinfo is None or self.ts.utcoffset() is None:
            raise ValueError("LedgerRecord.ts must be timezone-aware")

    @classmethod
    def from_receipt(
        cls,
        receipt: Receipt,
        *,
        request_id: str,
        ts: datetime,
        key_id: str | None,
        status: str,
        http_status: int,
        stream: bool,
        fallback_from: Sequence[str] = (),
        error: str | None = None,
        purpose: str = "serve",
    ) -> LedgerRecord:
        """The row for ``receipt``: its figures, plus who asked and how the request ended.

        ``fallback_from`` lists the tiers that failed before ``receipt.tier``, in order.
        """
        tried = [fallback_from] if isinstance(fallback_from, str) else list(fallback_from)
        figures = {name: getattr(receipt, name) for name in RECEIPT_COLUMNS}
        if purpose in LEARNING_PURPOSES:
            # Calibration and shadow requests would not exist without a router: their
            # baseline is nothing, so every joule they take is overhead against the savings.
            figures.update(dict.fromkeys(BASELINE_AMOUNTS, 0.0))
        return cls(
            request_id=request_id,
            ts=ts,
            key_id=key_id,
            status=status,
            http_status=http_status,
            stream=stream,
            fallback_from=",".join(tried) or None,
            error=error,
            purpose=purpose,
            **figures,
        )

    def to_row(self) -> dict[str, Any]:
        """Column values for the ``requests`` table, timestamp normalised to UTC."""
        row = asdict(self)
        row["ts"] = self.ts.astimezone(UTC)
        return row


RECEIPT_COLUMNS = tuple(f.name for f in fields(LedgerRecord) if f.name in RECEIPT_FIELDS)
"""The receipt fields the ledger keeps (all but ``baseline_tier`` and ``device_s``)."""
