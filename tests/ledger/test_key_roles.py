"""Keys carry a role and rate limits, and a failed check costs the same whatever the id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from joulegate.ledger import KeyStore, Ledger
from joulegate.ledger import keys as keys_module
from joulegate.ledger.keys_cli import keys_app


def _store(url: str) -> KeyStore:
    ledger = Ledger(url)
    ledger.migrate()
    return KeyStore(ledger.engine)


def test_role_and_rate_limits_are_stored_and_read_back(ledger_url: str) -> None:
    store = _store(ledger_url)
    admin, _ = store.create("ops", role="admin")
    user, token = store.create("app", rpm=60, tpm=10_000)
    assert admin.is_admin and (admin.rpm, admin.tpm) == (None, None)
    assert not user.is_admin and (user.rpm, user.tpm) == (60, 10_000)
    checked = store.authenticate(token)
    assert checked is not None and (checked.role, checked.rpm, checked.tpm) == ("user", 60, 10_000)
    for bad in ({"role": "root"}, {"rpm": 0}, {"tpm": -5}):
        with pytest.raises(ValueError):
            store.create("bad", **bad)  # type: ignore[arg-type]


def test_keys_made_before_roles_existed_are_users_and_the_migration_goes_down(
    ledger_url: str,
) -> None:
    """Upgrading never makes an existing key an admin: the new column defaults to 'user'."""
    from alembic import command

    from joulegate.ledger.migrate import alembic_config, upgrade

    ledger = Ledger(ledger_url)
    upgrade(ledger.engine, "0004")
    store = KeyStore(ledger.engine)
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into api_keys (key_id, name, salt, secret_hash, created_at, period,"
                " on_exceed, period_start) values ('0123456789ab', 'old', '00', 'scrypt:x',"
                " :ts, 'total', 'reject', :ts)"
            ),
            {"ts": "2025-01-01 00:00:00"},
        )
    upgrade(ledger.engine)
    info = store.get("0123456789ab")
    assert info is not None and info.role == "user" and not info.is_admin
    assert (info.rpm, info.tpm) == (None, None)
    with ledger.engine.connect() as conn:
        command.downgrade(alembic_config(conn), "0004")
        conn.commit()
    with ledger.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("api_keys")}
        assert not {"role", "rpm", "tpm"} & columns
        assert conn.execute(sa.text("select name from api_keys")).scalar_one() == "old"
    upgrade(ledger.engine)


def test_an_unknown_key_id_costs_the_same_scrypt_as_a_wrong_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every failed check verifies one scrypt hash, so its time does not tell which key ids
    exist (benchmarks/auth_timing.py measures the times themselves)."""
    store = _store(f"sqlite:///{tmp_path / 'ledger.db'}")
    _, token = store.create("real")
    key_id = token.removeprefix("jg-").split("_", 1)[0]
    store.revoke("real")
    _, live = store.create("live")
    live_id = live.removeprefix("jg-").split("_", 1)[0]
    checked: list[str] = []
    real_verify = keys_module.verify_secret

    def counting(secret: str, salt: bytes, stored: str) -> bool:
        checked.append(stored.split(":")[0])
        return real_verify(secret, salt, stored)

    monkeypatch.setattr(keys_module, "verify_secret", counting)
    for guess in (
        f"jg-{live_id}_wrong-secret",  # known id, wrong secret
        "jg-0123456789ab_whatever",  # unknown id
        f"jg-{key_id}_whatever",  # revoked id
    ):
        checked.clear()
        assert store.authenticate(guess) is None
        assert checked == ["scrypt"], guess  # exactly one full scrypt check each
    assert not store.is_verified(live)
    assert store.authenticate(live) is not None and store.is_verified(live)


def test_cli_creates_admin_and_rate_limited_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    run = CliRunner().invoke
    made = run(keys_app, ["create", "--name", "ops", "--admin", "-c", str(cfg)])
    assert made.exit_code == 0, made.output
    made = run(
        keys_app, ["create", "--name", "app", "--rpm", "60", "--tpm", "9000", "-c", str(cfg)]
    )
    assert made.exit_code == 0, made.output
    assert "60 rpm" in made.stderr
    listed = json.loads(run(keys_app, ["list", "--json", "-c", str(cfg)]).stdout)
    assert [(r["name"], r["role"], r["rpm"], r["tpm"]) for r in listed] == [
        ("ops", "admin", None, None),
        ("app", "user", 60, 9000),
    ]
    table = run(keys_app, ["list", "-c", str(cfg)], env={"COLUMNS": "200"})
    assert "admin" in table.stdout and "9000 tpm" in table.stdout
    bad = run(keys_app, ["create", "--name", "x", "--rpm", "0", "-c", str(cfg)])
    assert bad.exit_code != 0
