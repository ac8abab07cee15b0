"""The cache end to end: real ``joulegate serve`` processes, the official ``openai`` client.

One gateway runs the embedded model (the real llama.cpp tier) with the default exact cache
on its SQLite store. Two more share the local Redis as replicas, in front of a real
upstream process on loopback that counts what it is asked (``tests/backends``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from backends.upstreams import start_fault_server
from gateway_proc import GatewayProcess, openai_tier, start_gateway

MESSAGES: Any = [{"role": "user", "content": "What is the capital of Japan?"}]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("cache-gw"), env={"JOULEGATE_CACHE__MODE": "exact"})
    yield gw
    gw.stop()


def _client(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url + "/v1", api_key="unused", max_retries=0)


def _cli(gw: GatewayProcess, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "joulegate.cli", *args],
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_repeated_request_is_served_from_the_cache(embedded: GatewayProcess) -> None:
    client = _client(embedded)
    first = client.chat.completions.create(
        model="auto", messages=MESSAGES, max_tokens=12, temperature=0
    )
    again = client.chat.completions.create(
        model="auto", messages=MESSAGES, max_tokens=12, temperature=0
    )
    made, served = first.model_extra["joulegate"], again.model_extra["joulegate"]  # type: ignore[index]
    assert made["energy_source"] == "modeled:cpu"
    assert served["energy_source"] == "cache" and served["route"]["cache"] == "exact"
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again.usage is not None and first.usage is not None
    assert again.usage.completion_tokens == first.usage.completion_tokens
    # What the hit saved is what the model's answer cost; the hit itself cost far less.
    assert served["baseline_energy_j"] == pytest.approx(made["energy_j"])
    assert served["energy_j"] < made["energy_j"]

    # The same answer, asked as a stream: replayed as chunks, with usage.
    chunks = list(
        client.chat.completions.create(
            model="auto",
            messages=MESSAGES,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    usage_chunk = chunks[-1]
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == first.usage.completion_tokens
    assert usage_chunk.model_extra["joulegate"]["energy_source"] == "cache"  # type: ignore[index]

    stats = json.loads(_cli(embedded, "cache", "stats", "--json"))["total"]
    assert stats["exact_hits"] >= 2 and stats["entries"] >= 1
    report = json.loads(_cli(embedded, "report", "--json"))
    assert report["cache"]["hits"] >= 2 and report["cache"]["energy_saved_j"] > 0
    dashboard = httpx.get(embedded.base_url + "/dashboard/api/summary", timeout=30).json()
    assert dashboard["cache"]["hits"] == report["cache"]["hits"]
    assert dashboard["cache"]["est_false_hit_rate"] == 0.0  # exact hits only


def test_two_replicas_share_the_redis_store(redis_url: str, tmp_path: Path) -> None:
    upstream = start_fault_server("ok")
    config = openai_tier("remote", "fault", upstream.url, max_retries=0)
    env = {
        "JOULEGATE_CACHE__MODE": "exact",
        "JOULEGATE_CACHE__STORE": "redis",
        "JOULEGATE_CACHE__REDIS_URL": redis_url,
    }
    replicas: list[GatewayProcess] = []
    try:
        for name in ("a", "b"):
            replicas.append(start_gateway(tmp_path / name, config, env=env))
        body = {"model": "remote/fault", "messages": MESSAGES}
        before = upstream.state()["requests"]
        r1 = httpx.post(replicas[0].base_url + "/v1/chat/completions", json=body, timeout=60)
        assert r1.status_code == 200 and r1.json()["joulegate"]["energy_source"] != "cache"
        _stored(redis_url, 1)  # replica A stores after its response, in the background
        for gw in replicas:  # B never saw the request; A asks again: both from the cache
            r = httpx.post(gw.base_url + "/v1/chat/completions", json=body, timeout=60)
            assert r.json()["joulegate"]["energy_source"] == "cache"
            assert r.json()["choices"][0]["message"] == r1.json()["choices"][0]["message"]
        assert upstream.state()["requests"] - before == 1
    finally:
        for gw in replicas:
            gw.stop()
        upstream.kill()


def _stored(redis_url: str, n: int) -> None:
    """Wait (bounded) until the shared store holds ``n`` entries."""
    import time

    import redis

    client = redis.Redis.from_url(redis_url)
    for _ in range(200):
        if client.zcard("joulegate:cache:lru") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the shared store never held {n} entries")
