"""Requests record a reasoning model's thinking: its tokens and the energy they took.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before this had no reasoning tier: zero is what they spent on it.
    with op.batch_alter_table("requests") as batch:
        batch.add_column(
            sa.Column("reasoning_tokens", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("reasoning_energy_j", sa.Float(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("reasoning_energy_j")
        batch.drop_column("reasoning_tokens")
