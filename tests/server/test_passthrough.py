"""Golden traces: what an OpenAI client gets through the gateway is what the upstream sent.

Each trace under ``tests/backends/traces`` is a real upstream's answer recorded byte for
byte (llama-cpp-python's server; ``reasoning`` in DeepSeek's documented format), replayed
by a real HTTP process on loopback (``replay_upstream.py``). The official ``openai`` client
makes the same call twice, directly to the upstream and through the gateway, JSON and
streamed, and the answers are compared field by field: tool calls (streamed as fragments),
logprobs, refusal, reasoning, system fingerprint, usage. Only the ids and timestamps the
gateway rewrites may differ, and the gateway's own ``joulegate`` object and headers come on
top.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from joulegate.ledger import Ledger

from backends.replay_upstream import Replay, start_replay
from backends.upstreams import stop
from gateway_proc import GatewayProcess, openai_tier, start_gateway

TRACES = Path(__file__).resolve().parents[1] / "backends" / "traces"
# Per-response ids and clocks: the gateway writes its own.
REWRITTEN = {"id", "created", "model"}
REASONER_PROFILE = {"joules_per_input_token": 0.5, "joules_per_output_token": 3.0}


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    server = start_replay()
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="module")
def gateway(replay: Replay) -> Iterator[GatewayProcess]:
    config = openai_tier("remote", "gemma-3-270m", replay.url, max_retries=0) + openai_tier(
        "reasoner",
        "deepseek-reasoner",
        replay.url,
        max_retries=0,
        reasoning=True,
        profile=REASONER_PROFILE,
    )
    gw = start_gateway(Path(tempfile.mkdtemp()), config)
    try:
        yield gw
    finally:
        gw.stop()


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)


def _request(trace: str) -> dict[str, Any]:
    request: dict[str, Any] = json.loads((TRACES / f"{trace}.request.json").read_text())
    request.pop("model")
    return request


def _assemble(chunks: list[Any]) -> dict[str, Any]:
    """The stream as the openai client assembles it (its own ``ChatCompletionStreamState``)."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    done: dict[str, Any] = state.current_completion_snapshot.model_dump(exclude_none=True)
    usage = [c.usage for c in chunks if c.usage is not None]
    done["usage"] = usage[-1].model_dump(exclude_none=True) if usage else None
    return done


def _choice(completion: dict[str, Any]) -> dict[str, Any]:
    """The first choice without the SDK's parse-time additions."""
    choice = dict(completion["choices"][0])
    message = {k: v for k, v in choice["message"].items() if k != "parsed"}
    for call in message.get("tool_calls") or []:
        call["function"].pop("parsed_arguments", None)
    choice["message"] = message
    return choice


def _as_json_answer(choice: dict[str, Any]) -> dict[str, Any]:
    """A streamed choice as a JSON answer has it: tool calls carry no stream ``index``."""
    choice = json.loads(json.dumps(choice))
    for call in choice["message"].get("tool_calls") or []:
        call.pop("index", None)
    return choice


def _without_call_names(choice: dict[str, Any]) -> dict[str, Any]:
    """The choice less its tool calls' ids and names, which are checked on their own:
    llama-cpp-python repeats them in every fragment, so the client library's assembly of
    its stream joins the repeats, where the gateway's JSON answer keeps them once."""
    choice = json.loads(json.dumps(choice))
    message = choice["message"]
    for call in message.get("tool_calls") or []:
        call.pop("id", None)
        call["function"].pop("name", None)
    if message.get("function_call"):
        message["function_call"].pop("name", None)
    return choice


def _shape(value: Any) -> Any:
    """Which fields, of which types, nested: what two answers of one upstream to one
    request share even when the model generated different text each time."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _top(completion: dict[str, Any]) -> dict[str, Any]:
    skip = REWRITTEN | {"choices", "usage", "joulegate"}
    return {k: v for k, v in completion.items() if k not in skip}


def _usage_matches(through: dict[str, Any] | None, direct: dict[str, Any] | None) -> None:
    if direct is None:
        # This upstream streams no usage: the gateway estimates it (and must still send it).
        assert through is not None and through["completion_tokens"] > 0
        return
    assert through == direct


# The recorded llama-cpp-python traces; ``reasoning`` is served by the reasoning tier.
LLAMA_TRACES = ["tools_forced", "tool_result", "logprobs", "json_object"]


def _model(trace: str) -> str:
    return "reasoner/deepseek-reasoner" if trace == "reasoning" else "remote/gemma-3-270m"


@pytest.mark.parametrize("trace", [*LLAMA_TRACES, "reasoning"])
def test_streamed_answer_arrives_as_the_upstream_sent_it(
    replay: Replay, gateway: GatewayProcess, trace: str
) -> None:
    if not (TRACES / f"{trace}.sse").exists():
        pytest.fail(f"trace {trace} is not recorded: run tests/backends/traces/record.py")
    replay.play(trace)
    request = _request(trace)
    direct_chunks = list(
        _client(replay.url).chat.completions.create(
            model="replay", stream=True, stream_options={"include_usage": True}, **request
        )
    )
    with _client(gateway.base_url).chat.completions.with_streaming_response.create(
        model=_model(trace), stream=True, stream_options={"include_usage": True}, **request
    ) as raw:
        assert raw.headers["x-joulegate-tier"] == _model(trace).split("/")[0]
        through_chunks = list(raw.parse())
    direct, through = _assemble(direct_chunks), _assemble(through_chunks)
    assert _choice(through) == _choice(direct)
    assert _top(through) == _top(direct)
    _usage_matches(through["usage"], direct["usage"])
    # joulegate's own figures ride on top, in the last chunk.
    assert (through_chunks[-1].model_extra or {})["joulegate"]["tier"] == raw.headers[
        "x-joulegate-tier"
    ]


@pytest.mark.parametrize("trace", [*LLAMA_TRACES, "reasoning"])
def test_json_answer_is_the_upstreams_answer(
    replay: Replay, gateway: GatewayProcess, trace: str
) -> None:
    """The gateway always streams from the upstream; a JSON client gets that stream put
    together: the same as the upstream's own JSON answer, and as its stream assembled."""
    if not (TRACES / f"{trace}.json").exists():
        pytest.fail(f"trace {trace} is not recorded: run tests/backends/traces/record.py")
    replay.play(trace)
    request = _request(trace)
    direct = _client(replay.url).chat.completions.create(model="replay", **request)
    direct_chunks = list(
        _client(replay.url).chat.completions.create(model="replay", stream=True, **request)
    )
    direct_stream = _assemble(direct_chunks)
    raw = _client(gateway.base_url).chat.completions.with_raw_response.create(
        model=_model(trace), **request
    )
    through = raw.parse().model_dump(exclude_none=True)
    direct_json = direct.model_dump(exclude_none=True)
    # Field by field, the upstream's stream put together (what the gateway received) ...
    streamed = _as_json_answer(_choice(direct_stream))
    assert _without_call_names(_choice(through)) == _without_call_names(streamed)
    fragments = [c.choices[0].delta.tool_calls for c in direct_chunks if c.choices]
    first = next((f[0] for f in fragments if f), None)
    for call in through["choices"][0]["message"].get("tool_calls", []):
        assert first is not None and first.function is not None
        assert (call["id"], call["function"]["name"]) == (first.id, first.function.name)
    # ... in the form of the upstream's own JSON answer. The recorded JSON answer is a
    # second generation (llama.cpp at temperature 0 still varies): the same fields, types
    # and finish, not the same text.
    assert _shape(_choice(through)) == _shape(_choice(direct_json))
    assert through["choices"][0]["finish_reason"] == direct_json["choices"][0]["finish_reason"]
    assert _top(through) == _top(direct_json)
    _usage_matches(through["usage"], direct_stream["usage"])
    assert "joulegate" in (raw.parse().model_extra or {})
    assert float(raw.headers["x-joulegate-energy-j"]) > 0


def test_a_tool_result_turn_reaches_the_upstream_as_sent(
    replay: Replay, gateway: GatewayProcess
) -> None:
    replay.play("tool_result")
    request = _request("tool_result")
    assert request["messages"][1]["content"] is None  # a tool-call turn, as OpenAI sends it
    _client(gateway.base_url).chat.completions.create(model="remote/gemma-3-270m", **request)
    sent = replay.last_body()["messages"]
    # Sent whole (tool_calls, tool_call_id), with content "" for the null: llama-cpp-python's
    # server rejects the null (docs/compatibility.md).
    assert sent[0] == request["messages"][0] and sent[2] == request["messages"][2]
    assert sent[1] == {**request["messages"][1], "content": ""}


def test_developer_messages_become_system_for_a_tier_that_does_not_declare_the_role(
    replay: Replay, gateway: GatewayProcess
) -> None:
    replay.play("reasoning")  # any answer will do: this is about what was sent
    messages = [
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": "Name a primary colour."},
    ]
    _client(gateway.base_url).chat.completions.create(
        model="remote/gemma-3-270m",
        messages=messages,
        max_tokens=8,  # type: ignore[arg-type]
    )
    sent = replay.last_body()["messages"]
    assert sent == [{"role": "system", "content": "Answer in one word."}, messages[1]]


def test_reasoning_is_passed_through_counted_and_metered(
    replay: Replay, gateway: GatewayProcess
) -> None:
    replay.play("reasoning")
    resp = _client(gateway.base_url).chat.completions.create(
        model="reasoner/deepseek-reasoner", **_request("reasoning")
    )
    message = resp.choices[0].message
    assert message.content == "Red."
    thought = (message.model_extra or {})["reasoning_content"]
    assert thought == "Primary colours are red, yellow and blue. Pick one."
    assert resp.usage is not None and resp.usage.completion_tokens_details is not None
    assert resp.usage.completion_tokens_details.reasoning_tokens == 9
    info = (resp.model_extra or {})["joulegate"]
    # Metered as output tokens (11 of them, 9 of which reasoning), at the tier's profile.
    assert info["completion_tokens"] == 11 and info["reasoning_tokens"] == 9
    assert info["energy_j"] == pytest.approx(12 * 0.5 + 11 * 3.0)
    assert info["reasoning_energy_j"] == pytest.approx(9 * 3.0)
    row = next(r for r in Ledger(gateway.ledger_url).recent(50) if r["request_id"] == resp.id)
    assert row["reasoning_tokens"] == 9
    assert row["reasoning_energy_j"] == pytest.approx(27.0)
