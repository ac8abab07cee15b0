"""Who is asking: ``Authorization: Bearer <key>`` checked against the key store.

Auth is required whenever the server listens beyond loopback (unless explicitly turned
off), because an open gateway spends someone's energy and money budget. On loopback it
is off by default, so a single user needs no set-up — but a joulegate key that *is* sent
is still checked, so budgets hold for whoever uses one.
"""

from __future__ import annotations

import ipaddress

from fastapi import Request

from joulegate.ledger import KeyInfo, KeyStore
from joulegate.server.errors import APIError

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


def _unauthorized(message: str) -> APIError:
    return APIError(
        401,
        message,
        type="invalid_request_error",
        code="invalid_api_key",
        headers={"www-authenticate": "Bearer"},
    )


async def authenticate(request: Request, keys: KeyStore, required: bool) -> KeyInfo | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        if required:
            raise _unauthorized(
                "You didn't provide an API key. Send 'Authorization: Bearer <key>'; "
                "create one with `joulegate keys create`."
            )
        return None
    if not required and not token.startswith(KEY_PREFIX):
        return None  # e.g. the placeholder key OpenAI clients insist on sending
    info = await keys.authenticate_async(token)
    if info is None:
        # The same answer for unknown and revoked keys: no oracle for guessing key ids.
        raise _unauthorized("Incorrect or revoked API key provided.")
    return info
