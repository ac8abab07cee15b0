"""Budget arithmetic with no database in it: periods, windows and the over-budget check.

A key's budget is per period: ``day`` and ``month`` windows start at UTC midnight and on the
first of the month; ``total`` never resets. Spend belongs to the period it was settled in,
so a request that straddles a reset counts against the new period (the cautious choice).
The transactions that hold and spend budgets are in ``reservations.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Period = Literal["total", "day", "month"]
OnExceed = Literal["reject", "downgrade"]
PERIODS: tuple[Period, ...] = ("total", "day", "month")
ON_EXCEED: tuple[OnExceed, ...] = ("reject", "downgrade")
# The three budgets a key may carry. Each name is both the suffix of the key's columns
# (``budget_j``, ``spent_j``, ``reserved_j``) and what ``BudgetExceeded.budget`` reports.
DIMENSIONS = ("j", "usd", "co2e_g")
# The receipt amount (``metering.receipt.AMOUNTS``) each budget dimension is charged in.
AMOUNT_OF = {"j": "energy_j", "usd": "cost_usd", "co2e_g": "co2e_g"}

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


def rolled_over(
    period: str, stored_start: datetime, created_at: datetime, now: datetime
) -> datetime | None:
    """The current window's start if the stored window has ended (its spend no longer
    counts), else ``None``."""
    start = period_start(period, now, created_at)
    return None if stored_start >= start else start


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
