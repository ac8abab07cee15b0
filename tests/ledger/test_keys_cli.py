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
