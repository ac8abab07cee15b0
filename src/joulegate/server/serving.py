"""Chat completions: request → router → backend → meter → ledger → response.

No HTTP here: ``ChatService.create`` takes a validated request and returns a body (or an
SSE byte stream) plus headers, so the logic runs the same under the server, the CLI and
tests. The ledger row is committed *before* the last byte of a response is produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from joulegate.backends.base import (
    Backend,
    BackendError,
    ChatParams,
    Completion,
    Finish,
    Started,
    StreamEvent,
    TextDelta,
)
from joulegate.ledger import KeyInfo, LedgerRecord
from joulegate.metering import MeterWindow, Receipt, observe
from joulegate.server.budget import Hold, prompt_token_bound
from joulegate.server.chunks import ChunkWriter, completion_body, new_id
from joulegate.server.errors import APIError
from joulegate.server.gateway import Gateway, Tier
from joulegate.server.planning import Plan, plan_request, with_fallbacks
from joulegate.server.protocol import ChatCompletionRequest

log = logging.getLogger("joulegate.serving")

_T = TypeVar("_T")
# A stream that has produced its first event: the rest of it, and that event.
_Opened = tuple[AsyncIterator[TextDelta | Finish], TextDelta | Finish]


@dataclass
class Outcome:
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None


@dataclass
class _Call:
    """One request's bookkeeping as it moves through the pipeline."""

    request_id: str
    started: datetime
    stream: bool
    key: KeyInfo | None
    route: dict[str, Any] | None
    fallback_from: list[str] = field(default_factory=list)
    hold: Hold | None = None
    max_tokens: int = 0
    prompt_bound: int = 0

    @property
    def key_id(self) -> str | None:
        return self.key.key_id if self.key else None


class ChatService:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        # Ledger writes for streams the client abandoned: awaited on shutdown, not per request.
        self._detached: set[asyncio.Task[None]] = set()

    # -- entry point ------------------------------------------------------------------

    async def create(self, req: ChatCompletionRequest, key: KeyInfo | None = None) -> Outcome:
        plan = plan_request(self.gw, req)
        messages = req.messages_as_dicts()
        call = _Call(new_id(), datetime.now(UTC), req.stream, key, plan.route)
        max_tokens = req.token_limit()
        if key is not None and key.has_budget:
            # A budget needs a bound: a request without max_tokens gets the configured default.
            max_tokens = max_tokens or self.gw.settings.embedded.default_max_tokens
            call.max_tokens = max_tokens
            call.prompt_bound = prompt_token_bound(messages)
            plan = await self._reserve(plan, call)
        params = ChatParams(
            messages=messages,
            max_tokens=max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            stop=req.stop_list(),
            seed=req.seed,
            extra=req.passthrough(),
        )
        try:
            if req.stream:
                include_usage = bool(req.stream_options and req.stream_options.include_usage)
                return await self._start_stream(plan, params, call, include_usage)
            return await self._complete(plan, params, call)
        except BaseException:
            if call.hold is not None:  # never settled: give the reservation back
                await asyncio.shield(self.gw.budget.release(call.hold))
            raise

    async def _reserve(self, plan: Plan, call: _Call) -> Plan:
        """Hold the worst case against the key's budget; a downgrading key may move to a
        cheaper tier that its remaining budget still covers."""
        assert call.key is not None
        first = plan.tiers[0]
        candidates = [first.name]
        if call.key.on_exceed == "downgrade":
            i = self.gw.tiers.index(first)
            candidates += [t.name for t in reversed(self.gw.tiers[:i])]
        call.hold = await self.gw.budget.reserve(
            call.key, candidates, call.prompt_bound, call.max_tokens
        )
        if call.hold.tier == first.name:
            return plan
        route = {**(plan.route or {}), "tier": call.hold.tier, "downgraded_from": first.name}
        call.route = route
        return Plan(with_fallbacks(self.gw, self.gw.tier(call.hold.tier)), route)

    # -- trying tiers in order --------------------------------------------------------

    async def _first_answer(
        self,
        plan: Plan,
        call: _Call,
        attempt: Callable[[Tier, MeterWindow], Awaitable[_T]],
    ) -> tuple[Tier, MeterWindow, _T]:
        """Run ``attempt`` on each planned tier until one succeeds. A retryable failure falls
        back to the next tier; the last failure is recorded and becomes the client's error."""
        for i, tier in enumerate(plan.tiers):
            window = self.gw.meter.begin(tier.name, weight=0.0 if tier.backend.queues else 1.0)
            try:
                return tier, window, await attempt(tier, window)
            except BackendError as exc:
                if await self._should_fall_back(exc, plan, i, call, tier, window):
                    continue
                await self._record_failure(call, tier, window, exc)
                raise _client_error(exc) from exc
        raise AssertionError("a plan always has a tier")  # pragma: no cover

    # -- non-streaming ----------------------------------------------------------------

    async def _complete(self, plan: Plan, params: ChatParams, call: _Call) -> Outcome:
        async def attempt(tier: Tier, window: MeterWindow) -> Completion:
            return await _collect(tier.backend, params, window)

        tier, window, completion = await self._first_answer(plan, call, attempt)
        receipt = window.end(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        await self._settle(call, tier, receipt, "ok", 200)
        info = self._info(call, tier, receipt)
        body = completion_body(
            call.request_id,
            tier.public_id,
            int(call.started.timestamp()),
            completion.text,
            completion.finish_reason,
            completion.usage,
            info,
        )
        return Outcome(self._headers(tier, receipt), body=body)

    # -- streaming --------------------------------------------------------------------

    async def _start_stream(
        self, plan: Plan, params: ChatParams, call: _Call, include_usage: bool
    ) -> Outcome:
        """Wait for the first event before answering, so a failing tier can still fall back
        and a bad request still gets a proper status code instead of a broken stream."""

        async def attempt(tier: Tier, window: MeterWindow) -> _Opened:
            events = _metered(tier.backend.stream(params), window)
            try:
                return events, await anext(events)
            except (BackendError, StopAsyncIteration) as exc:
                await events.aclose()  # type: ignore[attr-defined]
                if isinstance(exc, BackendError):
                    raise
                raise BackendError(f"tier {tier.name!r} sent an empty answer") from exc

        tier, window, (events, first) = await self._first_answer(plan, call, attempt)
        body = self._sse(tier, events, first, window, call, include_usage)
        return Outcome(self._headers(tier, None), stream=body)

    async def _sse(
        self,
        tier: Tier,
        events: AsyncIterator[TextDelta | Finish],
        first: TextDelta | Finish,
        window: MeterWindow,
        call: _Call,
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        out = ChunkWriter(call.request_id, tier.public_id)
        deltas = 0
        finished = False
        try:
            yield out.role()
            event: TextDelta | Finish | None = first
            while event is not None:
                if isinstance(event, TextDelta):
                    deltas += 1
                    yield out.delta(event.text)
                else:
                    finished = True
                    receipt = window.end(event.usage.prompt_tokens, event.usage.completion_tokens)
                    await self._settle(call, tier, receipt, "ok", 200)
                    info = self._info(call, tier, receipt)
                    yield out.finish(event.finish_reason, None if include_usage else info)
                    if include_usage:
                        yield out.usage(event.usage, info)
                    yield out.done()
                    return
                event = await anext(events, None)
            raise BackendError(f"tier {tier.name!r} ended the stream without finishing")
        except BackendError as exc:
            # Tokens already reached the client: no fallback now, say so in-band.
            finished = True
            await self._record_failure(call, tier, window, exc, completion_tokens=deltas)
            yield out.error(_client_error(exc).body())
            yield out.done()
        finally:
            if not finished:
                # The client went away mid-stream. The cancel scope that stopped us forbids
                # awaiting, so everything here is synchronous and the receipt is written by
                # a task of its own (drained on shutdown).
                receipt = window.end(0, deltas)
                task = asyncio.get_running_loop().create_task(
                    self._settle(call, tier, receipt, "cancelled", 499)
                )
                self._detached.add(task)
                task.add_done_callback(self._detached.discard)
            # Closing the backend's iterator is what stops the model (or the upstream call).
            await events.aclose()  # type: ignore[attr-defined]

    # -- helpers ----------------------------------------------------------------------

    async def _should_fall_back(
        self, exc: BackendError, plan: Plan, i: int, call: _Call, tier: Tier, window: MeterWindow
    ) -> bool:
        if not exc.retryable or i + 1 >= len(plan.tiers):
            return False
        window.abort()
        if call.hold is not None and call.key is not None:
            # The hold was sized for the failed tier; the next one needs its own.
            await self.gw.budget.release(call.hold)
            call.hold = None
            call.hold = await self.gw.budget.reserve(
                call.key, [plan.tiers[i + 1].name], call.prompt_bound, call.max_tokens
            )
        call.fallback_from.append(tier.name)
        log.warning(
            "tier %s failed (%s); falling back to %s", tier.name, exc, plan.tiers[i + 1].name
        )
        return True

    async def _record_failure(
        self,
        call: _Call,
        tier: Tier,
        window: MeterWindow,
        exc: BackendError,
        completion_tokens: int = 0,
    ) -> None:
        receipt = window.end(0, completion_tokens)
        status = _client_error(exc).status_code
        await self._settle(call, tier, receipt, "error", status, error=str(exc)[:500])

    async def _settle(
        self,
        call: _Call,
        tier: Tier,
        receipt: Receipt,
        status: str,
        http_status: int,
        error: str | None = None,
    ) -> None:
        """Count the receipt and make it durable; returns once the ledger has committed."""
        observe(receipt, status)
        if call.hold is not None:
            hold, call.hold = call.hold, None
            await self.gw.budget.settle(hold, receipt)
        await self.gw.ledger.record(
            self._record(call, tier, receipt, status, http_status, error=error)
        )

    def _record(
        self,
        call: _Call,
        tier: Tier,
        r: Receipt,
        status: str,
        http_status: int,
        error: str | None = None,
    ) -> LedgerRecord:
        return LedgerRecord(
            request_id=call.request_id,
            ts=call.started,
            key_id=call.key_id,
            tier=tier.name,
            model=tier.public_id,
            status=status,
            http_status=http_status,
            stream=call.stream,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            latency_ms=r.latency_ms,
            ttft_ms=r.ttft_ms,
            energy_j=r.energy_j,
            energy_source=r.energy_source,
            cost_usd=r.cost_usd,
            co2e_g=r.co2e_g,
            baseline_energy_j=r.baseline_energy_j,
            baseline_cost_usd=r.baseline_cost_usd,
            baseline_co2e_g=r.baseline_co2e_g,
            fallback_from=",".join(call.fallback_from) or None,
            error=error,
        )

    def _info(self, call: _Call, tier: Tier, receipt: Receipt) -> dict[str, Any]:
        info = {"request_id": call.request_id, **receipt.as_dict()}
        info["tier"] = tier.name
        info["model"] = tier.public_id
        if call.route is not None:
            info["route"] = call.route
        if call.fallback_from:
            info["fallback_from"] = list(call.fallback_from)
        return info

    def _headers(self, tier: Tier, receipt: Receipt | None) -> dict[str, str]:
        headers = {"x-joulegate-tier": tier.name, "x-joulegate-model": tier.public_id}
        if receipt is not None:
            headers.update(receipt.headers())
        return headers

    async def drain(self) -> None:
        """Wait for receipts of abandoned streams; called before the ledger closes."""
        if self._detached:
            await asyncio.gather(*self._detached, return_exceptions=True)


async def _collect(backend: Backend, params: ChatParams, window: MeterWindow) -> Completion:
    parts: list[str] = []
    finish: Finish | None = None
    events = _metered(backend.stream(params), window)
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, Finish):
                finish = event
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    if finish is None:
        raise BackendError(f"tier {backend.tier!r} ended its answer without finishing")
    return Completion("".join(parts), finish.finish_reason, finish.usage)


async def _metered(
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


def _client_error(exc: BackendError) -> APIError:
    """Backend errors are written for clients (keys scrubbed, no internals)."""
    return APIError(exc.status_code, str(exc), type=exc.error_type, code=exc.code)


__all__ = ["ChatService", "Outcome"]
