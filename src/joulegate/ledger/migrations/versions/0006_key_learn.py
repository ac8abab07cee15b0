"""API keys gain ``learn``: whether shadow sampling may learn from the key's traffic.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing keys may be learned from, as new keys are unless created with --no-learn;
    # shadowing itself stays off until [routing.learn] enabled is set.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("learn", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("learn")
