"""Per-key rate limits (requests and tokens per minute) and the throttle on failed logins.

Counting is the ``limits`` library's, not ours: in Redis when ``[server] redis_url`` is set,
where each check-and-count is one Lua script, so any number of gateway replicas share one
exact limit; otherwise in this process (exact for one gateway). Requests use a *moving
window* (a log of the last ``rpm`` admissions, so "60 a minute" means no 61st within any 60
s). Tokens use a *sliding-window counter* (two fixed windows, weighted), which costs O(1)
memory whatever the TPM; a log of one entry per token would not.

Tokens are charged on admission, as OpenAI does: an estimate of the prompt plus the
``max_tokens`` the request may use. A refused request still counts against the request
limit, also as OpenAI does, so hammering a limit never drains it faster.

If the counter store fails (Redis down), requests are let through and a warning is logged:
budgets, not rate limits, are what protect spend, and an outage of Redis should not become
an outage of the gateway.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from joulegate.server.errors import APIError
from joulegate.server.settings import ServerSettings

if TYPE_CHECKING:
    from joulegate.ledger import KeyInfo

log = logging.getLogger(__name__)

__all__ = ["RateLimiter", "estimate_tokens", "openai_duration"]

_PREFIX = "joulegate"
# Connections one gateway keeps to Redis; each check is one short script.
_REDIS_CONNECTIONS = 32
# At most one "counter store is failing" warning per this many seconds.
_WARN_EVERY_S = 30.0


def openai_duration(seconds: float) -> str:
    """A reset time as OpenAI's ``x-ratelimit-reset-*`` headers write it: ``20ms``, ``1s``,
    ``6m0s``, ``1h2m3s`` (Go's duration format, to the millisecond)."""
    ms = max(0, math.ceil(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms"
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"


def estimate_tokens(messages: Sequence[Mapping[str, Any]], max_tokens: int) -> int:
    """What a request is charged against a TPM limit on admission: about four characters
    a token for the prompt (plus chat framing), and all of its ``max_tokens``."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text") or "")) for p in content if isinstance(p, dict))
    return math.ceil(chars / 4) + 4 * len(messages) + max_tokens


@dataclass(frozen=True)
class _Window:
    limit: int
    remaining: int
    reset_s: float


class RateLimiter:
    """The gateway's counters: one store, shared by the per-key limits and the login throttle."""

    def __init__(
        self,
        storage_uri: str,
        *,
        default_rpm: int | None = None,
        default_tpm: int | None = None,
        auth_failures_per_minute: int = 30,
    ) -> None:
        self.default_rpm = default_rpm
        self.default_tpm = default_tpm
        options: dict[str, Any] = {}
        if storage_uri.startswith("async+redis"):
            from redis.asyncio import BlockingConnectionPool

            options["implementation"] = "redispy"
            options["key_prefix"] = _PREFIX
            # A burst of requests waits for a connection rather than failing (redis-py's
            # default pool raises past its size); a Redis that hangs fails fast, then open.
            options["connection_pool"] = BlockingConnectionPool.from_url(
                storage_uri.removeprefix("async+"),
                max_connections=_REDIS_CONNECTIONS,
                timeout=2.0,
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
            )
        self.storage_uri = storage_uri
        self.storage: Any = storage_from_string(storage_uri, **options)
        self._requests = MovingWindowRateLimiter(self.storage)
        self._tokens = SlidingWindowCounterRateLimiter(self.storage)
        self._auth_failures = RateLimitItemPerMinute(auth_failures_per_minute)
        self._warned_at = -math.inf

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> RateLimiter:
        url = settings.redis_url
        uri = f"async+{url}" if url else "async+memory://"
        return cls(
            uri,
            default_rpm=settings.default_rpm,
            default_tpm=settings.default_tpm,
            auth_failures_per_minute=settings.auth_failures_per_minute,
        )

    @property
    def shared(self) -> bool:
        """Whether the counters are shared between processes (Redis)."""
        return not self.storage_uri.startswith("async+memory")

    async def check(self) -> bool:
        """Whether the store answers; logged at start-up, never fatal."""
        try:
            return bool(await self.storage.check())
        except Exception:
            return False

    # -- per-key limits ------------------------------------------------------------------

    def limits_for(self, key: KeyInfo | None, address: str) -> tuple[str, int | None, int | None]:
        """``(who is counted, rpm, tpm)``: a key's own limits, else the server's defaults;
        anonymous callers (auth off) are counted per client address."""
        if key is not None:
            return f"key:{key.key_id}", key.rpm or self.default_rpm, key.tpm or self.default_tpm
        return f"addr:{address}", self.default_rpm, self.default_tpm

    async def admit_request(self, identity: str, rpm: int | None) -> dict[str, str]:
        """Count one request against ``rpm``; its ``x-ratelimit-*-requests`` headers, or
        ``APIError`` 429 with ``Retry-After``."""
        if rpm is None:
            return {}
        item = RateLimitItemPerMinute(rpm)
        try:
            allowed = await self._requests.hit(item, "rpm", identity)
            window = await self._stats(self._requests, item, "rpm", identity)
        except Exception as exc:
            self._store_failed(exc)
            return {}
        headers = _headers("requests", window)
        if not allowed:
            raise _limited(
                "requests",
                f"Rate limit reached for requests per min (RPM): Limit {rpm}. "
                f"Please try again in {openai_duration(window.reset_s)}.",
                window,
                headers,
            )
        return headers

    async def admit_tokens(self, identity: str, tpm: int | None, cost: int) -> dict[str, str]:
        """Charge ``cost`` tokens against ``tpm``; headers as for requests, ``-tokens``."""
        if tpm is None:
            return {}
        item = RateLimitItemPerMinute(tpm)
        if cost > tpm:
            window = _Window(tpm, tpm, 60.0)
            raise _limited(
                "tokens",
                f"Request too large for tokens per min (TPM): Limit {tpm}, Requested {cost}. "
                "Lower max_tokens or shorten the messages.",
                window,
                _headers("tokens", window),
            )
        try:
            allowed = await self._tokens.hit(item, "tpm", identity, cost=cost)
            window = await self._stats(self._tokens, item, "tpm", identity)
        except Exception as exc:
            self._store_failed(exc)
            return {}
        headers = _headers("tokens", window)
        if not allowed:
            raise _limited(
                "tokens",
                f"Rate limit reached for tokens per min (TPM): Limit {tpm}, Requested {cost}. "
                f"Please try again in {openai_duration(window.reset_s)}.",
                window,
                headers,
            )
        return headers

    # -- failed logins -------------------------------------------------------------------

    async def check_auth_throttle(self, address: str) -> None:
        """Refuse (429) an address that failed authentication too often in the last minute,
        before its attempt costs any scrypt work."""
        try:
            if await self._requests.test(self._auth_failures, "authfail", address):
                return
            window = await self._stats(self._requests, self._auth_failures, "authfail", address)
        except Exception as exc:
            self._store_failed(exc)
            return
        raise APIError(
            429,
            "Too many failed authentication attempts from your address. "
            f"Please try again in {openai_duration(window.reset_s)}.",
            type="requests",
            code="too_many_auth_failures",
            headers={"retry-after": _retry_after(window.reset_s)},
        )

    async def auth_failed(self, address: str) -> None:
        try:
            await self._requests.hit(self._auth_failures, "authfail", address)
        except Exception as exc:
            self._store_failed(exc)

    # -- helpers -------------------------------------------------------------------------

    async def _stats(self, limiter: Any, item: Any, *ids: str) -> _Window:
        reset_at, remaining = await limiter.get_window_stats(item, *ids)
        return _Window(item.amount, max(0, int(remaining)), max(0.0, reset_at - time.time()))

    def _store_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate-limit store %s failed (%s); not limiting", self.storage_uri, exc)

    async def close(self) -> None:
        """Close the Redis client (nothing to do in memory)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None and hasattr(client, "aclose"):
            try:
                await client.aclose()
            except Exception:  # shutting down: nothing left to tell
                log.debug("closing the rate-limit store", exc_info=True)


def _headers(kind: str, window: _Window) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(window.limit),
        f"x-ratelimit-remaining-{kind}": str(window.remaining),
        f"x-ratelimit-reset-{kind}": openai_duration(window.reset_s),
    }


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def _limited(kind: str, message: str, window: _Window, headers: dict[str, str]) -> APIError:
    return APIError(
        429,
        message,
        type=kind,
        code="rate_limit_exceeded",
        headers={**headers, "retry-after": _retry_after(window.reset_s)},
    )
