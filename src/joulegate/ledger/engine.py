"""Engines that behave the same on SQLite and PostgreSQL for the ledger's needs.

Two things pysqlite gets wrong by default are fixed here: it defers ``BEGIN`` until the
first write (so a read-then-write transaction can deadlock instead of waiting), and it
knows nothing of WAL. Write transactions go through :func:`write_transaction`, which on
SQLite takes ``BEGIN IMMEDIATE`` (the database write lock, across processes) plus a lock in
this process (so threads queue on a mutex instead of spinning in SQLite's busy handler).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# How long a SQLite writer waits for another process's transaction before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000

_WRITE_OPTION = "joulegate_write"
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of a SQLite engine; ``None`` for PostgreSQL or ``:memory:``."""
    if engine.dialect.name != "sqlite":
        return None
    db = engine.url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def create_ledger_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """An engine for ``url`` with SQLite set to WAL, a busy timeout and real transactions."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return sa.create_engine(sa_url, pool_pre_ping=True)
    if sqlite_synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"sqlite_synchronous must be FULL or NORMAL, not {sqlite_synchronous!r}")
    if sa_url.database and sa_url.database != ":memory:":
        Path(sa_url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(sa_url, connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, see _on_begin
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _process_lock(engine: Engine) -> threading.Lock:
    key = engine.url.render_as_string(hide_password=True)
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction, committed on normal exit.

    SQLite: ``BEGIN IMMEDIATE`` so the write lock is taken up front. PostgreSQL: a plain
    transaction; callers that read-modify-write lock rows with ``SELECT ... FOR UPDATE``.
    """
    sqlite = engine.dialect.name == "sqlite"
    with _process_lock(engine) if sqlite else nullcontext(), engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn
