"""Reserve, then settle: the transactions that hold and spend a key's budgets.

Before dispatch, :func:`reserve` holds the request's worst case against the key's remaining
budget; afterwards :func:`settle` swaps the hold for the actual spend (or :func:`release`
drops it); :func:`charge` counts spend that needed no hold (a cache hit). Each step is one
transaction on the key's row: ``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite, so concurrent requests, in one process or many, can never overspend a budget. A
hold whose gateway died lapses at ``expires_at``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from joulegate.ledger.budgets import AMOUNT_OF, DIMENSIONS, exceeds, resets_at, rolled_over
from joulegate.ledger.engine import write_transaction
from joulegate.ledger.errors import BudgetExceeded, UnknownKey
from joulegate.ledger.schema import api_keys, reservations


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


def reserve(
    engine: Engine,
    key_id: str,
    energy_j: float,
    cost_usd: float,
    co2e_g: float,
    *,
    ttl: timedelta,
) -> Reservation:
    """Hold a request's worst case against the key's budgets, or raise ``BudgetExceeded``.

    Succeeds only if, for every budget the key has, settled spend in this period plus
    outstanding holds plus this amount stays within the limit.
    """
    amounts = {"j": energy_j, "usd": cost_usd, "co2e_g": co2e_g}
    if any(v < 0 for v in amounts.values()):
        raise ValueError("reserved amounts must not be negative")
    now = datetime.now(UTC)
    res = Reservation(uuid.uuid4().hex, key_id, energy_j, cost_usd, co2e_g, now, now + ttl)
    with write_transaction(engine) as conn:
        row = _lock_key(conn, key_id)
        if row is None or row.revoked_at is not None:
            raise UnknownKey(f"no live key {key_id!r}")
        values = _current(row, now)
        freed = _release_expired(conn, key_id, now)
        start = values.get("period_start", row.period_start)
        for d in DIMENSIONS:
            reserved = max(0.0, getattr(row, f"reserved_{d}") - freed[d])
            limit = getattr(row, f"budget_{d}")
            used = values[f"spent_{d}"] + reserved
            if limit is not None and exceeds(limit, used, amounts[d]):
                raise BudgetExceeded(d, limit, used, amounts[d], resets_at(row.period, start))
            values[f"reserved_{d}"] = reserved + amounts[d]
        conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(**values))
        conn.execute(
            reservations.insert().values(
                reservation_id=res.reservation_id,
                key_id=key_id,
                energy_j=energy_j,
                cost_usd=cost_usd,
                co2e_g=co2e_g,
                created_at=res.created_at,
                expires_at=res.expires_at,
            )
        )
    return res


def settle(
    engine: Engine, reservation: Reservation, energy_j: float, cost_usd: float, co2e_g: float
) -> None:
    """Replace the hold by what the request actually cost (charged to the current period)."""
    if reservation.finished:
        raise RuntimeError(f"reservation {reservation.reservation_id} is already settled")
    _spend(engine, reservation.key_id, (energy_j, cost_usd, co2e_g), reservation)
    reservation.finished = True


def charge(engine: Engine, key_id: str, energy_j: float, cost_usd: float, co2e_g: float) -> None:
    """Add spend that took no hold: a cache hit, which costs microjoules and is served even
    to a key at its limit, is still counted, so the key's spend matches its ledger rows."""
    _spend(engine, key_id, (energy_j, cost_usd, co2e_g), None)


def _spend(
    engine: Engine,
    key_id: str,
    amounts: tuple[float, float, float],
    reservation: Reservation | None,
) -> None:
    """One transaction on the key's row: add ``amounts`` (J, USD, g CO2e) to the current
    period's spend and, for a ``reservation``, drop its hold."""
    actual = dict(zip(DIMENSIONS, amounts, strict=True))
    with write_transaction(engine) as conn:
        row = _lock_key(conn, key_id)
        if row is None:
            raise UnknownKey(f"no key {key_id!r}")
        values = _current(row, datetime.now(UTC))
        if reservation is not None:
            held = {d: getattr(reservation, AMOUNT_OF[d]) for d in DIMENSIONS}
            gone = conn.execute(
                reservations.delete().where(
                    reservations.c.reservation_id == reservation.reservation_id
                )
            ).rowcount
            for d in DIMENSIONS:
                reserved = getattr(row, f"reserved_{d}")
                if gone:  # else it expired and was already released
                    reserved = max(0.0, reserved - held[d])
                values[f"reserved_{d}"] = reserved
        for d in DIMENSIONS:
            values[f"spent_{d}"] += max(0.0, actual[d])
        conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(**values))


def release(engine: Engine, reservation: Reservation) -> None:
    """Drop the hold without spending anything (the request failed before any work)."""
    settle(engine, reservation, 0.0, 0.0, 0.0)


def _lock_key(conn: Connection, key_id: str) -> Any:
    stmt = api_keys.select().where(api_keys.c.key_id == key_id).with_for_update()
    return conn.execute(stmt).first()


def _current(row: Any, now: datetime) -> dict[str, Any]:
    """The row's spend for the current period: zero if the window has rolled over."""
    start = rolled_over(row.period, row.period_start, row.created_at, now)
    if start is None:
        return {f"spent_{d}": getattr(row, f"spent_{d}") for d in DIMENSIONS}
    return {"period_start": start, **{f"spent_{d}": 0.0 for d in DIMENSIONS}}


def _release_expired(conn: Connection, key_id: str, now: datetime) -> dict[str, float]:
    """Drop holds whose gateway never settled them; returns what they had reserved."""
    expired = sa.and_(reservations.c.key_id == key_id, reservations.c.expires_at < now)
    cols = [sa.func.coalesce(sa.func.sum(reservations.c[AMOUNT_OF[d]]), 0.0) for d in DIMENSIONS]
    sums = conn.execute(sa.select(*cols).where(expired)).one()
    conn.execute(reservations.delete().where(expired))
    return {d: float(v) for d, v in zip(DIMENSIONS, sums, strict=True)}
