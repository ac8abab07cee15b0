"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint as a tier.

vLLM, Ray Serve LLM, llama.cpp's server, Ollama and hosted APIs all speak the same
streaming protocol, so one backend reaches them all. It always streams upstream with
``stream_options.include_usage`` (``_request_body.py``), so token counts reach the meter
whatever the client asked for.

Failure handling follows one rule: a request may be retried, on this tier or the next,
only while nothing has reached the client. Before the first event, connection errors,
5xx answers and broken streams are retried here with backoff and then surface as
retryable errors the pipeline falls back on; after it, errors end the stream in-band.
A :class:`~joulegate.backends.breaker.CircuitBreaker` skips a tier that keeps failing.

Here: the backend's life (pools, health probe) and that retry rule. Beside it:
``_pool.py`` (sharded connection pools), ``_request_body.py`` (what is sent),
``_response.py`` (reading an answer), ``_errors.py`` (what a failure means).

``base_url`` is the server root *without* ``/v1`` (``http://gpu-1:8000``); the backend
appends ``/v1/chat/completions``. A trailing ``/v1`` is tolerated and stripped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from joulegate.backends import sse
from joulegate.backends._embeddings import EMBEDDINGS_PATH, embeddings_body, read_embeddings
from joulegate.backends._errors import (
    UpstreamMisconfigured,
    UpstreamRejected,
    describe,
    status_error,
    timeout_error,
)
from joulegate.backends._pool import ShardedPool
from joulegate.backends._request_body import reads_logprobs, request_body
from joulegate.backends._response import (
    ERROR_BODY_LIMIT,
    EstimatedUsage,
    answer_events,
    error_for_status,
    finish,
)
from joulegate.backends._text_completion import (
    COMPLETIONS_PATH,
    TextChunkReader,
    text_request_body,
)
from joulegate.backends.base import (
    Backend,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatParams,
    Embeddings,
    EmbedParams,
    Finish,
    StreamEvent,
    message_text,
)
from joulegate.backends.breaker import BreakerSettings, CircuitBreaker, ProbeResult
from joulegate.backends.settings import TierSettings
from joulegate.backends.sse import MalformedResponse

__all__ = [
    "EstimatedUsage",
    "HTTPBackend",
    "MalformedResponse",
    "UpstreamMisconfigured",
    "UpstreamRejected",
]

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
# Backoff between attempts on one tier: base * 2**attempt, capped, times a random factor.
RETRY_BASE_S = 0.2
RETRY_CAP_S = 2.0


class HTTPBackend(Backend):
    """One ``kind = "openai"`` tier, configured by its :class:`TierSettings`."""

    def __init__(self, settings: TierSettings) -> None:
        if not settings.base_url:
            raise ValueError(f"tier {settings.name!r}: kind = 'openai' needs base_url")
        self.settings = settings
        self.tier = settings.name
        self.model = settings.model
        self.base_url = settings.base_url.rstrip("/").removesuffix("/v1")
        path = settings.health_path
        self.health_path = path if path.startswith("/") else f"/{path}"
        breaker = BreakerSettings(
            failure_threshold=settings.breaker_failure_threshold,
            probe_interval_s=settings.breaker_probe_interval_s,
            probe_max_interval_s=settings.breaker_probe_max_interval_s,
        )
        self.breaker = CircuitBreaker(self.tier, self.probe, breaker)
        self._pool: ShardedPool | None = None
        self._warned_no_usage = False

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if self._pool is None:
            # The read timeout bounds the silence between two chunks, so a stream that
            # stalls after its first token cannot hold a connection until total_timeout_s.
            timeout = httpx.Timeout(
                connect=s.connect_timeout_s,
                read=s.first_token_timeout_s,
                write=s.connect_timeout_s,
                pool=s.connect_timeout_s,
            )
            self._pool = ShardedPool(self.base_url, timeout, s.max_connections)
        if s.api_key_env and not os.environ.get(s.api_key_env):
            log.warning("tier %s: $%s is not set; requests will fail", self.tier, s.api_key_env)

    async def aclose(self) -> None:
        await self.breaker.aclose()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()

    def _started(self) -> ShardedPool:
        if self._pool is None:
            raise BackendUnavailable(f"tier {self.tier!r} is not started")
        return self._pool

    # -- health -----------------------------------------------------------------------

    async def health(self) -> bool:
        """Cheap: the breaker's view, no network (load balancers poll this often)."""
        return self.breaker.allow()

    async def probe(self) -> ProbeResult:
        """GET the health path; when the server has none (404), ``GET /v1/models``."""
        t0 = time.perf_counter()
        try:
            client = self._started().any
            async with asyncio.timeout(self.settings.connect_timeout_s * 2):
                resp = await client.get(self.health_path, headers=self._headers())
                path = self.health_path
                if resp.status_code in (404, 405) and self.health_path != MODELS_PATH:
                    resp = await client.get(MODELS_PATH, headers=self._headers())
                    path = MODELS_PATH
        except (TimeoutError, httpx.TimeoutException):
            return ProbeResult(False, "timed out", None, time.time())
        except (httpx.HTTPError, BackendError) as exc:
            return ProbeResult(False, describe(exc), None, time.time())
        ms = (time.perf_counter() - t0) * 1000
        ok = 200 <= resp.status_code < 300
        return ProbeResult(ok, f"{path} -> HTTP {resp.status_code}", ms, time.time())

    # -- requests ---------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        """Authorization, when the tier has a key; raises if its variable is unset."""
        headers: dict[str, str] = {}
        env = self.settings.api_key_env
        if env:
            key = os.environ.get(env)
            if not key:
                raise UpstreamMisconfigured(
                    f"tier {self.tier!r}: the API key variable ${env} is not set"
                )
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        env = self.settings.api_key_env
        key = os.environ.get(env) if env else None
        return text.replace(key, "***") if key else text

    def stream(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        return self._answer(params, text=False)

    def complete_text(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        """``/v1/completions`` upstream: the same retries, breaker and reading as chat."""
        return self._answer(params, text=True)

    async def _answer(self, params: ChatParams, *, text: bool) -> AsyncIterator[StreamEvent]:
        self._check_breaker()
        logprobs = (False, False)
        if text:
            body = text_request_body(params, self.model, self.settings.extra_body)
            prompt_chars = len(params.prompt or "")
        else:
            body = request_body(
                params, self.model, self.settings.extra_body, self.settings.supported
            )
            prompt_chars = sum(len(message_text(m)) for m in params.messages)
            logprobs = reads_logprobs(params, self.settings.supported)
        deadline = asyncio.get_running_loop().time() + self.settings.total_timeout_s
        attempt = 0
        while True:
            events = self._attempt(body, deadline, prompt_chars, text=text, logprobs=logprobs)
            try:
                first = await anext(events)
                break
            except BackendError as exc:
                await events.aclose()
                self._count_failure(exc)
                delay = self._retry_delay(exc, attempt, deadline)
                if delay is None:
                    raise
                log.warning(
                    "tier %s: attempt %d failed (%s); retrying in %.2fs",
                    self.tier,
                    attempt + 1,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                attempt += 1
                self._check_breaker()
        # The upstream answered: that is the evidence the breaker wants.
        self.breaker.record_success()
        try:
            yield first
            async for event in events:
                yield event
        except BackendError as exc:
            self._count_failure(exc)
            raise
        finally:
            # Also runs when the client disconnects (the pipeline closes us): closing an
            # unfinished response closes its connection, which cancels the upstream.
            await events.aclose()

    async def embed(self, params: EmbedParams, on_start: Callable[[], None]) -> Embeddings:
        """``/v1/embeddings`` upstream, with the chat path's breaker and retries in place."""
        self._check_breaker()
        body = embeddings_body(params, self.model)
        deadline = asyncio.get_running_loop().time() + self.settings.total_timeout_s
        attempt = 0
        while True:
            try:
                result = await self._embed_once(body, params, deadline)
                break
            except BackendError as exc:
                self._count_failure(exc)
                delay = self._retry_delay(exc, attempt, deadline)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1
                self._check_breaker()
        self.breaker.record_success()
        return result

    async def _embed_once(
        self, body: dict[str, Any], params: EmbedParams, deadline: float
    ) -> Embeddings:
        pool = self._started()
        async with pool.client() as client:
            resp = await self._reach(
                client.post(EMBEDDINGS_PATH, json=body, headers=self._headers()), deadline
            )
        if resp.status_code >= 400:
            message = self._redact(sse.error_message(resp.content[:ERROR_BODY_LIMIT]))
            raise status_error(self.settings, resp.status_code, message)
        return read_embeddings(resp.content, self.tier, params)

    async def _reach(self, send: Awaitable[httpx.Response], until: float) -> httpx.Response:
        """The upstream's response to ``send``, its headers due by ``until``: no answer in
        time is the tier's timeout, no connection its being unreachable (both retryable)."""
        try:
            async with asyncio.timeout_at(until):
                return await send
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise timeout_error(self.settings, exc, first=True) from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"tier {self.tier!r} is unreachable at {self.base_url}: {describe(exc)}"
            ) from None

    def _check_breaker(self) -> None:
        if not self.breaker.allow():
            raise BackendUnavailable(
                f"tier {self.tier!r} is unavailable: {self.breaker.consecutive_failures} "
                f"consecutive failures (last: {self.breaker.last_failure}); "
                f"circuit {self.breaker.state}, probing its health"
            )

    def _count_failure(self, exc: BackendError) -> None:
        if exc.retryable:  # a 4xx about the request says nothing about the tier's health
            self.breaker.record_failure(str(exc))

    def _retry_delay(self, exc: BackendError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before retrying on this tier, or None to give up on it."""
        if (
            not exc.retryable
            or isinstance(exc, BackendTimeout | UpstreamMisconfigured)  # would only repeat
            or attempt >= self.settings.max_retries
            or not self.breaker.allow()
        ):
            return None
        delay = min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)
        if asyncio.get_running_loop().time() + delay >= deadline:
            return None
        return delay

    async def _attempt(
        self,
        body: dict[str, Any],
        deadline: float,
        prompt_chars: int,
        *,
        text: bool = False,
        logprobs: tuple[bool, bool] = (False, False),
    ) -> AsyncGenerator[StreamEvent, None]:
        """One upstream request, as events; every wait is bounded by a deadline.

        ``text``: a plain-text completion (``/v1/completions``), else a chat completion.
        ``logprobs``: whether to read the tokens' log-probs, and to hide them from the client
        (``reads_logprobs``).
        """
        pool = self._started()
        first_by = min(
            deadline, asyncio.get_running_loop().time() + self.settings.first_token_timeout_s
        )
        headers = {**self._headers(), "accept": "text/event-stream"}
        async with pool.client() as client:
            path = COMPLETIONS_PATH if text else CHAT_PATH
            request = client.build_request("POST", path, json=body, headers=headers)
            resp = await self._reach(client.send(request, stream=True), first_by)
            read, hide = logprobs
            acc = (
                TextChunkReader(self.tier)
                if text
                else sse.ChunkReader(self.tier, read_logprobs=read, hide_logprobs=hide)
            )
            events = answer_events(
                resp, self.settings, acc, first_by=first_by, deadline=deadline, redact=self._redact
            )
            try:
                if resp.status_code >= 400:
                    raise await error_for_status(resp, self.settings, first_by, self._redact)
                async for event in events:
                    yield event
                yield self._finish(acc, prompt_chars)
            finally:
                await events.aclose()
                await resp.aclose()

    def _finish(self, acc: sse.ChunkReader, prompt_chars: int) -> Finish:
        done = finish(acc, prompt_chars)
        if isinstance(done.usage, EstimatedUsage):
            level = logging.DEBUG if self._warned_no_usage else logging.WARNING
            log.log(level, "tier %s sent no usage; estimating tokens as chars/4", self.tier)
            self._warned_no_usage = True
        return done
