"""The ledger's write path: one committed row per request, group-committed, flushed on close."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from joulegate.ledger import DuplicateRequest, Ledger, LedgerClosed

from ._support import make_record


def _fresh_count(url: str) -> int:
    """Count rows through a brand-new engine: only committed rows are visible to it."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select count(*) from requests")).scalar_one())
    finally:
        engine.dispose()


def test_fifty_concurrent_records_make_fifty_rows(ledger_url: str) -> None:
    async def main() -> list[str]:
        ledger = Ledger(ledger_url)
        await ledger.start()
        recs = [make_record(tier=f"t{i % 3}") for i in range(50)]
        await asyncio.gather(*(asyncio.create_task(ledger.record(r)) for r in recs))
        # Every record() has returned, so every row must be visible to another connection.
        assert _fresh_count(ledger_url) == 50
        await ledger.close()
        return sorted(r.request_id for r in recs)

    ids = asyncio.run(main())
    ledger = Ledger(ledger_url)
    stored = sorted(r["request_id"] for r in ledger.recent(limit=100))
    assert stored == ids
    assert ledger.count() == 50


def test_concurrent_records_share_transactions(ledger_url: str) -> None:
    async def main() -> int:
        ledger = Ledger(ledger_url)
        await ledger.start()
        commits = 0

        def on_commit(_conn: object) -> None:
            nonlocal commits
            commits += 1

        sa.event.listen(ledger.engine, "commit", on_commit)
        await asyncio.gather(*(ledger.record(make_record()) for _ in range(200)))
        await ledger.close()
        return commits

    commits = asyncio.run(main())
    assert 1 <= commits < 200 / 4, f"{commits} commits for 200 rows: not group-committed"


def test_close_flushes_every_pending_record(ledger_url: str) -> None:
    async def main() -> None:
        ledger = Ledger(ledger_url)
        await ledger.start()
        tasks = [asyncio.create_task(ledger.record(make_record())) for _ in range(50)]
        await asyncio.sleep(0)  # let every task enqueue its row, but don't wait for commits
        await ledger.close()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert _fresh_count(ledger_url) == 50


def test_record_outside_start_and_close_raises(ledger_url: str) -> None:
    async def main() -> None:
        ledger = Ledger(ledger_url)
        with pytest.raises(LedgerClosed):
            await ledger.record(make_record())
        await ledger.start()
        await ledger.record(make_record())
        await ledger.close()
        with pytest.raises(LedgerClosed):
            await ledger.record(make_record())

    asyncio.run(main())


def test_duplicate_request_id_fails_alone_and_its_batch_still_commits(ledger_url: str) -> None:
    async def main() -> list[BaseException | None]:
        ledger = Ledger(ledger_url)
        await ledger.start()
        first = make_record(request_id="dup")
        await ledger.record(first)
        batch = [make_record() for _ in range(5)] + [make_record(request_id="dup")]
        results = await asyncio.gather(*(ledger.record(r) for r in batch), return_exceptions=True)
        await ledger.close()
        return list(results)

    results = asyncio.run(main())
    assert results[:5] == [None] * 5
    assert isinstance(results[5], DuplicateRequest)
    assert _fresh_count(ledger_url) == 6


def test_timestamps_come_back_as_the_same_instant_in_utc(ledger_url: str) -> None:
    local = datetime(2025, 3, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))

    async def main() -> None:
        ledger = Ledger(ledger_url)
        await ledger.start()
        await ledger.record(make_record(ts=local))
        await ledger.close()

    asyncio.run(main())
    (row,) = Ledger(ledger_url).recent()
    assert datetime.fromisoformat(row["ts"]) == local
    assert row["ts"] == "2025-03-01T12:30:05.123456+00:00"


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_record(ts=datetime(2025, 1, 1))


def test_record_keeps_every_field(ledger_url: str) -> None:
    rec = make_record(
        key_id="k1",
        stream=True,
        ttft_ms=None,
        status="error",
        http_status=502,
        fallback_from="remote",
        error="upstream timed out",
        ts=datetime(2025, 1, 2, tzinfo=UTC),
    )

    async def main() -> None:
        ledger = Ledger(ledger_url)
        await ledger.start()
        await ledger.record(rec)
        await ledger.close()

    asyncio.run(main())
    (row,) = Ledger(ledger_url).recent()
    expected = rec.to_row()
    expected["ts"] = rec.ts.isoformat()
    assert row == expected
