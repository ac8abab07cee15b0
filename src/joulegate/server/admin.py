"""Who may read the reports: the dashboard, its JSON API and (when so configured) /metrics.

With auth on, they need an admin key (``joulegate keys create --admin``). API clients and
Prometheus send it as a bearer token; a browser signs in once at ``/dashboard`` and then
holds a signed session cookie (``sessions.py``): HttpOnly, so page scripts cannot read it;
SameSite=Strict, so no other site can make the browser use it; scoped to ``/dashboard``
and expiring after ``[server] session_ttl_s``.

With auth off, the reports stay open, and error details are shown only to this machine's
own users (loopback): the operator is the admin there.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from joulegate.ledger import KeyInfo, KeyStore
from joulegate.reports.dashboard import Viewer, login_page
from joulegate.server.auth import (
    KEY_PREFIX,
    bearer_token,
    client_address,
    is_loopback,
    require_admin,
    unauthorized,
    verify_key,
)
from joulegate.server.error_handlers import error_response
from joulegate.server.errors import APIError
from joulegate.server.sessions import COOKIE, SessionSigner

__all__ = ["AdminAccess", "GuardedApp"]

# A login form is a few hundred bytes; anything bigger is not one.
_MAX_LOGIN_BODY = 4096


class AdminAccess:
    """The dashboard's ``access`` callback, its sign-in/out routes, and the /metrics guard."""

    def __init__(
        self,
        keys: KeyStore,
        signer: SessionSigner,
        *,
        required: bool,
        prefix: str = "/dashboard",
    ) -> None:
        self.keys = keys
        self.signer = signer
        self.required = required
        self.prefix = prefix

    async def viewer(self, request: Request) -> Viewer:
        """Admin bearer key, or a valid session; otherwise 401 where auth is on."""
        token = bearer_token(request)
        if token is not None and (self.required or token.startswith(KEY_PREFIX)):
            await require_admin(request, self.keys)
            return Viewer(admin=True)
        if await self._session_key(request) is not None:
            return Viewer(admin=True, session=True)
        if self.required:
            raise unauthorized(
                "The reports need an admin key: sign in at /dashboard, or send "
                "'Authorization: Bearer <admin key>'."
            )
        return Viewer(admin=is_loopback(client_address(request)))

    async def _session_key(self, request: Request) -> KeyInfo | None:
        value = request.cookies.get(COOKIE)
        session = self.signer.verify(value) if value else None
        if session is None:
            return None
        info = await asyncio.to_thread(self.keys.get, session.key_id)
        if info is None or info.revoked or not info.is_admin:
            return None  # revoked, or no longer an admin, since signing in
        if info.sessions_after is not None and session.issued_ms <= _unix_ms(info.sessions_after):
            return None  # signed out since
        return info

    async def metrics_guard(self, request: Request) -> None:
        await require_admin(request, self.keys)

    def router(self) -> APIRouter:
        router = APIRouter(prefix=self.prefix, include_in_schema=False)

        @router.post("/login")
        async def login(request: Request) -> Response:
            key = await _form_key(request)
            if not key:
                return login_page("Enter an admin key.", prefix=self.prefix)
            try:
                info = await verify_key(request, self.keys, key)
            except APIError as exc:
                if exc.status_code == 429:
                    return login_page(
                        exc.message, status_code=429, prefix=self.prefix, headers=exc.headers
                    )
                return login_page("That key is not valid or has been revoked.", prefix=self.prefix)
            if not info.is_admin:
                return login_page(
                    "That key is not an admin key: create one with "
                    "`joulegate keys create --admin`.",
                    prefix=self.prefix,
                )
            response = RedirectResponse(self.prefix, status_code=303)
            response.set_cookie(
                COOKIE,
                self.signer.issue(info.key_id),
                max_age=self.signer.ttl_s,
                path=self.prefix,
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )
            return response

        @router.post("/logout")
        async def logout(request: Request) -> Response:
            info = await self._session_key(request)
            if info is not None:  # void this session everywhere, not just in this browser
                await asyncio.to_thread(self.keys.end_sessions, info.key_id)
            response = RedirectResponse(self.prefix, status_code=303)
            response.delete_cookie(
                COOKIE,
                path=self.prefix,
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )
            return response

        return router


def _unix_ms(at: datetime) -> int:
    """``at`` in Unix milliseconds; a naive time (SQLite keeps no zone) is UTC."""
    return int((at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp() * 1000)


async def _form_key(request: Request) -> str | None:
    """The ``key`` field of a form post (or of a JSON body, for scripts)."""
    body = await request.body()
    if len(body) > _MAX_LOGIN_BODY:
        return None
    text = body.decode("utf-8", "replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            doc: Any = json.loads(text)
        except ValueError:
            return None
        key = doc.get("key") if isinstance(doc, dict) else None
        return key.strip() if isinstance(key, str) else None
    values = urllib.parse.parse_qs(text).get("key")
    return values[0].strip() if values else None


class GuardedApp:
    """An ASGI app (the Prometheus exporter) behind ``AdminAccess.metrics_guard``."""

    def __init__(self, app: ASGIApp, access: AdminAccess) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                await self.access.metrics_guard(Request(scope, receive))
            except APIError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
