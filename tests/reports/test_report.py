"""``joulegate report`` on a ledger written through the real Ledger: table, JSON, plots."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from joulegate.ledger import Ledger, LedgerRecord
from joulegate.reports.formatting import fmt_energy
from joulegate.reports.report_cli import parse_since, report

NOW = datetime.now(UTC)


def _rec(i: int, **kw: object) -> LedgerRecord:
    fields: dict[str, object] = {
        "request_id": f"r{i}",
        "ts": NOW - timedelta(minutes=i),
        "key_id": None,
        "tier": "embedded",
        "model": "embedded/gemma-3-270m",
        "status": "ok",
        "http_status": 200,
        "stream": False,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "latency_ms": 100.0,
        "ttft_ms": 10.0,
        "energy_j": 2.0,
        "energy_source": "measured:rapl",
        "cost_usd": 0.0,
        "co2e_g": 0.2,
        "baseline_energy_j": 50.0,
        "baseline_cost_usd": 0.01,
        "baseline_co2e_g": 5.0,
    }
    fields.update(kw)
    return LedgerRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose data dir holds a ledger of local, remote and old requests."""
    data = tmp_path / "data"
    recs = [_rec(i) for i in range(6)]
    recs += [
        _rec(
            10 + i,
            tier="remote",
            model="remote/big",
            energy_j=40.0,
            energy_source="estimated:profile",
            cost_usd=0.008,
        )
        for i in range(3)
    ]
    recs += [_rec(99, ts=NOW - timedelta(days=3), energy_source="modeled:cpu")]

    async def fill() -> None:
        ledger = Ledger(f"sqlite:///{data / 'ledger.db'}")
        await ledger.start()
        await asyncio.gather(*(ledger.record(r) for r in recs))
        await ledger.close()

    asyncio.run(fill())
    cfg = tmp_path / "joulegate.toml"
    cfg.write_text(f'data_dir = "{data}"\n')
    return cfg


def _run(*args: str) -> str:
    app = typer.Typer()
    app.command("report")(report)
    app.command("noop")(lambda: None)  # two commands, so "report" is a real subcommand
    result = CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_piped_table_is_tab_separated_rows_with_a_total(config: Path) -> None:
    header, *rows = [line.split("\t") for line in _run("--config", str(config)).splitlines()]
    assert header[:2] == ["tier", "requests"] and "energy source" in header
    by_tier = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_tier) == {"embedded", "remote", "total"}  # no title, legend or borders
    assert by_tier["embedded"]["requests"] == "7" and by_tier["total"]["requests"] == "10"
    assert by_tier["remote"]["energy source"] == "estimated:profile"
    assert by_tier["embedded"]["energy source"] == "measured:rapl 86% · modeled:cpu 14%"


def test_80_column_terminal_shows_what_fits_and_the_legend(config: Path) -> None:
    from terminal import run_in_terminal

    rc, screen = run_in_terminal("report", "--config", str(config), columns=80)
    assert rc == 0, screen
    assert max(len(line) for line in screen.splitlines()) <= 80
    assert "…" not in screen
    assert "embedded" in screen and "remote" in screen and "total" in screen
    assert "read from a hardware energy counter" in screen  # the legend explains the sources
    assert "estimated:profile" in screen


def test_json_has_groups_totals_and_savings(config: Path) -> None:
    doc = json.loads(_run("--config", str(config), "--json"))
    tiers = {g["group"]: g for g in doc["groups"]}
    assert tiers["embedded"]["requests"] == 7
    assert tiers["remote"]["requests"] == 3
    assert doc["totals"]["requests"] == 10
    assert doc["totals"]["savings_energy_j"] == pytest.approx(10 * 50.0 - (7 * 2.0 + 3 * 40.0))
    assert tiers["embedded"]["energy_by_source"] == {"measured:rapl": 12.0, "modeled:cpu": 2.0}


def test_since_filters_and_by_day_groups(config: Path) -> None:
    doc = json.loads(_run("--config", str(config), "--json", "--since", "24h"))
    assert doc["totals"]["requests"] == 9
    days = json.loads(_run("--config", str(config), "--json", "--by", "day"))["groups"]
    assert sum(g["requests"] for g in days) == 10 and len(days) >= 2


def test_plot_writes_a_png(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots" / "report.png"
    text = _run("--config", str(config), "--plot", str(out), "--by", "model")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    assert "plots written" in text


def test_empty_ledger_says_so(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "empty"}"\n')
    assert "no requests recorded" in _run("--config", str(cfg))


def test_bad_grouping_is_a_usage_error(config: Path) -> None:
    app = typer.Typer()
    app.command("report")(report)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["report", "--config", str(config), "--by", "colour"])
    assert result.exit_code == 2


def test_since_reads_relative_and_iso_forms() -> None:
    now = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2025-06-01", now) == datetime(2025, 6, 1, tzinfo=UTC)
    assert parse_since("2025-06-01T08:00:00Z", now) == datetime(2025, 6, 1, 8, tzinfo=UTC)
    assert parse_since(None, now) is None
    with pytest.raises(ValueError, match="cannot read"):
        parse_since("last tuesday", now)


def test_energy_is_printed_with_si_prefixes() -> None:
    assert fmt_energy(812) == "812 J"
    assert fmt_energy(3400) == "3.40 kJ"
    assert fmt_energy(1.25e6) == "1.25 MJ"


def test_by_key_shows_names_and_spend_against_budget(tmp_path: Path) -> None:
    from joulegate.ledger import KeyStore

    data = tmp_path / "data"
    url = f"sqlite:///{data / 'ledger.db'}"
    ledger = Ledger(url)
    ledger.migrate()
    keys = KeyStore(ledger.engine)
    info, _ = keys.create("team-a", budget_usd=1.0, period="month")
    keys.settle(keys.reserve(info.key_id, 0.0, 0.5, 0.0), 0.0, 0.25, 0.0)

    async def fill() -> None:
        ledger = Ledger(url)
        await ledger.start()
        await ledger.record(_rec(1, key_id=info.key_id, cost_usd=0.25))
        await ledger.record(_rec(2))
        await ledger.close()

    asyncio.run(fill())
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{data}"\n')
    doc = json.loads(_run("--config", str(cfg), "--json", "--by", "key"))
    mine = next(g for g in doc["groups"] if g["group"] == info.key_id)
    assert mine["key_name"] == "team-a"
    assert mine["budget"]["limit_usd"] == 1.0 and mine["budget"]["spent_usd"] == 0.25
    rows = [line.split("\t") for line in _run("--config", str(cfg), "--by", "key").splitlines()]
    mine = next(row for row in rows if row[0] == f"team-a ({info.key_id})")
    assert mine[-1] == "$0.2500 / $1.0000 (month)"

    from terminal import run_in_terminal

    rc, screen = run_in_terminal("report", "--by", "key", "--config", str(cfg), columns=80)
    assert rc == 0, screen
    assert info.key_id in screen and "…" not in screen
    assert "$0.2500 / $1.0000" in screen
