"""Graded outcomes per tier, and the purpose of each request.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows were all served to clients: the server default labels them "serve".
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=True, server_default="serve"))
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grader", sa.String(32), nullable=False),
        sa.Column("features", sa.Text(), nullable=True),
        sa.Column("energy_j", sa.Float(), nullable=True),
        sa.Column("energy_source", sa.String(32), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_outcomes_purpose_model_prompt", "outcomes", ["purpose", "model", "prompt_sha256"]
    )


def downgrade() -> None:
    op.drop_index("ix_outcomes_purpose_model_prompt", table_name="outcomes")
    op.drop_table("outcomes")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("purpose")
