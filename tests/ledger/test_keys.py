"""API keys: shown once, stored hashed, authenticated, revoked; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from joulegate.ledger import KeyStore, Ledger, UnknownKey
from joulegate.ledger.tokens import parse_token


@pytest.fixture
def keys(ledger_url: str) -> KeyStore:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    return KeyStore(ledger.engine)


def test_created_key_authenticates_and_others_do_not(keys: KeyStore) -> None:
    info, token = keys.create("team-a", budget_usd=1.0, period="day")
    assert token.startswith("jg-") and info.name == "team-a"
    got = keys.authenticate(token)
    assert got is not None and got.key_id == info.key_id and got.budget_usd == 1.0
    assert keys.authenticate(token) == got  # the cached path gives the same answer

    key_id, secret = parse_token(token) or ("", "")
    wrong = secret[:-1] + ("x" if secret[-1] != "x" else "y")  # always another secret
    assert keys.authenticate(f"jg-{key_id}_{wrong}") is None
    assert keys.authenticate(f"jg-ffffffffffff_{secret}") is None  # unknown id
    assert keys.authenticate("sk-not-ours") is None
    assert keys.authenticate("") is None


def test_revoked_key_fails_even_in_another_process_cache(keys: KeyStore) -> None:
    info, token = keys.create("team-b")
    other_gateway = KeyStore(keys.engine)
    assert other_gateway.authenticate(token) is not None  # now cached there
    keys.revoke("team-b")
    assert keys.authenticate(token) is None
    assert other_gateway.authenticate(token) is None
    with pytest.raises(UnknownKey):
        keys.revoke(info.key_id)  # already revoked


def test_names_are_unique_among_live_keys(keys: KeyStore) -> None:
    keys.create("team-c")
    with pytest.raises(ValueError, match="already exists"):
        keys.create("team-c")
    keys.revoke("team-c")
    _, token = keys.create("team-c")  # a revoked key's name can be reused
    assert keys.authenticate(token) is not None
    assert [k.name for k in keys.list()] == ["team-c"]
    assert len(keys.list(include_revoked=True)) == 2


def test_bad_key_settings_are_refused(keys: KeyStore) -> None:
    with pytest.raises(ValueError, match="period"):
        keys.create("x", period="week")
    with pytest.raises(ValueError, match="on_exceed"):
        keys.create("x", on_exceed="shrug")
    with pytest.raises(ValueError, match="negative"):
        keys.create("x", budget_j=-1)
    with pytest.raises(UnknownKey):
        keys.revoke("nobody")


def test_database_never_holds_a_clear_key(keys: KeyStore, ledger_url: str) -> None:
    tokens = [keys.create(f"k{i}")[1] for i in range(3)]
    secrets = [parse_token(t)[1] for t in tokens]  # type: ignore[index]
    with keys.engine.connect() as conn:
        rows = conn.execute(sa.text("select * from api_keys")).all()
    dump = repr(rows)
    for token, secret in zip(tokens, secrets, strict=True):
        assert token not in dump and secret not in dump
    path = keys.engine.url.database
    if keys.engine.dialect.name == "sqlite" and path:
        keys.engine.dispose()  # checkpoint nothing away: scan the file and its WAL as they are
        raw = b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*"))
        assert not any(s.encode() in raw for s in secrets)
