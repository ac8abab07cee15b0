"""One saving, four readers: receipts, ``joulegate report``, the dashboard API and the
projection must give the same figure for the same ledger.

A real gateway (the embedded model and a scripted upstream standing in for a hosted model)
with this machine metered at a data-centre PUE of 1.56: the embedded tier's receipts carry
it, the hosted tier's full-stack estimates already include theirs, and no reader may apply
it again to some tiers and not others (the issue's "−3.6 % energy" next to "saves 0.0136
GWh a year").
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from typer.testing import CliRunner

from joulegate.cli import app

from backends.upstreams import FaultServer, start_fault_server
from gateway_proc import EMBEDDED_TIER, GatewayProcess, openai_tier, start_gateway


# 1.0: a personal machine (the default; the dashboard used to project it at 1.56 for some
# tiers only). 1.56: metered as an average data centre.
@pytest.fixture(scope="module", params=[1.0, 1.56])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, list[dict[str, float]], float]]:
    upstream: FaultServer = start_fault_server("ok")
    config = f"[metering]\npue = {request.param}\n" + EMBEDDED_TIER
    config += openai_tier("large", "gpt-4o", upstream.url)
    gw = start_gateway(tmp_path_factory.mktemp("savings"), config)
    try:
        client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", max_retries=0)
        receipts = []
        prompts = ["Name a colour.", "Say hi.", "What is 2+2?", "Capital of France?"]
        for i, prompt in enumerate(prompts * 2):
            resp = client.chat.completions.create(
                model="large/gpt-4o" if i % 3 == 2 else "auto",
                messages=[{"role": "user", "content": prompt}],
                max_tokens=6,
            )
            receipts.append((resp.model_extra or {})["joulegate"])
        yield gw, receipts, request.param
    finally:
        gw.stop()
        upstream.kill()


def test_receipts_report_dashboard_and_projection_agree_on_the_saving(
    served: tuple[GatewayProcess, list[dict[str, float]], float],
) -> None:
    gw, receipts, pue = served
    assert {r["tier"] for r in receipts} >= {"embedded", "large"}  # a real mix
    assert any(r["energy_source"] == "modeled:cpu" for r in receipts)
    assert any(r["energy_source"] == "estimated:profile" for r in receipts)
    n = len(receipts)
    energy = sum(r["energy_j"] for r in receipts)
    baseline = sum(r["baseline_energy_j"] for r in receipts)
    cost = sum(r["cost_usd"] for r in receipts)
    baseline_cost = sum(r["baseline_cost_usd"] for r in receipts)
    saved, saved_usd = baseline - energy, baseline_cost - cost

    # joulegate report --json
    assert gw.config_path is not None
    result = CliRunner().invoke(
        app,
        ["report", "--json", "--config", str(gw.config_path)],
        env={"JOULEGATE_DATA_DIR": str(gw.data_dir)},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["totals"]
    # the dashboard's API
    with httpx.Client(base_url=gw.base_url + "/dashboard/api", timeout=30) as http:
        dash = http.get("/summary").json()["totals"]
        proj = http.get("/projection", params={"queries_per_day": 1e6, "rebound_elasticity": 0})
    proj_doc = proj.json()
    assert proj_doc["available"], proj_doc

    for totals in (report, dash):
        assert totals["requests"] == n
        assert totals["savings_energy_j"] == pytest.approx(saved, rel=1e-9)
        assert totals["savings_cost_usd"] == pytest.approx(saved_usd, rel=1e-9)
        assert totals["baseline_energy_j"] == pytest.approx(baseline, rel=1e-9)
    # The projection: the same saving per query, and the same share of the baseline.
    assert proj_doc["savings"]["energy_per_query_j"] == pytest.approx(saved / n, rel=1e-9)
    assert proj_doc["energy_saved_fraction"] == pytest.approx(saved / baseline, rel=1e-9)
    spend = proj_doc["savings"]["spend_usd"] / proj_doc["baseline"]["spend_usd"]
    assert spend == pytest.approx(saved_usd / baseline_cost, rel=1e-9)
    # PUE applied once, by the meter, to this machine's tiers; never again by a reader.
    assert proj_doc["inputs"]["energy_basis"] == "facility"
    assert proj_doc["defaults"]["metered_pue"] == pue
