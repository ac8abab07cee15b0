"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint as a tier.

vLLM, Ray Serve LLM, llama.cpp's server, Ollama and hosted APIs all speak the same
streaming protocol, so one backend reaches them all. It always streams upstream with
``stream_options.include_usage`` (the pipeline collects the stream for non-streaming
clients), so token counts reach the meter whatever the client asked for.

Failure handling follows one rule: a request may be retried, on this tier or the next,
only while nothing has reached the client. Before the first event, connection errors,
5xx answers and broken streams are retried here with backoff and then surface as
retryable errors the pipeline falls back on; after it, errors end the stream in-band.
A :class:`~joulegate.backends.breaker.CircuitBreaker` skips a tier that keeps failing.

``base_url`` is the server root *without* ``/v1`` (``http://gpu-1:8000``); the backend
appends ``/v1/chat/completions``. A trailing ``/v1`` is tolerated and stripped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from joulegate.backends import sse
from joulegate.backends.base import (
    Backend,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatParams,
    Finish,
    PromptTooLong,
    StreamEvent,
    Usage,
)
from joulegate.backends.breaker import BreakerSettings, CircuitBreaker, ProbeResult
from joulegate.backends.prompt_frame import message_text
from joulegate.backends.sse import MalformedResponse

if TYPE_CHECKING:
    from joulegate.config import TierSettings

log = logging.getLogger("joulegate.http_backend")

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
# Backoff between attempts on one tier: base * 2**attempt, capped, times a random factor.
RETRY_BASE_S = 0.2
RETRY_CAP_S = 2.0
# Most of an error body kept for the message; upstream errors can be whole HTML pages.
ERROR_BODY_LIMIT = 4096
# Connection pools per upstream tier: httpcore checks every pooled connection on each
# request (O(connections)), so several small pools keep that check short under load.
POOL_SHARDS = 8
# How long to wait for the end of a response after its [DONE] event.
DRAIN_S = 1.0


class UpstreamRejected(BackendError):
    """The upstream refused the request itself (a 4xx): another tier would refuse it too."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "upstream_rejected"
    retryable = False


class UpstreamMisconfigured(BackendError):
    """401/403/404 from upstream: our tier config is wrong (key, model), not the request.

    Another tier can still answer, so it is retryable across tiers; retrying the same
    tier is pointless, so it is never retried in place.
    """

    status_code = 502
    code = "upstream_misconfigured"


@dataclass(frozen=True)
class EstimatedUsage(Usage):
    """Token counts the upstream did not report, estimated from text length.

    Meters and receipts can tell it apart (``isinstance(usage, EstimatedUsage)``).
    """

    method: str = "chars/4"


def estimate_tokens(chars: int) -> int:
    """The common rule of thumb for English text: about four characters per token."""
    return (chars + 3) // 4


class HTTPBackend(Backend):
    def __init__(
        self,
        tier: str,
        model: str,
        base_url: str,
        *,
        api_key_env: str | None = None,
        connect_timeout_s: float = 5.0,
        first_token_timeout_s: float = 60.0,
        total_timeout_s: float = 600.0,
        max_retries: int = 2,
        health_path: str = "/health",
        extra_body: dict[str, Any] | None = None,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        breaker: BreakerSettings | None = None,
    ) -> None:
        self.tier = tier
        self.model = model
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix("/v1")
        self.api_key_env = api_key_env
        self.connect_timeout_s = connect_timeout_s
        self.first_token_timeout_s = first_token_timeout_s
        self.total_timeout_s = total_timeout_s
        self.max_retries = max_retries
        self.health_path = health_path if health_path.startswith("/") else f"/{health_path}"
        self.extra_body = dict(extra_body or {})
        self.limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_keepalive_connections
        )
        self.breaker = CircuitBreaker(tier, self.probe, breaker)
        self._client: httpx.AsyncClient | None = None
        self._shards: list[httpx.AsyncClient] = []
        self._in_flight: list[int] = []
        self._per_shard = 1
        self._warned_no_usage = False

    @classmethod
    def from_tier(cls, tier: TierSettings, breaker: BreakerSettings | None = None) -> HTTPBackend:
        if not tier.base_url:
            raise ValueError(f"tier {tier.name!r}: kind = 'openai' needs base_url")
        breaker = breaker or BreakerSettings(
            failure_threshold=tier.breaker_failure_threshold,
            probe_interval_s=tier.breaker_probe_interval_s,
            probe_max_interval_s=tier.breaker_probe_max_interval_s,
        )
        return cls(
            tier.name,
            tier.model,
            tier.base_url,
            api_key_env=tier.api_key_env,
            connect_timeout_s=tier.connect_timeout_s,
            first_token_timeout_s=tier.first_token_timeout_s,
            total_timeout_s=tier.total_timeout_s,
            max_retries=tier.max_retries,
            health_path=tier.health_path,
            extra_body=tier.extra_body,
            max_connections=tier.max_connections,
            breaker=breaker,
        )

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is None:
            # The read timeout bounds the silence between two chunks, so a stream that
            # stalls after its first token cannot hold a connection until total_timeout_s.
            timeout = httpx.Timeout(
                connect=self.connect_timeout_s,
                read=self.first_token_timeout_s,
                write=self.connect_timeout_s,
                pool=self.connect_timeout_s,
            )
            per = -(-(self.limits.max_connections or 100) // POOL_SHARDS)
            self._per_shard = per
            self._shards = [
                httpx.AsyncClient(
                    base_url=self.base_url,
                    timeout=timeout,
                    limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
                )
                for _ in range(POOL_SHARDS)
            ]
            self._in_flight = [0] * POOL_SHARDS
            self._client = self._shards[0]
        if self.api_key_env and not os.environ.get(self.api_key_env):
            log.warning("tier %s: $%s is not set; requests will fail", self.tier, self.api_key_env)

    async def aclose(self) -> None:
        await self.breaker.aclose()
        shards, self._shards, self._client = self._shards, [], None
        for client in shards:
            await client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise BackendUnavailable(f"tier {self.tier!r} is not started")
        return self._client

    # -- health -----------------------------------------------------------------------

    async def health(self) -> bool:
        """Cheap: the breaker's view, no network (load balancers poll this often)."""
        return self.breaker.allow()

    def health_report(self) -> dict[str, Any]:
        return {"endpoint": self.base_url, "model": self.model, **self.breaker.snapshot()}

    async def probe(self) -> ProbeResult:
        """GET the health path; when the server has none (404), ``GET /v1/models``."""
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self.connect_timeout_s * 2):
                resp = await self.client.get(self.health_path, headers=self._headers())
                path = self.health_path
                if resp.status_code in (404, 405) and self.health_path != MODELS_PATH:
                    resp = await self.client.get(MODELS_PATH, headers=self._headers())
                    path = MODELS_PATH
        except (TimeoutError, httpx.TimeoutException):
            return ProbeResult(False, "timed out", None, time.time())
        except (httpx.HTTPError, BackendError) as exc:
            return ProbeResult(False, _describe(exc), None, time.time())
        ms = (time.perf_counter() - t0) * 1000
        ok = 200 <= resp.status_code < 300
        return ProbeResult(ok, f"{path} -> HTTP {resp.status_code}", ms, time.time())

    # -- requests ---------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        """Authorization, when the tier has a key; raises if its variable is unset."""
        headers: dict[str, str] = {}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise UpstreamMisconfigured(
                    f"tier {self.tier!r}: the API key variable ${self.api_key_env} is not set"
                )
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "***") if key else text

    def body(self, params: ChatParams) -> dict[str, Any]:
        """The upstream request: client extras, then tier extras, then what we insist on."""
        body: dict[str, Any] = {**params.extra, **self.extra_body}
        stream_options = body.get("stream_options")
        body.update(
            model=self.model,
            messages=params.messages,
            stream=True,
            stream_options={
                **(stream_options if isinstance(stream_options, dict) else {}),
                "include_usage": True,
            },
        )
        for name, value in (
            ("max_tokens", params.max_tokens),
            ("temperature", params.temperature),
            ("top_p", params.top_p),
            ("seed", params.seed),
        ):
            if value is not None:
                body[name] = value
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    async def stream(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        self._check_breaker()
        body = self.body(params)
        prompt_chars = sum(len(message_text(m)) for m in params.messages)
        deadline = asyncio.get_running_loop().time() + self.total_timeout_s
        attempt = 0
        while True:
            events = self._attempt(body, deadline, prompt_chars)
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
            or attempt >= self.max_retries
            or not self.breaker.allow()
        ):
            return None
        delay = min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)
        if asyncio.get_running_loop().time() + delay >= deadline:
            return None
        return delay

    def _pick_shard(self) -> int:
        """The first pool with a free connection: one request at a time reuses one
        connection; concurrency spreads over as few pools as it needs."""
        for i, n in enumerate(self._in_flight):
            if n < self._per_shard:
                return i
        return min(range(len(self._in_flight)), key=self._in_flight.__getitem__)

    async def _attempt(
        self, body: dict[str, Any], deadline: float, prompt_chars: int
    ) -> AsyncGenerator[StreamEvent, None]:
        if not self._shards:
            raise BackendUnavailable(f"tier {self.tier!r} is not started")
        shard = self._pick_shard()
        self._in_flight[shard] += 1
        events = self._attempt_on(self._shards[shard], body, deadline, prompt_chars)
        try:
            async for event in events:
                yield event
        finally:
            self._in_flight[shard] -= 1
            await events.aclose()

    async def _attempt_on(
        self, client: httpx.AsyncClient, body: dict[str, Any], deadline: float, prompt_chars: int
    ) -> AsyncGenerator[StreamEvent, None]:
        """One upstream request, as events; every wait is bounded by a deadline."""
        loop = asyncio.get_running_loop()
        first_by = min(deadline, loop.time() + self.first_token_timeout_s)
        headers = {**self._headers(), "accept": "text/event-stream"}
        request = client.build_request("POST", CHAT_PATH, json=body, headers=headers)
        try:
            async with asyncio.timeout_at(first_by):
                resp = await client.send(request, stream=True)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._timeout(exc, first=True) from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"tier {self.tier!r} is unreachable at {self.base_url}: {_describe(exc)}"
            ) from None
        data: AsyncGenerator[str, None] | None = None
        try:
            if resp.status_code >= 400:
                raise await self._status_error(resp, first_by)
            acc = sse.ChunkReader(self.tier)
            if "text/event-stream" not in resp.headers.get("content-type", ""):
                # The upstream ignored stream=true and sent one JSON completion.
                raw = await self._read(resp, first_by)
                events = acc.whole(raw)
            else:
                events = []
                data = sse.iter_data(resp.aiter_lines())
                got_first = False
                while True:
                    try:
                        async with asyncio.timeout_at(deadline if got_first else first_by):
                            payload = await anext(data, None)
                    except (TimeoutError, httpx.TimeoutException) as exc:
                        raise self._timeout(exc, first=not got_first) from None
                    except httpx.HTTPError as exc:
                        raise BackendError(
                            f"tier {self.tier!r} broke the stream: {_describe(exc)}"
                        ) from None
                    if payload is None:
                        break
                    if payload == sse.DONE:
                        acc.done = True
                        await _drain(data)
                        break
                    for event in acc.feed(payload, self._redact):
                        got_first = True
                        yield event
            for event in events:
                yield event
            yield self._finish(acc, prompt_chars)
        finally:
            if data is not None:
                await data.aclose()
            await resp.aclose()

    async def _read(self, resp: httpx.Response, by: float) -> bytes:
        try:
            async with asyncio.timeout_at(by):
                return await resp.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._timeout(exc, first=True) from None
        except httpx.HTTPError as exc:
            raise BackendError(f"tier {self.tier!r} broke its answer: {_describe(exc)}") from None

    def _finish(self, acc: sse.ChunkReader, prompt_chars: int) -> Finish:
        if acc.finish_reason is None and not acc.done:
            raise BackendError(f"tier {self.tier!r} ended the stream without finishing")
        usage = acc.usage
        if usage is None:
            level = logging.DEBUG if self._warned_no_usage else logging.WARNING
            log.log(level, "tier %s sent no usage; estimating tokens as chars/4", self.tier)
            self._warned_no_usage = True
            usage = EstimatedUsage(estimate_tokens(prompt_chars), estimate_tokens(len(acc.text)))
        return Finish(acc.finish_reason or "stop", usage)

    def _timeout(self, exc: Exception, *, first: bool) -> BackendError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return BackendUnavailable(
                f"tier {self.tier!r} did not accept a connection within {self.connect_timeout_s}s"
            )
        if first:
            return BackendTimeout(
                f"tier {self.tier!r} sent no token within {self.first_token_timeout_s}s"
            )
        return BackendTimeout(
            f"tier {self.tier!r} stalled mid-answer (limits: {self.first_token_timeout_s}s "
            f"between chunks, {self.total_timeout_s}s in all)"
        )

    async def _status_error(self, resp: httpx.Response, by: float) -> BackendError:
        status = resp.status_code
        try:
            async with asyncio.timeout_at(by):
                raw = b""
                async for chunk in resp.aiter_bytes():
                    raw += chunk
                    if len(raw) >= ERROR_BODY_LIMIT:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass
        message = self._redact(sse.error_message(raw))
        where = f"tier {self.tier!r} (HTTP {status})"
        if status in (401, 403):
            # Never echo the upstream's text: some APIs quote part of the key back.
            key = f"${self.api_key_env}" if self.api_key_env else "no API key configured"
            return UpstreamMisconfigured(f"{where} rejected joulegate's credentials ({key})")
        if status == 404:
            return UpstreamMisconfigured(
                f"{where}: model {self.model!r} or endpoint not found: {message}"
            )
        if status == 429 or status == 503:
            return BackendUnavailable(f"{where} is overloaded: {message}")
        if status >= 500 or status == 408:
            return BackendError(f"{where} failed: {message}")
        if _is_context_error(message):
            return PromptTooLong(message)
        return UpstreamRejected(f"{where} rejected the request: {message}")


def _is_context_error(message: str) -> bool:
    m = message.lower()
    return "context" in m and ("length" in m or "window" in m or "token" in m)


async def _drain(data: AsyncGenerator[str, None]) -> None:
    """Read to the end of a response after ``[DONE]``.

    Only a response read to its end goes back to the keep-alive pool; one closed early
    closes its connection, and every request would then pay a new TCP (and TLS) handshake.
    """
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in data:
                pass


def _describe(exc: BaseException) -> str:
    """An httpx error without its request repr (which carries the URL and nothing else)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


__all__ = [
    "EstimatedUsage",
    "HTTPBackend",
    "MalformedResponse",
    "UpstreamMisconfigured",
    "UpstreamRejected",
]
