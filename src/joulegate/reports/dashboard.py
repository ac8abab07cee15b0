"""The web dashboard: the ledger, live, for people who would rather look than read.

One router serves the page (``GET /dashboard``), its static assets (shipped in the package,
including a vendored Chart.js: the gateway may run with no internet) and four small JSON
endpoints the page polls. Ledger reads are synchronous SQLAlchemy, so each runs in the
thread pool and never blocks the event loop that is streaming tokens to clients.

Who may look is the caller's business: ``access`` is called on every request for the page
and the API, and raises an exception with ``status_code`` 401 to refuse (the page then
answers with the sign-in form, the API with that error). What it returns says whether the
viewer is an admin: others see a failed request's status, never its error text.

Mount it with::

    from joulegate.reports.dashboard import ProjectionDefaults, dashboard_router

    app.include_router(
        dashboard_router(lambda: gateway.ledger, ProjectionDefaults.from_settings(settings))
    )
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from joulegate._static_files import package_file, static_response
from joulegate.ledger.learning import learning_spend, quality_retained
from joulegate.reports.cache_view import cache_summary
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

__all__ = ["Access", "ProjectionDefaults", "Viewer", "dashboard_router", "login_page"]

STATIC_PACKAGE = "joulegate.reports"
STATIC_DIR = ("static", "dashboard")
# The page asks for at most this many buckets, so a long window cannot make a huge answer.
MAX_BUCKETS = 2_000


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: an admin sees error details; ``session`` says a sign-out applies."""

    admin: bool
    session: bool = False


# Called per request; raises (``status_code`` 401) to refuse.
Access = Callable[[Request], Awaitable[Viewer]]


# What the JSON API answers, for the OpenAPI document (the routes return plain dicts).
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ViewerOut(_Open):
    admin: bool
    session: bool


class SummaryOut(_Open):
    totals: dict[str, Any]
    by_tier: list[dict[str, Any]]
    by_source: list[dict[str, Any]]
    # The response cache: hits, hit rate, energy saved, estimated false-hit rate.
    cache: dict[str, Any]
    # Quality retained over the shadowed sample: overall, and per tier (ledger/learning.py).
    quality: dict[str, Any]
    # What calibration and shadow sampling cost, by purpose: the learning overhead.
    learning: dict[str, Any]
    viewer: ViewerOut
    generated_at: str


class TimeseriesOut(_Open):
    bucket_s: int
    window_s: int
    rows: list[dict[str, Any]]
    generated_at: str


class RecentOut(_Open):
    rows: list[dict[str, Any]]
    generated_at: str


class ProjectionOut(_Open):
    defaults: dict[str, Any]
    available: bool
    reason: str | None = None
    generated_at: str


@dataclass(frozen=True, slots=True)
class ProjectionDefaults:
    """What the dashboard's projection assumes; sources in ``docs/projection.md``."""

    queries_per_day: float = DEFAULT_QUERIES_PER_DAY
    pue: float = DEFAULT_PUE
    grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH
    usd_per_kwh: float = DEFAULT_USD_PER_KWH
    kwh_per_home_year: float = DEFAULT_KWH_PER_HOME_YEAR
    rebound_elasticity: float = 0.0
    # The PUE this machine's tiers are metered with ([metering] pue): the receipts carry
    # it, and the projection takes them as they are (projection.py, "Energy basis").
    metered_pue: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ProjectionDefaults:
        """Read the metering facts from a ``joulegate.config.Settings``."""
        return cls(metered_pue=float(settings.metering.pue), **overrides)


@cache
def _asset(name: str) -> bytes:
    """A static file's bytes, read once from the installed package (zip-safe)."""
    return package_file(STATIC_PACKAGE, STATIC_DIR, name)


def login_page(
    message: str | None = None,
    *,
    status_code: int = 401,
    prefix: str = "/dashboard",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form (``login.html``), with an optional notice, escaped."""
    page = _asset("login.html").decode()
    notice = f'<p class="notice">{html.escape(message)}</p>' if message else ""
    page = page.replace("<!--notice-->", notice).replace("/dashboard/", f"{prefix}/")
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def redact(row: dict[str, Any]) -> dict[str, Any]:
    """A request row as a non-admin sees it: the error trimmed to its status."""
    if row.get("error"):
        status = row.get("http_status")
        try:
            phrase = HTTPStatus(int(status)).phrase if status is not None else ""
        except ValueError:
            phrase = ""
        row = {**row, "error": f"{status} {phrase}".strip()}
    return row


def dashboard_router(
    ledger_provider: Callable[[], Ledger | None],
    projection_defaults: ProjectionDefaults | None = None,
    *,
    prefix: str = "/dashboard",
    access: Access | None = None,
    cache_stats: Callable[[], dict[str, Any] | None] | None = None,
) -> APIRouter:
    """The dashboard's routes; ``ledger_provider`` is called per request (the ledger may
    start after the router is built, or be disabled: then the API answers 503).
    ``access`` decides who may look (default: anyone, as a non-admin); ``cache_stats``
    gives the response cache's counters (``cache_view.cache_summary``), where it runs."""
    defaults = projection_defaults or ProjectionDefaults()
    router = APIRouter(prefix=prefix, tags=["dashboard"])

    async def viewer(request: Request) -> Viewer:
        return Viewer(admin=False) if access is None else await access(request)

    def ledger() -> Ledger:
        found = ledger_provider()
        if found is None:
            raise HTTPException(503, "the ledger is disabled or not started")
        return found

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request) -> Response:
        try:
            await viewer(request)
        except Exception as exc:
            if getattr(exc, "status_code", None) != 401:
                raise
            return login_page(prefix=prefix)
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-store"})

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page_slash() -> Response:
        return RedirectResponse(prefix, status_code=307)

    @router.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str) -> Response:
        return static_response(_asset, path, max_age=300)

    @router.get("/api/summary", responses={200: {"model": SummaryOut}})
    async def summary(who: Viewer = Depends(viewer)) -> dict[str, Any]:
        led = ledger()

        def read() -> dict[str, Any]:
            quality = quality_retained(led.engine, by="tier")
            totals, by_source = led.totals(), led.summary(by="source")
            return {
                "totals": totals,
                "by_tier": led.summary(by="tier"),
                "by_source": by_source,
                "cache": cache_summary(by_source, totals, cache_stats() if cache_stats else None),
                "quality": {
                    "overall": quality[-1].as_dict(),
                    "by_tier": [q.as_dict() for q in quality[:-1]],
                },
                "learning": learning_spend(led.engine),
            }

        return {
            **await run_in_threadpool(read),
            "viewer": {"admin": who.admin, "session": who.session},
            "generated_at": _now(),
        }

    @router.get("/api/timeseries", responses={200: {"model": TimeseriesOut}})
    async def timeseries(
        window_s: int = Query(900, ge=10, le=366 * 86_400),
        bucket_s: int = Query(15, ge=1, le=366 * 86_400),
        who: Viewer = Depends(viewer),
    ) -> dict[str, Any]:
        bucket_s = max(bucket_s, -(-window_s // MAX_BUCKETS))
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        rows = await run_in_threadpool(ledger().timeseries, bucket_s, since)
        return {"bucket_s": bucket_s, "window_s": window_s, "rows": rows, "generated_at": _now()}

    @router.get("/api/recent", responses={200: {"model": RecentOut}})
    async def recent(
        limit: int = Query(20, ge=1, le=500), who: Viewer = Depends(viewer)
    ) -> dict[str, Any]:
        rows = await run_in_threadpool(ledger().recent, limit)
        if not who.admin:
            rows = [redact(r) for r in rows]
        return {"rows": rows, "generated_at": _now()}

    @router.get("/api/projection", responses={200: {"model": ProjectionOut}})
    async def projection(
        queries_per_day: float | None = Query(None, ge=1, le=1e13),
        rebound_elasticity: float | None = Query(None, ge=0, le=5),
        who: Viewer = Depends(viewer),
    ) -> dict[str, Any]:
        led = ledger()
        totals, by_tier, by_purpose = await run_in_threadpool(
            lambda: (led.totals(), led.summary(by="tier"), led.summary(by="purpose"))
        )
        base = {"defaults": asdict(defaults), "generated_at": _now()}
        if not totals.get("requests"):
            return {**base, "available": False, "reason": "no requests in the ledger yet"}
        try:
            inputs = inputs_from_ledger(
                totals,
                by_tier,
                queries=served(by_purpose),
                pue=defaults.metered_pue,
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


def served(by_purpose: list[dict[str, Any]]) -> float:
    """Client queries among the ledger's requests (``purpose`` serve; learning excluded)."""
    return float(sum(g["requests"] for g in by_purpose if g["group"] in (None, "serve")))


def _now() -> str:
    return datetime.now(UTC).isoformat()
