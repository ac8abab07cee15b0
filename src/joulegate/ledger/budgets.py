"""Budget arithmetic with no database in it: periods, windows and the over-budget check.

A key's budget is per period: ``day`` and ``month`` windows start at UTC midnight and on the
first of the month; ``total`` never resets. Spend belongs to the period it was settled in,
so a request that straddles a reset counts against the new period (the cautious choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Period = Literal["total", "day", "month"]
OnExceed = Literal["reject", "downgrade"]
PERIODS: tuple[Period, ...] = ("total", "day", "month")
ON_EXCEED: tuple[OnExceed, ...] = ("reject", "downgrade")
# The three budgets a key may carry, as (name used in errors, column suffix).
DIMENSIONS = ("j", "usd", "co2e_g")

# Float sums of per-request costs drift by ulps; a budget that covers exactly N requests
# must admit the N-th one.
_REL_TOLERANCE = 1e-9


def period_start(period: str, now: datetime, created_at: datetime) -> datetime:
    """Start of the budget window that contains ``now``."""
    now = now.astimezone(UTC)
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if period == "total":
        return created_at
    raise ValueError(f"unknown budget period {period!r}; choose one of {', '.join(PERIODS)}")


def resets_at(period: str, start: datetime) -> datetime | None:
    """When the window that began at ``start`` ends; ``None`` for a lifetime budget."""
    if period == "day":
        return datetime.fromordinal(start.date().toordinal() + 1).replace(tzinfo=UTC)
    if period == "month":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return datetime(year, month, 1, tzinfo=UTC)
    return None


def exceeds(limit: float, used: float, amount: float) -> bool:
    """Would ``used + amount`` go over ``limit`` (allowing float rounding)?"""
    return used + amount > limit + _REL_TOLERANCE * max(1.0, abs(limit))


@dataclass
class Reservation:
    """A worst-case hold on a key's budget, to be settled or released exactly once."""

    reservation_id: str
    key_id: str
    energy_j: float
    cost_usd: float
    co2e_g: float
    created_at: datetime
    expires_at: datetime
    finished: bool = field(default=False, compare=False)
