"""A backend's answer as the pipeline reads it: metered events, gathered into a whole.

Shared by every endpoint that runs a model (``serving``, ``embeddings``): where work
starts and the first token comes (the meter's window), how a stream of events becomes one
``Completion``, and how a backend's error reaches a client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from joulegate.backends.base import (
    Backend,
    BackendError,
    ChatParams,
    Completion,
    Finish,
    Started,
    StreamEvent,
    TextDelta,
    Usage,
)
from joulegate.metering import MeterWindow, Receipt
from joulegate.server.chunks import merge_delta
from joulegate.server.errors import APIError

__all__ = ["answer_events", "client_error", "collect", "end_window", "gather", "metered"]


def answer_events(backend: Backend, params: ChatParams) -> AsyncIterator[StreamEvent]:
    """The backend's answer: a chat turn, or for ``/v1/completions`` a plain continuation
    of ``params.prompt``. Everything around it (plan, meter, ledger) is the same."""
    return backend.stream(params) if params.prompt is None else backend.complete_text(params)


async def collect(backend: Backend, params: ChatParams, window: MeterWindow) -> Completion:
    return await gather(metered(answer_events(backend, params), window), backend.tier)


async def gather(events: AsyncIterator[TextDelta | Finish], tier: str) -> Completion:
    """A whole answer from its events; closes ``events``."""
    parts: list[str] = []
    message: dict[str, Any] = {}  # the deltas' other fields, assembled
    choice: dict[str, Any] = {}
    chunk: dict[str, Any] = {}
    finish: Finish | None = None
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                parts.append(event.text)
                if event.extra:
                    merge_delta(message, event.extra)
                if event.choice_extra:
                    merge_delta(choice, event.choice_extra)
                if event.chunk_extra:
                    chunk.update(event.chunk_extra)
            elif isinstance(event, Finish):
                finish = event
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    if finish is None:
        raise BackendError(f"tier {tier!r} ended its answer without finishing")
    if finish.choice_extra:
        merge_delta(choice, finish.choice_extra)
    return Completion(
        "".join(parts),
        finish.finish_reason,
        finish.usage,
        message_extra=message or None,
        choice_extra=choice or None,
        chunk_extra={**chunk, **(finish.chunk_extra or {})} or None,
        usage_extra=finish.usage_extra,
        logprobs=finish.logprobs,
    )


async def metered(
    events: AsyncIterator[StreamEvent], window: MeterWindow
) -> AsyncIterator[TextDelta | Finish]:
    """Tell the meter when work starts and when the first token comes; pass the rest on."""
    try:
        async for event in events:
            if isinstance(event, Started):
                window.set_weight(1.0)
                continue
            if isinstance(event, TextDelta):
                window.first_token()
            yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def end_window(window: MeterWindow, usage: Usage) -> Receipt:
    """Close ``window`` on a finished answer's token counts, reasoning tokens included."""
    return window.end(usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens)


def client_error(exc: BackendError) -> APIError:
    """Backend errors are written for clients (keys scrubbed, no internals)."""
    return APIError(exc.status_code, str(exc), type=exc.error_type, code=exc.code)
