"""Quality retained and learning overhead, as the ledger computes them for every reader."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from joulegate.ledger import Ledger, LedgerRecord, OutcomeRecord, OutcomeStore
from joulegate.ledger.learning import (
    MIN_SAMPLE,
    learning_spend,
    quality_retained,
    shadow_spend_by_day,
    wilson_interval,
)
from joulegate.ledger.outcomes import prompt_sha256

from ._support import make_receipt

DAY1 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def test_wilson_interval_matches_published_values() -> None:
    # Wilson (1927) / Newcombe (1998) example: 81 of 263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    # All as good: the interval still reaches below 1, and never above it.
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and low == pytest.approx(0.8389, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _shadow(i: int, model: str, score: float, served: bool, ts: datetime) -> OutcomeRecord:
    return OutcomeRecord(
        purpose="shadow",
        prompt_sha256=prompt_sha256(f"prompt {i}"),
        tier=model.split("/")[0],
        model=model,
        score=score,
        grader="judge:v1",
        features={"served": served},
        ts=ts,
    )


def test_quality_retained_counts_served_answers_by_tier_and_day(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    store = OutcomeStore(ledger.engine)
    day2 = DAY1 + timedelta(days=1)
    rows = [_shadow(i, "small/a", 1.0, True, DAY1) for i in range(18)]
    rows += [_shadow(100 + i, "small/a", 0.0, True, day2) for i in range(2)]
    rows += [_shadow(200, "mid/b", 0.5, True, day2)]  # an undecided judge counts half
    rows += [_shadow(300 + i, "small/a", 0.0, False, day2) for i in range(5)]  # escalations
    calibration = OutcomeRecord(
        purpose="calibration",
        prompt_sha256=prompt_sha256("probe"),
        tier="small",
        model="small/a",
        score=0.0,
        grader="gold:short",
    )
    store.add([*rows, calibration])

    *tiers, total = quality_retained(ledger.engine, by="tier")
    assert total.group is None and total.n == 21 and total.as_good == 18.5
    assert (total.worse, total.undecided) == (2, 1)  # the escalation side is not "retained"
    assert total.rate == pytest.approx(18.5 / 21)
    assert total.interval == wilson_interval(18.5, 21) and not total.too_small
    assert [(q.group, q.n, q.as_good) for q in tiers] == [("mid/b", 1, 0.5), ("small/a", 20, 18)]
    assert tiers[0].too_small and tiers[0].n < MIN_SAMPLE
    days = quality_retained(ledger.engine, by="day")
    assert [(q.group, q.n) for q in days] == [("2026-11-20", 18), ("2026-11-21", 3), (None, 21)]
    recent = quality_retained(ledger.engine, since=day2 - timedelta(hours=1))
    assert [(q.n, q.as_good) for q in recent] == [(3, 0.5)]


def test_learning_requests_are_overhead_with_a_zero_baseline(ledger_url: str) -> None:
    """A calibration or shadow request would not exist without a router: its baseline is
    nothing, so the ledger's savings are net of what learning cost."""
    ledger = Ledger(ledger_url)

    def row(i: int, purpose: str, energy: float, ts: datetime = DAY1) -> LedgerRecord:
        receipt = make_receipt(energy_j=energy, cost_usd=0.01, baseline_energy_j=20.0)
        return LedgerRecord.from_receipt(
            receipt,
            request_id=f"r{i}",
            ts=ts,
            key_id=None,
            status="ok",
            http_status=200,
            stream=False,
            purpose=purpose,
        )

    async def fill() -> None:
        await ledger.start()
        await ledger.record(row(1, "serve", 2.0))
        await ledger.record(row(2, "shadow", 5.0))
        await ledger.record(row(3, "shadow", 7.0, DAY1 + timedelta(days=1)))
        await ledger.record(row(4, "calibration", 3.0))
        await ledger.close()

    asyncio.run(fill())
    totals = ledger.totals()
    assert totals["baseline_energy_j"] == 20.0  # the one client request's
    assert totals["savings_energy_j"] == pytest.approx(20.0 - 2.0 - 5.0 - 7.0 - 3.0)
    spend = learning_spend(ledger.engine)
    assert spend["shadow"]["requests"] == 2 and spend["shadow"]["energy_j"] == 12.0
    assert spend["calibration"]["energy_j"] == 3.0 and spend["calibration"]["cost_usd"] == 0.01
    by_day = shadow_spend_by_day(ledger.engine)
    assert by_day == {
        DAY1.date(): (5.0, pytest.approx(0.01)),
        (DAY1 + timedelta(days=1)).date(): (7.0, pytest.approx(0.01)),
    }
