"""Helpers shared by the ledger tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from joulegate.ledger import LedgerRecord


def make_record(**overrides: Any) -> LedgerRecord:
    """A plausible receipt; tests override only the fields they are about."""
    fields: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "ts": datetime.now(UTC),
        "key_id": None,
        "tier": "embedded",
        "model": "gemma-3-270m",
        "status": "ok",
        "http_status": 200,
        "stream": False,
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "latency_ms": 250.0,
        "ttft_ms": 40.0,
        "energy_j": 2.0,
        "energy_source": "estimated:profile",
        "cost_usd": 0.0,
        "co2e_g": 0.25,
        "baseline_energy_j": 20.0,
        "baseline_cost_usd": 0.002,
        "baseline_co2e_g": 2.5,
    }
    fields.update(overrides)
    return LedgerRecord(**fields)
