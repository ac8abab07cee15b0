"""What an upstream's failure means for the pipeline: which error, and whether to retry.

An HTTP status, a timeout or a broken connection each become one :class:`BackendError`
subclass; ``retryable`` on it says whether another tier may answer instead, and the
backend decides from the class whether retrying the same tier could help.
"""

from __future__ import annotations

import re

import httpx

from joulegate.backends.base import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    PromptTooLong,
    RequestRejected,
)
from joulegate.backends.settings import TierSettings

__all__ = [
    "UpstreamMisconfigured",
    "UpstreamRejected",
    "describe",
    "status_error",
    "timeout_error",
]


class UpstreamRejected(RequestRejected):
    """The upstream refused the request itself (a 4xx other than 401/403/404)."""

    code = "upstream_rejected"


class UpstreamMisconfigured(BackendError):
    """401/403/404 from upstream: our tier config is wrong (key, model), not the request.

    Another tier can still answer, so it is retryable across tiers; retrying the same
    tier is pointless, so it is never retried in place.
    """

    status_code = 502
    code = "upstream_misconfigured"


def status_error(tier: TierSettings, status: int, message: str) -> BackendError:
    """The error for an HTTP error status; ``message`` is the upstream's, already redacted."""
    where = f"tier {tier.name!r} (HTTP {status})"
    if status in (401, 403):
        # Never echo the upstream's text: some APIs quote part of the key back.
        key = f"${tier.api_key_env}" if tier.api_key_env else "no API key configured"
        return UpstreamMisconfigured(f"{where} rejected joulegate's credentials ({key})")
    if status == 404:
        return UpstreamMisconfigured(
            f"{where}: model {tier.model!r} or endpoint not found: {message}"
        )
    if status == 429 or status == 503:
        return BackendUnavailable(f"{where} is overloaded: {message}")
    if status == 500 and _is_validation_error(message):
        # llama-cpp-python's server answers a request its schema rejects (an unknown role,
        # a null where it wants a string) with 500 and the validation errors: the request
        # is what is wrong, and a fallback tier would only paper over it.
        rejected = UpstreamRejected(f"{where} rejected the request: {message}")
        rejected.status_code = 400
        return rejected
    if status >= 500 or status == 408:
        return BackendError(f"{where} failed: {message}")
    if _is_context_error(message):
        return PromptTooLong(message)
    rejected = UpstreamRejected(f"{where} rejected the request: {message}")
    # The client gets the upstream's own 4xx (422 stays 422): the request is what is wrong,
    # so no other tier is tried in its place.
    rejected.status_code = status
    return rejected


def timeout_error(tier: TierSettings, exc: Exception, *, first: bool) -> BackendError:
    """The error for a wait that ran out; ``first``: no token had arrived yet."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return BackendUnavailable(
            f"tier {tier.name!r} did not accept a connection within {tier.connect_timeout_s}s"
        )
    if first:
        return BackendTimeout(
            f"tier {tier.name!r} sent no token within {tier.first_token_timeout_s}s"
        )
    return BackendTimeout(
        f"tier {tier.name!r} stalled mid-answer (limits: {tier.first_token_timeout_s}s "
        f"between chunks, {tier.total_timeout_s}s in all)"
    )


def describe(exc: BaseException) -> str:
    """An httpx error without its request repr (which carries the URL and nothing else)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


def _is_validation_error(message: str) -> bool:
    """Pydantic's wording (``3 validation errors:``), which FastAPI-based servers quote."""
    return re.search(r"\b\d+ validation errors?\b", message) is not None


def _is_context_error(message: str) -> bool:
    m = message.lower()
    return "context" in m and ("length" in m or "window" in m or "token" in m)
