"""The ledger: durable receipts for every request, written by group commit.

``record()`` returns only after the row's transaction has committed, so any response a
client has fully received has its row even if the gateway is killed right after. Reads are
synchronous and open their own connections, so they are safe from any thread.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from joulegate.ledger import queries
from joulegate.ledger.engine import create_ledger_engine
from joulegate.ledger.errors import LedgerClosed
from joulegate.ledger.migrate import upgrade
from joulegate.ledger.records import LedgerRecord
from joulegate.ledger.schema import requests
from joulegate.ledger.settings import LedgerSettings
from joulegate.ledger.writer import GroupCommitWriter


def default_url(data_dir: Path) -> str:
    """The SQLite file used when no ledger URL is configured."""
    return f"sqlite:///{(Path(data_dir).expanduser() / 'ledger.db').resolve()}"


class Ledger:
    """One request, one row: SQLite (WAL) by default, PostgreSQL through a URL."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", batch_max: int = 512) -> None:
        self.url = url
        self.engine = create_ledger_engine(url, sqlite_synchronous=sqlite_synchronous)
        self._batch_max = batch_max
        self._writer: GroupCommitWriter | None = None

    @classmethod
    def from_settings(cls, settings: LedgerSettings, data_dir: Path) -> Ledger:
        return cls(
            settings.url or default_url(data_dir),
            sqlite_synchronous=settings.sqlite_synchronous,
            batch_max=settings.batch_max,
        )

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- writing ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the database to the newest schema (idempotent, safe to race)."""
        upgrade(self.engine)

    async def start(self) -> None:
        """Migrate, then start the writer thread. Call once, from the server's event loop."""
        if self._writer is not None:
            raise RuntimeError("Ledger.start() called twice")
        await asyncio.to_thread(self.migrate)
        self._writer = GroupCommitWriter(self.engine, requests, self._batch_max)
        self._writer.start()

    async def record(self, rec: LedgerRecord) -> None:
        """Write ``rec``; returns once its row is committed. Never blocks the event loop."""
        if self._writer is None:
            raise LedgerClosed("Ledger.start() has not been called")
        await self._writer.submit(rec.to_row())

    async def close(self) -> None:
        """Commit every queued row, stop the writer and release connections."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.close)
        self.engine.dispose()

    # -- reading (synchronous, thread-safe) ------------------------------------------------

    def summary(self, since: datetime | None = None, by: str = "tier") -> list[dict[str, Any]]:
        """Per ``by`` group (tier, model, key, day, source, status): totals and savings."""
        return queries.summary(self.engine, since, by)

    def totals(self, since: datetime | None = None) -> dict[str, Any]:
        return queries.totals(self.engine, since)

    def timeseries(self, bucket_s: int = 60, since: datetime | None = None) -> list[dict[str, Any]]:
        return queries.timeseries(self.engine, bucket_s, since)

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return queries.recent(self.engine, limit)

    def count(self) -> int:
        return queries.count(self.engine)
