"""The OpenAI-compatible API, exercised with the official client against a real server
running the real embedded model."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from gateway_proc import GatewayProcess

EMBEDDED = "embedded/gemma-3-270m"
QUESTION = [{"role": "user", "content": "Name a primary colour."}]


def test_completion_has_content_usage_and_served_by(openai_client: openai.OpenAI) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model="auto", messages=QUESTION, max_tokens=24, temperature=0, seed=1
    )
    resp = raw.parse()
    text = resp.choices[0].message.content
    assert text and text.strip()
    assert resp.model == EMBEDDED
    assert resp.choices[0].finish_reason in ("stop", "length")
    u = resp.usage
    assert u is not None and u.prompt_tokens > 0 and 0 < u.completion_tokens <= 24
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    info = (resp.model_extra or {})["joulegate"]
    assert info["tier"] == "embedded" and info["model"] == EMBEDDED
    assert raw.headers["x-joulegate-tier"] == "embedded"
    assert raw.headers["x-joulegate-model"] == EMBEDDED


def test_explicit_model_id_is_served(openai_client: openai.OpenAI) -> None:
    resp = openai_client.chat.completions.create(model=EMBEDDED, messages=QUESTION, max_tokens=8)
    assert resp.model == EMBEDDED


def test_max_tokens_caps_generation_exactly(openai_client: openai.OpenAI) -> None:
    resp = openai_client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Write a long story about a dragon and a knight."}],
        max_completion_tokens=5,
        temperature=0,
    )
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 5


def test_stream_matches_non_stream_and_ends_with_usage_and_receipt(
    openai_client: openai.OpenAI,
) -> None:
    args = dict(model="auto", messages=QUESTION, max_tokens=20, temperature=0, seed=7)
    whole = openai_client.chat.completions.create(**args)  # type: ignore[call-overload]
    with openai_client.chat.completions.with_streaming_response.create(
        **args, stream=True, stream_options={"include_usage": True}
    ) as raw:
        assert raw.headers["x-joulegate-tier"] == "embedded"
        assert raw.headers["content-type"].startswith("text/event-stream")
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == [whole.choices[0].finish_reason]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.model_dump() == whole.usage.model_dump() if whole.usage else False
    assert (last.model_extra or {})["joulegate"]["tier"] == "embedded"


def test_stream_without_usage_puts_receipt_on_finish_chunk(openai_client: openai.OpenAI) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=6, stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason is not None
    assert (chunks[-1].model_extra or {})["joulegate"]["model"] == EMBEDDED


def test_stop_sequence_is_honoured(openai_client: openai.OpenAI) -> None:
    resp = openai_client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        max_tokens=40,
        temperature=0,
        stop=["5"],
    )
    assert "5" not in (resp.choices[0].message.content or "")


def test_models_lists_auto_and_embedded(openai_client: openai.OpenAI) -> None:
    ids = [m.id for m in openai_client.models.list()]
    assert ids[0] == "auto" and EMBEDDED in ids


def test_health_reports_tiers(gateway: GatewayProcess) -> None:
    body = httpx.get(gateway.base_url + "/health").json()
    assert body["status"] == "ok" and body["tiers"] == {"embedded": True}


# -- bad input: OpenAI error format, right status ---------------------------------------


def _error(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "Traceback" not in resp.text
    return err  # type: ignore[no-any-return]


def test_malformed_json_is_400(gateway: GatewayProcess) -> None:
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=b'{"model": "auto", "messages": [',
        headers={"content-type": "application/json"},
    )
    err = _error(r, 400)
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "messages"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"model": "auto", "messages": QUESTION, "temperature": 5}, "temperature"),
        ({"model": "auto", "messages": QUESTION, "max_tokens": 0}, "max_tokens"),
        ({"model": "auto", "messages": QUESTION, "n": 2}, "n"),
        ({"model": "auto", "messages": QUESTION, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_invalid_fields_are_400_naming_the_param(
    gateway: GatewayProcess, body: dict[str, object], param: str
) -> None:
    r = httpx.post(gateway.base_url + "/v1/chat/completions", json=body)
    err = _error(r, 400)
    assert err["param"] == param


def test_unknown_model_is_404(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(model="gpt-17", messages=QUESTION)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"
    assert "embedded/gemma-3-270m" in info.value.message


def test_prompt_longer_than_context_is_400(openai_client: openai.OpenAI) -> None:
    long = "energy " * 5000
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": long}]
        )
    assert info.value.code == "context_length_exceeded"
    assert "maximum context length" in info.value.message


def test_long_prompt_stream_is_400_not_a_broken_stream(gateway: GatewayProcess) -> None:
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={
            "model": "auto",
            "stream": True,
            "messages": [{"role": "user", "content": "x " * 5000}],
        },
    )
    assert _error(r, 400)["code"] == "context_length_exceeded"


def test_unknown_route_and_method_use_error_format(gateway: GatewayProcess) -> None:
    _error(httpx.get(gateway.base_url + "/v1/nothing-here"), 404)
    _error(httpx.get(gateway.base_url + "/v1/chat/completions"), 405)


# -- concurrency and disconnects ----------------------------------------------------------


def test_eight_concurrent_requests_all_complete(gateway: GatewayProcess) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.base_url + "/v1", api_key="x", max_retries=0)
    questions = [f"What is {i} plus {i}?" for i in range(8)]

    async def ask(q: str) -> openai.types.chat.ChatCompletion:
        return await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": q}], max_tokens=12, temperature=0
        )

    async def main() -> list[openai.types.chat.ChatCompletion]:
        try:
            return await asyncio.gather(*(ask(q) for q in questions))
        finally:
            await client.close()

    results = asyncio.run(main())
    ids = {r.id for r in results}
    assert len(ids) == 8
    for r in results:
        assert r.choices[0].message.content and r.usage and r.usage.completion_tokens > 0
