"""Upstream tiers through the whole gateway: a real second model server, every fault
ending in a fallback answer or a clean error, and a ledger row for every request."""

from __future__ import annotations

import concurrent.futures as cf
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import sqlalchemy as sa

from joulegate.ledger import Ledger

from backends.conftest import llama_server  # noqa: F401 - a fixture, used by name
from backends.upstreams import FaultServer, start_fault_server
from gateway_proc import EMBEDDED_TIER, GatewayProcess, openai_tier, start_gateway

FAST_FAIL = {
    "first_token_timeout_s": 2.0,
    "total_timeout_s": 15.0,
    "max_retries": 0,
    "breaker_failure_threshold": 1000,
}


def remote(model: str, url: str) -> str:
    return openai_tier("remote", model, url, **FAST_FAIL)


ASK = [{"role": "user", "content": "Name a primary colour."}]


def _row(gw: GatewayProcess, request_id: str) -> dict[str, object]:
    rows = [r for r in Ledger(gw.ledger_url).recent(200) if r["request_id"] == request_id]
    assert len(rows) == 1, f"expected one ledger row for {request_id}, found {len(rows)}"
    return rows[0]


def test_real_llama_cpp_server_as_upstream_tier(tmp_path: Path, llama_server: str) -> None:  # noqa: F811
    # A real model's first answer on a shared 2-core machine can take seconds: the fault
    # tests' 2 s first-token limit would fall back to the embedded tier here.
    slow_ok = {**FAST_FAIL, "first_token_timeout_s": 60.0, "total_timeout_s": 120.0}
    tier = openai_tier("remote", "gemma-3-270m", llama_server, **slow_ok)
    gw = start_gateway(tmp_path, EMBEDDED_TIER + tier)
    try:
        client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", max_retries=0)
        resp = client.chat.completions.create(
            model="remote/gemma-3-270m", messages=ASK, max_tokens=16
        )
        assert resp.model == "remote/gemma-3-270m" and resp.choices[0].message.content
        info = (resp.model_extra or {})["joulegate"]
        assert info["tier"] == "remote" and info["energy_source"] == "estimated:profile"
        assert info["energy_j"] > 0 and info["cost_usd"] > 0
        assert _row(gw, resp.id)["tier"] == "remote"

        chunks = list(
            client.chat.completions.create(
                model="remote/gemma-3-270m",
                messages=ASK,
                max_tokens=16,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip()
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        assert (chunks[-1].model_extra or {})["joulegate"]["tier"] == "remote"
        assert _row(gw, chunks[0].id)["stream"] in (True, 1)
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def faulty() -> Iterator[tuple[GatewayProcess, FaultServer]]:
    import tempfile

    upstream = start_fault_server("ok")
    gw = start_gateway(Path(tempfile.mkdtemp()), EMBEDDED_TIER + remote("fault", upstream.url))
    try:
        yield gw, upstream
    finally:
        gw.stop()
        upstream.kill()


@pytest.mark.parametrize("mode", ["500", "garbage", "hang", "stall", "die"])
def test_failing_upstream_falls_back_to_the_next_tier(
    faulty: tuple[GatewayProcess, FaultServer], mode: str, tmp_path: Path
) -> None:
    gw, shared = faulty
    if mode == "die":
        # A process of its own: it exits mid-answer. Point the tier at it by restarting
        # nothing: the shared server is switched to 'die' on a private copy instead.
        upstream = start_fault_server("die")
        own = start_gateway(tmp_path, EMBEDDED_TIER + remote("fault", upstream.url))
        gw = own
    else:
        shared.set(mode=mode)
    try:
        r = httpx.post(
            gw.base_url + "/v1/chat/completions",
            json={"model": "remote/fault", "messages": ASK, "max_tokens": 8},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["joulegate"]["tier"] == "embedded"
        assert body["joulegate"]["fallback_from"] == ["remote"]
        assert r.headers["x-joulegate-tier"] == "embedded"
        row = _row(gw, body["id"])
        assert row["tier"] == "embedded" and row["fallback_from"] == "remote"
    finally:
        if mode == "die":
            own.stop()
            upstream.kill()
        else:
            shared.set(mode="ok")


def test_upstream_killed_before_the_request_falls_back(tmp_path: Path) -> None:
    upstream = start_fault_server("ok")
    gw = start_gateway(tmp_path, EMBEDDED_TIER + remote("fault", upstream.url))
    try:
        upstream.kill()
        r = httpx.post(
            gw.base_url + "/v1/chat/completions",
            json={"model": "remote/fault", "messages": ASK, "max_tokens": 8, "stream": True},
            timeout=120,
        )
        assert r.status_code == 200 and r.headers["x-joulegate-tier"] == "embedded"
        events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
        assert events[-1]["joulegate"]["fallback_from"] == ["remote"]
        assert _row(gw, events[0]["id"])["tier"] == "embedded"
    finally:
        gw.stop()


def test_upstream_dying_mid_stream_ends_the_stream_with_an_error_event(tmp_path: Path) -> None:
    """Tokens already reached the client, so no fallback: an in-band error, then [DONE]."""
    upstream = start_fault_server("die")
    gw = start_gateway(tmp_path, EMBEDDED_TIER + remote("fault", upstream.url))
    try:
        r = httpx.post(
            gw.base_url + "/v1/chat/completions",
            json={"model": "remote/fault", "messages": ASK, "stream": True},
            timeout=120,
        )
        lines = [x for x in r.text.splitlines() if x.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        events = [json.loads(x[6:]) for x in lines[:-1]]
        assert any(e.get("choices") and e["choices"][0]["delta"].get("content") for e in events)
        err = events[-1]["error"]
        assert set(err) == {"message", "type", "param", "code"} and "Traceback" not in r.text
        row = _row(gw, events[0]["id"])
        assert row["status"] == "error" and row["tier"] == "remote"
    finally:
        gw.stop()
        upstream.kill()


def test_no_tier_left_is_a_clean_openai_error_with_a_ledger_row(tmp_path: Path) -> None:
    upstream = start_fault_server("500")
    gw = start_gateway(tmp_path, remote("fault", upstream.url))
    try:
        client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="auto", messages=ASK)
        assert info.value.status_code in (502, 503)
        assert "Traceback" not in info.value.response.text
        rows = Ledger(gw.ledger_url).recent(5)
        assert len(rows) == 1 and rows[0]["status"] == "error"
    finally:
        gw.stop()
        upstream.kill()


def test_two_gateways_share_one_postgres_ledger(tmp_path: Path, postgres_url: str) -> None:
    upstream = start_fault_server("ok")
    config = remote("fault", upstream.url)
    a = start_gateway(tmp_path / "a", config, ledger_url=postgres_url)
    b = start_gateway(tmp_path / "b", config, ledger_url=postgres_url)

    def ask(i: int) -> str:
        url = (a if i % 2 else b).base_url
        r = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "auto", "messages": ASK, "stream": i % 3 == 0},
            timeout=60,
        )
        r.raise_for_status()
        if i % 3 == 0:
            return str(json.loads(r.text.splitlines()[0][6:])["id"])
        return str(r.json()["id"])

    try:
        with cf.ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(ask, range(120)))
    finally:
        a.stop()
        b.stop()
        upstream.kill()
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.text("select request_id from requests"))]
    engine.dispose()
    assert len(set(ids)) == 120
    assert sorted(stored) == sorted(ids)  # none lost, none duplicated
