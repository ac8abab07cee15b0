"""Chat completions: request → plan → attempt(s) → meter → settle (ledger) → response.

No HTTP here: ``ChatService.create`` takes a validated request and returns a body (or an
SSE byte stream) plus headers, so the logic runs the same under the server, the CLI and
tests. The ledger row is committed *before* the last byte of a response is produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from joulegate.backends.base import BackendError, ChatParams, Completion, Finish, TextDelta
from joulegate.ledger import KeyInfo
from joulegate.metering import MeterWindow, Receipt, observe
from joulegate.server import caching, cascade
from joulegate.server.budget import prompt_token_bound
from joulegate.server.call import Answered, Call, Outcome, response_headers
from joulegate.server.chunks import ChunkWriter, completion_body, new_id
from joulegate.server.completions_protocol import TextCompletionRequest
from joulegate.server.errors import APIError
from joulegate.server.events import (
    answer_events,
    client_error,
    collect,
    end_window,
    gather,
    metered,
)
from joulegate.server.gateway import Gateway, Tier
from joulegate.server.planning import plan_request
from joulegate.server.protocol import ChatCompletionRequest

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# A stream that has produced its first event: the rest of it, and that event.
_Opened = tuple[AsyncIterator[TextDelta | Finish], TextDelta | Finish]
# One try of one tier: the parameters as that tier gets them, and its meter window.
_Attempt = Callable[[Tier, ChatParams, MeterWindow], Awaitable[_T]]


@dataclass
class _Kept:
    """A cascade's cheap answer that passed: its tier, meter, held events and the rest."""

    tier: Tier
    window: MeterWindow
    held: cascade.Held
    rest: AsyncIterator[TextDelta | Finish]

    def events(self) -> tuple[AsyncIterator[TextDelta | Finish], TextDelta | Finish]:
        """The answer as a stream that has produced its first event (see ``_Opened``)."""
        first, *more = self.held.events
        return cascade.replay(more, self.rest), first


class ChatService:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        # Ledger writes for streams the client abandoned: awaited on shutdown, not per request.
        self._detached: set[asyncio.Task[None]] = set()
        # Told of every client's answer once it is settled; must return at once.
        self.after_answer: Callable[[Answered], None] | None = None

    # -- entry point ------------------------------------------------------------------

    async def create(
        self,
        req: ChatCompletionRequest,
        key: KeyInfo | None = None,
        *,
        purpose: str = "serve",
        want_logprobs: bool = False,
    ) -> Outcome:
        """Plan, try the planned tiers until one answers, meter the answer, settle it.

        ``purpose`` labels the ledger row; ``want_logprobs`` returns a non-streamed answer's
        token log-probs in ``Outcome.logprobs`` (calibration reads the tiers' confidence).

        Planning may hold part of the key's budget; from then on exactly one of two things
        happens to that hold: a receipt settles it, or the ``except`` below releases it.
        """
        request_id, started = new_id(), datetime.now(UTC)
        probe = caching.probe(self.gw, req, key, purpose, want_logprobs)  # before routing
        served = await caching.answer(self.gw, req, key, probe, request_id, started)
        if served is not None:  # a cache hit: nothing is planned, no model runs
            return Outcome(*served)
        plan = await plan_request(self.gw, req, key)
        call = Call(
            request_id, started, req.stream, key.key_id if key else None, plan, purpose=purpose
        )
        call.request, call.learn = req, key.learn if key else True
        call.cache = caching.Recording(probe) if probe is not None else None
        params = ChatParams(  # max_tokens is set per tier, by the plan
            messages=req.messages_as_dicts(),
            temperature=req.temperature,
            top_p=req.top_p,
            stop=req.stop_list(),
            seed=req.seed,
            extra=req.passthrough(),
            want_logprobs=want_logprobs,
            prompt=req.prompt if isinstance(req, TextCompletionRequest) else None,
        )
        try:
            kept = await self._cheap_try(call, params) if plan.cascade is not None else None
            if req.stream:
                include_usage = bool(req.stream_options and req.stream_options.include_usage)
                return await self._start_stream(call, params, include_usage, kept)
            return await self._complete(call, params, kept)
        except BaseException:
            await asyncio.shield(plan.hold.release())  # never settled: give it back
            raise

    # -- trying tiers in order --------------------------------------------------------

    async def _first_answer(
        self, call: Call, params: ChatParams, attempt: _Attempt[_T]
    ) -> tuple[Tier, MeterWindow, _T]:
        """Run ``attempt`` on each planned tier until one succeeds. A retryable failure falls
        back to the next tier; the last failure is recorded and becomes the client's error."""
        tiers, hold = call.plan.tiers, call.plan.hold
        for i, tier in enumerate(tiers):
            # Planning sized the hold for the first tier; a fallback needs a hold of its own.
            await hold.move_to(tier.name)
            window = self.gw.meter.begin(tier.name, weight=0.0 if tier.backend.queues else 1.0)
            try:
                return tier, window, await attempt(tier, self._params(call, params, tier), window)
            except BackendError as exc:
                if exc.retryable and i + 1 < len(tiers):
                    window.abort()
                    call.fallback_from.append(tier.name)
                    call.fallback_errors.append(f"{tier.name}: {exc}")
                    log.warning(
                        "tier %s failed (%s); falling back to %s", tier.name, exc, tiers[i + 1].name
                    )
                    continue
                await self.record_failure(call, window, exc)
                raise client_error(exc) from exc
        raise AssertionError("a plan always has a tier")  # pragma: no cover

    @staticmethod
    def _params(call: Call, params: ChatParams, tier: Tier) -> ChatParams:
        """The request as ``tier`` gets it: with the token bound its budget hold assumed."""
        return replace(params, max_tokens=call.plan.max_tokens[tier.name])

    # -- a cascade's cheap try (server/cascade.py) --------------------------------------

    async def _cheap_try(self, call: Call, params: ChatParams) -> _Kept | None:
        """Let the cascade's cheap tier answer up to its hold, and judge it.

        Returns the answer if it is kept. Otherwise the cheap tier is stopped, its work is
        settled as a discarded attempt, the plan moves on to the escalation tiers and
        None is returned: the caller then runs the plan as for any request.
        """
        step = call.plan.cascade
        assert step is not None
        tier = step.tier
        report = cascade.Report(step.mode, cheap=tier.name, keep_threshold=step.keep_threshold)
        call.cascade = report
        window = self.gw.meter.begin(tier.name, weight=0.0 if tier.backend.queues else 1.0)
        asked = replace(self._params(call, params, tier), want_logprobs=True)
        events = metered(answer_events(tier.backend, asked), window)
        held = cascade.Held()
        try:
            await cascade.hold(events, step.hold_tokens, held)
            verdict = cascade.decide(step, held)
        except BackendError as exc:
            await events.aclose()  # type: ignore[attr-defined]
            if not exc.retryable:  # the request's own fault: no other tier would take it
                await self.record_failure(call, window, exc, completion_tokens=held.tokens)
                raise client_error(exc) from exc
            call.fallback_from.append(tier.name)
            call.fallback_errors.append(f"{tier.name}: {exc}")
            report.note = f"tier {tier.name} failed before the decision"
            log.warning("cascade: tier %s failed (%s); escalating", tier.name, exc)
            spent = None
            if held.tokens:  # it did work before failing: that is paid for
                spent = window.end(prompt_token_bound(params.messages), held.tokens)
            else:
                window.abort()
            await self._escalate(call, params, spent)
            return None
        except BaseException:
            await events.aclose()  # type: ignore[attr-defined]
            window.abort()
            raise
        report.confidence, report.decision_ms = verdict.confidence, verdict.decision_ms
        if verdict.keep:
            return _Kept(tier, window, held, events)
        # Stop the cheap tier now: what it would say next is not needed.
        await events.aclose()  # type: ignore[attr-defined]
        finish = held.finish
        # Its prompt tokens are known only from a finished answer; else an upper bound.
        prompt_tokens = (
            finish.usage.prompt_tokens if finish else prompt_token_bound(params.messages)
        )
        await self._escalate(call, params, window.end(prompt_tokens, held.tokens))
        return None

    async def _escalate(self, call: Call, params: ChatParams, spent: Receipt | None) -> None:
        """Move the plan past the cheap try. Its spend (``spent``) is settled first, so the
        key's budget covers both attempts: the hold is then moved to the next tier."""
        step, report = call.plan.cascade, call.cascade
        assert step is not None and report is not None
        report.escalated, report.escalated_to = True, step.escalate_to[0].name
        report.fallbacks_before = len(call.fallback_from)
        call.plan = replace(call.plan, tiers=step.escalate_to)
        if spent is None:
            return
        report.discarded = call.discarded = spent
        observe(spent, "discarded")
        await call.plan.hold.settle(spent)
        try:
            await call.plan.hold.move_to(step.escalate_to[0].name)
        except APIError as exc:  # the budget cannot cover the larger tier: 429, and say so
            await self.gw.ledger.record(
                call.record(spent, "error", exc.status_code, error=exc.message[:500])
            )
            raise

    # -- non-streaming ----------------------------------------------------------------

    async def _complete(self, call: Call, params: ChatParams, kept: _Kept | None = None) -> Outcome:
        async def attempt(tier: Tier, params: ChatParams, window: MeterWindow) -> Completion:
            return await collect(tier.backend, params, window)

        if kept is None:
            tier, window, completion = await self._first_answer(call, params, attempt)
        else:
            tier, window = kept.tier, kept.window
            try:
                completion = await gather(cascade.replay(kept.held.events, kept.rest), tier.name)
            except BackendError as exc:  # nothing reached the client, but the answer is half
                await self.record_failure(call, window, exc)
                raise client_error(exc) from exc
        receipt = end_window(window, completion.usage)
        if call.cache is not None:
            call.cache.completed(completion)
        await self.settle(call, receipt, "ok", 200)
        self._answered(call, tier, completion, receipt)
        info = call.info(receipt)
        body = completion_body(
            call.request_id,
            tier.public_id,
            int(call.started.timestamp()),
            completion.text,
            completion.finish_reason,
            completion.usage,
            info,
            message_extra=completion.message_extra,
            choice_extra=completion.choice_extra,
            chunk_extra=completion.chunk_extra,
            usage_extra=completion.usage_extra,
        )
        return Outcome(
            response_headers(tier, call.total(receipt)), body=body, logprobs=completion.logprobs
        )

    # -- streaming --------------------------------------------------------------------

    async def _start_stream(
        self, call: Call, params: ChatParams, include_usage: bool, kept: _Kept | None = None
    ) -> Outcome:
        """Wait for the first event before answering, so a failing tier can still fall back
        and a bad request still gets a proper status code instead of a broken stream."""

        async def attempt(tier: Tier, params: ChatParams, window: MeterWindow) -> _Opened:
            events = metered(answer_events(tier.backend, params), window)
            try:
                return events, await anext(events)
            except (BackendError, StopAsyncIteration) as exc:
                await events.aclose()  # type: ignore[attr-defined]
                if isinstance(exc, BackendError):
                    raise
                raise BackendError(f"tier {tier.name!r} sent an empty answer") from exc

        if kept is None:
            tier, window, (events, first) = await self._first_answer(call, params, attempt)
        else:  # a cascade's kept answer: the held tokens go first, then the rest live
            tier, window, (events, first) = kept.tier, kept.window, kept.events()
        if call.cache is not None:  # the answer is kept as it streams, to store if complete
            events, first = call.cache.record(events, first)
        body = self._sse(tier, events, first, window, call, include_usage)
        return Outcome(response_headers(tier, None), stream=body)

    async def _sse(
        self,
        tier: Tier,
        events: AsyncIterator[TextDelta | Finish],
        first: TextDelta | Finish,
        window: MeterWindow,
        call: Call,
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        out = ChunkWriter(call.request_id, tier.public_id)
        deltas = 0
        parts: list[str] = []  # the answer, for after_answer
        finished = False
        try:
            opens_with_text = not isinstance(first, TextDelta) or first.text or not first.extra
            yield out.role(first.chunk_extra, "" if opens_with_text else None)
            event: TextDelta | Finish | None = first
            while event is not None:
                if isinstance(event, TextDelta):
                    deltas += 1
                    parts.append(event.text)
                    yield out.delta(event.text, event.extra, event.choice_extra, event.chunk_extra)
                else:
                    finished = True
                    receipt = end_window(window, event.usage)
                    await self.settle(call, receipt, "ok", 200)
                    said = Completion("".join(parts), event.finish_reason, event.usage)
                    self._answered(call, tier, replace(said, logprobs=event.logprobs), receipt)
                    info = call.info(receipt)
                    yield out.finish(
                        event.finish_reason,
                        None if include_usage else info,
                        event.choice_extra,
                        event.chunk_extra,
                    )
                    if include_usage:
                        yield out.usage(event.usage, info, event.usage_extra)
                    yield out.done()
                    return
                event = await anext(events, None)
            raise BackendError(f"tier {tier.name!r} ended the stream without finishing")
        except BackendError as exc:
            # Tokens already reached the client: no fallback now, say so in-band.
            finished = True
            await self.record_failure(call, window, exc, completion_tokens=deltas)
            yield out.error(client_error(exc).body())
            yield out.done()
        finally:
            if not finished:
                # The client went away mid-stream. The cancel scope that stopped us forbids
                # awaiting, so everything here is synchronous and the receipt is written by
                # a task of its own (drained on shutdown).
                receipt = window.end(0, deltas)
                task = asyncio.get_running_loop().create_task(
                    self.settle(call, receipt, "cancelled", 499)
                )
                self._detached.add(task)
                task.add_done_callback(self._detached.discard)
            # Closing the backend's iterator is what stops the model (or the upstream call).
            await events.aclose()  # type: ignore[attr-defined]

    # -- helpers ----------------------------------------------------------------------

    async def record_failure(
        self,
        call: Call,
        window: MeterWindow,
        exc: BackendError,
        completion_tokens: int = 0,
    ) -> None:
        receipt = window.end(0, completion_tokens)
        status = client_error(exc).status_code
        await self.settle(call, receipt, "error", status, error=str(exc)[:500])

    async def settle(
        self,
        call: Call,
        receipt: Receipt,
        status: str,
        http_status: int,
        error: str | None = None,
    ) -> None:
        """Count the receipt and make it durable; returns once the ledger has committed."""
        observe(receipt, status)
        await call.plan.hold.settle(receipt)
        total = call.total(receipt)  # the hold has the discarded try's part already
        await self.gw.ledger.record(call.record(total, status, http_status, error=error))
        if call.cache is not None:
            caching.remember(self.gw.cache, call.cache, status, total)

    def _answered(self, call: Call, tier: Tier, answer: Completion, receipt: Receipt) -> None:
        """Tell ``after_answer`` of a client's settled answer (never of the gateway's own
        requests: calibration, shadow calls); whatever it does, the client's answer stands."""
        if self.after_answer is None or call.purpose != "serve" or call.request is None:
            return
        try:
            self.after_answer(
                Answered(
                    request=call.request,
                    request_id=call.request_id,
                    learn=call.learn,
                    route=call.plan.route,
                    escalated=bool(call.cascade and call.cascade.escalated),
                    tier=tier.public_id,
                    text=answer.text,
                    finish_reason=answer.finish_reason,
                    completion_tokens=answer.usage.completion_tokens,
                    logprobs=answer.logprobs,
                    receipt=call.total(receipt),
                )
            )
        except Exception:
            log.exception("after_answer failed for request %s", call.request_id)

    async def drain(self) -> None:
        """Wait for receipts of abandoned streams; called before the ledger closes."""
        if self._detached:
            await asyncio.gather(*self._detached, return_exceptions=True)


__all__ = ["Answered", "ChatService", "Outcome"]
