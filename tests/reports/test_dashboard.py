"""The dashboard, end to end: real ledger, real HTTP server, real headless Chromium.

When the suite provides the ``gateway`` fixture (a real ``joulegate serve`` process), the
browser test sends real chat requests through the official ``openai`` client and looks at
what they left in the ledger. Without it, the same page is served by a uvicorn started
here over a real SQLite ledger filled with receipts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from joulegate.ledger import Ledger, LedgerRecord
from joulegate.reports.dashboard import ProjectionDefaults, dashboard_router

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "img" / "dashboard.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE = os.environ.get("JOULEGATE_REQUIRE_SERVICES") == "1"


def _receipt(i: int, tier: str, *, age_s: float, tokens: tuple[int, int]) -> LedgerRecord:
    """A receipt shaped like the meter's: local tiers modeled, the large tier estimated."""
    p, c = tokens
    baseline_j = 0.8 * p + 2.0 * c  # remote full-stack profile (J per input/output token)
    baseline_usd = (2.5 * p + 10.0 * c) / 1e6
    if tier == "large":
        energy, source, cost = baseline_j, "estimated:profile", baseline_usd
    elif tier == "cache":
        energy, source, cost = 0.0, "cache", 0.0
    else:
        energy, source = 0.35 * (p + c), "modeled:cpu"
        cost = energy / 3.6e6 * 0.1648 + 5.7e-5 * (p + c) / 45
    return LedgerRecord(
        request_id=f"r{i:04d}",
        ts=datetime.now(UTC) - timedelta(seconds=age_s),
        key_id="demo",
        tier="embedded" if tier == "cache" else tier,
        model="gpt-4o" if tier == "large" else "gemma-3-270m",
        status="ok" if i % 17 else "error",
        http_status=200 if i % 17 else 502,
        stream=bool(i % 2),
        prompt_tokens=p,
        completion_tokens=c,
        latency_ms=40.0 if tier == "cache" else 22.0 * c + 60,
        ttft_ms=None if tier == "cache" else 60.0,
        energy_j=energy,
        energy_source=source,
        cost_usd=cost,
        co2e_g=energy / 3.6e6 * 369.5,
        baseline_energy_j=baseline_j,
        baseline_cost_usd=baseline_usd,
        baseline_co2e_g=baseline_j / 3.6e6 * 369.5,
    )


def _fill(url: str, n: int = 60) -> None:
    async def go() -> None:
        ledger = Ledger(url)
        await ledger.start()
        for i in range(n):
            tier = "large" if i % 4 == 0 else "cache" if i % 11 == 0 else "embedded"
            tokens = (30 + (i * 37) % 400, 20 + (i * 53) % 220)
            await ledger.record(_receipt(i, tier, age_s=(n - i) * 13.0, tokens=tokens))
        await ledger.close()

    asyncio.run(go())


@dataclass
class Served:
    base_url: str
    ledger_url: str
    real_gateway: bool


class _Uvicorn:
    """A uvicorn server on a free loopback port, in a thread of this process."""

    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _fill(url)
    ledger = Ledger(url)  # read side only: no writer thread needed
    app = FastAPI()
    app.include_router(dashboard_router(lambda: ledger, ProjectionDefaults(pue=1.56)))
    try:
        with _Uvicorn(app) as base:
            yield Served(base, url, real_gateway=False)
    finally:
        ledger.engine.dispose()


def test_api_answers_from_the_ledger(standalone: Served) -> None:
    with httpx.Client(base_url=standalone.base_url, timeout=10) as http:
        summary = http.get("/dashboard/api/summary").json()
        assert summary["totals"]["requests"] == 60
        assert {g["group"] for g in summary["by_tier"]} == {"embedded", "large"}
        series = http.get("/dashboard/api/timeseries", params={"window_s": 3600}).json()
        assert sum(r["requests"] for r in series["rows"]) == 60
        recent = http.get("/dashboard/api/recent", params={"limit": 5}).json()["rows"]
        assert [r["request_id"] for r in recent] == ["r0059", "r0058", "r0057", "r0056", "r0055"]
        assert all(r["energy_source"] for r in recent)  # every figure says how it was obtained
        proj = http.get("/dashboard/api/projection", params={"queries_per_day": 1e9}).json()
        assert proj["available"] and proj["inputs"]["queries_per_day"] == 1e9
        assert proj["baseline"]["gwh_per_year"] > proj["routed"]["gwh_per_year"] > 0
        page = http.get("/dashboard")
        assert page.status_code == 200 and "chart.umd.min.js" in page.text
        js = http.get("/dashboard/static/vendor/chart.umd.min.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        for bad in (
            "/dashboard/static/../dashboard.py",
            "/dashboard/static/.hidden",
            "/dashboard/static/nope.js",
        ):
            assert http.get(bad).status_code == 404


def test_api_says_503_when_the_ledger_is_disabled() -> None:
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.include_router(dashboard_router(lambda: None))
    with TestClient(app) as client:
        assert client.get("/dashboard").status_code == 200  # the page still explains itself
        assert client.get("/dashboard/api/summary").status_code == 503


def _browser_or_skip() -> Any:
    why = None
    if not Path(CHROMIUM).exists():
        why = f"{CHROMIUM} not found (apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            why = f"the playwright package is not installed ({exc})"
    if why:
        if REQUIRE:
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return sync_playwright


# The largest tier is a real OpenAI-compatible process on loopback standing in for a hosted
# model (none can be reached from here). Its receipts are estimates from the default
# remote profile, as they would be for a real hosted API.


@pytest.fixture(scope="module")
def two_tier_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real gateway with a cheap and a large tier, fed real requests through the
    official client: some routed by ``auto``, some sent to the large tier by name."""
    import openai

    from backends.upstreams import start_fault_server
    from gateway_proc import EMBEDDED_TIER, openai_tier, start_gateway

    upstream = start_fault_server("ok")
    gw = start_gateway(
        tmp_path_factory.mktemp("dash"),
        EMBEDDED_TIER + openai_tier("large", "hosted-large", upstream.url),
    )
    try:
        client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", timeout=120)
        questions = ["Say hi.", "What is 2+2?", "Name a colour.", "Capital of France?"]
        for i, q in enumerate(questions * 2):
            client.chat.completions.create(
                model="large/hosted-large" if i % 4 == 3 else "auto",
                messages=[{"role": "user", "content": q}],
                max_tokens=8,
            )
        yield Served(gw.base_url, gw.ledger_url, real_gateway=True)
    finally:
        gw.stop()
        upstream.kill()


def test_dashboard_renders_real_data_in_headless_chromium(
    two_tier_gateway: Served, tmp_path: Path
) -> None:
    sync_playwright = _browser_or_skip()
    served = two_tier_gateway
    min_rows = 8
    # The README's screenshot is refreshed only when asked: a test run never edits the repo.
    shot = (
        SCREENSHOT if os.environ.get("JOULEGATE_UPDATE_DOCS") == "1" else tmp_path / "dashboard.png"
    )
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(served.base_url + "/dashboard", wait_until="domcontentloaded")
            page.wait_for_selector("html[data-loaded='true']", timeout=20_000)
            page.wait_for_function(
                f"document.querySelectorAll('#recent tbody tr').length >= {min_rows}",
                timeout=10_000,
            )
            drawn = page.evaluate(
                """() => ['chart-time', 'chart-share', 'chart-cum'].map((id) => {
                    const c = document.getElementById(id);
                    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let ink = 0;
                    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
                    const chart = Chart.getChart(c);
                    const total = chart.data.datasets
                        .flatMap((d) => d.data).reduce((a, b) => a + (+b || 0), 0);
                    return {id, ink, total, sets: chart.data.datasets.length};
                })"""
            )
            for chart in drawn:
                assert chart["sets"] > 0 and chart["total"] > 0, chart
                assert chart["ink"] > 2_000, chart  # real pixels, not an empty canvas
            assert int(page.get_attribute("html", "data-requests") or 0) >= min_rows
            sources = page.locator("#recent .src").all_inner_texts()
            assert sources and all(":" in s or s == "cache" for s in sources)
            assert "GWh" in page.inner_text("#projection")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    _shrink_png(shot)
    assert shot.stat().st_size > 20_000


def _shrink_png(path: Path) -> None:
    """Palette-quantise the screenshot: a flat UI loses nothing visible, the repo stays small."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_app_js_is_valid_javascript() -> None:
    import subprocess

    app_js = REPO / "src" / "joulegate" / "reports" / "static" / "dashboard" / "app.js"
    subprocess.run(["node", "--check", str(app_js)], check=True)


def test_projection_defaults_follow_how_the_ledger_was_metered() -> None:
    from joulegate.config import load_settings

    single = ProjectionDefaults.from_settings(load_settings(data_dir="/tmp/unused"))
    assert single.metered_pue == 1.0  # a personal machine: no facility overhead
    metered = load_settings(data_dir="/tmp/unused", metering={"pue": 1.56})
    assert ProjectionDefaults.from_settings(metered, pue=1.1).metered_pue == 1.56
