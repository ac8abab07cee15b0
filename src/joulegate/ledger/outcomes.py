"""Graded outcomes: how well one tier answered one prompt, the data a router learns from.

``joulegate calibrate`` writes them (``purpose="calibration"``); shadow sampling of live
traffic can add its own (``purpose="shadow"``). A row is keyed by the prompt's SHA-256 and
the tier's public id (``model``: ``<tier>/<model>``), so a resumed calibration can skip what
is done, and a tier that changes its model is measured afresh instead of inheriting the old
model's record.

Reads and writes are synchronous and open their own connections (like the ledger's reads);
call them through ``asyncio.to_thread`` from an event loop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from joulegate.ledger.engine import write_transaction
from joulegate.ledger.schema import outcomes

__all__ = ["OutcomeRecord", "OutcomeStore", "prompt_sha256"]


def prompt_sha256(prompt: str) -> str:
    """The key a prompt is stored under (hex SHA-256 of its UTF-8 text)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class OutcomeRecord:
    """One graded answer. ``score`` is in [0, 1]; ``grader`` says who gave it
    (``gold:number``, ``gold:choice``, ``gold:short``, ``judge:v1``, ...)."""

    purpose: str
    prompt_sha256: str
    tier: str
    model: str  # the tier's public id
    score: float
    grader: str
    features: dict[str, Any] = field(default_factory=dict)
    energy_j: float | None = None
    energy_source: str | None = None
    request_id: str | None = None
    prompt: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None  # set when read back

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"an outcome's score lies in [0, 1], got {self.score}")
        if len(self.prompt_sha256) != 64:
            raise ValueError("prompt_sha256 must be a hex SHA-256 (64 characters)")
        if not self.purpose or not self.grader:
            raise ValueError("an outcome needs a purpose and a grader")
        if self.ts.tzinfo is None:
            raise ValueError("OutcomeRecord.ts must be timezone-aware")

    def to_row(self) -> dict[str, Any]:
        return {
            "ts": self.ts.astimezone(UTC),
            "purpose": self.purpose,
            "prompt_sha256": self.prompt_sha256,
            "tier": self.tier,
            "model": self.model,
            "score": float(self.score),
            "grader": self.grader,
            "features": json.dumps(self.features, sort_keys=True) if self.features else None,
            "energy_j": self.energy_j,
            "energy_source": self.energy_source,
            "request_id": self.request_id,
            "prompt": self.prompt,
        }

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> OutcomeRecord:
        return cls(
            id=int(row["id"]),
            ts=row["ts"],
            purpose=row["purpose"],
            prompt_sha256=row["prompt_sha256"],
            tier=row["tier"],
            model=row["model"],
            score=float(row["score"]),
            grader=row["grader"],
            features=json.loads(row["features"]) if row["features"] else {},
            energy_j=row["energy_j"],
            energy_source=row["energy_source"],
            request_id=row["request_id"],
            prompt=row["prompt"],
        )


class OutcomeStore:
    """The ``outcomes`` table of a (migrated) ledger database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, records: Sequence[OutcomeRecord]) -> None:
        """Insert ``records`` in one transaction (all or none)."""
        if not records:
            return
        with write_transaction(self.engine) as conn:
            conn.execute(outcomes.insert(), [r.to_row() for r in records])

    def keys(self, purpose: str, models: Iterable[str] | None = None) -> set[tuple[str, str]]:
        """The ``(prompt_sha256, model)`` pairs already graded for ``purpose``."""
        stmt = sa.select(outcomes.c.prompt_sha256, outcomes.c.model).where(
            outcomes.c.purpose == purpose
        )
        if models is not None:
            stmt = stmt.where(outcomes.c.model.in_(list(models)))
        with self.engine.connect() as conn:
            return {(str(h), str(m)) for h, m in conn.execute(stmt)}

    def load(
        self, purpose: str | None = None, models: Iterable[str] | None = None
    ) -> list[OutcomeRecord]:
        """Outcomes (oldest first), optionally of one purpose and of some tiers only."""
        stmt = sa.select(outcomes).order_by(outcomes.c.id)
        if purpose is not None:
            stmt = stmt.where(outcomes.c.purpose == purpose)
        if models is not None:
            stmt = stmt.where(outcomes.c.model.in_(list(models)))
        with self.engine.connect() as conn:
            return [OutcomeRecord.from_row(r) for r in conn.execute(stmt).mappings()]

    def count(self, purpose: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(outcomes)
        if purpose is not None:
            stmt = stmt.where(outcomes.c.purpose == purpose)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())
