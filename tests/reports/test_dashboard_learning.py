"""The dashboard's saving and quality-retained cards, drawn by a real headless Chromium.

A negative saving is a cost and must never be styled as a win; quality retained is shown
with its interval and n, or as "sample too small" when n is small. The page is served by a
uvicorn started here over a real SQLite ledger.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from joulegate.ledger import Ledger, LedgerRecord, OutcomeRecord, OutcomeStore
from joulegate.ledger.outcomes import prompt_sha256
from joulegate.reports.dashboard import ProjectionDefaults, dashboard_router
from reports.test_dashboard import CHROMIUM, CHROMIUM_ARGS, _browser_or_skip, _Uvicorn


def _row(i: int, tier: str, energy: float, baseline: float) -> LedgerRecord:
    return LedgerRecord(
        request_id=f"r{i:03d}",
        ts=datetime.now(UTC) - timedelta(seconds=100 - i),
        key_id=None,
        tier=tier,
        model=f"{tier}/m",
        status="ok",
        http_status=200,
        stream=False,
        prompt_tokens=10,
        completion_tokens=10,
        latency_ms=100.0,
        ttft_ms=10.0,
        energy_j=energy,
        energy_source="modeled:cpu",
        cost_usd=energy * 1e-6,
        co2e_g=energy * 1e-4,
        baseline_energy_j=baseline,
        baseline_cost_usd=baseline * 1e-6,
        baseline_co2e_g=baseline * 1e-4,
    )


def _ledger(path: Path, judged: int) -> str:
    """Ten requests whose cheap tier costs *more* than the baseline would have, and
    ``judged`` served answers judged by the shadow (all but one as good)."""
    url = f"sqlite:///{path}"

    async def fill() -> None:
        ledger = Ledger(url)
        await ledger.start()
        for i in range(10):
            await ledger.record(_row(i, "embedded", 1.5, 1.0))
        await ledger.close()

    # In a thread of its own: Playwright's sync API already runs a loop in this one.
    filler = threading.Thread(target=asyncio.run, args=(fill(),))
    filler.start()
    filler.join()
    OutcomeStore(Ledger(url).engine).add(
        [
            OutcomeRecord(
                purpose="shadow",
                prompt_sha256=prompt_sha256(f"p{i}"),
                tier="embedded",
                model="embedded/m",
                score=0.0 if i == 0 else 1.0,
                grader="judge:v1",
                features={"served": True},
            )
            for i in range(judged)
        ]
    )
    return url


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _cards(browser: Any, url: str) -> dict[str, str]:
    ledger = Ledger(url)
    app = FastAPI()
    app.include_router(dashboard_router(lambda: ledger, ProjectionDefaults()))
    errors: list[str] = []
    try:
        with _Uvicorn(app) as base:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/dashboard", wait_until="domcontentloaded")
            page.wait_for_selector("html[data-loaded='true']", timeout=20_000)
            cards = {
                "saved_class": page.get_attribute("#kpi-saved-card", "class") or "",
                "saved_title": page.inner_text("#kpi-saved-title"),
                "saved": page.inner_text("#kpi-saved"),
                "saved_color": page.eval_on_selector(
                    "#kpi-saved", "e => getComputedStyle(e).color"
                ),
                "quality": page.inner_text("#kpi-quality"),
                "quality_note": page.inner_text("#kpi-quality-note"),
                "projection": page.inner_text("#projection"),
            }
            page.close()
    finally:
        ledger.engine.dispose()
    assert not errors, errors
    return cards


def test_a_negative_saving_is_shown_as_a_cost_and_a_small_sample_says_so(
    browser: Any, tmp_path: Path
) -> None:
    cards = _cards(browser, _ledger(tmp_path / "small.db", judged=5))
    assert "cost" in cards["saved_class"].split() and "save" not in cards["saved_class"].split()
    assert cards["saved_title"].lower() == "costs more than all-largest-tier"
    assert cards["saved"] == "50% more energy"
    assert cards["saved_color"] == "rgb(255, 107, 107)"  # the red of a cost, not the green
    assert cards["quality"] == "sample too small"
    assert "n = 5 judged answers" in cards["quality_note"]
    assert "costs" in cards["projection"] and "saves" not in cards["projection"]


def test_quality_retained_is_shown_with_its_interval_and_n(browser: Any, tmp_path: Path) -> None:
    cards = _cards(browser, _ledger(tmp_path / "big.db", judged=40))
    assert cards["quality"].replace("\n", " ") == "97.5% 87–100%"  # 39 of 40, Wilson 95%
    assert "n = 40 judged" in cards["quality_note"]
