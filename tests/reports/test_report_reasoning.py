"""``joulegate report`` splits a reasoning tier's thinking out of its energy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from joulegate.ledger import Ledger
from joulegate.reports.report_cli import report
from ledger._support import make_record


def _run(*args: str) -> str:
    app = typer.Typer()
    app.command("report")(report)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def _config(tmp_path: Path, *records: object) -> Path:
    data = tmp_path / "data"

    async def fill() -> None:
        ledger = Ledger(f"sqlite:///{data / 'ledger.db'}")
        await ledger.start()
        for r in records:
            await ledger.record(r)  # type: ignore[arg-type]
        await ledger.close()

    asyncio.run(fill())
    cfg = tmp_path / "joulegate.toml"
    cfg.write_text(f'data_dir = "{data}"\n')
    return cfg


def test_reasoning_energy_is_its_own_column_and_sums_in_json(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        make_record(tier="chat", energy_j=30.0, completion_tokens=10),
        *(
            make_record(
                tier="thinker",
                energy_j=400.0,
                completion_tokens=130,
                reasoning_tokens=120,
                reasoning_energy_j=360.0,
            )
            for _ in range(2)
        ),
    )
    header, *rows = [line.split("\t") for line in _run("--config", str(cfg)).splitlines()]
    by_tier = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_tier["thinker"]["of which reasoning"] == "720 J (90%), 240 tok"
    assert by_tier["chat"]["of which reasoning"] == "0 J (0%), 0 tok"
    doc = json.loads(_run("--config", str(cfg), "--json"))
    assert doc["totals"]["reasoning_tokens"] == 240
    assert doc["totals"]["reasoning_energy_j"] == 720.0


def test_no_reasoning_column_without_a_reasoning_tier(tmp_path: Path) -> None:
    cfg = _config(tmp_path, make_record(tier="chat"))
    header = _run("--config", str(cfg)).splitlines()[0].split("\t")
    assert "of which reasoning" not in header
