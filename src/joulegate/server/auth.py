"""Who is asking: ``Authorization: Bearer <key>`` checked against the key store, and how
much they may ask: the key's rate limits, counted on admission.

Auth is required whenever the server listens beyond loopback (unless explicitly turned
off), because an open gateway spends someone's energy and money budget. On loopback it
is off by default, so a single user needs no set-up — but a joulegate key that *is* sent
is still checked, so budgets hold for whoever uses one.

Checking a key costs tens of milliseconds of scrypt, so guessing is throttled per client
address: past ``[server] auth_failures_per_minute`` failures an address gets 429s without
its attempts being checked at all, while a key already verified here is never held up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from fastapi import Request

from joulegate.ledger import KeyInfo, KeyStore
from joulegate.server.errors import APIError
from joulegate.server.middleware import RATELIMIT_STATE
from joulegate.server.ratelimit import RateLimiter

KEY_PREFIX = "jg-"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_required(mode: str, host: str) -> bool:
    """``auto`` means: required unless the server is only reachable from this machine."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    return not is_loopback(host)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def unauthorized(message: str, code: str = "invalid_api_key") -> APIError:
    return APIError(
        401,
        message,
        type="invalid_request_error",
        code=code,
        headers={"www-authenticate": "Bearer"},
    )


NO_KEY = (
    "You didn't provide an API key. Send 'Authorization: Bearer <key>'; "
    "create one with `joulegate keys create`."
)


def _limiter(request: Request) -> RateLimiter | None:
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    return limiter


async def verify_key(request: Request, keys: KeyStore, token: str) -> KeyInfo:
    """The live key ``token`` belongs to; 401 if none, 429 if this address guessed too often."""
    limiter = _limiter(request)
    address = client_address(request)
    if limiter is not None and not keys.is_verified(token):
        await limiter.check_auth_throttle(address)
    info = await keys.authenticate_async(token)
    if info is None:
        if limiter is not None:
            await limiter.auth_failed(address)
        # The same answer for unknown and revoked keys: no oracle for guessing key ids.
        raise unauthorized("Incorrect or revoked API key provided.")
    return info


async def authenticate(request: Request, keys: KeyStore, required: bool) -> KeyInfo | None:
    """The caller's key (``None``: anonymous, where auth is off), admitted against its
    request rate limit; raises the 401 or 429 the client should see."""
    token = bearer_token(request)
    info: KeyInfo | None = None
    if token is None:
        if required:
            raise unauthorized(NO_KEY)
    elif required or token.startswith(KEY_PREFIX):
        # Where auth is off, a token that is not ours is e.g. the placeholder key OpenAI
        # clients insist on sending; one of ours is checked, so its budget holds.
        info = await verify_key(request, keys, token)
    limiter = _limiter(request)
    if limiter is not None:
        identity, rpm, _ = limiter.limits_for(info, client_address(request))
        _remember(request, await limiter.admit_request(identity, rpm))
    return info


async def admit_tokens(request: Request, key: KeyInfo | None, cost: Callable[[], int]) -> None:
    """Charge ``cost()`` tokens against the caller's TPM limit (429 when over it); the
    estimate is only made where a limit applies."""
    limiter = _limiter(request)
    if limiter is None:
        return
    identity, _, tpm = limiter.limits_for(key, client_address(request))
    if tpm is not None:
        _remember(request, await limiter.admit_tokens(identity, tpm, cost()))


def _remember(request: Request, headers: dict[str, str]) -> None:
    """Keep the x-ratelimit-* headers for the response (``middleware.RateLimitHeaders``)."""
    if headers:
        seen: dict[str, Any] = getattr(request.state, RATELIMIT_STATE, None) or {}
        setattr(request.state, RATELIMIT_STATE, {**seen, **headers})


async def require_admin(request: Request, keys: KeyStore) -> KeyInfo:
    """An admin key from the bearer header, or 401 (no key, a bad key, a non-admin key)."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized(
            "This endpoint needs an admin key. Send 'Authorization: Bearer <key>'; create one "
            "with `joulegate keys create --admin`."
        )
    info = await verify_key(request, keys, token)
    if not info.is_admin:
        raise unauthorized(
            "This key is not an admin key; reports need one (`joulegate keys create --admin`).",
            code="admin_key_required",
        )
    return info
