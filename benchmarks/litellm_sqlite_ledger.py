"""LiteLLM's "ledger" in the overhead benchmark: a custom callback writing one SQLite row per
request, with the same design as joulegate's ledger (WAL, ``synchronous=FULL``, one writer
thread doing group commits), so both gateways persist the same facts the same way.

Why not LiteLLM's own spend logs: they need PostgreSQL through prisma, and prisma downloads
its query engine from the internet at start-up, which this machine cannot reach. This file
is copied next to LiteLLM's ``config.yaml`` and named there as
``litellm_settings.callbacks: litellm_sqlite_ledger.ledger``. It runs inside LiteLLM's venv
and imports nothing from joulegate.

The difference that remains, stated in the README: LiteLLM runs success callbacks after the
response is sent, so this row is written off the request path, whereas joulegate commits
its row before the last byte of the response.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend_log (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    model TEXT,
    status TEXT NOT NULL,
    stream INTEGER NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms REAL,
    cost_usd REAL,
    error TEXT
)
"""
_INSERT = (
    "INSERT OR REPLACE INTO spend_log (request_id, ts, model, status, stream, prompt_tokens,"
    " completion_tokens, latency_ms, cost_usd, error) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
BATCH_MAX = 512


class SQLiteLedger(CustomLogger):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sqlite-ledger", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            db.execute("BEGIN")
            db.executemany(_INSERT, batch)
            db.execute("COMMIT")

    def _row(self, kwargs: dict[str, Any], response: Any, start: Any, end: Any, ok: bool) -> None:
        usage = getattr(response, "usage", None) or {}
        get = usage.get if isinstance(usage, dict) else lambda k: getattr(usage, k, None)
        latency_ms = (end - start).total_seconds() * 1000 if start and end else None
        error = None if ok else json.dumps(str(kwargs.get("exception", "")))[:500]
        self._queue.put(
            (
                kwargs.get("litellm_call_id") or str(time.time_ns()),
                time.time(),
                kwargs.get("model"),
                "ok" if ok else "error",
                int(bool(kwargs.get("stream"))),
                get("prompt_tokens"),
                get("completion_tokens"),
                latency_ms,
                kwargs.get("response_cost"),
                error,
            )
        )

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._row(kwargs, response_obj, start_time, end_time, ok=True)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._row(kwargs, response_obj, start_time, end_time, ok=False)


ledger = SQLiteLedger(os.environ.get("BENCH_LITELLM_LEDGER", "litellm-ledger.db"))
