"""The ASGI application: wires the gateway's parts into FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from joulegate import __version__
from joulegate.config import Settings
from joulegate.reports.dashboard import ProjectionDefaults, dashboard_router
from joulegate.server import errors
from joulegate.server.api_router import router
from joulegate.server.auth import auth_required
from joulegate.server.gateway import Gateway
from joulegate.server.serving import ChatService


def create_app(settings: Settings) -> FastAPI:
    gateway = Gateway.from_settings(settings)
    chat = ChatService(gateway)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await chat.drain()
            await gateway.stop()

    app = FastAPI(title="joulegate", version=__version__, lifespan=lifespan)
    app.state.gateway = gateway
    app.state.chat = chat
    app.state.auth_required = auth_required(settings.server.auth, settings.server.host)
    errors.install(app)
    app.include_router(router)
    app.include_router(
        dashboard_router(lambda: gateway.ledger, ProjectionDefaults.from_settings(settings))
    )
    app.mount("/metrics", make_asgi_app())
    return app
