"""Per-key rate limits and the login throttle, over HTTP against real gateways.

The upstream is a real OpenAI-compatible process on loopback that answers at once (no
model), so a burst of 200 requests is over in seconds and what is measured is the limit.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backends.upstreams import FaultServer, start_fault_server
from gateway_proc import GatewayProcess, openai_tier, start_gateway

BODY = {"model": "remote/fault", "max_tokens": 6, "messages": [{"role": "user", "content": "hi"}]}
# OpenAI's reset format: "1s", "6m0s", "59.812s", "20ms".
RESET = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    server = start_fault_server("ok")
    yield server
    server.kill()


def _config(url: str, server: str = "") -> str:
    head = '[server]\nauth = "on"\n' + server
    return head + openai_tier("remote", "fault", url, max_retries=0)


@pytest.fixture(scope="module")
def plain(
    tmp_path_factory: pytest.TempPathFactory, upstream: FaultServer
) -> Iterator[GatewayProcess]:
    """A gateway with no server-wide limits: only what each key carries."""
    gw = start_gateway(tmp_path_factory.mktemp("plain"), _config(upstream.url))
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def strict(
    tmp_path_factory: pytest.TempPathFactory, upstream: FaultServer
) -> Iterator[GatewayProcess]:
    """A gateway with a default RPM for every key and a tight login throttle."""
    config = _config(upstream.url, "default_rpm = 2\nauth_failures_per_minute = 5\n")
    gw = start_gateway(tmp_path_factory.mktemp("strict"), config)
    yield gw
    gw.stop()


def _create_key(gw: GatewayProcess, name: str, *extra: str) -> str:
    env = {**os.environ, "JOULEGATE_LEDGER__URL": gw.ledger_url}
    out = subprocess.run(
        [sys.executable, "-m", "joulegate.cli", "keys", "create", "--name", name, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _post(
    url: str, key: str, body: dict[str, object] = BODY, source: str = "127.0.0.1"
) -> httpx.Response:
    """POST a chat request from the loopback address ``source`` (127.0.0.0/8 is all ours)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=120) as http:
        return http.post(
            url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )


def _burst(urls: list[str], key: str, n: int = 200) -> list[httpx.Response]:
    with cf.ThreadPoolExecutor(50) as pool:
        return list(pool.map(lambda i: _post(urls[i % len(urls)], key), range(n)))


def _check_exactly(responses: list[httpx.Response], allowed: int) -> None:
    codes = [r.status_code for r in responses]
    assert codes.count(200) == allowed, sorted(set(codes))
    assert codes.count(429) == len(responses) - allowed
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["x-ratelimit-remaining-requests"] == "0"
            err = r.json()["error"]
            assert err["code"] == "rate_limit_exceeded" and err["type"] == "requests"
            assert "RPM" in err["message"]


def test_200_concurrent_requests_from_a_60_rpm_key_let_exactly_60_through(
    plain: GatewayProcess,
) -> None:
    key = _create_key(plain, "team-a", "--rpm", "60")
    _check_exactly(_burst([plain.base_url], key), 60)


def test_two_gateways_sharing_redis_hold_one_limit(
    tmp_path: Path, upstream: FaultServer, redis_url: str
) -> None:
    config = _config(upstream.url, f'redis_url = "{redis_url}"\n')
    a = start_gateway(tmp_path / "a", config)
    ledger = a.ledger_url  # both gateways share one ledger, so one key works on both
    b = start_gateway(tmp_path / "b", config, ledger_url=ledger)
    try:
        key = _create_key(a, "shared", "--rpm", "60")
        responses = _burst([a.base_url, b.base_url], key)
        _check_exactly(responses, 60)
        # Both replicas let some through: the limit is shared, not split.
        assert {r.url.port for r in responses if r.status_code == 200} == {a.port, b.port}
    finally:
        a.stop()
        b.stop()


def test_admitted_responses_carry_openai_rate_limit_headers(plain: GatewayProcess) -> None:
    key = _create_key(plain, "hdr", "--rpm", "5", "--tpm", "1000")
    first = _post(plain.base_url, key)
    assert first.status_code == 200, first.text
    h = first.headers
    assert h["x-ratelimit-limit-requests"] == "5"
    assert h["x-ratelimit-remaining-requests"] == "4"
    assert h["x-ratelimit-limit-tokens"] == "1000"
    assert 0 < int(h["x-ratelimit-remaining-tokens"]) < 1000
    assert RESET.match(h["x-ratelimit-reset-requests"]), h["x-ratelimit-reset-requests"]
    assert RESET.match(h["x-ratelimit-reset-tokens"]), h["x-ratelimit-reset-tokens"]
    # A key without limits, on a server without defaults, gets no such headers (no limit).
    free = _create_key(plain, "free")
    assert "x-ratelimit-limit-requests" not in _post(plain.base_url, free).headers


def test_token_limit_refuses_what_would_exceed_it(plain: GatewayProcess) -> None:
    key = _create_key(plain, "tok", "--tpm", "300")
    # Each request is charged its prompt estimate plus max_tokens=100 on admission.
    body = {**BODY, "max_tokens": 100}
    codes = [_post(plain.base_url, key, body).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    refused = _post(plain.base_url, key, body)
    err = refused.json()["error"]
    assert err["type"] == "tokens" and err["code"] == "rate_limit_exceeded"
    assert "TPM" in err["message"] and "retry-after" in refused.headers
    # More than the whole limit can never fit: said so, not "try again later" forever.
    huge = _post(plain.base_url, key, {**BODY, "max_tokens": 5000})
    assert huge.status_code == 429 and "too large" in huge.json()["error"]["message"]
    assert "retry-after" in huge.headers


def test_server_default_rpm_applies_to_keys_without_their_own(strict: GatewayProcess) -> None:
    plain = _create_key(strict, "plain")
    own = _create_key(strict, "own", "--rpm", "4")
    assert [_post(strict.base_url, plain).status_code for _ in range(3)] == [200, 200, 429]
    assert [_post(strict.base_url, own).status_code for _ in range(5)] == [200] * 4 + [429]


def test_failed_logins_are_throttled_per_address_but_good_keys_still_pass(
    strict: GatewayProcess,
) -> None:
    good = _create_key(strict, "good")
    assert _post(strict.base_url, good).status_code == 200  # verified once, then cached
    guesser = "127.0.0.2"
    codes = [
        _post(strict.base_url, f"jg-0123456789ab_guess{i}", source=guesser).status_code
        for i in range(8)
    ]
    assert codes == [401] * 5 + [429] * 3
    throttled = _post(strict.base_url, "jg-0123456789ab_guess-again", source=guesser)
    assert throttled.json()["error"]["code"] == "too_many_auth_failures"
    assert int(throttled.headers["retry-after"]) >= 1
    # Even the right key is not checked for the guessing address...
    later = _create_key(strict, "later")
    assert _post(strict.base_url, later, source=guesser).status_code == 429
    # ...while other addresses are not held up, and a key this gateway already verified
    # is never held up, from any address.
    assert _post(strict.base_url, later).status_code == 200
    assert _post(strict.base_url, good, source=guesser).status_code == 200
