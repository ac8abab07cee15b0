"""The ASGI application: wires the gateway's parts into FastAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from joulegate import __version__
from joulegate.config import Settings
from joulegate.reports.dashboard import ProjectionDefaults, dashboard_router
from joulegate.server import error_handlers, openapi
from joulegate.server.admin import AdminAccess, GuardedApp
from joulegate.server.api_router import router
from joulegate.server.auth import auth_required
from joulegate.server.gateway import Gateway
from joulegate.server.middleware import BodyLimit, RateLimitHeaders
from joulegate.server.ratelimit import RateLimiter
from joulegate.server.serving import ChatService
from joulegate.server.sessions import SessionSigner
from joulegate.server.shadow import ShadowSampler

log = logging.getLogger(__name__)

DESCRIPTION = (
    "An efficiency-first OpenAI-compatible gateway: each request goes to the cheapest tier "
    "that answers it well, and every answer carries its receipt (joules, dollars, CO2e)."
)


def create_app(settings: Settings) -> FastAPI:
    gateway = Gateway.from_settings(settings)
    chat = ChatService(gateway)
    shadow = ShadowSampler(gateway, chat)  # [routing.learn]; does nothing unless enabled
    chat.after_answer = shadow.offer
    server = settings.server
    limiter = RateLimiter.from_settings(server)
    required = auth_required(server.auth, server.host)
    secret = server.session_secret.get_secret_value().encode() if server.session_secret else None
    admin = AdminAccess(
        gateway.keys,
        SessionSigner(secret, server.session_ttl_s, settings.data_dir),
        required=required,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        await shadow.start()
        if limiter.shared and not await limiter.check():
            log.warning(
                "rate limits: %s does not answer; not limiting until it does", server.redis_url
            )
        try:
            yield
        finally:
            await shadow.stop()
            await chat.drain()
            await gateway.stop()
            await limiter.close()

    app = FastAPI(
        title="joulegate",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package by openapi.install, not from a CDN
        redoc_url=None,
    )
    app.state.chat = chat
    app.state.shadow = shadow
    app.state.auth_required = required
    app.state.limiter = limiter
    error_handlers.install(app)
    # Outermost last: the body limit acts before anything else reads a byte.
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(BodyLimit, max_bytes=server.max_body_bytes)
    openapi.install(app)
    app.include_router(router)
    app.include_router(admin.router())
    app.include_router(
        dashboard_router(
            lambda: gateway.ledger,
            ProjectionDefaults.from_settings(settings),
            access=admin.viewer,
            cache_stats=gateway.cache.stats if gateway.cache is not None else None,
        )
    )
    metrics = make_asgi_app()
    app.mount("/metrics", GuardedApp(metrics, admin) if server.metrics_auth else metrics)
    return app
