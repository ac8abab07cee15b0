"""The web dashboard: the ledger, live, for people who would rather look than read.

One router serves the page (``GET /dashboard``), its static assets (shipped in the package,
including a vendored Chart.js: the gateway may run with no internet) and four small JSON
endpoints the page polls. Ledger reads are synchronous SQLAlchemy, so each runs in the
thread pool and never blocks the event loop that is streaming tokens to clients.

Mount it with::

    from joulegate.reports.dashboard import ProjectionDefaults, dashboard_router

    app.include_router(
        dashboard_router(lambda: gateway.ledger, ProjectionDefaults.from_settings(settings))
    )
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from joulegate.reports.projection import (
    DEFAULT_GRID_G_PER_KWH,
    DEFAULT_KWH_PER_HOME_YEAR,
    DEFAULT_PUE,
    DEFAULT_QUERIES_PER_DAY,
    DEFAULT_USD_PER_KWH,
    inputs_from_ledger,
    project,
)

if TYPE_CHECKING:
    from joulegate.ledger import Ledger

__all__ = ["ProjectionDefaults", "dashboard_router"]

STATIC_PACKAGE = "joulegate.reports"
STATIC_DIR = ("static", "dashboard")
# The page asks for at most this many buckets, so a long window cannot make a huge answer.
MAX_BUCKETS = 2_000


@dataclass(frozen=True, slots=True)
class ProjectionDefaults:
    """What the dashboard's projection assumes; sources in ``docs/projection.md``."""

    queries_per_day: float = DEFAULT_QUERIES_PER_DAY
    pue: float = DEFAULT_PUE
    grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH
    usd_per_kwh: float = DEFAULT_USD_PER_KWH
    kwh_per_home_year: float = DEFAULT_KWH_PER_HOME_YEAR
    rebound_elasticity: float = 0.0
    # How the ledger's receipts were metered: local tiers carry ``metered_pue``; the
    # baseline tier is either local (device joules) or remote (full-stack estimates).
    metered_pue: float = 1.0
    baseline_is_local: bool = False

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ProjectionDefaults:
        """Read the metering facts from a ``joulegate.config.Settings``."""
        from joulegate.reports.project_cli import baseline_is_local

        return cls(
            metered_pue=float(settings.metering.pue),
            baseline_is_local=baseline_is_local(settings),
            **overrides,
        )


@cache
def _asset(name: str) -> bytes:
    """A static file's bytes, read once from the installed package (zip-safe)."""
    root = resources.files(STATIC_PACKAGE).joinpath(*STATIC_DIR)
    node = root.joinpath(*name.split("/"))
    if not node.is_file():
        raise FileNotFoundError(name)
    return node.read_bytes()


def _safe_name(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") or "\\" in p for p in parts):
        raise HTTPException(404, "not found")
    return "/".join(parts)


def dashboard_router(
    ledger_provider: Callable[[], Ledger | None],
    projection_defaults: ProjectionDefaults | None = None,
    *,
    prefix: str = "/dashboard",
) -> APIRouter:
    """The dashboard's routes; ``ledger_provider`` is called per request (the ledger may
    start after the router is built, or be disabled: then the API answers 503)."""
    defaults = projection_defaults or ProjectionDefaults()
    router = APIRouter(prefix=prefix, tags=["dashboard"], include_in_schema=False)

    def ledger() -> Ledger:
        found = ledger_provider()
        if found is None:
            raise HTTPException(503, "the ledger is disabled or not started")
        return found

    @router.get("", response_class=HTMLResponse)
    async def page() -> Response:
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-cache"})

    @router.get("/", response_class=HTMLResponse)
    async def page_slash() -> Response:
        return RedirectResponse(prefix, status_code=307)

    @router.get("/static/{path:path}")
    async def static(path: str) -> Response:
        name = _safe_name(path)
        try:
            body = _asset(name)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise HTTPException(404, "not found") from exc
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media.startswith("text/") or media.endswith("javascript"):
            media += "; charset=utf-8"
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=300"})

    @router.get("/api/summary")
    async def summary() -> dict[str, Any]:
        led = ledger()

        def read() -> dict[str, Any]:
            return {
                "totals": led.totals(),
                "by_tier": led.summary(by="tier"),
                "by_source": led.summary(by="source"),
            }

        return {**await run_in_threadpool(read), "generated_at": _now()}

    @router.get("/api/timeseries")
    async def timeseries(
        window_s: int = Query(900, ge=10, le=366 * 86_400),
        bucket_s: int = Query(15, ge=1),
    ) -> dict[str, Any]:
        bucket_s = max(bucket_s, -(-window_s // MAX_BUCKETS))
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        rows = await run_in_threadpool(ledger().timeseries, bucket_s, since)
        return {"bucket_s": bucket_s, "window_s": window_s, "rows": rows, "generated_at": _now()}

    @router.get("/api/recent")
    async def recent(limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
        rows = await run_in_threadpool(ledger().recent, limit)
        return {"rows": rows, "generated_at": _now()}

    @router.get("/api/projection")
    async def projection(
        queries_per_day: float | None = Query(None, gt=0, le=1e13),
        rebound_elasticity: float | None = Query(None, ge=0, le=5),
    ) -> dict[str, Any]:
        led = ledger()
        totals, by_tier = await run_in_threadpool(lambda: (led.totals(), led.summary(by="tier")))
        base = {"defaults": asdict(defaults), "generated_at": _now()}
        if not totals.get("requests"):
            return {**base, "available": False, "reason": "no requests in the ledger yet"}
        try:
            inputs = inputs_from_ledger(
                totals,
                by_tier,
                pue=defaults.pue,
                metered_pue=defaults.metered_pue,
                baseline_is_local=defaults.baseline_is_local,
                queries_per_day=queries_per_day or defaults.queries_per_day,
                grid_g_per_kwh=defaults.grid_g_per_kwh,
                usd_per_kwh=defaults.usd_per_kwh,
                kwh_per_home_year=defaults.kwh_per_home_year,
                rebound_elasticity=(
                    defaults.rebound_elasticity
                    if rebound_elasticity is None
                    else rebound_elasticity
                ),
            )
        except ValueError as exc:  # e.g. only cache hits so far: zero joules per query
            return {**base, "available": False, "reason": str(exc)}
        return {**base, "available": True, **project(inputs).as_dict()}

    return router


def _now() -> str:
    return datetime.now(UTC).isoformat()
