"""Alembic environment: online only, on the connection :mod:`joulegate.ledger.migrate` passes."""

from __future__ import annotations

from alembic import context

from joulegate.ledger.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "ledger migrations run through joulegate.ledger.migrate.upgrade(), not the alembic CLI"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes.get("version_table", "joulegate_alembic_version"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
