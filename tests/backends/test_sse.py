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
