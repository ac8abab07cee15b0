"""Reading the chat pipeline's own SSE output, for the endpoints that translate it.

``/v1/completions`` and ``/v1/responses`` run on ``ChatService`` and rewrite its answer in
their own wire format. The chat stream is OpenAI's chat-completions stream, a stable public
format, so reading it back decouples them from how the pipeline builds it: whatever the
chat path passes through (tool calls, log-probs, reasoning) reaches them too.
``ChatService`` yields one SSE event per item, which is what this reads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

__all__ = ["DONE", "read_events", "sse"]

DONE: dict[str, Any] = {}  # what ``read_events`` yields for ``data: [DONE]``


async def read_events(stream: AsyncIterator[bytes]) -> AsyncGenerator[dict[str, Any], None]:
    """Each event's JSON, then ``DONE`` for ``[DONE]``; closing this closes ``stream``
    (which is what stops the model when the client goes away)."""
    try:
        async for event in stream:
            payload = event.removeprefix(b"data: ").strip()
            if payload == b"[DONE]":
                yield DONE
                return
            obj: dict[str, Any] = json.loads(payload)
            yield obj
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def sse(obj: dict[str, Any], event: str | None = None) -> bytes:
    """One SSE event; ``event`` names it (the Responses API names every event)."""
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
