"""Tier capabilities, request errors and empty answers, through a real gateway process.

Two upstreams on loopback: ``remote``, the fault server (it speaks the whole chat API by
default), and ``plain``, a replaying upstream declared without tools, JSON output or
logprobs. A request is only ever planned onto tiers that can serve it; asking the wrong
tier by name is a 400 that names both; an upstream's "your request is wrong" is the
client's error, never a reason to try a tier that would ignore the problem; an empty or
cut-off stream is a failure that falls back, and the ledger says why.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from joulegate.ledger import Ledger

from backends.replay_upstream import Replay, start_replay
from backends.upstreams import FaultServer, start_fault_server, stop
from gateway_proc import EMBEDDED_TIER, GatewayProcess, openai_tier, start_gateway

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
QUICK = {"max_retries": 0, "first_token_timeout_s": 5.0, "breaker_failure_threshold": 1000}
PLAIN_CAPS = {"tools": False, "json_object": False, "json_schema": False, "logprobs": False}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FaultServer, Replay]]:
    fault, replay = start_fault_server("ok"), start_replay("reasoning")
    try:
        yield fault, replay
    finally:
        fault.kill()
        stop(replay.proc)


@pytest.fixture(scope="module")
def gateway(upstreams: tuple[FaultServer, Replay]) -> Iterator[GatewayProcess]:
    fault, replay = upstreams
    config = openai_tier("remote", "fault", fault.url, **QUICK) + _tier_with_caps(
        "plain", "plain-model", replay.url, PLAIN_CAPS
    )
    gw = start_gateway(Path(tempfile.mkdtemp()), config)
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def fault(upstreams: tuple[FaultServer, Replay]) -> Iterator[FaultServer]:
    upstreams[0].set(mode="ok")
    yield upstreams[0]
    upstreams[0].set(mode="ok")


def _tier_with_caps(name: str, model: str, url: str, caps: dict[str, bool]) -> str:
    lines = [f"{k} = {'true' if v else 'false'}" for k, v in caps.items()]
    return (
        openai_tier(name, model, url, **QUICK) + "[tiers.capabilities]\n" + "\n".join(lines) + "\n"
    )


def _replayed(replay: Replay) -> int:
    return int(replay.state()["requests"])


def _post(gw: GatewayProcess, **body: Any) -> httpx.Response:
    return httpx.post(gw.base_url + "/v1/chat/completions", json=body, timeout=60)


def _row(gw: GatewayProcess, request_id: str) -> dict[str, Any]:
    return next(r for r in Ledger(gw.ledger_url).recent(100) if r["request_id"] == request_id)


def test_auto_plans_a_tool_request_only_onto_tiers_with_tools(
    gateway: GatewayProcess, fault: FaultServer
) -> None:
    r = _post(gateway, model="auto", messages=ASK, tools=[TOOL])
    assert r.status_code == 200, r.text
    assert r.json()["joulegate"]["tier"] == "remote"
    assert fault.state()["last_body"]["tools"] == [TOOL]  # and the tools reached it


def test_naming_a_tier_without_the_capability_is_a_400_naming_both(
    gateway: GatewayProcess, upstreams: tuple[FaultServer, Replay]
) -> None:
    before = _replayed(upstreams[1])
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="plain/plain-model",
            messages=ASK,  # type: ignore[arg-type]
            response_format={"type": "json_object"},
        )
    err = info.value.body
    assert isinstance(err, dict) and err["code"] == "unsupported_capability"
    assert "json_object" in err["message"] and "plain/plain-model" in err["message"]
    assert "remote/fault" in err["message"]  # where it would work
    assert _replayed(upstreams[1]) == before  # nothing was sent


@pytest.mark.parametrize(
    ("extra", "capability"),
    [
        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
        ({"tool_choice": "required", "tools": [TOOL]}, "tools"),
    ],
)
def test_each_needed_capability_is_checked(
    gateway: GatewayProcess, extra: dict[str, Any], capability: str
) -> None:
    r = _post(gateway, model="plain", messages=ASK, **extra)
    assert r.status_code == 400 and capability in r.json()["error"]["message"]


def test_an_image_no_tier_can_see_is_a_400_not_a_blind_answer(gateway: GatewayProcess) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    r = _post(gateway, model="auto", messages=messages)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "unsupported_capability" and "vision" in err["message"]


def test_a_fallback_never_lands_on_a_tier_that_would_drop_the_tools(
    gateway: GatewayProcess, fault: FaultServer, upstreams: tuple[FaultServer, Replay]
) -> None:
    fault.set(mode="500")
    before = _replayed(upstreams[1])
    r = _post(gateway, model="remote", messages=ASK, tools=[TOOL])
    assert r.status_code == 502, r.text
    assert _replayed(upstreams[1]) == before
    # Without tools the same failure falls back to the plain tier, as always.
    r = _post(gateway, model="remote", messages=ASK, max_tokens=8)
    assert r.status_code == 200 and r.json()["joulegate"]["fallback_from"] == ["remote"]


def test_an_upstreams_422_is_the_clients_error_and_nothing_else_is_tried(
    gateway: GatewayProcess, fault: FaultServer, upstreams: tuple[FaultServer, Replay]
) -> None:
    fault.set(mode="422")
    before = _replayed(upstreams[1])
    r = _post(gateway, model="remote", messages=ASK)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and "rejected the request" in err["message"]
    assert _replayed(upstreams[1]) == before
    row = _row(gateway, r.headers.get("x-request-id") or _last_id(gateway))
    assert row["status"] == "error" and row["http_status"] == 422


def _last_id(gw: GatewayProcess) -> str:
    return str(Ledger(gw.ledger_url).recent(1)[0]["request_id"])


# -- empty and cut-off streams -----------------------------------------------------------


@pytest.fixture(scope="module")
def interrupted() -> Iterator[tuple[GatewayProcess, Replay, Replay]]:
    """``first`` replays llama-cpp-python's interrupted stream (a role chunk, then
    ``[DONE]``); ``second`` answers properly."""
    first, second = start_replay("interrupted"), start_replay("reasoning")
    config = openai_tier("first", "m", first.url, **QUICK) + openai_tier(
        "second", "m", second.url, **QUICK
    )
    gw = start_gateway(Path(tempfile.mkdtemp()), config)
    try:
        yield gw, first, second
    finally:
        gw.stop()
        stop(first.proc)
        stop(second.proc)


@pytest.mark.parametrize("stream", [False, True])
def test_an_empty_stream_falls_back_and_the_ledger_says_why(
    interrupted: tuple[GatewayProcess, Replay, Replay], stream: bool
) -> None:
    gw, _, _ = interrupted
    client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", max_retries=0)
    if stream:
        chunks = list(client.chat.completions.create(model="first/m", messages=ASK, stream=True))  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        info = (chunks[-1].model_extra or {})["joulegate"]
        request_id = chunks[0].id
    else:
        resp = client.chat.completions.create(model="first/m", messages=ASK)  # type: ignore[arg-type]
        text, info, request_id = (
            resp.choices[0].message.content or "",
            (resp.model_extra or {})["joulegate"],
            resp.id,
        )
    assert text == "Red." and info["tier"] == "second" and info["fallback_from"] == ["first"]
    row = _row(gw, request_id)
    assert row["status"] == "ok" and row["fallback_from"] == "first"
    assert "first" in row["error"] and "without finishing" in row["error"]


def test_an_empty_stream_with_nothing_left_is_an_error_in_the_ledger(
    interrupted: tuple[GatewayProcess, Replay, Replay],
) -> None:
    gw, _, second = interrupted
    second.play("interrupted")
    try:
        r = _post(gw, model="first/m", messages=ASK)
    finally:
        second.play("reasoning")
    assert r.status_code == 502, r.text
    assert "without finishing" in r.json()["error"]["message"]
    row = Ledger(gw.ledger_url).recent(1)[0]
    assert row["status"] == "error" and row["http_status"] == 502
    assert row["completion_tokens"] == 0


# -- the embedded tier ------------------------------------------------------------------


def test_the_embedded_tier_gets_only_what_it_can_do(
    tmp_path: Path, upstreams: tuple[FaultServer, Replay]
) -> None:
    """Issue 13: tools sent to ``auto`` used to be answered by the embedded model, which
    ignored them and made up the weather; JSON mode and logprobs were dropped there."""
    fault = upstreams[0]
    fault.set(mode="ok")
    gw = start_gateway(tmp_path, EMBEDDED_TIER + openai_tier("remote", "fault", fault.url, **QUICK))
    client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", max_retries=0)
    try:
        routed = client.chat.completions.create(
            model="auto",
            messages=ASK,  # type: ignore[arg-type]
            tools=[TOOL],  # type: ignore[list-item]
        )
        assert (routed.model_extra or {})["joulegate"]["tier"] == "remote"
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="embedded/gemma-3-270m",
                messages=ASK,  # type: ignore[arg-type]
                tools=[TOOL],  # type: ignore[list-item]
            )
        assert "tools" in str(info.value) and "embedded/gemma-3-270m" in str(info.value)
        as_json = client.chat.completions.create(
            model="embedded/gemma-3-270m",
            messages=[{"role": "user", "content": "Describe the sky as a JSON object."}],
            response_format={"type": "json_object"},
            max_tokens=128,
            temperature=0,
        )
        assert isinstance(json.loads(as_json.choices[0].message.content or ""), dict)
        with_logprobs = client.chat.completions.create(
            model="embedded/gemma-3-270m",
            messages=[{"role": "user", "content": "Name a primary colour."}],
            logprobs=True,
            top_logprobs=2,
            max_tokens=8,
            temperature=0,
        )
        lp = with_logprobs.choices[0].logprobs
        assert lp is not None and lp.content and len(lp.content[0].top_logprobs) == 2
    finally:
        gw.stop()
