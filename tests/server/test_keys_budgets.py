"""API keys and budgets over HTTP: reserve-then-settle holds under heavy concurrency,
in one gateway and across two sharing PostgreSQL."""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from backends.upstreams import FaultServer, start_fault_server
from gateway_proc import EMBEDDED_TIER, GatewayProcess, openai_tier, start_gateway

# The remote tier is a real OpenAI-compatible process on loopback (a stand-in for a hosted
# API) that always answers with 6 completion tokens; its price profile makes every request
# cost exactly $6 and 6 J, so "a budget that covers 10" is exact.
PRICED = {
    "joules_per_input_token": 0.0,
    "joules_per_output_token": 1.0,
    "usd_per_mtok_input": 0.0,
    "usd_per_mtok_output": 1000000.0,
}
PER_REQUEST_USD = 6.0
BODY = {"model": "remote/fault", "max_tokens": 6, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    server = start_fault_server("ok")
    yield server
    server.kill()


def _config(url: str, with_embedded: bool = False) -> str:
    head = '[server]\nauth = "on"\n'
    remote = openai_tier("remote", "fault", url, max_retries=0, profile=PRICED)
    return head + (EMBEDDED_TIER if with_embedded else "") + remote


def _cli(gw: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOULEGATE_LEDGER__URL": gw.ledger_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "joulegate.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _create_key(gw: GatewayProcess, name: str, *extra: str) -> str:
    out = _cli(gw, "keys", "create", "--name", name, *extra)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _post(base_url: str, key: str | None, body: dict[str, object] = BODY) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(base_url + "/v1/chat/completions", json=body, headers=headers, timeout=120)


def _hammer(urls: list[str], key: str, n: int = 200) -> list[httpx.Response]:
    with cf.ThreadPoolExecutor(50) as pool:
        return list(pool.map(lambda i: _post(urls[i % len(urls)], key), range(n)))


def _spent_usd(ledger_url: str, key_id: str) -> tuple[int, float]:
    engine = sa.create_engine(ledger_url)
    with engine.connect() as conn:
        n, usd = conn.execute(
            sa.text(
                "select count(*), coalesce(sum(cost_usd), 0) from requests"
                " where key_id = :k and status = 'ok'"
            ),
            {"k": key_id},
        ).one()
    engine.dispose()
    return int(n), float(usd)


def _key_id(key: str) -> str:
    return key.split("_", 1)[0].removeprefix("jg-")


def _check_exactly_ten(responses: list[httpx.Response], ledger_url: str, key: str) -> None:
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 190
    err = next(r for r in responses if r.status_code == 429).json()["error"]
    assert err["code"] == "budget_exceeded" and "cost (USD) budget" in err["message"]
    assert "does not reset" in err["message"]
    n, usd = _spent_usd(ledger_url, _key_id(key))
    assert n == 10 and usd <= 10 * PER_REQUEST_USD + 1e-9


def test_200_concurrent_requests_against_a_budget_for_10_sqlite(
    tmp_path: Path, upstream: FaultServer
) -> None:
    gw = start_gateway(tmp_path, _config(upstream.url))
    try:
        key = _create_key(gw, "team-a", "--budget-usd", str(10 * PER_REQUEST_USD))
        _check_exactly_ten(_hammer([gw.base_url], key), gw.ledger_url, key)
    finally:
        gw.stop()


def test_200_concurrent_requests_against_a_budget_for_10_postgres(
    tmp_path: Path, upstream: FaultServer, postgres_url: str
) -> None:
    gw = start_gateway(tmp_path, _config(upstream.url), ledger_url=postgres_url)
    try:
        key = _create_key(gw, "team-a", "--budget-usd", str(10 * PER_REQUEST_USD))
        _check_exactly_ten(_hammer([gw.base_url], key), postgres_url, key)
    finally:
        gw.stop()


def test_two_gateways_sharing_postgres_hold_one_budget(
    tmp_path: Path, upstream: FaultServer, postgres_url: str
) -> None:
    a = start_gateway(tmp_path / "a", _config(upstream.url), ledger_url=postgres_url)
    b = start_gateway(tmp_path / "b", _config(upstream.url), ledger_url=postgres_url)
    try:
        key = _create_key(a, "shared", "--budget-usd", str(10 * PER_REQUEST_USD))
        _check_exactly_ten(_hammer([a.base_url, b.base_url], key), postgres_url, key)
    finally:
        a.stop()
        b.stop()


def test_missing_unknown_and_revoked_keys_are_401_and_keys_stay_secret(
    tmp_path: Path, upstream: FaultServer
) -> None:
    gw = start_gateway(tmp_path, _config(upstream.url))
    try:
        assert _post(gw.base_url, None).status_code == 401
        bad = _post(gw.base_url, "jg-000000000000_notarealsecret")
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
        key = _create_key(gw, "team-b")
        ok = _post(gw.base_url, key)
        assert ok.status_code == 200, ok.text
        assert _cli(gw, "keys", "revoke", "team-b").returncode == 0
        assert _post(gw.base_url, key).status_code == 401
        listing = _cli(gw, "keys", "list", "--all")
        assert "team-b" in listing.stdout
    finally:
        gw.stop()
    secret = key.split("_", 1)[1]
    assert secret not in gw.log()
    assert secret not in listing.stdout
    db = (gw.data_dir / "ledger.db").read_bytes()
    assert secret.encode() not in db and key.encode() not in db
    n, _ = _spent_usd(gw.ledger_url, _key_id(key))
    assert n == 1  # the request is attributed to the key id, never the key


def test_downgrading_key_moves_to_the_cheaper_tier_when_budget_runs_low(
    tmp_path: Path, upstream: FaultServer
) -> None:
    gw = start_gateway(tmp_path, _config(upstream.url, with_embedded=True))
    try:
        key = _create_key(gw, "thrifty", "--budget-usd", "13", "--on-exceed", "downgrade")
        tiers = []
        for _ in range(3):
            r = _post(gw.base_url, key, {**BODY, "max_tokens": 6})
            assert r.status_code == 200, r.text
            tiers.append(r.json()["joulegate"]["tier"])
        assert tiers == ["remote", "remote", "embedded"]
        last = r.json()["joulegate"]
        assert last["route"]["downgraded_from"] == "remote"
    finally:
        gw.stop()


def test_auth_off_on_loopback_by_default(gateway: GatewayProcess) -> None:
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "auto", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-anything"},
        timeout=120,
    )
    assert r.status_code == 200
