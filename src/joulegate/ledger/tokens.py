"""API tokens: their format, and the salted scrypt hash that is all the database keeps.

A token reads ``jg-<key_id>_<secret>``. ``key_id`` is not secret: it finds the row without a
scan and is what the ledger records. Only ``scrypt(secret, salt)`` is stored, with its cost
parameters so they can be raised later, so the database never holds a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "jg-"
# scrypt cost: ~16 MiB and a few tens of ms per check; verified tokens are then cached.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def new_key_id() -> str:
    return secrets.token_hex(6)


def new_secret() -> tuple[str, bytes]:
    """A fresh ``(secret, salt)`` pair for a new key."""
    return secrets.token_urlsafe(32), secrets.token_bytes(16)


def format_token(key_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}{key_id}_{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` from ``jg-<key_id>_<secret>``, or ``None`` if malformed."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    key_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id, secret


def hash_secret(secret: str, salt: bytes) -> str:
    """``scrypt:N:r:p:<hex digest>``: the parameters travel with the hash."""
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt:{_SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}:{digest.hex()}"


def verify_secret(secret: str, salt: bytes, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``, compared in constant time."""
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


def token_fingerprint(token: str) -> bytes:
    """A cheap stand-in for a token already verified, for the per-key verification cache."""
    return hashlib.sha256(token.encode()).digest()
