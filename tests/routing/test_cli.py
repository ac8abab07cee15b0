"""The ``router train`` and ``bench route`` commands, end to end on a tiny JSONL file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from joulegate.routing import Router
from joulegate.routing.bench_cli import route
from joulegate.routing.router_cli import router_app

from .conftest import planted, write_jsonl

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_router_train_writes_a_loadable_router(tmp_path: Path) -> None:
    data = write_jsonl(planted(120), tmp_path / "d.jsonl")
    out = tmp_path / "router.npz"
    result = CliRunner().invoke(router_app, ["train", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    # Heads are named after the data's models; tiers of those names use them.
    tiers = ["weak-model", "strong-model"]
    decision = Router.load(out).decide("tell me about the lemma", tiers)
    assert decision.tier in tiers
    assert list(decision.scores) == tiers
    assert decision.policy == dict.fromkeys(tiers, "calibrated")


def test_bench_route_prints_metrics_and_writes_json(tmp_path: Path) -> None:
    data = write_jsonl(planted(160), tmp_path / "d.jsonl")
    app = typer.Typer()
    app.command()(route)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["--data", str(data), "--folds", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "APGR" in result.output and "perfect" in result.output
    report = json.loads(out.read_text())
    assert report["weak"] == "weak-model" and report["strong"] == "strong-model"
    names = [r["name"] for r in report["routers"]]
    assert "random" in names and "perfect" in names
