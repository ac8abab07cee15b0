"""The other endpoints OpenAI clients call, each through the official client's own method:
``models.retrieve``, ``embeddings.create``, ``completions.create`` and
``responses.create``, against real gateway processes, a real llama.cpp server as an
upstream tier, and a second gateway as an embeddings upstream. Every answer that cost
model work must come with a receipt and a ledger row that says the same.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from joulegate.backends.base import Usage
from joulegate.server.call import Outcome
from joulegate.server.chunks import ChunkWriter
from joulegate.server.responses import as_response
from joulegate.server.responses_protocol import ResponsesRequest

from backends.conftest import llama_server  # noqa: F401 - a fixture, used by name
from gateway_proc import EMBEDDED_TIER, GatewayProcess, openai_tier, start_gateway

EMBEDDED = "embedded/gemma-3-270m"
REMOTE = "remote/gemma-3-270m"
# A tier whose upstream is another joulegate: llama-cpp-python's server cannot serve
# Gemma 3 embeddings (it has no pooling option and answers one vector per token).
VECTORS = "vectors/embedded/gemma-3-270m"

EMBEDDINGS_ON = "[tiers.capabilities]\nembeddings = true\n"
FAST_FAIL = {"first_token_timeout_s": 60.0, "max_retries": 0, "breaker_failure_threshold": 1000}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ASK_WEATHER = "What is the weather in Paris?"


@pytest.fixture(scope="module")
def vectors_upstream() -> Iterator[GatewayProcess]:
    """A gateway whose embedded tier offers embeddings: the upstream of the vectors tier."""
    gw = start_gateway(Path(tempfile.mkdtemp()), EMBEDDED_TIER + EMBEDDINGS_ON)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def gw(llama_server: str, vectors_upstream: GatewayProcess) -> Iterator[GatewayProcess]:  # noqa: F811
    config = (
        EMBEDDED_TIER
        + EMBEDDINGS_ON
        + openai_tier("remote", "gemma-3-270m", llama_server, **FAST_FAIL)
        + openai_tier("vectors", EMBEDDED, vectors_upstream.base_url, **FAST_FAIL)
        + "[tiers.capabilities]\nembeddings = true\ntools = false\n"
        + "json_object = false\njson_schema = false\n"
    )
    gateway = start_gateway(Path(tempfile.mkdtemp()), config)
    yield gateway
    gateway.stop()


@pytest.fixture
def client(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", max_retries=0, timeout=300)


def ledger_row(gw: GatewayProcess, request_id: str) -> dict[str, Any]:
    """The request's row, read from the gateway's SQLite file."""
    with closing(sqlite3.connect(gw.data_dir / "ledger.db")) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("select * from requests where request_id = ?", (request_id,)).fetchall()
    assert len(rows) == 1, f"expected one ledger row for {request_id}, found {len(rows)}"
    return dict(rows[0])


def receipt_of(answer: Any) -> dict[str, Any]:
    receipt: dict[str, Any] = (answer.model_extra or {})["joulegate"]
    return receipt


def assert_recorded(gw: GatewayProcess, receipt: dict[str, Any], **expected: Any) -> None:
    """A receipt that priced real work, and the ledger row that says the same."""
    assert receipt["energy_j"] > 0 and receipt["cost_usd"] >= 0
    row = ledger_row(gw, receipt["request_id"])
    assert row["status"] == "ok" and row["http_status"] == 200
    assert row["tier"] == receipt["tier"] and row["model"] == receipt["model"]
    for name in ("prompt_tokens", "completion_tokens"):
        assert row[name] == receipt[name]
    assert row["energy_j"] == pytest.approx(receipt["energy_j"])
    assert row["cost_usd"] == pytest.approx(receipt["cost_usd"])
    for name, value in expected.items():
        assert row[name] == value, name


# -- /v1/models/{id} ----------------------------------------------------------------------


def test_every_listed_model_can_be_retrieved(client: openai.OpenAI) -> None:
    listed = client.models.list().data
    assert {m.id for m in listed} == {"auto", EMBEDDED, REMOTE, VECTORS}
    for model in listed:
        got = client.models.retrieve(model.id)  # ids hold '/': the path keeps them whole
        assert (got.id, got.object, got.owned_by) == (model.id, "model", model.owned_by)
    assert client.models.retrieve("embedded").id == EMBEDDED  # a tier's bare name, as in chat


def test_an_unknown_model_is_an_openai_format_404(
    client: openai.OpenAI, gw: GatewayProcess
) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("nope/model")
    assert err.value.code == "model_not_found"
    body = httpx.get(gw.base_url + "/v1/models/nope/model", timeout=10).json()
    assert (
        body["error"]["type"] == "invalid_request_error"
        and "nope/model" in body["error"]["message"]
    )


# -- /v1/embeddings -----------------------------------------------------------------------

TEXTS = [
    "The cat sat on the mat.",
    "A kitten was resting on the rug.",
    "Interest rates rose by half a point.",
]


def test_embeddings_on_the_embedded_tier(client: openai.OpenAI, gw: GatewayProcess) -> None:
    resp = client.embeddings.create(model=EMBEDDED, input=TEXTS)  # the client asks for base64
    assert resp.model == EMBEDDED and [d.index for d in resp.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in resp.data])
    assert vectors.shape == (3, 640)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-4)  # cosine = dot
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated  # the paraphrase is nearer than the other topic
    receipt = receipt_of(resp)
    assert receipt["tier"] == "embedded" and receipt["completion_tokens"] == 0
    assert receipt["prompt_tokens"] == resp.usage.prompt_tokens == resp.usage.total_tokens > 0
    assert_recorded(gw, receipt, stream=0)

    floats = client.embeddings.create(model=EMBEDDED, input=TEXTS[0], encoding_format="float")
    assert np.allclose(floats.data[0].embedding, vectors[0], atol=1e-6)


def test_embeddings_pass_through_an_upstream_tier(
    client: openai.OpenAI, gw: GatewayProcess, vectors_upstream: GatewayProcess
) -> None:
    resp = client.embeddings.create(model=VECTORS, input=TEXTS[:2])
    direct = openai.OpenAI(base_url=vectors_upstream.base_url + "/v1", api_key="x", max_retries=0)
    expected = direct.embeddings.create(model=EMBEDDED, input=TEXTS[:2])
    assert np.allclose(
        [d.embedding for d in resp.data], [d.embedding for d in expected.data], atol=1e-6
    )
    assert resp.usage.prompt_tokens == expected.usage.prompt_tokens
    receipt = receipt_of(resp)
    assert receipt["tier"] == "vectors" and receipt["energy_source"] == "estimated:profile"
    assert_recorded(gw, receipt)


def test_embeddings_go_only_to_tiers_that_offer_them(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=REMOTE, input="hello")
    assert err.value.code == "unsupported_capability"
    assert "embeddings" in err.value.message and VECTORS in err.value.message
    # auto never mixes vector spaces: always the cheapest tier that offers embeddings.
    assert client.embeddings.create(model="auto", input="hello").model == EMBEDDED


# -- /v1/completions ----------------------------------------------------------------------

PROMPT = "The capital of France is"


def test_completions_on_the_embedded_tier_continue_the_prompt_as_is(
    client: openai.OpenAI, gw: GatewayProcess
) -> None:
    resp = client.completions.create(model=EMBEDDED, prompt=PROMPT, max_tokens=8, temperature=0)
    assert resp.object == "text_completion" and resp.model == EMBEDDED
    text = resp.choices[0].text
    assert text.strip() and resp.choices[0].finish_reason in ("length", "stop")
    # The bare prompt is a few tokens; the chat frame would add about ninety.
    assert resp.usage is not None and 0 < resp.usage.prompt_tokens < 16
    assert_recorded(gw, receipt_of(resp), stream=0, tier="embedded")

    chunks = list(
        client.completions.create(
            model=EMBEDDED,
            prompt=PROMPT,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text  # greedy: same
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens == resp.usage.completion_tokens
    assert_recorded(gw, receipt_of(last), stream=1)


def test_completions_pass_through_to_an_upstream(
    client: openai.OpenAI,
    gw: GatewayProcess,
    llama_server: str,  # noqa: F811
) -> None:
    direct = openai.OpenAI(base_url=llama_server + "/v1", api_key="x", max_retries=0)
    asked: dict[str, Any] = {"prompt": PROMPT, "max_tokens": 8, "temperature": 0}
    expected = direct.completions.create(model="gemma-3-270m", **asked).choices[0].text
    resp = client.completions.create(model=REMOTE, **asked)
    assert resp.choices[0].text == expected and resp.model == REMOTE
    assert_recorded(gw, receipt_of(resp), tier="remote")

    chunks = list(client.completions.create(model=REMOTE, stream=True, **asked))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == expected
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1
    assert_recorded(gw, receipt_of(chunks[-1]), tier="remote", stream=1)


def test_completions_refuse_what_they_would_silently_drop(client: openai.OpenAI) -> None:
    for asked in ({"echo": True}, {"suffix": "."}, {"best_of": 2}, {"logprobs": 2}):
        with pytest.raises(openai.BadRequestError) as err:
            client.completions.create(model=EMBEDDED, prompt=PROMPT, max_tokens=4, **asked)
        assert err.value.code == "unsupported_parameter"
        assert err.value.param == next(iter(asked))


# -- /v1/responses ------------------------------------------------------------------------


def test_responses_text(client: openai.OpenAI, gw: GatewayProcess) -> None:
    resp = client.responses.create(
        model=EMBEDDED,
        instructions="Answer in one short sentence.",
        input="What is the capital of France?",
        max_output_tokens=8,
    )
    assert resp.object == "response" and resp.model == EMBEDDED
    assert resp.status in ("completed", "incomplete") and resp.output_text.strip()
    assert [item.type for item in resp.output] == ["message"]
    assert resp.usage is not None and resp.usage.output_tokens > 0
    receipt = receipt_of(resp)
    assert receipt["completion_tokens"] == resp.usage.output_tokens
    assert_recorded(gw, receipt, stream=0)

    events = list(
        client.responses.create(
            model=EMBEDDED, input="What is the capital of France?", max_output_tokens=8, stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas and deltas == final.output_text
    assert_recorded(gw, receipt_of(final), stream=1)


def test_responses_function_tool_and_its_result(client: openai.OpenAI, gw: GatewayProcess) -> None:
    forced = {"type": "function", "name": "get_weather"}
    resp = client.responses.create(
        model=REMOTE,
        input=ASK_WEATHER,
        tools=[WEATHER_TOOL],
        tool_choice=forced,
        max_output_tokens=32,
    )
    calls = [item for item in resp.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments), dict)
    assert_recorded(gw, receipt_of(resp), tier="remote")

    events = list(
        client.responses.create(
            model=REMOTE,
            input=ASK_WEATHER,
            tools=[WEATHER_TOOL],
            tool_choice=forced,
            max_output_tokens=32,
            stream=True,
        )
    )
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added] == ["function_call"]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    final = events[-1].response
    assert deltas == done.arguments == final.output[0].arguments
    assert final.output[0].name == "get_weather"
    assert_recorded(gw, receipt_of(final), tier="remote", stream=1)

    call = calls[0]
    answer = client.responses.create(
        model=REMOTE,
        input=[
            {"role": "user", "content": ASK_WEATHER},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 25 C"},
        ],
        tools=[WEATHER_TOOL],
        max_output_tokens=8,
    )
    assert answer.status in ("completed", "incomplete") and answer.output
    assert_recorded(gw, receipt_of(answer), tier="remote")


@pytest.mark.parametrize(
    ("asked", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ],
)
def test_responses_refuse_what_needs_stored_state_or_openai(
    client: openai.OpenAI, asked: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": EMBEDDED, "input": "Hello", **asked}
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(**body)
    assert err.value.code == "unsupported_parameter" and err.value.param == param
    assert "not supported" in err.value.message


# -- the Responses translation, held to the official client's own types ---------------------
# No model needed: chat chunks written by the pipeline's own ChunkWriter go in, and every
# event that comes out must validate as the openai package's ResponseStreamEvent.

STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CHAT_ID = "chatcmpl-0123"


def translate(chunks: Callable[[ChunkWriter], list[bytes]]) -> list[Any]:
    """The Responses events for the chat stream ``chunks`` writes, validated."""
    writer = ChunkWriter(CHAT_ID, REMOTE)

    async def chat() -> AsyncIterator[bytes]:
        for chunk in chunks(writer):
            yield chunk

    async def run() -> bytes:
        outcome = as_response(
            Outcome({}, stream=chat()), ResponsesRequest(model=REMOTE, input="hi")
        )
        assert outcome.stream is not None
        return b"".join([part async for part in outcome.stream])

    events = []
    for block in asyncio.run(run()).decode().split("\n\n")[:-1]:
        name, data = block.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == f"event: {event['type']}"
        events.append(STREAM_EVENT.validate_python(event))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events


def _call(arguments: str) -> dict[str, Any]:
    # As llama-cpp-python's server streams a call: the id and name repeated in every fragment.
    function = {"name": "get_weather", "arguments": arguments}
    return {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": function}]}


def test_a_streamed_and_a_whole_answer_make_the_same_response() -> None:
    logprobs = [{"token": "It", "logprob": -0.5, "bytes": [73, 116], "top_logprobs": []}]
    events = translate(
        lambda w: [
            w.role(),
            w.delta("", {"reasoning_content": "Weather needs a tool."}),
            w.delta("It", None, {"logprobs": {"content": logprobs}}),
            w.delta("", _call('{"city": ')),
            w.delta("", _call('"Paris"}')),
            w.finish("tool_calls", None),
            w.usage(
                Usage(5, 7, reasoning_tokens=4),
                {"request_id": CHAT_ID},
                {"completion_tokens_details": {"reasoning_tokens": 4}},
            ),
            w.done(),
        ]
    )
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    streamed = events[-1].response
    assert [item.type for item in streamed.output] == ["reasoning", "message", "function_call"]
    call = streamed.output[2]
    assert (call.call_id, call.name, call.arguments) == (
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert streamed.output_text == "It" and streamed.output[1].content[0].logprobs[0].token == "It"
    assert streamed.usage.output_tokens == 7
    assert streamed.usage.output_tokens_details.reasoning_tokens == 4
    assert (streamed.model_extra or {})["joulegate"] == {"request_id": CHAT_ID}

    message = {
        "role": "assistant",
        "content": "It",
        "reasoning_content": "Weather needs a tool.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    chat = {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": streamed.created_at,
        "model": REMOTE,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": {"content": logprobs},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 7,
            "total_tokens": 12,
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
        "joulegate": {"request_id": CHAT_ID},
    }
    whole = as_response(Outcome({}, body=chat), ResponsesRequest(model=REMOTE, input="hi")).body
    assert Response.model_validate(whole) == streamed


def test_an_answer_cut_short_is_an_incomplete_response() -> None:
    events = translate(
        lambda w: [
            w.role(),
            w.delta("The capital", None),
            w.finish("length", None),
            w.usage(Usage(5, 2), {}),
            w.done(),
        ]
    )
    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.incomplete_details.reason == "max_output_tokens"
    assert final.response.output[0].status == "incomplete"


def test_a_tier_failing_mid_answer_fails_the_response() -> None:
    error = {
        "message": "tier 'remote' broke the stream",
        "type": "api_error",
        "code": "upstream_error",
    }
    events = translate(
        lambda w: [w.role(), w.delta("Hel", None), w.error({"error": error}), w.done()]
    )
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2].code == "upstream_error"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error.code == "server_error"
    assert "broke the stream" in events[-1].response.error.message
