"""The response cache in the chat pipeline: the glue between ``ChatService`` and ``cache/``.

``ChatService.create`` calls :func:`probe` and the cache's ``lookup`` first, before any
planning or routing; a hit is answered here (:func:`serve_hit`), as JSON or as a replayed
stream, with a receipt whose ``energy_source`` is ``cache`` and a ledger row like any
request's. A miss goes on through the pipeline with a :class:`Recording`, which collects
the answer as it is produced (streamed or not); when the answer is settled ``ok``,
:func:`remember` hands it to the cache, which stores it if it is complete.

A hit's energy is the lookup's own CPU time (embedding included) at the CPU model's
full-load power per vCPU; its ``baseline_*`` figures are what the cached answer cost when
the model made it (the entry keeps them), so its saving is that answer's cost minus the
lookup's. A hit is not charged to a key's budget: it costs microjoules and no money.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from joulegate.backends.base import Completion, Finish, TextDelta, Usage
from joulegate.cache.service import Hit, Probe, ResponseCache
from joulegate.ledger import KeyInfo, LedgerRecord
from joulegate.metering import Receipt, observe
from joulegate.metering.pricing import Figures
from joulegate.server.chunks import ChunkWriter, completion_body, merge_delta
from joulegate.server.gateway import Gateway
from joulegate.server.planning import AUTO
from joulegate.server.protocol import ChatCompletionRequest

# A replayed answer is sent in pieces of about this many characters, as a model would.
_REPLAY_CHARS = 48


def probe(
    gw: Gateway,
    req: ChatCompletionRequest,
    key: KeyInfo | None,
    purpose: str,
    want_logprobs: bool,
) -> Probe | None:
    """The request's probe, or None where the cache takes no part (off, or a request made
    to measure the tiers: calibration must reach a model)."""
    cache = gw.cache
    if cache is None or purpose != "serve" or want_logprobs:
        return None
    if req.model == AUTO:
        model = AUTO
    else:
        tier = gw.find_model(req.model)
        model = tier.name if tier is not None else req.model
    options = req.joulegate
    return cache.probe(
        model,
        req.model_dump(mode="json", exclude_none=True),
        key,
        requested=options.cache if options else None,
        no_store=bool(options and options.no_store),
    )


class Recording:
    """A miss's answer as it is produced, for the cache to store once it is settled."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.answer: dict[str, Any] | None = None
        self._parts: list[str] = []
        self._message: dict[str, Any] = {}
        self._choice: dict[str, Any] = {}
        self._chunk: dict[str, Any] = {}

    def completed(self, completion: Completion) -> None:
        """A non-streamed answer, whole."""
        self.answer = {
            "text": completion.text,
            "finish_reason": completion.finish_reason,
            "usage": _usage(completion.usage),
            "message_extra": completion.message_extra,
            "choice_extra": completion.choice_extra,
            "chunk_extra": completion.chunk_extra,
            "usage_extra": completion.usage_extra,
        }

    def record(
        self, events: AsyncIterator[TextDelta | Finish], first: TextDelta | Finish
    ) -> tuple[AsyncIterator[TextDelta | Finish], TextDelta | Finish]:
        """The stream as before, each event seen on its way to the client."""
        self._see(first)
        return self._through(events), first

    async def _through(
        self, events: AsyncIterator[TextDelta | Finish]
    ) -> AsyncIterator[TextDelta | Finish]:
        try:
            async for event in events:
                self._see(event)
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    def _see(self, event: TextDelta | Finish) -> None:
        if isinstance(event, TextDelta):
            self._parts.append(event.text)
            if event.extra:
                merge_delta(self._message, event.extra)
            if event.choice_extra:
                merge_delta(self._choice, event.choice_extra)
            if event.chunk_extra:
                self._chunk.update(event.chunk_extra)
            return
        if event.choice_extra:
            merge_delta(self._choice, event.choice_extra)
        self.answer = {
            "text": "".join(self._parts),
            "finish_reason": event.finish_reason,
            "usage": _usage(event.usage),
            "message_extra": self._message or None,
            "choice_extra": self._choice or None,
            "chunk_extra": {**self._chunk, **(event.chunk_extra or {})} or None,
            "usage_extra": event.usage_extra,
        }


def remember(cache: ResponseCache | None, recording: Recording, status: str, paid: Receipt) -> None:
    """Hand a settled answer to the cache; ``paid`` is what the client paid for it."""
    answer = recording.answer
    if cache is None or answer is None or not cache.storable(answer, status):
        return
    origin = {
        "tier": paid.tier,
        "model": paid.model,
        "energy_j": paid.energy_j,
        "cost_usd": paid.cost_usd,
        "co2e_g": paid.co2e_g,
        "energy_source": paid.energy_source,
    }
    cache.remember(recording.probe, answer, origin)


_Served = tuple[dict[str, str], dict[str, Any] | None, AsyncIterator[bytes] | None]


async def answer(
    gw: Gateway,
    req: ChatCompletionRequest,
    key: KeyInfo | None,
    probe: Probe | None,
    request_id: str,
    started: datetime,
) -> _Served | None:
    """The cached answer as ``Outcome``'s headers, body and stream; None on a miss."""
    if probe is None or gw.cache is None:
        return None
    hit = await gw.cache.lookup(probe)
    if hit is None or not usable(gw, hit):
        return None
    return await serve_hit(gw, req, key, hit, request_id, started)


def usable(gw: Gateway, hit: Hit) -> bool:
    """A hit whose tier is still configured (its receipt is priced on that tier)."""
    tier = hit.entry.origin.get("tier")
    return any(t.name == tier for t in gw.tiers)


async def serve_hit(
    gw: Gateway,
    req: ChatCompletionRequest,
    key: KeyInfo | None,
    hit: Hit,
    request_id: str,
    started: datetime,
) -> _Served:
    """The cached answer as ``Outcome``'s headers, body and stream; the ledger row is
    committed, and the hit's cost counted against the key's budgets (never refused: it
    costs microjoules), before the body is returned (or, streamed, before its last chunk)."""
    entry, answer = hit.entry, hit.entry.answer
    usage = Usage(**answer["usage"])
    receipt = _receipt(gw, hit, usage)
    record = LedgerRecord.from_receipt(
        receipt,
        request_id=request_id,
        ts=started,
        key_id=key.key_id if key else None,
        status="ok",
        http_status=200,
        stream=req.stream,
    )
    info = {
        "request_id": request_id,
        **receipt.as_dict(),
        "route": {"tier": receipt.tier, "reason": "cache hit", "cache": hit.kind, **_route(hit)},
    }
    headers = {
        "x-joulegate-tier": receipt.tier,
        "x-joulegate-model": entry.origin["model"],
        "x-joulegate-cache": hit.kind,
        **receipt.headers(),
    }
    if not req.stream:
        observe(receipt, "ok")
        await gw.ledger.record(record)
        await gw.budget.charge(key, receipt)
        body = completion_body(
            request_id,
            entry.origin["model"],
            int(started.timestamp()),
            answer["text"],
            answer["finish_reason"],
            usage,
            info,
            message_extra=answer.get("message_extra"),
            choice_extra=answer.get("choice_extra"),
            chunk_extra=answer.get("chunk_extra"),
            usage_extra=answer.get("usage_extra"),
        )
        return headers, body, None
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    return headers, None, _replay(gw, key, hit, usage, info, record, receipt, include_usage)


def _route(hit: Hit) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if hit.similarity is not None:
        out["similarity"] = round(hit.similarity, 4)
        out["estimated_error"] = round(hit.p_error, 5)
    out["entry"] = hit.entry.entry_id[:12]
    out["lookup_ms"] = round(hit.lookup_ms, 3)
    return out


def _receipt(gw: Gateway, hit: Hit, usage: Usage) -> Receipt:
    origin = hit.entry.origin
    m = gw.meter.settings
    return gw.meter.cached(
        origin["tier"],
        usage.prompt_tokens,
        usage.completion_tokens,
        latency_ms=hit.lookup_ms,
        energy_j=hit.cpu_s * m.cpu_max_w_per_vcpu * m.pue,
        baseline=Figures(origin["energy_j"], origin["cost_usd"], origin["co2e_g"]),
    )


async def _replay(
    gw: Gateway,
    key: KeyInfo | None,
    hit: Hit,
    usage: Usage,
    info: dict[str, Any],
    record: LedgerRecord,
    receipt: Receipt,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The cached answer as a live stream would send it: role, text in pieces, the other
    fields (tool calls, ...), finish, usage."""
    answer = hit.entry.answer
    out = ChunkWriter(record.request_id, hit.entry.origin["model"])
    text: str = answer["text"]
    extra: dict[str, Any] | None = answer.get("message_extra")
    yield out.role(answer.get("chunk_extra"), "" if text or not extra else None)
    for i in range(0, len(text), _REPLAY_CHARS):
        yield out.delta(text[i : i + _REPLAY_CHARS])
    if extra:
        yield out.delta("", extra)
    observe(receipt, "ok")
    await gw.ledger.record(record)
    await gw.budget.charge(key, receipt)
    yield out.finish(
        answer["finish_reason"], None if include_usage else info, answer.get("choice_extra")
    )
    if include_usage:
        yield out.usage(usage, info, answer.get("usage_extra"))
    yield out.done()


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }
