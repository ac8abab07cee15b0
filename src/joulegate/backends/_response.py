"""Reading one upstream answer into events, every wait bounded by a deadline.

An answer is an SSE stream of chat-completion chunks or, from an upstream that ignores
``stream=true``, one JSON completion; either way it becomes text deltas and one
:class:`Finish`. An error status becomes the matching :class:`BackendError`, with as much of
the upstream's message as is safe to show.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import httpx

from joulegate.backends import sse
from joulegate.backends._errors import describe, status_error, timeout_error
from joulegate.backends.base import BackendError, Finish, StreamEvent, Usage
from joulegate.backends.settings import TierSettings

__all__ = ["EstimatedUsage", "answer_events", "error_for_status", "estimate_tokens", "finish"]

# Most of an error body kept for the message; upstream errors can be whole HTML pages.
ERROR_BODY_LIMIT = 4096
# How long to wait for the end of a response after its [DONE] event.
DRAIN_S = 1.0

Redact = Callable[[str], str]


@dataclass(frozen=True)
class EstimatedUsage(Usage):
    """Token counts the upstream did not report, estimated from text length.

    Meters and receipts can tell it apart (``isinstance(usage, EstimatedUsage)``).
    """

    method: str = "chars/4"


def estimate_tokens(chars: int) -> int:
    """The common rule of thumb for English text: about four characters per token."""
    return (chars + 3) // 4


async def answer_events(
    resp: httpx.Response,
    tier: TierSettings,
    acc: sse.ChunkReader,
    *,
    first_by: float,
    deadline: float,
    redact: Redact,
) -> AsyncGenerator[StreamEvent, None]:
    """The text deltas of a successful response; ``acc`` keeps how the answer ended.

    The first chunk must arrive by ``first_by``; each later one by ``deadline``.
    """
    if "text/event-stream" not in resp.headers.get("content-type", ""):
        # The upstream ignored stream=true and sent one JSON completion.
        for event in acc.whole(await _read(resp, tier, first_by)):
            yield event
        return
    data = sse.iter_data(resp.aiter_lines())
    try:
        got_first = False
        while True:
            try:
                async with asyncio.timeout_at(deadline if got_first else first_by):
                    payload = await anext(data, None)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise timeout_error(tier, exc, first=not got_first) from None
            except httpx.HTTPError as exc:
                raise BackendError(
                    f"tier {tier.name!r} broke the stream: {describe(exc)}"
                ) from None
            if payload is None:
                return
            if payload == sse.DONE:
                acc.done = True
                await _drain(data)
                return
            for event in acc.feed(payload, redact):
                got_first = True
                yield event
    finally:
        await data.aclose()


def finish(acc: sse.ChunkReader, prompt_chars: int) -> Finish:
    """How the answer ended, with token counts estimated when the upstream sent none.

    An answer without a finish reason was cut off, and one with nothing in it (no content,
    no tool call, no reasoning) is no answer: llama-cpp-python's server, interrupted by a
    concurrent request, sends a role chunk and ``[DONE]``. Both raise a retryable error,
    so the pipeline falls back instead of returning a 200 with nothing in it.
    """
    if acc.finish_reason is None:
        what = "any output" if acc.empty else f"{len(acc.text)} characters"
        raise BackendError(
            f"tier {acc.tier!r} ended the stream without finishing (no finish reason, "
            f"after {what}): the answer was cut off"
        )
    if acc.empty:
        raise BackendError(
            f"tier {acc.tier!r} sent an empty answer (finish reason {acc.finish_reason!r}, "
            "no content, no tool calls)"
        )
    usage = acc.usage
    if usage is None:
        output_chars = len(acc.text) + acc.reasoning_chars + acc.other_chars
        usage = EstimatedUsage(
            estimate_tokens(prompt_chars),
            estimate_tokens(output_chars),
            estimate_tokens(acc.reasoning_chars),
        )
    elif acc.reasoning_chars and not usage.reasoning_tokens:
        # The upstream counted the reasoning in completion_tokens but did not say how much
        # of it there was (vLLM, llama.cpp): estimate the share, never more than the whole.
        reasoning = min(usage.completion_tokens, estimate_tokens(acc.reasoning_chars))
        usage = Usage(usage.prompt_tokens, usage.completion_tokens, reasoning)
    return Finish(
        acc.finish_reason,
        usage,
        logprobs=tuple(acc.logprobs) if acc.logprobs else None,
        choice_extra=acc.finish_choice,
        chunk_extra=acc.chunk_extra,
        usage_extra=acc.usage_extra,
    )


async def error_for_status(
    resp: httpx.Response, tier: TierSettings, by: float, redact: Redact
) -> BackendError:
    """The error an HTTP error status means, quoting the start of the upstream's body."""
    raw = b""
    try:
        async with asyncio.timeout_at(by):
            async for chunk in resp.aiter_bytes():
                raw += chunk
                if len(raw) >= ERROR_BODY_LIMIT:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass
    return status_error(tier, resp.status_code, redact(sse.error_message(raw)))


async def _read(resp: httpx.Response, tier: TierSettings, by: float) -> bytes:
    try:
        async with asyncio.timeout_at(by):
            return await resp.aread()
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise timeout_error(tier, exc, first=True) from None
    except httpx.HTTPError as exc:
        raise BackendError(f"tier {tier.name!r} broke its answer: {describe(exc)}") from None


async def _drain(data: AsyncGenerator[str, None]) -> None:
    """Read to the end of a response after ``[DONE]``.

    Only a response read to its end goes back to the keep-alive pool; one closed early
    closes its connection, and every request would then pay a new TCP (and TLS) handshake.
    """
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in data:
                pass
