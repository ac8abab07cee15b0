"""Bring a ledger database to the newest schema with alembic, from inside the package.

The migration scripts ship in ``joulegate/ledger/migrations`` so an installed gateway can
upgrade its own database; no ``alembic.ini`` is needed. Several gateway processes may start
against one database at once, so the upgrade runs under a lock: a PostgreSQL advisory lock,
or an ``flock`` beside the SQLite file.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

from joulegate.ledger.engine import sqlite_path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Our own version table, so the ledger can share a PostgreSQL database with other apps.
VERSION_TABLE = "joulegate_alembic_version"
# Arbitrary constant: "jg" ledger migrations. Advisory locks are per database.
_PG_LOCK_ID = 0x6A67_4C44


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic config pointing at the shipped scripts, optionally bound to a connection."""
    from alembic.config import Config  # alembic is only imported when a migration runs

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("select pg_advisory_lock(:k)"), {"k": _PG_LOCK_ID})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": _PG_LOCK_ID})
                conn.commit()
        return
    path = sqlite_path(engine)
    if path is None:
        with engine.connect() as conn:
            yield conn
        return
    with open(path.with_name(path.name + ".migrate-lock"), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade`` on ``engine``; idempotent and safe to race."""
    from alembic import command

    with _migration_lock(engine) as conn:
        command.upgrade(alembic_config(conn), revision)
