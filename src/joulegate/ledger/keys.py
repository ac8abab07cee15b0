"""API keys: views of a key, and the store that creates, lists, revokes and checks them.

The token format and its hashing are in ``tokens.py``; a key's budgets are held and spent by
the transactions in ``reservations.py``, which :class:`KeyStore` exposes so the gateway
holds one object for "this key and what it may still spend".
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import hmac
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from joulegate.ledger import reservations as holds
from joulegate.ledger.budgets import (
    DIMENSIONS,
    ON_EXCEED,
    PERIODS,
    period_start,
    resets_at,
    rolled_over,
)
from joulegate.ledger.engine import create_ledger_engine, write_transaction
from joulegate.ledger.errors import UnknownKey
from joulegate.ledger.migrate import upgrade
from joulegate.ledger.reservations import Reservation
from joulegate.ledger.schema import api_keys
from joulegate.ledger.tokens import (
    format_token,
    hash_secret,
    new_key_id,
    new_secret,
    parse_token,
    token_fingerprint,
    verify_secret,
)

# "user": calls models. "admin": also reads the reports (the dashboard, its API, /metrics).
ROLES = ("user", "admin")


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
    role: str = "user"
    rpm: int | None = None  # requests per minute; None: the server's default
    tpm: int | None = None  # tokens per minute; None: the server's default
    learn: bool = True  # False: shadow sampling never learns from this key's traffic
    sessions_after: datetime | None = None  # dashboard sessions issued before it are void

    @classmethod
    def from_row(cls, row: Any, now: datetime | None = None) -> KeyInfo:
        """From an ``api_keys`` row, with spend zeroed if the row's period has rolled over."""
        m = row._mapping
        now = now or datetime.now(UTC)
        fields = {f: m[f] for f in cls.__dataclass_fields__ if f in m}
        start = rolled_over(m["period"], m["period_start"], m["created_at"], now)
        if start is not None:
            fields |= {"period_start": start, **{f"spent_{d}": 0.0 for d in DIMENSIONS}}
        return cls(**fields)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_admin(self) -> bool:
        """Admin keys may read the reports (the dashboard and its API, /metrics)."""
        return self.role == "admin"

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


@functools.cache
def _dummy_hash() -> tuple[bytes, str]:
    """A salt and hash no secret matches, to verify against when the key id is unknown."""
    secret, salt = new_secret()
    return salt, hash_secret(secret + "-never-issued", salt)


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
        *,
        role: str = "user",
        rpm: int | None = None,
        tpm: int | None = None,
        learn: bool = True,
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
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        for label, rate in (("rpm", rpm), ("tpm", tpm)):
            if rate is not None and rate < 1:
                raise ValueError(f"{label} must be at least 1 (leave it out for no limit)")
        key_id = new_key_id()
        secret, salt = new_secret()
        now = datetime.now(UTC)
        row = {
            "key_id": key_id,
            "name": name,
            "salt": salt.hex(),
            "secret_hash": hash_secret(secret, salt),
            "created_at": now,
            "revoked_at": None,
            "period": period,
            "on_exceed": on_exceed,
            "budget_j": budget_j,
            "budget_usd": budget_usd,
            "budget_co2e_g": budget_co2e_g,
            "period_start": period_start(period, now, now),
            "role": role,
            "rpm": rpm,
            "tpm": tpm,
            "learn": learn,
        }
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(api_keys.insert().values(**row))
                stored = conn.execute(api_keys.select().where(api_keys.c.key_id == key_id)).one()
        except sa.exc.IntegrityError:
            raise ValueError(f"a live key named {name!r} already exists") from None
        return KeyInfo.from_row(stored, now), format_token(key_id, secret)

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
        An unknown or revoked id costs the same scrypt as a wrong secret, so the time an
        answer takes does not tell which key ids exist.
        """
        parsed = parse_token(token.strip())
        if parsed is None:
            return None
        key_id, secret = parsed
        with self.engine.connect() as conn:
            row = conn.execute(api_keys.select().where(api_keys.c.key_id == key_id)).first()
        if row is None or row.revoked_at is not None:
            with self._verify_lock:  # queued like a real check, too
                verify_secret(secret, *_dummy_hash())
            return None
        fingerprint = token_fingerprint(token.strip())
        proof = (fingerprint, row.secret_hash)
        if self._verified.get(key_id) != proof:
            with self._verify_lock:  # one scrypt per burst of requests, not one per request
                if self._verified.get(key_id) != proof:
                    if not verify_secret(secret, bytes.fromhex(row.salt), row.secret_hash):
                        return None
                    self._verified[key_id] = proof
        return KeyInfo.from_row(row)

    def is_verified(self, token: str) -> bool:
        """Whether ``token`` already passed its scrypt check in this process (no database
        read): such a client is not held up by throttling aimed at guessers."""
        parsed = parse_token(token.strip())
        if parsed is None:
            return False
        proof = self._verified.get(parsed[0])
        return proof is not None and hmac.compare_digest(proof[0], token_fingerprint(token.strip()))

    # -- budgets (the transactions are in reservations.py) --------------------------------

    def reserve(self, key_id: str, energy_j: float, cost_usd: float, co2e_g: float) -> Reservation:
        """Hold a request's worst case against the key's budgets, or raise ``BudgetExceeded``."""
        return holds.reserve(
            self.engine, key_id, energy_j, cost_usd, co2e_g, ttl=self.reservation_ttl
        )

    def settle(
        self, reservation: Reservation, energy_j: float, cost_usd: float, co2e_g: float
    ) -> None:
        """Replace the hold by what the request actually cost (charged to the current period)."""
        holds.settle(self.engine, reservation, energy_j, cost_usd, co2e_g)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold without spending anything (the request failed before any work)."""
        holds.release(self.engine, reservation)

    def end_sessions(self, key_id: str) -> None:
        """Void every dashboard session of the key issued until now (signing out)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id)
                .values(sessions_after=datetime.now(UTC))
            )

    def charge(self, key_id: str, energy_j: float, cost_usd: float, co2e_g: float) -> None:
        """Count spend that took no hold (a cache hit); never refused."""
        holds.charge(self.engine, key_id, energy_j, cost_usd, co2e_g)

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

    async def charge_async(
        self, key_id: str, energy_j: float, cost_usd: float, co2e_g: float
    ) -> None:
        await asyncio.to_thread(self.charge, key_id, energy_j, cost_usd, co2e_g)
