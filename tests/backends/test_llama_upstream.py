"""HTTPBackend against a real second model server: llama-cpp-python's OpenAI server."""

from __future__ import annotations

import asyncio
import time

import pytest

from joulegate.backends.base import BackendError, ChatParams, Finish, TextDelta
from joulegate.backends.http import HTTPBackend
from joulegate.backends.settings import TierSettings

from backends.upstreams import LLAMA_MODEL_ALIAS, open_connections_to

QUESTION = [{"role": "user", "content": "Write one sentence about the sea."}]


def backend(url: str) -> HTTPBackend:
    return HTTPBackend(
        TierSettings(
            name="llama-server",
            model=LLAMA_MODEL_ALIAS,
            base_url=url,
            connect_timeout_s=2.0,
            first_token_timeout_s=30.0,
            total_timeout_s=60.0,
        )
    )


def _answer(url: str, params: ChatParams) -> tuple[list[TextDelta], Finish]:
    """The deltas and the finish of one streamed answer from the server at ``url``."""

    async def go() -> tuple[list[TextDelta], Finish]:
        b = backend(url)
        await b.start()
        deltas: list[TextDelta] = []
        finish = None
        try:
            async for event in b.stream(params):
                if isinstance(event, TextDelta):
                    deltas.append(event)
                elif isinstance(event, Finish):
                    finish = event
        finally:
            await b.aclose()
        assert finish is not None
        return deltas, finish

    return asyncio.run(go())


def test_streams_an_answer_with_token_counts(llama_server: str) -> None:
    deltas, finish = _answer(llama_server, ChatParams(QUESTION, max_tokens=12, temperature=0.0))
    assert len(deltas) > 1, "streamed chunk by chunk, not as one block"
    assert "".join(d.text for d in deltas).strip()
    assert finish.finish_reason in ("stop", "length")
    # llama-cpp-python's server ignores stream_options.include_usage, so these are the
    # labelled estimate; what matters to the meter is that counts always arrive.
    assert finish.usage.prompt_tokens > 0 and finish.usage.completion_tokens > 0


def test_context_overflow_ends_in_an_error_the_pipeline_can_fall_back_on(
    llama_server: str,
) -> None:
    """llama-cpp-python's server answers a streamed overflow with 200 and an empty stream
    (its 400 only comes for stream=false), so the backend sees a stream with no finish:
    a retryable error, and the next tier (maybe with a longer context) gets the request.
    A server that says 400 up front gets ``PromptTooLong`` (see test_http_faults)."""
    long = [{"role": "user", "content": "word " * 1500}]  # n_ctx is 1024

    async def go() -> None:
        b = backend(llama_server)
        await b.start()
        try:
            async for _ in b.stream(ChatParams(long, max_tokens=8)):
                pass
        finally:
            await b.aclose()

    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        asyncio.run(go())
    assert info.value.retryable and "without finishing" in str(info.value)
    assert time.monotonic() - t0 < 10


def test_closing_mid_stream_closes_the_upstream_connection(llama_server: str) -> None:
    port = int(llama_server.rsplit(":", 1)[1])

    async def go() -> float:
        b = backend(llama_server)
        await b.start()
        try:
            events = b.stream(ChatParams(QUESTION, max_tokens=400, temperature=0.0))
            assert isinstance(await anext(events), TextDelta)
            assert open_connections_to(port) == 1
            await events.aclose()  # type: ignore[attr-defined]
            # The client is still open: a finished response would sit in its keep-alive
            # pool, an abandoned one must be gone.
            assert open_connections_to(port) == 0
            # And the server is free again at once, not still generating 400 tokens.
            t0 = time.monotonic()
            async for _ in b.stream(ChatParams(QUESTION, max_tokens=4)):
                pass
            return time.monotonic() - t0
        finally:
            await b.aclose()

    assert asyncio.run(go()) < 10


@pytest.mark.parametrize("client_asked", [False, True])
def test_the_upstreams_token_logprobs_reach_the_cascade(
    llama_server: str, client_asked: bool
) -> None:
    """``want_logprobs`` (a cascade's cheap try, ``joulegate calibrate``) asks the upstream
    for ``logprobs`` and reads them into the events; the client sees the OpenAI object only
    when it asked for it itself."""
    # (llama-cpp-python's server sends log-probs only with a ``top_logprobs``.)
    extra = {"logprobs": True, "top_logprobs": 2} if client_asked else {}
    params = ChatParams(QUESTION, max_tokens=12, temperature=0.0, extra=extra, want_logprobs=True)
    deltas, finish = _answer(llama_server, params)
    assert finish.logprobs is not None
    assert 0 < len(finish.logprobs) <= 12 and all(lp <= 0.0 for lp in finish.logprobs)
    streamed = [lp for d in deltas for lp in (d.logprobs or ())]
    assert streamed and finish.logprobs[: len(streamed)] == tuple(streamed)
    shown = any(d.choice_extra and "logprobs" in d.choice_extra for d in deltas)
    assert shown == client_asked
