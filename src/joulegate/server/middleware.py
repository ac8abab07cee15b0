"""Pure ASGI middleware: the body-size limit, and the rate-limit headers on every answer.

Pure ASGI (not ``BaseHTTPMiddleware``) so a streamed response passes through untouched and
the body limit acts on the raw ``receive`` channel, before anything parses a byte.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from joulegate.server.errors import APIError

__all__ = ["RATELIMIT_STATE", "BodyLimit", "RateLimitHeaders", "too_large"]

# Where ``auth`` leaves the x-ratelimit-* headers of an admitted request (``request.state``).
RATELIMIT_STATE = "ratelimit_headers"


def too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"The request body is larger than this server accepts ({limit} bytes; "
        "[server] max_body_bytes).",
        code="request_too_large",
    )


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with a 413 in OpenAI's format.

    A declared ``Content-Length`` over the limit is refused before one byte of the body is
    read (a 10 MB upload costs the server nothing). A chunked body is counted as it
    arrives and stopped at the first chunk past the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_error(send, too_large(self.max_bytes))
            return
        limit = self.max_bytes
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException is what FastAPI lets through its own body parsing;
                    # the app's handler turns it into the OpenAI-format 413.
                    raise HTTPException(413, too_large(limit).message)
            return message

        await self.app(scope, counted, send)


class RateLimitHeaders:
    """Add an admitted request's ``x-ratelimit-*`` headers to its response, whatever route
    answered it: OpenAI sends them on every response, not only on 429s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: dict[str, str] = scope.get("state", {}).get(RATELIMIT_STATE) or {}
                if extra:
                    headers = list(message.get("headers", []))
                    present = {k.lower() for k, _ in headers}
                    headers += [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in extra.items()
                        if k.encode("latin-1") not in present
                    ]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, exc: APIError) -> None:
    body = json.dumps(exc.body()).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The unread body is still on the wire: this connection cannot be reused.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
