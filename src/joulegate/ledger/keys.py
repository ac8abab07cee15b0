"""API keys: created once, stored as salted scrypt hashes, with budgets reserved atomically.

A token reads ``jg-<key_id>_<secret>``. ``key_id`` is not secret: it finds the row without a
scan and is what the ledger records. Only ``scrypt(secret, salt)`` is stored, so the database
never holds a usable key.

Budgets work by *reserve, then settle*: before dispatch, :meth:`KeyStore.reserve` holds the
request's worst case against the key's remaining budget; afterwards :meth:`KeyStore.settle`
swaps the hold for the actual spend (or :meth:`KeyStore.release` drops it). Each step is one
transaction on the key's row: ``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite, so concurrent requests, in one process or many, can never overspend a budget.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import hmac
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from joulegate.ledger.budgets import (
    DIMENSIONS,
    ON_EXCEED,
    PERIODS,
    Reservation,
    exceeds,
    period_start,
    resets_at,
)
from joulegate.ledger.engine import create_ledger_engine, write_transaction
from joulegate.ledger.errors import BudgetExceeded, UnknownKey
from joulegate.ledger.migrate import upgrade
from joulegate.ledger.schema import api_keys, reservations

TOKEN_PREFIX = "jg-"
# scrypt cost: ~16 MiB and a few tens of ms per check; verified tokens are then cached.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
# Column suffix for each budget dimension, matching the reserve() arguments.
_AMOUNT = {"j": "energy_j", "usd": "cost_usd", "co2e_g": "co2e_g"}


def _hash_secret(secret: str, salt: bytes) -> str:
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt:{_SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}:{digest.hex()}"


def _verify_secret(secret: str, salt: bytes, stored: str) -> bool:
    try:
        algo, n, r, p, want = stored.split(":")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(
            secret.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want) // 2
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), want)


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` from ``jg-<key_id>_<secret>``, or ``None`` if malformed."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    key_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id, secret


@dataclass(frozen=True)
class KeyInfo:
    """A key as the gateway sees it; never holds the secret. Spend is for the current period."""

    key_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    period: str
    on_exceed: str
    budget_j: float | None
    budget_usd: float | None
    budget_co2e_g: float | None
    period_start: datetime
    spent_j: float
    spent_usd: float
    spent_co2e_g: float
    reserved_j: float
    reserved_usd: float
    reserved_co2e_g: float

    @classmethod
    def from_row(cls, row: Any, now: datetime | None = None) -> KeyInfo:
        """From an ``api_keys`` row, with spend zeroed if the row's period has rolled over."""
        m = row._mapping
        start = period_start(m["period"], now or datetime.now(UTC), m["created_at"])
        fresh = m["period_start"] >= start
        fields = {f: m[f] for f in cls.__dataclass_fields__ if f in m}
        if not fresh:
            fields |= {"period_start": start, "spent_j": 0.0, "spent_usd": 0.0, "spent_co2e_g": 0.0}
        return cls(**fields)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def resets_at(self) -> datetime | None:
        return resets_at(self.period, self.period_start)

    @property
    def has_budget(self) -> bool:
        return any(getattr(self, f"budget_{d}") is not None for d in DIMENSIONS)

    def remaining(self) -> dict[str, float | None]:
        """Budget left per dimension after spend and outstanding reservations (None: no cap)."""
        out: dict[str, float | None] = {}
        for d in DIMENSIONS:
            limit = getattr(self, f"budget_{d}")
            used = getattr(self, f"spent_{d}") + getattr(self, f"reserved_{d}")
            out[d] = None if limit is None else max(0.0, limit - used)
        return out

    def budget_view(self) -> dict[str, Any]:
        """JSON-ready limits and spend, for ``joulegate report --by key`` and the dashboard."""
        view: dict[str, Any] = {"period": self.period, "on_exceed": self.on_exceed}
        for d in DIMENSIONS:
            view[f"limit_{d}"] = getattr(self, f"budget_{d}")
            view[f"spent_{d}"] = getattr(self, f"spent_{d}")
            view[f"reserved_{d}"] = getattr(self, f"reserved_{d}")
        reset = self.resets_at
        view["resets_at"] = reset.isoformat() if reset else None
        view["revoked"] = self.revoked
        return view


class KeyStore:
    """API keys and their budgets, in the ledger's database. Every method is thread-safe."""

    def __init__(self, engine: Engine, *, reservation_ttl_s: float = 3_600.0) -> None:
        self.engine = engine
        self.reservation_ttl = timedelta(seconds=reservation_ttl_s)
        # key_id -> (sha256 of the verified token, secret_hash it verified against)
        self._verified: dict[str, tuple[bytes, str]] = {}
        self._verify_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> KeyStore:
        """A store with its own engine; the gateway passes ``ledger.engine`` instead."""
        return cls(create_ledger_engine(url), **kw)

    def migrate(self) -> None:
        upgrade(self.engine)

    # -- keys ----------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        budget_j: float | None = None,
        budget_usd: float | None = None,
        budget_co2e_g: float | None = None,
        period: str = "total",
        on_exceed: str = "reject",
    ) -> tuple[KeyInfo, str]:
        """Make a key; returns its info and the clear token, which is never seen again."""
        name = name.strip()
        if not name or len(name) > 100:
            raise ValueError("a key name must be 1 to 100 characters")
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
        if on_exceed not in ON_EXCEED:
            raise ValueError(f"on_exceed must be one of {', '.join(ON_EXCEED)}, not {on_exceed!r}")
        for label, value in (("energy", budget_j), ("usd", budget_usd), ("co2e", budget_co2e_g)):
            if value is not None and value < 0:
                raise ValueError(f"the {label} budget must not be negative")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        now = datetime.now(UTC)
        row = {
            "key_id": key_id,
            "name": name,
            "salt": salt.hex(),
            "secret_hash": _hash_secret(secret, salt),
            "created_at": now,
            "revoked_at": None,
            "period": period,
            "on_exceed": on_exceed,
            "budget_j": budget_j,
            "budget_usd": budget_usd,
            "budget_co2e_g": budget_co2e_g,
            "period_start": period_start(period, now, now),
        }
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(api_keys.insert().values(**row))
                stored = conn.execute(api_keys.select().where(api_keys.c.key_id == key_id)).one()
        except sa.exc.IntegrityError:
            raise ValueError(f"a live key named {name!r} already exists") from None
        return KeyInfo.from_row(stored, now), f"{TOKEN_PREFIX}{key_id}_{secret}"

    def get(self, key_id: str) -> KeyInfo | None:
        """The key with this id, revoked or not."""
        with self.engine.connect() as conn:
            row = conn.execute(api_keys.select().where(api_keys.c.key_id == key_id)).first()
        return None if row is None else KeyInfo.from_row(row)

    def list(self, include_revoked: bool = False) -> builtins.list[KeyInfo]:
        """Every key, oldest first; revoked ones only when asked."""
        stmt = api_keys.select().order_by(api_keys.c.created_at, api_keys.c.key_id)
        if not include_revoked:
            stmt = stmt.where(api_keys.c.revoked_at.is_(None))
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            return [KeyInfo.from_row(r, now) for r in conn.execute(stmt)]

    def revoke(self, key_id_or_name: str) -> KeyInfo:
        """Revoke a live key by id or name; it fails authentication from then on."""
        now = datetime.now(UTC)
        match = sa.or_(api_keys.c.key_id == key_id_or_name, api_keys.c.name == key_id_or_name)
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                api_keys.select().where(match, api_keys.c.revoked_at.is_(None)).with_for_update()
            ).first()
            if row is None:
                raise UnknownKey(f"no live key with id or name {key_id_or_name!r}")
            conn.execute(
                api_keys.update().where(api_keys.c.key_id == row.key_id).values(revoked_at=now)
            )
            row = conn.execute(api_keys.select().where(api_keys.c.key_id == row.key_id)).one()
        with self._verify_lock:
            self._verified.pop(row.key_id, None)
        return KeyInfo.from_row(row, now)

    def authenticate(self, token: str) -> KeyInfo | None:
        """The live key ``token`` belongs to, or ``None`` (malformed, unknown, wrong, revoked).

        The row is read every time, so a revocation by another process takes effect on the
        next request; only the slow scrypt check is cached, per key, for the exact token.
        """
        parsed = parse_token(token.strip())
        if parsed is None:
            return None
        key_id, secret = parsed
        with self.engine.connect() as conn:
            row = conn.execute(api_keys.select().where(api_keys.c.key_id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        fingerprint = hashlib.sha256(token.strip().encode()).digest()
        proof = (fingerprint, row.secret_hash)
        if self._verified.get(key_id) != proof:
            with self._verify_lock:  # one scrypt per burst of requests, not one per request
                if self._verified.get(key_id) != proof:
                    if not _verify_secret(secret, bytes.fromhex(row.salt), row.secret_hash):
                        return None
                    self._verified[key_id] = proof
        return KeyInfo.from_row(row)

    # -- budgets -------------------------------------------------------------------------------

    def _lock_key(self, conn: Connection, key_id: str) -> Any:
        stmt = api_keys.select().where(api_keys.c.key_id == key_id).with_for_update()
        return conn.execute(stmt).first()

    def _current(self, row: Any, now: datetime) -> dict[str, Any]:
        """The row's spend for the current period: zero if the window has rolled over."""
        start = period_start(row.period, now, row.created_at)
        if row.period_start >= start:
            return {f"spent_{d}": getattr(row, f"spent_{d}") for d in DIMENSIONS}
        return {"period_start": start, **{f"spent_{d}": 0.0 for d in DIMENSIONS}}

    def _release_expired(self, conn: Connection, key_id: str, now: datetime) -> dict[str, float]:
        """Drop holds whose gateway never settled them; returns what they had reserved."""
        expired = sa.and_(reservations.c.key_id == key_id, reservations.c.expires_at < now)
        cols = [sa.func.coalesce(sa.func.sum(reservations.c[_AMOUNT[d]]), 0.0) for d in DIMENSIONS]
        sums = conn.execute(sa.select(*cols).where(expired)).one()
        conn.execute(reservations.delete().where(expired))
        return {d: float(v) for d, v in zip(DIMENSIONS, sums, strict=True)}

    def reserve(self, key_id: str, energy_j: float, cost_usd: float, co2e_g: float) -> Reservation:
        """Hold a request's worst case against the key's budgets, or raise ``BudgetExceeded``.

        Succeeds only if, for every budget the key has, settled spend in this period plus
        outstanding holds plus this amount stays within the limit.
        """
        amounts = {"j": energy_j, "usd": cost_usd, "co2e_g": co2e_g}
        if any(v < 0 for v in amounts.values()):
            raise ValueError("reserved amounts must not be negative")
        now = datetime.now(UTC)
        res = Reservation(
            uuid.uuid4().hex, key_id, energy_j, cost_usd, co2e_g, now, now + self.reservation_ttl
        )
        with write_transaction(self.engine) as conn:
            row = self._lock_key(conn, key_id)
            if row is None or row.revoked_at is not None:
                raise UnknownKey(f"no live key {key_id!r}")
            values = self._current(row, now)
            freed = self._release_expired(conn, key_id, now)
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
        self, reservation: Reservation, energy_j: float, cost_usd: float, co2e_g: float
    ) -> None:
        """Replace the hold by what the request actually cost (charged to the current period)."""
        if reservation.finished:
            raise RuntimeError(f"reservation {reservation.reservation_id} is already settled")
        actual = {"j": energy_j, "usd": cost_usd, "co2e_g": co2e_g}
        held = {
            "j": reservation.energy_j,
            "usd": reservation.cost_usd,
            "co2e_g": reservation.co2e_g,
        }
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            row = self._lock_key(conn, reservation.key_id)
            if row is None:
                raise UnknownKey(f"no key {reservation.key_id!r}")
            values = self._current(row, now)
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
                values[f"spent_{d}"] += max(0.0, actual[d])
            conn.execute(
                api_keys.update().where(api_keys.c.key_id == reservation.key_id).values(**values)
            )
        reservation.finished = True

    def release(self, reservation: Reservation) -> None:
        """Drop the hold without spending anything (the request failed before any work)."""
        self.settle(reservation, 0.0, 0.0, 0.0)

    # -- async wrappers for the server: the database work runs in a thread ------------------------

    async def authenticate_async(self, token: str) -> KeyInfo | None:
        return await asyncio.to_thread(self.authenticate, token)

    async def reserve_async(
        self, key_id: str, energy_j: float, cost_usd: float, co2e_g: float
    ) -> Reservation:
        return await asyncio.to_thread(self.reserve, key_id, energy_j, cost_usd, co2e_g)

    async def settle_async(
        self, reservation: Reservation, energy_j: float, cost_usd: float, co2e_g: float
    ) -> None:
        await asyncio.to_thread(self.settle, reservation, energy_j, cost_usd, co2e_g)

    async def release_async(self, reservation: Reservation) -> None:
        await asyncio.to_thread(self.release, reservation)
