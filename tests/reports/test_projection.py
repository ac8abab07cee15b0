"""The projection reproduces public arithmetic and behaves like the model it documents."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from joulegate.reports.projection import (
    HOURS_PER_YEAR,
    ProjectionInputs,
    TierShare,
    homes_for_continuous_load,
    inputs_from_ledger,
    project,
)


def test_ten_gigawatts_for_a_year_is_about_eight_million_us_homes() -> None:
    # 10 GW × 8,760 h = 87.6 TWh; ÷ 10,715 kWh per home (EIA) ≈ 8.18 million homes.
    assert homes_for_continuous_load(10.0) == pytest.approx(8.175e6, rel=1e-3)


def test_projection_of_a_continuous_ten_gigawatt_fleet_matches_the_same_arithmetic() -> None:
    # A fleet whose facility draw is exactly 10 GW: joules per query × queries/s = 10e9 W.
    queries_per_day = 1e9
    joules = 10e9 * 86_400 / queries_per_day
    p = project(ProjectionInputs(joules, joules, queries_per_day, energy_basis="facility"))
    assert p.baseline.gwh_per_year == pytest.approx(10 * HOURS_PER_YEAR)  # 87,600 GWh
    assert p.baseline.average_mw == pytest.approx(10_000)
    assert p.baseline.homes == pytest.approx(8.18e6, rel=2e-3)


def test_pue_applies_to_device_energy_only() -> None:
    device = project(ProjectionInputs(100, 1000, 1e6, energy_basis="device", pue=1.5))
    facility = project(ProjectionInputs(100, 1000, 1e6, energy_basis="facility", pue=1.5))
    assert device.baseline.kwh_per_year == pytest.approx(1.5 * facility.baseline.kwh_per_year)
    assert device.routed.energy_per_query_j == pytest.approx(150)


def test_outputs_scale_linearly_with_queries_energy_and_factors() -> None:
    base = ProjectionInputs(50, 800, 1e8)
    p1 = project(base)
    p3 = project(replace(base, queries_per_day=3e8))
    for attr in ("kwh_per_year", "homes", "tonnes_co2e", "electricity_usd"):
        assert getattr(p3.baseline, attr) == pytest.approx(3 * getattr(p1.baseline, attr))
        assert getattr(p3.savings, attr) == pytest.approx(3 * getattr(p1.savings, attr))
    doubled = project(replace(base, energy_per_query_j=100, baseline_energy_per_query_j=1600))
    assert doubled.routed.kwh_per_year == pytest.approx(2 * p1.routed.kwh_per_year)
    greener = project(replace(base, grid_g_per_kwh=base.grid_g_per_kwh / 2))
    assert greener.routed.tonnes_co2e == pytest.approx(p1.routed.tonnes_co2e / 2)


def test_rebound_raises_routed_energy_and_full_rebound_cancels_the_saving() -> None:
    base = ProjectionInputs(100, 1000, 1e9)
    none, partial, full, backfire = (
        project(replace(base, rebound_elasticity=e)) for e in (0.0, 0.3, 1.0, 1.2)
    )
    assert none.routed.kwh_per_year < partial.routed.kwh_per_year < full.routed.kwh_per_year
    assert none.rebound_fraction == pytest.approx(0.0)
    # Efficiency gain 10×, elasticity 0.3: demand × 10**0.3 ≈ 2.0.
    assert partial.routed.queries_per_day == pytest.approx(1e9 * 10**0.3)
    assert full.routed.kwh_per_year == pytest.approx(full.baseline.kwh_per_year)
    assert full.rebound_fraction == pytest.approx(1.0)
    assert backfire.savings.kwh_per_year < 0  # Jevons: more energy than before
    assert partial.baseline == none.baseline  # the baseline never rebounds


def test_tier_mix_is_share_weighted_and_baseline_is_the_costliest_tier() -> None:
    inputs = ProjectionInputs.from_tier_mix(
        [TierShare("small", 3, 20), TierShare("large", 1, 1000)], queries_per_day=1e6
    )
    assert inputs.energy_per_query_j == pytest.approx(0.75 * 20 + 0.25 * 1000)
    assert inputs.baseline_energy_per_query_j == 1000
    assert [t.share for t in inputs.tier_mix] == [0.75, 0.25]


def test_ledger_totals_become_per_query_figures_as_metered() -> None:
    """Receipts carry each tier's facility overhead already (local tiers [metering] pue,
    hosted tiers full-stack): the projection takes them as they are, so its saved share is
    the ledger's own, whatever PUE the projection is told."""
    totals = {
        "requests": 4,
        "energy_j": 400.0,
        "energy_by_source": {"measured:rapl": 100.0, "estimated:profile": 300.0},
        "baseline_energy_j": 4000.0,
        "cost_usd": 0.004,
        "baseline_cost_usd": 0.04,
    }
    tiers = [
        {
            "group": "embedded",
            "requests": 3,
            "energy_j": 100.0,
            "energy_by_source": {"measured:rapl": 100.0},
        },
        {
            "group": "large",
            "requests": 1,
            "energy_j": 300.0,
            "energy_by_source": {"estimated:profile": 300.0},
        },
    ]
    inputs = inputs_from_ledger(totals, tiers, pue=1.5, queries_per_day=1e6)
    assert inputs.energy_basis == inputs.baseline_energy_basis == "facility"
    assert inputs.energy_per_query_j == pytest.approx(400 / 4)  # no PUE on one tier only
    assert inputs.baseline_energy_per_query_j == 1000
    assert inputs.cost_per_query_usd == pytest.approx(0.001)
    assert [(t.name, t.share) for t in inputs.tier_mix] == [("embedded", 0.75), ("large", 0.25)]
    assert inputs.tier_mix[0].energy_per_query_j == pytest.approx(100 / 3)
    p = project(inputs)
    assert p.routed.energy_per_query_j == pytest.approx(inputs.energy_per_query_j)  # no 2nd PUE
    assert p.energy_saved_fraction == pytest.approx(1 - 400 / 4000)  # the ledger's saving
    assert p.savings.spend_usd == pytest.approx(1e6 * 365 * (0.01 - 0.001))
    # Per client query: learning requests add energy, not queries.
    per_query = inputs_from_ledger(totals, tiers, queries=2)
    assert per_query.energy_per_query_j == 200 and per_query.baseline_energy_per_query_j == 2000
    assert project(per_query).energy_saved_fraction == pytest.approx(p.energy_saved_fraction)
    with pytest.raises(ValueError, match="no requests"):
        inputs_from_ledger({"requests": 0}, [])


def _record(i: int, tier: str, energy_j: float, source: str) -> Any:
    from joulegate.ledger import LedgerRecord

    return LedgerRecord(
        request_id=f"req-{i}",
        ts=datetime.now(UTC) - timedelta(seconds=i),
        key_id=None,
        tier=tier,
        model=f"{tier}/m",
        status="ok",
        http_status=200,
        stream=False,
        prompt_tokens=20,
        completion_tokens=40,
        latency_ms=500.0,
        ttft_ms=80.0,
        energy_j=energy_j,
        energy_source=source,
        cost_usd=energy_j * 1e-6,
        co2e_g=energy_j * 1e-4,
        baseline_energy_j=1000.0,
        baseline_cost_usd=0.0005,
        baseline_co2e_g=0.1,
    )


def test_cli_projects_from_a_real_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from joulegate.ledger import Ledger, default_url
    from joulegate.reports.project_cli import project as project_cmd

    config = tmp_path / "joulegate.toml"
    config.write_text(
        f"data_dir = {str(tmp_path)!r}\n"
        '[[tiers]]\nname = "embedded"\nkind = "embedded"\nmodel = "gemma-3-270m"\n'
        '[[tiers]]\nname = "large"\nkind = "openai"\nmodel = "gpt-4o"\n'
        'base_url = "http://127.0.0.1:9/v1"\n'
    )

    async def fill() -> None:
        ledger = Ledger(default_url(tmp_path))
        await ledger.start()
        for i in range(3):
            await ledger.record(_record(i, "embedded", 40.0, "modeled:cpu"))
        await ledger.record(_record(3, "large", 1000.0, "estimated:profile"))
        await ledger.close()

    asyncio.run(fill())
    app = typer.Typer()
    app.command()(project_cmd)
    out_json = tmp_path / "p.json"
    result = CliRunner().invoke(
        app, ["--pue", "1.5", "--config", str(config), "--json", str(out_json)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())["inputs"]
    assert data["source"] == "ledger, 4 queries"
    # --pue is for figures given on the command line; the ledger's carry their own PUE.
    assert data["energy_per_query_j"] == pytest.approx((3 * 40 + 1000) / 4)
    assert data["baseline_energy_per_query_j"] == pytest.approx(1000)
    assert {t["name"] for t in data["tier_mix"]} == {"embedded", "large"}


def test_cli_prints_a_table_and_writes_json_and_png(tmp_path: Path) -> None:
    from joulegate.reports.project_cli import project as project_cmd

    app = typer.Typer()
    app.command()(project_cmd)
    out_json, out_png = tmp_path / "p.json", tmp_path / "p.png"
    result = CliRunner().invoke(
        app,
        [
            "--no-from-ledger",
            "--tier",
            "embedded:80%:30",
            "--tier",
            "large:20%:1080",
            "--queries-per-day",
            "1e9",
            "--rebound-elasticity",
            "0.2",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "US homes" in result.output and "tonnes CO2e" in result.output
    data = json.loads(out_json.read_text())
    assert data["inputs"]["energy_per_query_j"] == pytest.approx(0.8 * 30 + 0.2 * 1080)
    assert data["baseline"]["gwh_per_year"] > data["routed"]["gwh_per_year"] > 0
    assert data["routed"]["queries_per_day"] > 1e9  # the rebound is applied
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out_png.stat().st_size > 10_000


def test_cli_without_ledger_or_figures_explains_what_is_missing() -> None:
    from joulegate.reports.project_cli import project as project_cmd

    app = typer.Typer()
    app.command()(project_cmd)
    result = CliRunner().invoke(app, ["--no-from-ledger"])
    assert result.exit_code == 2
    assert "--energy-per-query-j" in result.output
