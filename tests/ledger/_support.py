"""Helpers shared by the ledger tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from joulegate.ledger import LedgerRecord
from joulegate.metering.receipt import FIELDS as RECEIPT_FIELDS
from joulegate.metering.receipt import Receipt


def make_receipt(**overrides: Any) -> Receipt:
    """A plausible receipt; tests override only the figures they are about."""
    fields: dict[str, Any] = {
        "tier": "embedded",
        "model": "embedded/gemma-3-270m",
        "energy_j": 2.0,
        "energy_source": "estimated:profile",
        "cost_usd": 0.0,
        "co2e_g": 0.25,
        "latency_ms": 250.0,
        "ttft_ms": 40.0,
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "baseline_tier": "large",
        "baseline_energy_j": 20.0,
        "baseline_cost_usd": 0.002,
        "baseline_co2e_g": 2.5,
    }
    fields.update(overrides)
    return Receipt(**fields)


def make_record(**overrides: Any) -> LedgerRecord:
    """A row built as the server builds it, from a receipt; overrides may name either."""
    figures = {k: v for k, v in overrides.items() if k in RECEIPT_FIELDS}
    context: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "ts": datetime.now(UTC),
        "key_id": None,
        "status": "ok",
        "http_status": 200,
        "stream": False,
    }
    context.update({k: v for k, v in overrides.items() if k not in RECEIPT_FIELDS})
    return LedgerRecord.from_receipt(make_receipt(**figures), **context)
