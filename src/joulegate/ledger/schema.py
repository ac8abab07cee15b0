"""The ledger's tables as SQLAlchemy Core objects: the single source the code queries.

Migrations under ``migrations/versions`` create the same tables with frozen DDL;
``tests/ledger/test_migrations.py`` checks that the two never drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type and SQLAlchemy stores the wall-clock digits only, so values
    are converted to UTC on the way in and tagged UTC on the way out; PostgreSQL stores a
    ``timestamptz`` and gets the same normalisation for free.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()

requests = sa.Table(
    "requests",
    metadata,
    # The primary key is what keeps several gateway processes from double-writing a row.
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=True),
    sa.Column("tier", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("http_status", sa.Integer(), nullable=False),
    sa.Column("stream", sa.Boolean(), nullable=False),
    sa.Column("prompt_tokens", sa.Integer(), nullable=False),
    sa.Column("completion_tokens", sa.Integer(), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("ttft_ms", sa.Float(), nullable=True),
    sa.Column("energy_j", sa.Float(), nullable=False),
    sa.Column("energy_source", sa.String(32), nullable=False),
    sa.Column("cost_usd", sa.Float(), nullable=False),
    sa.Column("co2e_g", sa.Float(), nullable=False),
    sa.Column("baseline_energy_j", sa.Float(), nullable=False),
    sa.Column("baseline_cost_usd", sa.Float(), nullable=False),
    sa.Column("baseline_co2e_g", sa.Float(), nullable=False),
    sa.Column("fallback_from", sa.String(64), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    # Why the request was made: "serve" (a client's), "calibration" (``joulegate calibrate``),
    # "shadow" (quality sampling); so a report can show what measuring the tiers cost.
    sa.Column("purpose", sa.String(16), nullable=True, server_default="serve"),
    # A reasoning model's thinking: part of completion_tokens, and its part of energy_j.
    sa.Column("reasoning_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("reasoning_energy_j", sa.Float(), nullable=False, server_default="0"),
    sa.Index("ix_requests_key_id_ts", "key_id", "ts"),
    sa.Index("ix_requests_ts", "ts"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    # The non-secret part of the token (``jg-<key_id>_<secret>``): lookup without a scan.
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    # scrypt(secret, salt), with its parameters, so they can be raised later.
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("period", sa.String(8), nullable=False),
    sa.Column("on_exceed", sa.String(16), nullable=False),
    sa.Column("budget_j", sa.Float(), nullable=True),
    sa.Column("budget_usd", sa.Float(), nullable=True),
    sa.Column("budget_co2e_g", sa.Float(), nullable=True),
    # Spend is per period; reserved is outstanding worst cases, whatever period they began in.
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("spent_j", sa.Float(), nullable=False, server_default="0"),
    sa.Column("spent_usd", sa.Float(), nullable=False, server_default="0"),
    sa.Column("spent_co2e_g", sa.Float(), nullable=False, server_default="0"),
    sa.Column("reserved_j", sa.Float(), nullable=False, server_default="0"),
    sa.Column("reserved_usd", sa.Float(), nullable=False, server_default="0"),
    sa.Column("reserved_co2e_g", sa.Float(), nullable=False, server_default="0"),
    # "admin" keys may read the dashboard and its API; "user" keys only call models.
    sa.Column("role", sa.String(16), nullable=False, server_default="user"),
    # Requests and tokens per minute; None: the server's default.
    sa.Column("rpm", sa.Integer(), nullable=True),
    sa.Column("tpm", sa.Integer(), nullable=True),
    # False: shadow sampling never learns from this key's traffic (keys create --no-learn).
    sa.Column("learn", sa.Boolean(), nullable=False, server_default=sa.true()),
    # Dashboard sessions of this key issued before it are void (set by signing out).
    sa.Column("sessions_after", sa.DateTime(timezone=True), nullable=True),
    # Names identify live keys; a revoked key's name may be reused.
    sa.Index(
        "ux_api_keys_live_name",
        "name",
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    ),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("reservation_id", sa.String(32), primary_key=True),
    sa.Column("key_id", sa.String(32), sa.ForeignKey("api_keys.key_id"), nullable=False),
    sa.Column("energy_j", sa.Float(), nullable=False),
    sa.Column("cost_usd", sa.Float(), nullable=False),
    sa.Column("co2e_g", sa.Float(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # A gateway that dies mid-request never settles; its hold lapses at this time.
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index("ix_reservations_key_id_expires_at", "key_id", "expires_at"),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    # One graded answer of one tier to one prompt: what calibration (and later shadow
    # sampling) learns each tier's competence from. Keyed by the tier's public id
    # (``model``), so a tier that changes its model starts with no outcomes.
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("prompt_sha256", sa.String(64), nullable=False),
    sa.Column("tier", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("grader", sa.String(32), nullable=False),
    # JSON: the answer's confidence features, n_tokens, the router's score, ...
    sa.Column("features", sa.Text(), nullable=True),
    sa.Column("energy_j", sa.Float(), nullable=True),
    sa.Column("energy_source", sa.String(32), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    # The prompt itself, only where keeping it is allowed (the shipped probe set is public).
    sa.Column("prompt", sa.Text(), nullable=True),
    sa.Index("ix_outcomes_purpose_model_prompt", "purpose", "model", "prompt_sha256"),
)
