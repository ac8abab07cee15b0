"""``joulegate keys``: create prints the key once, list shows budgets, revoke takes effect."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from joulegate.ledger import KeyStore, Ledger
from joulegate.ledger.keys_cli import keys_app


def test_create_list_revoke(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    run = CliRunner().invoke

    made = run(
        keys_app,
        ["create", "--name", "team-a", "--budget-usd", "2", "--period", "day", "-c", str(cfg)],
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("jg-")
    store = KeyStore(Ledger(f"sqlite:///{tmp_path / 'data' / 'ledger.db'}").engine)
    assert store.authenticate(token) is not None

    listed = run(keys_app, ["list", "--json", "-c", str(cfg)])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["limit_usd"], row["period"]) == ("team-a", 2.0, "day")
    assert token not in listed.stdout

    assert run(keys_app, ["revoke", "team-a", "-c", str(cfg)]).exit_code == 0
    assert store.authenticate(token) is None
    assert run(keys_app, ["revoke", "team-a", "-c", str(cfg)]).exit_code == 1
    table = run(keys_app, ["list", "--all", "-c", str(cfg)], env={"COLUMNS": "200"})
    assert "team-a (revoked)" in table.stdout


def test_bad_period_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    result = CliRunner().invoke(
        keys_app, ["create", "--name", "x", "--period", "week", "-c", str(cfg)]
    )
    assert result.exit_code == 2


def _keys_with_budgets(tmp_path: Path) -> tuple[Path, list[str]]:
    """A config, and the ids of three live keys with long names and every budget set."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    ledger = Ledger(f"sqlite:///{tmp_path / 'data' / 'ledger.db'}")
    ledger.migrate()
    store = KeyStore(ledger.engine)
    ids = []
    for team in ("research-platform", "customer-support-bots", "nightly-evaluations"):
        info, _ = store.create(team, budget_j=4e4, budget_usd=25.0, budget_co2e_g=900.0)
        ids.append(info.key_id)
    ledger.engine.dispose()
    return cfg, ids


def test_piped_list_is_tab_separated_with_every_column_and_full_ids(tmp_path: Path) -> None:
    cfg, ids = _keys_with_budgets(tmp_path)
    listed = CliRunner().invoke(keys_app, ["list", "-c", str(cfg)])  # stdout is not a terminal
    assert listed.exit_code == 0, listed.output
    header, *rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert header == [
        "name",
        "id",
        "created (UTC)",
        "period",
        "spend / budget",
        "resets",
        "on exceed",
        "role / rate limits",
    ]
    assert [row[1] for row in rows] == ids
    assert all(len(row) == len(header) for row in rows)
    assert "…" not in listed.stdout
    assert rows[0][4] == "0 / 4e+04 J, $0.0000 / $25.0000, 0 / 900 g CO2e"


def test_list_at_80_columns_keeps_names_and_ids_whole(tmp_path: Path) -> None:
    from terminal import run_in_terminal

    cfg, ids = _keys_with_budgets(tmp_path)
    rc, screen = run_in_terminal("keys", "list", "-c", str(cfg), columns=80)
    assert rc == 0, screen
    assert "…" not in screen
    assert max(len(line) for line in screen.splitlines()) <= 80
    for key_id in ids:
        assert key_id in screen
    assert "customer-support-bots" in screen
