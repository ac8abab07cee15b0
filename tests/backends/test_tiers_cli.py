"""``joulegate tiers`` probes every tier for real and shows the profile in force."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from joulegate.backends.tiers_cli import tiers

from backends.upstreams import FaultServer, free_port


def test_tiers_shows_health_model_and_profile_of_each_tier(
    fault: FaultServer, tmp_path: Path
) -> None:
    fault.set(health="missing")  # /health 404s: the probe falls back to /v1/models
    config = tmp_path / "joulegate.toml"
    config.write_text(
        f"""
[[tiers]]
name = "embedded"
kind = "embedded"
model = "gemma-3-270m"

[[tiers]]
name = "lan"
model = "fault-model"
base_url = "{fault.url}"

[tiers.profile]
joules_per_output_token = 1.25
usd_per_mtok_output = 0.42

[[tiers]]
name = "gone"
model = "big-model"
base_url = "http://127.0.0.1:{free_port()}"
connect_timeout_s = 1.0
"""
    )
    app = typer.Typer()
    app.command()(tiers)
    result = CliRunner().invoke(app, ["--config", str(config)])  # piped: tab-separated rows
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split("\t")[:2] == ["tier", "model id"]
    rows = {line.split("\t")[0]: line for line in lines}
    assert list(rows) == ["embedded", "lan", "gone"]
    assert "in-process" in rows["embedded"] and "modeled:cpu" in rows["embedded"]
    assert "lan/fault-model" in rows["lan"] and "up" in rows["lan"]
    assert "/v1/models -> HTTP 200" in rows["lan"]
    assert "1.25" in rows["lan"] and "0.42 $/Mtok" in rows["lan"]
    assert "2.5* $/Mtok" in rows["lan"]  # unset: the metering default, marked
    assert "down" in rows["gone"] and "ConnectError" in rows["gone"]
