"""API keys with budgets, and outstanding budget reservations.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("on_exceed", sa.String(16), nullable=False),
        sa.Column("budget_j", sa.Float(), nullable=True),
        sa.Column("budget_usd", sa.Float(), nullable=True),
        sa.Column("budget_co2e_g", sa.Float(), nullable=True),
        sa.Column("period_start", ts, nullable=False),
        sa.Column("spent_j", sa.Float(), nullable=False, server_default="0"),
        sa.Column("spent_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("spent_co2e_g", sa.Float(), nullable=False, server_default="0"),
        sa.Column("reserved_j", sa.Float(), nullable=False, server_default="0"),
        sa.Column("reserved_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("reserved_co2e_g", sa.Float(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ux_api_keys_live_name",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "reservations",
        sa.Column("reservation_id", sa.String(32), primary_key=True),
        sa.Column("key_id", sa.String(32), sa.ForeignKey("api_keys.key_id"), nullable=False),
        sa.Column("energy_j", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("co2e_g", sa.Float(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
    )
    op.create_index("ix_reservations_key_id_expires_at", "reservations", ["key_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_reservations_key_id_expires_at", table_name="reservations")
    op.drop_table("reservations")
    op.drop_index("ux_api_keys_live_name", table_name="api_keys")
    op.drop_table("api_keys")
