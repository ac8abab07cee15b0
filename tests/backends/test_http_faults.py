"""HTTPBackend against a real misbehaving server: every fault ends in the right error, fast."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from joulegate.backends.base import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatParams,
    Finish,
    PromptTooLong,
    TextDelta,
)
from joulegate.backends.breaker import BreakerState
from joulegate.backends.http import EstimatedUsage, HTTPBackend, UpstreamMisconfigured
from joulegate.backends.settings import TierSettings
from joulegate.backends.sse import MalformedResponse

from backends.upstreams import FaultServer, free_port, open_connections_to

PARAMS = ChatParams(messages=[{"role": "user", "content": "Say hello."}], max_tokens=16)


def backend(url: str, **kw: Any) -> HTTPBackend:
    """A tier at ``url`` with short timeouts; ``kw`` overrides any ``TierSettings`` field."""
    opts: dict[str, Any] = dict(
        connect_timeout_s=1.0, first_token_timeout_s=2.0, total_timeout_s=10.0, max_retries=0
    )
    opts.update(kw)
    return HTTPBackend(TierSettings(name="up", model="fault-model", base_url=url, **opts))


async def collect(b: HTTPBackend, params: ChatParams = PARAMS) -> tuple[str, Finish]:
    text, finish = [], None
    async for event in b.stream(params):
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, Finish):
            finish = event
    assert finish is not None
    return "".join(text), finish


def answer(b: HTTPBackend, params: ChatParams = PARAMS) -> tuple[str, Finish]:
    async def go() -> tuple[str, Finish]:
        await b.start()
        try:
            return await collect(b, params)
        finally:
            await b.aclose()

    return asyncio.run(go())


def fails_with(b: HTTPBackend, params: ChatParams = PARAMS) -> tuple[BackendError, float]:
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        answer(b, params)
    return info.value, time.monotonic() - t0


def test_stream_forces_usage_and_passes_extras_through(
    fault: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT_KEY", "sk-test-123")
    params = ChatParams(
        messages=PARAMS.messages,
        max_tokens=8,
        temperature=0.0,
        stop=["\n"],
        extra={"user": "alice", "stream_options": {"continuous_usage_stats": True}},
    )
    b = backend(fault.url, api_key_env="FAULT_KEY", extra_body={"top_k": 5})
    text, finish = answer(b, params)
    assert text == "Hello from the fault upstream."
    assert finish.finish_reason == "stop"
    assert (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (11, 6)
    assert not isinstance(finish.usage, EstimatedUsage)
    sent = fault.state()
    body = sent["last_body"]
    assert body["stream"] is True and body["model"] == "fault-model"
    assert body["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}
    assert (body["user"], body["top_k"]) == ("alice", 5)
    assert (body["stop"], body["max_tokens"], body["temperature"]) == (["\n"], 8, 0.0)
    assert sent["last_auth"] == "Bearer sk-test-123"


def test_finished_answers_leave_their_connection_in_the_pool(fault: FaultServer) -> None:
    """The pipeline stops reading at Finish; the connection must still be reusable."""

    async def go() -> list[int]:
        b = backend(fault.url)
        await b.start()
        open_after: list[int] = []
        try:
            for _ in range(3):
                events = b.stream(PARAMS)
                async for event in events:
                    if isinstance(event, Finish):
                        break
                await events.aclose()  # type: ignore[attr-defined]
                open_after.append(open_connections_to(fault.port))
        finally:
            await b.aclose()
        return open_after

    assert asyncio.run(go()) == [1, 1, 1]


def test_missing_usage_is_estimated_and_labelled(fault: FaultServer) -> None:
    fault.set(mode="nousage")
    _, finish = answer(backend(fault.url))
    assert isinstance(finish.usage, EstimatedUsage)
    assert finish.usage.method == "chars/4"
    assert finish.usage.completion_tokens == len("Hello from the fault upstream.") // 4 + 1


def test_an_upstream_that_ignores_stream_true_still_answers(fault: FaultServer) -> None:
    fault.set(mode="json")
    text, finish = answer(backend(fault.url))
    assert text == "Hello from the fault upstream."
    assert (finish.finish_reason, finish.usage.completion_tokens) == ("stop", 6)


def test_base_url_with_v1_suffix_is_tolerated(fault: FaultServer) -> None:
    text, _ = answer(backend(f"{fault.url}/v1/"))
    assert text.startswith("Hello")


def test_connection_refused_is_unavailable_after_retries() -> None:
    err, took = fails_with(backend(f"http://127.0.0.1:{free_port()}", max_retries=2))
    assert isinstance(err, BackendUnavailable) and err.retryable
    assert err.status_code == 503
    assert took < 3


def test_server_error_is_retried_then_retryable(fault: FaultServer) -> None:
    fault.set(mode="500")
    err, took = fails_with(backend(fault.url, max_retries=2))
    assert type(err) is BackendError and err.retryable and err.status_code == 502
    assert "upstream exploded" in str(err)
    assert fault.state()["requests"] == 3  # one try + two retries
    assert took < 5


def test_garbage_body_is_malformed_and_retryable(fault: FaultServer) -> None:
    fault.set(mode="garbage")
    err, _ = fails_with(backend(fault.url))
    assert isinstance(err, MalformedResponse) and err.retryable


def test_hang_before_headers_times_out_at_first_token_timeout(fault: FaultServer) -> None:
    fault.set(mode="hang")
    err, took = fails_with(backend(fault.url, first_token_timeout_s=1.0, max_retries=2))
    assert isinstance(err, BackendTimeout) and err.retryable and err.status_code == 504
    assert 0.9 < took < 3
    assert fault.state()["requests"] == 1  # a timeout already spent the budget: no retry


def test_stall_after_headers_times_out(fault: FaultServer) -> None:
    fault.set(mode="stall")
    err, took = fails_with(backend(fault.url, first_token_timeout_s=1.0))
    assert isinstance(err, BackendTimeout)
    assert took < 3


def test_total_timeout_bounds_a_slow_stream(fault: FaultServer) -> None:
    fault.set(mode="slow")  # 240 chunks x 50 ms: 12 s if nothing stopped it

    async def go() -> list[str]:
        b = backend(fault.url, total_timeout_s=1.0)
        await b.start()
        seen: list[str] = []
        try:
            with pytest.raises(BackendTimeout):
                async for event in b.stream(PARAMS):
                    if isinstance(event, TextDelta):
                        seen.append(event.text)
        finally:
            await b.aclose()
        return seen

    t0 = time.monotonic()
    seen = asyncio.run(go())
    assert seen and time.monotonic() - t0 < 3


def test_upstream_dying_mid_stream_is_an_error_after_the_first_tokens(fault_factory: Any) -> None:
    dying = fault_factory("die")

    async def go() -> list[str]:
        b = backend(dying.url)
        await b.start()
        seen: list[str] = []
        try:
            with pytest.raises(BackendError) as info:
                async for event in b.stream(PARAMS):
                    assert isinstance(event, TextDelta)
                    seen.append(event.text)
            assert info.value.retryable
        finally:
            await b.aclose()
        return seen

    assert asyncio.run(go()) == ["Hello", " from", " the"]
    assert dying.proc.wait(timeout=5) == 1


def test_closing_the_stream_cancels_the_upstream_request(fault: FaultServer) -> None:
    fault.set(mode="slow")

    async def go() -> None:
        b = backend(fault.url)
        await b.start()
        try:
            events = b.stream(PARAMS)
            for _ in range(2):
                assert isinstance(await anext(events), TextDelta)
            await events.aclose()  # type: ignore[attr-defined]
        finally:
            await b.aclose()

    asyncio.run(go())
    deadline = time.monotonic() + 3
    while fault.state()["cancelled"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    state = fault.state()
    assert (state["cancelled"], state["completed"]) == (1, 0)


def test_cancelling_the_consuming_task_cancels_the_upstream_request(fault: FaultServer) -> None:
    """How a disconnect really arrives under the server: the request task is cancelled."""
    fault.set(mode="slow")

    async def go() -> None:
        b = backend(fault.url)
        await b.start()
        got_two = asyncio.Event()

        async def consume() -> None:
            n = 0
            async for _ in b.stream(PARAMS):
                n += 1
                if n == 2:
                    got_two.set()

        task = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(got_two.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await b.aclose()

    asyncio.run(go())
    deadline = time.monotonic() + 3
    while fault.state()["cancelled"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fault.state()["cancelled"] == 1


def test_context_overflow_is_a_client_error_and_not_retried(fault: FaultServer) -> None:
    fault.set(mode="400")
    err, _ = fails_with(backend(fault.url, max_retries=2))
    assert isinstance(err, PromptTooLong) and not err.retryable and err.status_code == 400
    assert "maximum context length" in str(err)
    assert fault.state()["requests"] == 1


def test_rejected_credentials_are_our_502_and_never_leak_the_key(
    fault: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-very-secret-0123456789"
    monkeypatch.setenv("FAULT_KEY", secret)
    fault.set(mode="401")
    with caplog.at_level(logging.DEBUG):
        err, _ = fails_with(backend(fault.url, api_key_env="FAULT_KEY", max_retries=2))
    assert isinstance(err, UpstreamMisconfigured) and err.retryable and err.status_code == 502
    assert "$FAULT_KEY" in str(err)
    assert secret not in str(err) and secret not in caplog.text
    assert fault.state()["requests"] == 1  # a config error is not retried in place


def test_missing_api_key_variable_is_a_config_error(
    fault: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAULT_KEY_UNSET", raising=False)
    err, _ = fails_with(backend(fault.url, api_key_env="FAULT_KEY_UNSET"))
    assert isinstance(err, UpstreamMisconfigured) and "$FAULT_KEY_UNSET" in str(err)


def test_breaker_opens_skips_the_tier_and_closes_after_a_good_probe(fault: FaultServer) -> None:
    fault.set(mode="500")
    breaker = dict(
        breaker_failure_threshold=3, breaker_probe_interval_s=0.2, breaker_probe_max_interval_s=0.4
    )

    async def go() -> None:
        b = backend(fault.url, **breaker)
        await b.start()
        try:
            for _ in range(3):
                with pytest.raises(BackendError):
                    await collect(b)
            assert b.breaker.state is not BreakerState.CLOSED
            assert not await b.health()
            sent = fault.state()["requests"]
            t0 = time.monotonic()
            with pytest.raises(BackendUnavailable, match="circuit"):
                await collect(b)
            assert time.monotonic() - t0 < 0.1
            assert fault.state()["requests"] == sent  # nothing reached the upstream
            await asyncio.sleep(0.6)  # probes see /health answer 503 meanwhile
            assert b.breaker.last_probe is not None and not b.breaker.last_probe.ok
            fault.set(mode="ok")
            for _ in range(40):
                if b.breaker.state is BreakerState.CLOSED:
                    break
                await asyncio.sleep(0.1)
            assert b.breaker.state is BreakerState.CLOSED
            assert b.breaker.last_probe is not None and b.breaker.last_probe.ok
            text, _ = await collect(b)
            assert text.startswith("Hello")
        finally:
            await b.aclose()

    asyncio.run(go())


def test_probe_falls_back_to_models_when_there_is_no_health_path(fault: FaultServer) -> None:
    fault.set(health="missing")

    async def go() -> None:
        b = backend(fault.url)
        await b.start()
        try:
            result = await b.probe()
        finally:
            await b.aclose()
        assert result.ok and result.detail == "/v1/models -> HTTP 200"
        assert result.latency_ms is not None

    asyncio.run(go())


def test_probe_of_a_dead_tier_reports_it_down() -> None:
    async def go() -> None:
        b = backend(f"http://127.0.0.1:{free_port()}")
        await b.start()
        try:
            result = await b.probe()
        finally:
            await b.aclose()
        assert not result.ok and "Connect" in result.detail

    asyncio.run(go())
