"""The read side: summaries, totals, time series and recent rows on a known ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from joulegate.ledger import Ledger, LedgerRecord

from ._support import make_record

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def _fill(url: str, recs: list[LedgerRecord]) -> Ledger:
    async def main() -> None:
        ledger = Ledger(url)
        await ledger.start()
        await asyncio.gather(*(ledger.record(r) for r in recs))
        await ledger.close()

    asyncio.run(main())
    return Ledger(url)


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    recs = [
        # Two local requests measured by RAPL, one estimated remote one, one a day later.
        make_record(
            ts=T0,
            tier="embedded",
            energy_j=2.0,
            energy_source="measured:rapl",
            baseline_energy_j=20.0,
            key_id="a",
        ),
        make_record(
            ts=T0 + timedelta(seconds=30),
            tier="embedded",
            energy_j=4.0,
            energy_source="measured:rapl",
            baseline_energy_j=20.0,
            key_id="a",
        ),
        make_record(
            ts=T0 + timedelta(seconds=90),
            tier="remote",
            model="remote/big",
            energy_j=20.0,
            energy_source="estimated:profile",
            baseline_energy_j=20.0,
            cost_usd=0.002,
            key_id="b",
        ),
        make_record(
            ts=T0 + timedelta(days=1),
            tier="embedded",
            energy_j=3.0,
            energy_source="modeled:cpu",
            baseline_energy_j=20.0,
        ),
    ]
    return _fill(ledger_url, recs)


def test_summary_by_tier_totals_savings_and_sources(ledger: Ledger) -> None:
    by_tier = {g["group"]: g for g in ledger.summary(by="tier")}
    emb = by_tier["embedded"]
    assert emb["requests"] == 3
    assert emb["energy_j"] == pytest.approx(9.0)
    assert emb["baseline_energy_j"] == pytest.approx(60.0)
    assert emb["savings_energy_j"] == pytest.approx(51.0)
    assert emb["energy_j_per_request"] == pytest.approx(3.0)
    assert emb["energy_by_source"] == {"measured:rapl": 6.0, "modeled:cpu": 3.0}
    assert emb["requests_by_source"] == {"measured:rapl": 2, "modeled:cpu": 1}
    assert by_tier["remote"]["savings_energy_j"] == pytest.approx(0.0)
    assert by_tier["remote"]["savings_cost_usd"] == pytest.approx(0.0)


def test_summary_since_leaves_out_older_requests(ledger: Ledger) -> None:
    (only,) = ledger.summary(since=T0 + timedelta(hours=1), by="tier")
    assert (only["group"], only["requests"]) == ("embedded", 1)


def test_summary_by_day_key_and_model(ledger: Ledger) -> None:
    days = [(g["group"], g["requests"]) for g in ledger.summary(by="day")]
    assert days == [("2025-06-01", 3), ("2025-06-02", 1)]
    keys = [(g["group"], g["requests"]) for g in ledger.summary(by="key")]
    assert keys == [("a", 2), ("b", 1), (None, 1)]
    models = {g["group"] for g in ledger.summary(by="model")}
    assert models == {"embedded/gemma-3-270m", "remote/big"}


def test_unknown_grouping_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        ledger.summary(by="colour")


def test_totals_span_and_counts(ledger: Ledger) -> None:
    t = ledger.totals()
    assert t["requests"] == 4
    assert t["energy_j"] == pytest.approx(29.0)
    assert t["savings_energy_j"] == pytest.approx(80.0 - 29.0)
    assert datetime.fromisoformat(t["first_ts"]) == T0
    assert datetime.fromisoformat(t["last_ts"]) == T0 + timedelta(days=1)
    assert ledger.totals(since=T0 + timedelta(days=2))["requests"] == 0


def test_timeseries_buckets_by_start_time_and_tier(ledger: Ledger) -> None:
    rows = [(r["ts"], r["tier"], r["requests"], r["energy_j"]) for r in ledger.timeseries(60)]
    assert rows == [
        ("2025-06-01T12:00:00+00:00", "embedded", 2, 6.0),
        ("2025-06-01T12:01:00+00:00", "remote", 1, 20.0),
        ("2025-06-02T12:00:00+00:00", "embedded", 1, 3.0),
    ]
    assert len(ledger.timeseries(bucket_s=86_400, since=T0 + timedelta(minutes=1))) == 2


def test_recent_is_newest_first_and_limited(ledger: Ledger) -> None:
    rows = ledger.recent(limit=2)
    assert [r["ts"] for r in rows] == [
        (T0 + timedelta(days=1)).isoformat(),
        (T0 + timedelta(seconds=90)).isoformat(),
    ]
    assert ledger.count() == 4


def test_empty_ledger_reads_as_zeros(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    assert ledger.summary() == []
    t = ledger.totals()
    assert (t["requests"], t["energy_j"], t["first_ts"]) == (0, 0.0, None)
    assert ledger.timeseries() == [] and ledger.recent() == [] and ledger.count() == 0
