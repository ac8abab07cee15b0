"""Issue 13's silent empty answers, reproduced with llama-cpp-python's server itself.

With its default ``interrupt_requests``, the server ends a stream with ``[DONE]`` as soon
as another request waits: under 6 concurrent requests most streams are a role chunk and
``[DONE]``, no content, no finish reason. The gateway used to answer those 200 with
``content: ""`` and record them as ok. Now such a stream is a failure: retried, then
fallen back on, or an error, and the ledger says which.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from pathlib import Path
from typing import Any

import httpx

from joulegate.ledger import Ledger

from backends.conftest import llama_server  # noqa: F401 - a fixture, used by name
from backends.upstreams import LLAMA_MODEL_ALIAS
from gateway_proc import EMBEDDED_TIER, openai_tier, start_gateway

N = 6
ASK = [{"role": "user", "content": "Name a primary colour."}]


def _direct_stream(url: str) -> list[dict[str, Any]]:
    body = {"model": LLAMA_MODEL_ALIAS, "messages": ASK, "max_tokens": 16, "stream": True}
    lines: list[str] = []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as r:
        try:
            for line in r.iter_lines():
                lines.append(line)
        except httpx.RemoteProtocolError:
            pass  # an interrupted stream may also lose its connection after [DONE]
    return [json.loads(x[6:]) for x in lines if x.startswith("data: {")]


def test_the_upstream_cuts_streams_short_under_concurrency(llama_server: str) -> None:  # noqa: F811
    """The precondition, checked on the upstream directly: without it the test below would
    prove nothing."""
    with cf.ThreadPoolExecutor(N) as pool:
        streams = list(pool.map(lambda _: _direct_stream(llama_server), range(N)))
    cut = [s for s in streams if not any(c["choices"][0].get("finish_reason") for c in s)]
    assert cut, "llama-cpp-python's server no longer interrupts streams: update issue 13's test"


def test_no_empty_200_under_concurrency_and_the_ledger_says_what_failed(
    tmp_path: Path,
    llama_server: str,  # noqa: F811
) -> None:
    config = EMBEDDED_TIER + openai_tier(
        "remote", LLAMA_MODEL_ALIAS, llama_server, first_token_timeout_s=60.0
    )
    gw = start_gateway(tmp_path, config)

    def ask(i: int) -> httpx.Response:
        body = {"model": "remote", "messages": ASK, "max_tokens": 16, "stream": i % 2 == 1}
        return httpx.post(gw.base_url + "/v1/chat/completions", json=body, timeout=300)

    try:
        with cf.ThreadPoolExecutor(N) as pool:
            answers = list(pool.map(ask, range(N)))
        rows = {r["request_id"]: r for r in Ledger(gw.ledger_url).recent(100)}
    finally:
        gw.stop()
    assert len(rows) == N
    for r in answers:
        if r.status_code != 200:
            assert "error" in r.json()
            continue
        if r.headers["content-type"].startswith("application/json"):
            body = r.json()
            assert body["choices"][0]["message"]["content"], body
            request_id = body["id"]
        else:
            events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
            request_id = events[0]["id"]
            if "error" in events[-1]:  # cut after tokens reached the client: said in-band
                assert rows[request_id]["status"] == "error"
                continue
            text = "".join(
                e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
            )
            assert text, r.text
        row = rows[request_id]
        assert row["status"] == "ok" and row["completion_tokens"] > 0
    # Some requests were cut short by the upstream; the ledger names each failure, including
    # the ones a fallback (or a retry) then answered.
    failed = [r for r in rows.values() if r["error"]]
    for row in failed:
        assert row["status"] == "error" or row["fallback_from"] == "remote"
