"""The embedded store: every vector in this process, every entry in one SQLite file.

Zero set-up (``<data_dir>/cache.db``), durable across restarts: on open, the live entries'
keys and vectors are read into the in-process index (100k entries: about a second and
150 MB); a lookup then touches no disk until it hits, when one row is read by its primary
key. Meant for one gateway process; replicas share the Redis store (``redis_store.py``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from joulegate.cache.entry import Entry, vector_bytes, vector_from
from joulegate.cache.index import VectorIndex
from joulegate.cache.thresholds import EntryThreshold

log = logging.getLogger(__name__)

_SCHEMA = """
create table if not exists entries (
    entry_id text primary key,
    namespace text not null,
    exact_key text not null,
    context_key text not null,
    text text,
    vector blob,
    answer text not null,
    origin text not null,
    threshold text,
    created real not null,
    expires real not null,
    last_used real not null,
    hits integer not null default 0
);
create unique index if not exists ux_entries_exact on entries (namespace, exact_key);
create index if not exists ix_entries_expires on entries (expires);
create table if not exists stats (
    namespace text not null,
    name text not null,
    value real not null default 0,
    primary key (namespace, name)
);
"""


class SQLiteStore:
    def __init__(self, path: Path, dim: int, max_entries: int) -> None:
        self.path = path
        self.index = VectorIndex(dim)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("pragma journal_mode=wal")
            db.execute("pragma synchronous=normal")  # a lost entry is a miss, not a loss
            db.execute("pragma busy_timeout=5000")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def open(self) -> None:
        now = time.time()
        with self._lock:
            db = self._conn()
            db.execute("delete from entries where expires <= ?", (now,))
            rows = db.execute(
                "select entry_id, namespace, exact_key, context_key, text, vector, threshold,"
                " created, expires, last_used from entries"
            ).fetchall()
        for eid, ns, exact, ctx, text, blob, thr, created, expires, used in rows:
            entry = Entry(
                eid, ns, exact, ctx, text, {}, {}, created, expires,
                EntryThreshold.from_dict(json.loads(thr) if thr else None), 0, used,
            )  # fmt: skip
            self.index.add(entry.slot(), vector_from(blob))
        log.info("cache: %d entries loaded from %s", len(rows), self.path)

    def sync(self) -> None:
        """One process owns the file: there is nothing to catch up on."""

    def fetch(self, entry_id: str) -> Entry | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "select entry_id, namespace, exact_key, context_key, text, answer, origin,"
                    " threshold, created, expires, last_used, hits"
                    " from entries where entry_id = ?",
                    (entry_id,),
                )
                .fetchone()
            )
        if row is None:
            self.index.remove(entry_id)  # cleared by `joulegate cache clear`, say
            return None
        eid, ns, exact, ctx, text, answer, origin, thr, created, expires, used, hits = row
        return Entry(
            eid, ns, exact, ctx, text, json.loads(answer), json.loads(origin), created, expires,
            EntryThreshold.from_dict(json.loads(thr) if thr else None), hits, used,
        )  # fmt: skip

    def put(self, entry: Entry, vector: np.ndarray | None) -> bool:
        with self._lock:
            db = self._conn()
            cur = db.execute(
                "insert or ignore into entries (entry_id, namespace, exact_key, context_key,"
                " text, vector, answer, origin, threshold, created, expires, last_used, hits)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    entry.entry_id,
                    entry.namespace,
                    entry.exact_key,
                    entry.context_key,
                    entry.text,
                    vector_bytes(vector),
                    entry.answer_json(),
                    entry.origin_json(),
                    json.dumps(entry.threshold.as_dict()),
                    entry.created,
                    entry.expires,
                    entry.created,
                ),
            )
            if cur.rowcount == 0:
                return False  # the same request was stored meanwhile
        self.index.add(entry.slot(), vector)
        self._evict()
        return True

    def _evict(self) -> None:
        over = len(self.index) - self.max_entries
        if over <= 0:
            return
        ids = self.index.least_recently_used(over)
        with self._lock:
            self._conn().executemany("delete from entries where entry_id = ?", [(i,) for i in ids])
        for entry_id in ids:
            self.index.remove(entry_id)
        self.add_stats("*", {"evicted": float(len(ids))})

    def touch(self, entry_id: str, now: float) -> None:
        slot = self.index.get(entry_id)
        if slot is not None:
            slot.last_used = now
        with self._lock:
            self._conn().execute(
                "update entries set last_used = ?, hits = hits + 1 where entry_id = ?",
                (now, entry_id),
            )

    def save_threshold(self, entry_id: str, threshold: EntryThreshold) -> None:
        self.index.set_offset(entry_id, threshold.offset)
        with self._lock:
            self._conn().execute(
                "update entries set threshold = ? where entry_id = ?",
                (json.dumps(threshold.as_dict()), entry_id),
            )

    def remove_expired(self, now: float) -> int:
        expired = [s.entry_id for s in self.index.slots() if s.expires <= now]
        with self._lock:
            self._conn().execute("delete from entries where expires <= ?", (now,))
        for entry_id in expired:
            self.index.remove(entry_id)
        return len(expired)

    def clear(self, namespace: str | None = None) -> int:
        with self._lock:
            db = self._conn()
            if namespace is None:
                n = db.execute("delete from entries").rowcount
                db.execute("delete from stats")
            else:
                n = db.execute("delete from entries where namespace = ?", (namespace,)).rowcount
                db.execute("delete from stats where namespace = ?", (namespace,))
        self.index.clear(namespace)
        return int(n)

    def add_stats(self, namespace: str, counters: dict[str, float]) -> None:
        rows = [(namespace, k, v) for k, v in counters.items() if v]
        if not rows:
            return
        with self._lock:
            self._conn().executemany(
                "insert into stats (namespace, name, value) values (?, ?, ?)"
                " on conflict (namespace, name) do update set value = value + excluded.value",
                rows,
            )

    def _absent(self) -> bool:
        """Nothing stored yet, and reading must not create the file (``joulegate report``)."""
        return self._db is None and not self.path.exists()

    def stats(self) -> dict[str, dict[str, float]]:
        if self._absent():
            return {}
        with self._lock:
            rows = self._conn().execute("select namespace, name, value from stats").fetchall()
        out: dict[str, dict[str, float]] = {}
        for ns, name, value in rows:
            out.setdefault(ns, {})[name] = value
        return out

    def counts(self) -> dict[str, int]:
        if self._absent():
            return {}
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "select namespace, count(*) from entries where expires > ? group by namespace",
                    (time.time(),),
                )
                .fetchall()
            )
        return {ns: int(n) for ns, n in rows}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
