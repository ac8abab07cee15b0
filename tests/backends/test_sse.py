"""The SSE subset OpenAI-compatible servers send, and the chunks inside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from joulegate.backends.base import TextDelta
from joulegate.backends.sse import ChunkReader, MalformedResponse, error_message, iter_data


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


def _data(*lines: str) -> list[str]:
    async def go() -> list[str]:
        return [d async for d in iter_data(_lines(*lines))]

    return asyncio.run(go())


def test_events_split_on_blank_lines_and_skip_comments_and_fields() -> None:
    assert _data(
        ": ping",
        "event: message",
        'data: {"a":1}',
        "",
        "id: 7",
        "data:x",
        "data: y",
        "\r",
        "",
        "data: [DONE]",
    ) == ['{"a":1}', "x\ny", "[DONE]"]


def test_chunks_become_deltas_and_the_finish_and_usage_are_remembered() -> None:
    reader = ChunkReader("t")
    assert reader.feed('{"choices":[{"delta":{"role":"assistant"}}]}') == []
    assert reader.feed('{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}') == [
        TextDelta("Hi")
    ]
    reader.feed('{"choices":[{"delta":{},"finish_reason":"length"}]}')
    reader.feed('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}')
    assert (reader.text, reader.finish_reason) == ("Hi", "length")
    assert reader.usage is not None and reader.usage.total_tokens == 4


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"object": "something else"}'])
def test_non_completion_payloads_are_malformed(payload: str) -> None:
    with pytest.raises(MalformedResponse):
        ChunkReader("t").feed(payload)


def test_error_messages_come_from_openai_error_bodies_or_plain_text() -> None:
    assert error_message(b'{"error": {"message": "bad  model"}}') == "bad model"
    assert error_message(b'{"detail": "Not Found"}') == "Not Found"
    assert error_message(b"<html>\n oops </html>") == "<html> oops </html>"
    assert error_message(b"") == "(empty body)"


def _lp(token: str, logprob: float) -> str:
    return f'{{"token":"{token}","logprob":{logprob},"bytes":null,"top_logprobs":[]}}'


_CHUNKS = [
    '{"choices":[{"delta":{"content":"Hi"},"logprobs":{"content":[' + _lp("Hi", -0.5) + "]}}]}",
    '{"choices":[{"delta":{"content":" there"},"logprobs":{"content":['
    + _lp(" the", -1.0)
    + ","
    + _lp("re", -0.25)
    + "]}}]}",
    '{"choices":[{"delta":{},"logprobs":{"content":['
    + _lp(".", -2.0)
    + ']},"finish_reason":"stop"}]}',
]


@pytest.mark.parametrize("client_asked", [False, True])
def test_token_logprobs_are_read_for_the_cascade_and_shown_only_if_the_client_asked(
    client_asked: bool,
) -> None:
    reader = ChunkReader("t", read_logprobs=True, hide_logprobs=not client_asked)
    deltas = [e for chunk in _CHUNKS for e in reader.feed(chunk)]
    assert [d.logprobs for d in deltas] == [(-0.5,), (-1.0, -0.25)]
    assert reader.logprobs == [-0.5, -1.0, -0.25, -2.0]  # the last one reaches Finish
    shown = [d.choice_extra for d in deltas] + [reader.finish_choice]
    assert all(bool(c and "logprobs" in c) == client_asked for c in shown)


def test_token_logprobs_are_not_read_unless_asked() -> None:
    reader = ChunkReader("t")
    deltas = [e for chunk in _CHUNKS for e in reader.feed(chunk)]
    assert all(d.logprobs is None for d in deltas) and reader.logprobs == []
    assert all(d.choice_extra and "logprobs" in d.choice_extra for d in deltas)
