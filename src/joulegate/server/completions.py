"""``/v1/completions``: a chat pipeline answer, rewritten as a ``text_completion``.

The request was run by ``ChatService`` as a :class:`TextCompletionRequest`
(``completions_protocol.py``), so its ledger row, receipt and budget are the chat path's;
only the wire format differs: ``choices[].text`` where chat has ``message.content`` (and
``delta.content`` when streamed), and no role chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from joulegate.server.call import Outcome
from joulegate.server.chat_stream import DONE, read_events, sse

__all__ = ["as_text_completion"]


def as_text_completion(outcome: Outcome) -> Outcome:
    """``outcome`` (a chat completion, whole or streamed) as a text completion."""
    if outcome.stream is not None:
        return replace(outcome, stream=_text_chunks(outcome.stream))
    assert outcome.body is not None
    return replace(outcome, body=_text_body(outcome.body))


def _text_body(chat: dict[str, Any]) -> dict[str, Any]:
    choice = chat["choices"][0]
    text = choice["message"].get("content") or ""
    return {
        **_head(chat),
        "choices": [_choice(text, choice.get("finish_reason"))],
        "usage": chat["usage"],
        "joulegate": chat["joulegate"],
    }


async def _text_chunks(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Closing ``chunks`` closes the chat stream, which stops the model (client gone).
    async with aclosing(read_events(stream)) as chunks:
        async for chunk in chunks:
            out = _text_chunk(chunk)
            if out is not None:
                yield out


def _text_chunk(chunk: dict[str, Any]) -> bytes | None:
    """One chat chunk as a text completion's; None for one that has nothing to say."""
    if chunk is DONE:
        return b"data: [DONE]\n\n"
    if "choices" not in chunk:  # an error the pipeline reported in-band
        return sse(chunk)
    out = _head(chunk)
    for name in ("usage", "joulegate"):
        if name in chunk:
            out[name] = chunk[name]
    choices = []
    if chunk["choices"]:
        choice = chunk["choices"][0]
        text = (choice.get("delta") or {}).get("content") or ""
        finish_reason = choice.get("finish_reason")
        if not text and finish_reason is None and "joulegate" not in chunk:
            return None  # the role chunk, or a delta a text completion has no field for
        choices.append(_choice(text, finish_reason))
    return sse({**out, "choices": choices})


def _head(chat: dict[str, Any]) -> dict[str, Any]:
    """A chat completion's (or chunk's) top-level fields, as a text completion's."""
    head = {k: v for k, v in chat.items() if k not in ("choices", "usage", "joulegate")}
    head["object"] = "text_completion"
    return head


def _choice(text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
