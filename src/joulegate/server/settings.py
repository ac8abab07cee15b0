"""Where the gateway listens, whether it asks for keys, and the limits it holds clients to.

Composed into the gateway's settings (``joulegate.config``) as ``server``. It imports
nothing from joulegate, so ``config`` can compose it without depending on the server.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

__all__ = ["ServerSettings"]


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # "auto": auth is on whenever the server listens on a non-loopback address.
    auth: Literal["auto", "on", "off"] = "auto"
    log_level: str = "info"
    # /metrics needs an admin key too (Prometheus sends it as a bearer token).
    metrics_auth: bool = False
    # Dashboard sessions: signed with this secret, or with one generated once into
    # ``<data_dir>/session-secret``. Replicas behind one address must share it.
    session_secret: SecretStr | None = None
    session_ttl_s: int = Field(default=8 * 3600, ge=60)
    # Per-key rate limits: where the counters live. None keeps them in this process, which
    # is exact for one gateway; replicas must share a Redis (``redis://127.0.0.1:6379/0``).
    redis_url: str | None = None
    # Defaults for keys without their own --rpm/--tpm (and, with auth off, per client
    # address). None: unlimited.
    default_rpm: int | None = Field(default=None, ge=1)
    default_tpm: int | None = Field(default=None, ge=1)
    # Failed authentications one client address may make per minute before it gets 429s
    # without its attempts being checked (each check costs tens of ms of scrypt).
    auth_failures_per_minute: int = Field(default=30, ge=1)
    # Request limits, enforced before a body is parsed (413) or planned (400).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # The most tokens one request may generate: more is a 400, and a request that names no
    # max_tokens is held to it. None: each tier's own default and context decide.
    max_tokens: int | None = Field(default=None, ge=1)
