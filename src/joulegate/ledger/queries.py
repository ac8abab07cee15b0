"""The ledger's read side: aggregates for ``joulegate report``, the dashboard and budgets.

Everything is aggregated in SQL and grouped by ``energy_source`` as well, so a report can
always say how much of a total was measured by a sensor and how much was modeled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from joulegate.ledger.schema import requests
from joulegate.metering.receipt import AMOUNTS, BASELINE_AMOUNTS, SUMMED, TOKENS, baseline_of

GROUP_BY = ("tier", "model", "key", "day", "source", "status", "purpose")


def _bucket(engine: Engine, bucket_s: int) -> ColumnElement[Any]:
    """Start of the ``bucket_s``-second UTC bucket holding ``ts``, as unix seconds."""
    size = sa.literal_column(str(int(bucket_s)), sa.BigInteger)
    if engine.dialect.name == "postgresql":
        epoch = sa.cast(sa.func.floor(sa.extract("epoch", requests.c.ts)), sa.BigInteger)
    else:  # SQLite keeps UTC wall-clock text; strftime('%s') reads it as UTC
        epoch = sa.cast(sa.func.strftime("%s", requests.c.ts), sa.BigInteger)
    return (epoch // size) * size


def _sums(names: tuple[str, ...] = SUMMED) -> list[ColumnElement[Any]]:
    cols: list[ColumnElement[Any]] = [sa.func.count().label("requests")]
    cols += [sa.func.coalesce(sa.func.sum(requests.c[n]), 0).label(n) for n in names]
    return cols


def _since(stmt: sa.Select[Any], since: datetime | None) -> sa.Select[Any]:
    return stmt if since is None else stmt.where(requests.c.ts >= since)


def _empty_group() -> dict[str, Any]:
    g: dict[str, Any] = {"requests": 0, **{n: 0.0 for n in SUMMED}}
    g.update(dict.fromkeys(TOKENS, 0))
    g["energy_by_source"] = {}
    g["requests_by_source"] = {}
    return g


def _add(g: dict[str, Any], row: sa.RowMapping) -> None:
    g["requests"] += int(row["requests"])
    for n in SUMMED:
        g[n] += row[n]
    src = row["energy_source"]
    g["energy_by_source"][src] = g["energy_by_source"].get(src, 0.0) + float(row["energy_j"])
    g["requests_by_source"][src] = g["requests_by_source"].get(src, 0) + int(row["requests"])


def _finish(g: dict[str, Any]) -> dict[str, Any]:
    for n in SUMMED:
        g[n] = int(g[n]) if n in TOKENS else float(g[n])
    for amount in AMOUNTS:
        g[f"savings_{amount}"] = g[baseline_of(amount)] - g[amount]
    n = g["requests"]
    g["energy_j_per_request"] = g["energy_j"] / n if n else 0.0
    g["baseline_energy_j_per_request"] = g["baseline_energy_j"] / n if n else 0.0
    return g


def _group_expr(engine: Engine, by: str) -> ColumnElement[Any]:
    match by:
        case "tier" | "model" | "status":
            return requests.c[by]
        case "key":
            return requests.c.key_id
        case "source":
            return requests.c.energy_source
        case "purpose":  # rows from before the column existed were all served
            return sa.func.coalesce(requests.c.purpose, "serve")
        case "day":
            return _bucket(engine, 86_400)
    raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_BY)}")


def summary(
    engine: Engine, since: datetime | None = None, by: str = "tier"
) -> list[dict[str, Any]]:
    """Totals per group, with savings against the baseline and energy split by source."""
    group = _group_expr(engine, by).label("grp")
    stmt = _since(
        sa.select(group, requests.c.energy_source, *_sums()).group_by(
            sa.literal_column("grp"), requests.c.energy_source
        ),
        since,
    )
    groups: dict[Any, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(stmt).mappings():
            _add(groups.setdefault(row["grp"], _empty_group()), row)
    out = []
    for key in sorted(groups, key=lambda k: (k is None, str(k) if by != "day" else k)):
        g = _finish(groups[key])
        if by == "day":
            key = datetime.fromtimestamp(int(key), UTC).date().isoformat()
        out.append({"group": key, **g})
    return out


def totals(engine: Engine, since: datetime | None = None) -> dict[str, Any]:
    """One summary over every request since ``since``, with first and last timestamps."""
    stmt = _since(
        sa.select(requests.c.energy_source, *_sums()).group_by(requests.c.energy_source), since
    )
    span = _since(sa.select(sa.func.min(requests.c.ts), sa.func.max(requests.c.ts)), since)
    g = _empty_group()
    with engine.connect() as conn:
        for row in conn.execute(stmt).mappings():
            _add(g, row)
        first, last = conn.execute(span).one()
    g = _finish(g)
    first, last = (_as_utc(t) for t in (first, last))
    g["first_ts"] = first.isoformat() if first else None
    g["last_ts"] = last.isoformat() if last else None
    return g


def _as_utc(value: Any) -> datetime | None:
    """min()/max() bypass the column type on SQLite and come back as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timeseries(
    engine: Engine, bucket_s: int = 60, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Per time bucket and tier: requests, energy, cost, CO2e and their baselines."""
    if bucket_s < 1:
        raise ValueError("bucket_s must be at least 1")
    bucket = _bucket(engine, bucket_s).label("bucket")
    sums = _sums((*AMOUNTS, *BASELINE_AMOUNTS))
    stmt = _since(
        sa.select(bucket, requests.c.tier, *sums)
        .group_by(sa.literal_column("bucket"), requests.c.tier)
        .order_by(sa.literal_column("bucket"), requests.c.tier),
        since,
    )
    out = []
    with engine.connect() as conn:
        for row in conn.execute(stmt).mappings():
            d = {
                k: (float(v) if isinstance(v, float | int) and k != "requests" else v)
                for k, v in row.items()
            }
            t = int(row["bucket"])
            d["bucket"] = t
            d["ts"] = datetime.fromtimestamp(t, UTC).isoformat()
            d["requests"] = int(row["requests"])
            out.append(d)
    return out


def recent(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` rows, newest first, with ISO timestamps (ready for JSON)."""
    stmt = sa.select(requests).order_by(requests.c.ts.desc(), requests.c.request_id).limit(limit)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for r in rows:
        r["ts"] = r["ts"].isoformat()
    return rows


def count(engine: Engine) -> int:
    """How many requests the ledger holds."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(requests)).scalar_one())
