"""Migrations: a fresh database gets the current schema, reruns are no-ops, races are safe."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from joulegate.ledger import Ledger, LedgerSettings
from joulegate.ledger.migrate import VERSION_TABLE, alembic_config
from joulegate.ledger.schema import metadata


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_fresh_database_is_migrated_to_head(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    ledger.migrate()  # a second run is a no-op
    with ledger.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert ctx.get_current_revision() == _head()
        assert {"requests", VERSION_TABLE} <= set(sa.inspect(conn).get_table_names())


def test_migrations_create_exactly_the_schema_the_code_queries(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if VERSION_TABLE not in str(d)] == []


def test_concurrent_migrations_from_two_gateways_both_succeed(ledger_url: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            Ledger(ledger_url).migrate()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Ledger(ledger_url).count() == 0


def test_default_ledger_is_a_wal_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    ledger = Ledger.from_settings(LedgerSettings(), tmp_path / "data")
    ledger.migrate()
    assert (tmp_path / "data" / "ledger.db").is_file()
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("pragma synchronous").scalar_one() == 2  # FULL
        assert conn.exec_driver_sql("pragma busy_timeout").scalar_one() >= 1000
    relaxed = Ledger.from_settings(LedgerSettings(sqlite_synchronous="NORMAL"), tmp_path / "data")
    with relaxed.engine.connect() as conn:
        assert conn.exec_driver_sql("pragma synchronous").scalar_one() == 1  # NORMAL


def _columns(conn: sa.Connection, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def test_outcomes_migration_goes_up_and_down_keeping_requests(ledger_url: str) -> None:
    """0003 adds ``outcomes`` and ``requests.purpose``; a request written before it reads as
    served, and a downgrade removes both again without losing the request."""
    from alembic import command

    from joulegate.ledger.migrate import upgrade

    ledger = Ledger(ledger_url)
    upgrade(ledger.engine, "0002")
    with ledger.engine.begin() as conn:
        assert "outcomes" not in sa.inspect(conn).get_table_names()
        conn.execute(
            sa.text(
                "insert into requests (request_id, ts, tier, model, status, http_status, stream,"
                " prompt_tokens, completion_tokens, latency_ms, energy_j, energy_source,"
                " cost_usd, co2e_g, baseline_energy_j, baseline_cost_usd, baseline_co2e_g)"
                " values ('old', :ts, 'embedded', 'embedded/m', 'ok', 200, false, 1, 1, 1.0,"
                " 1.0, 'modeled:cpu', 0, 0, 1, 0, 0)"
            ),
            {"ts": "2025-01-01 00:00:00"},
        )
    upgrade(ledger.engine)
    assert ledger.summary(by="purpose")[0]["group"] == "serve"
    with ledger.engine.connect() as conn:
        assert "outcomes" in sa.inspect(conn).get_table_names()
        assert conn.execute(sa.text("select purpose from requests")).scalar_one() == "serve"
    with ledger.engine.connect() as conn:
        command.downgrade(alembic_config(conn), "0002")
        conn.commit()
    with ledger.engine.connect() as conn:
        assert "outcomes" not in sa.inspect(conn).get_table_names()
        assert "purpose" not in _columns(conn, "requests")
        assert conn.execute(sa.text("select request_id from requests")).scalar_one() == "old"
    upgrade(ledger.engine)  # and up again
    with ledger.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert ctx.get_current_revision() == _head()
        assert "purpose" in _columns(conn, "requests")
