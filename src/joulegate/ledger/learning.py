"""What learning from traffic found, and what it cost: quality retained and learning overhead.

Two kinds of request are *learning*, not serving: ``joulegate calibrate``'s probes
(``purpose = "calibration"``) and shadow samples of live traffic (``"shadow"``). They are
metered and written to ``requests`` like any request, with a baseline of zero: in the
all-largest-tier world that savings are measured against there is no router to measure, so
every joule they take is overhead, and a ledger total's ``savings`` is already net of it
(``records.py``).

**Quality retained** is the share of the answers cheaper tiers gave clients that the
strongest tier judged as good as its own, over the shadowed sample (outcomes with
``purpose = "shadow"`` and ``served`` true). A judge's undecided verdict (0.5) counts half.
It comes with a 95% Wilson score interval and the sample size; under ``MIN_SAMPLE`` judged
answers the interval is too wide to be worth a headline, and readers say so instead.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from joulegate.ledger.schema import outcomes, requests

__all__ = [
    "CALIBRATION",
    "LEARNING_PURPOSES",
    "MIN_SAMPLE",
    "QUALITY_BY",
    "SHADOW",
    "QualityRetained",
    "learning_spend",
    "quality_retained",
    "shadow_spend_by_day",
    "wilson_interval",
]

CALIBRATION = "calibration"
SHADOW = "shadow"
LEARNING_PURPOSES = (CALIBRATION, SHADOW)
# Below this many judged answers a 95% interval spans most of [0, 1] (n = 20 with 19 as
# good still reaches down to 0.76): readers say "sample too small" instead of a number.
MIN_SAMPLE = 20
QUALITY_BY = ("tier", "day")


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when n is 0.

    Wilson rather than the normal approximation: it stays inside [0, 1] and keeps its
    coverage near 0 and 1, which is where quality retained lives."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(successes / n, 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class QualityRetained:
    """Quality retained over one group of judged answers (``group`` None: all of them)."""

    group: str | None
    n: int  # judged answers
    as_good: float  # the verdicts summed: 1 as good, 0 worse, 0.5 undecided
    worse: int  # answers judged worse
    undecided: int

    @property
    def rate(self) -> float | None:
        return self.as_good / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.as_good, self.n)

    @property
    def too_small(self) -> bool:
        return self.n < MIN_SAMPLE

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "group": self.group,
            "n": self.n,
            "as_good": self.as_good,
            "worse": self.worse,
            "undecided": self.undecided,
            "rate": self.rate,
            "low": low,
            "high": high,
            "too_small": self.too_small,
            "min_sample": MIN_SAMPLE,
        }


def _served(features: str | None) -> bool:
    if not features:
        return False
    try:
        return bool(json.loads(features).get("served"))
    except (ValueError, AttributeError):
        return False


def quality_retained(
    engine: Engine, since: datetime | None = None, by: str | None = None
) -> list[QualityRetained]:
    """Quality retained over every judged served answer since ``since``: one row, or one
    per tier (public id) or UTC day with ``by``, then the total as the last row (group None)."""
    if by is not None and by not in QUALITY_BY:
        raise ValueError(f"cannot split quality by {by!r}; choose one of {', '.join(QUALITY_BY)}")
    stmt = sa.select(outcomes.c.ts, outcomes.c.model, outcomes.c.score, outcomes.c.features).where(
        outcomes.c.purpose == SHADOW
    )
    if since is not None:
        stmt = stmt.where(outcomes.c.ts >= since)
    groups: dict[str | None, list[float]] = defaultdict(list)
    with engine.connect() as conn:
        for ts, model, score, features in conn.execute(stmt):
            if not _served(features):
                continue
            score = float(score)
            groups[None].append(score)
            if by == "tier":
                groups[str(model)].append(score)
            elif by == "day":
                groups[_day(ts)].append(score)
    rows = [_quality(g, groups[g]) for g in sorted(k for k in groups if k is not None)]
    return [*rows, _quality(None, groups.get(None, []))]


def _quality(group: str | None, scores: Sequence[float]) -> QualityRetained:
    return QualityRetained(
        group=group,
        n=len(scores),
        as_good=float(sum(scores)),
        worse=sum(1 for s in scores if s < 0.5),
        undecided=sum(1 for s in scores if s == 0.5),
    )


def _day(ts: datetime | str) -> str:
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).date().isoformat()


def learning_spend(engine: Engine, since: datetime | None = None) -> dict[str, dict[str, float]]:
    """What each learning purpose's requests cost (requests, energy, cost, CO2e): the
    learning overhead a report sets next to what routing saved."""
    stmt = (
        sa.select(
            requests.c.purpose,
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(requests.c.energy_j), 0).label("energy_j"),
            sa.func.coalesce(sa.func.sum(requests.c.cost_usd), 0).label("cost_usd"),
            sa.func.coalesce(sa.func.sum(requests.c.co2e_g), 0).label("co2e_g"),
        )
        .where(requests.c.purpose.in_(LEARNING_PURPOSES))
        .group_by(requests.c.purpose)
    )
    if since is not None:
        stmt = stmt.where(requests.c.ts >= since)
    zero = {"requests": 0, "energy_j": 0.0, "cost_usd": 0.0, "co2e_g": 0.0}
    out: dict[str, dict[str, float]] = {p: dict(zero) for p in LEARNING_PURPOSES}
    with engine.connect() as conn:
        for row in conn.execute(stmt).mappings():
            out[row["purpose"]] = {
                "requests": int(row["requests"]),
                "energy_j": float(row["energy_j"]),
                "cost_usd": float(row["cost_usd"]),
                "co2e_g": float(row["co2e_g"]),
            }
    return out


def shadow_spend_by_day(
    engine: Engine, since: datetime | None = None
) -> dict[date, tuple[float, float]]:
    """Energy (J) and cost (USD) of shadow requests per UTC day: what the daily caps count."""
    stmt = sa.select(requests.c.ts, requests.c.energy_j, requests.c.cost_usd).where(
        requests.c.purpose == SHADOW
    )
    if since is not None:
        stmt = stmt.where(requests.c.ts >= since)
    out: dict[date, tuple[float, float]] = {}
    with engine.connect() as conn:
        for ts, energy, cost in conn.execute(stmt):
            day = date.fromisoformat(_day(ts))
            e, c = out.get(day, (0.0, 0.0))
            out[day] = (e + float(energy), c + float(cost))
    return out
