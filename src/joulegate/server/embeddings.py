"""``/v1/embeddings``: vectors from a tier with the ``embeddings`` capability, metered.

Unlike a chat answer, an embedding never falls back to another tier: vectors from two
models live in two different spaces, and an index that mixed them would silently return
nonsense. The request runs on the one tier it names (or, for ``auto``, on the cheapest
tier that offers embeddings, always the same one), and a failure is the client's error.

Its receipt is settled and recorded by ``ChatService``'s own accounting (the budget hold,
the ledger row, the Prometheus counters), with the input tokens as its prompt and no
output tokens.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from joulegate.backends.base import BackendError, EmbedParams
from joulegate.ledger import KeyInfo
from joulegate.server.budget import prompt_token_bound
from joulegate.server.call import Call, Outcome, response_headers
from joulegate.server.chunks import new_id
from joulegate.server.errors import APIError
from joulegate.server.events import client_error
from joulegate.server.gateway import Gateway, Tier
from joulegate.server.planning import AUTO, Plan, Route, model_not_found
from joulegate.server.protocol import BoundedBody
from joulegate.server.ratelimit import estimate_tokens
from joulegate.server.serving import ChatService

__all__ = ["EmbeddingList", "EmbeddingRequest", "create_embeddings"]

# OpenAI's own limit on inputs per request.
MAX_INPUTS = 2048


class EmbeddingRequest(BoundedBody):
    """The body of ``POST /v1/embeddings``; unknown fields are passed to an upstream tier."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[Any] = Field(description="A text, or a list of texts, to embed.")
    # The official client asks for base64 (little-endian float32) unless told otherwise.
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)

    def texts(self) -> list[str]:
        """The inputs as a list; a 400 for token-id inputs and empty texts."""
        texts = [self.input] if isinstance(self.input, str) else self.input
        if not texts or len(texts) > MAX_INPUTS:
            raise APIError(
                400,
                f"'input' must hold 1 to {MAX_INPUTS} texts.",
                param="input",
                code="invalid_value",
            )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise APIError(
                    400,
                    "Send the input as text: token-id inputs depend on a tokenizer, and each "
                    "tier's model has its own.",
                    param=f"input[{i}]",
                    code="unsupported_parameter",
                )
            if not text:
                raise APIError(
                    400,
                    "An input cannot be an empty string.",
                    param=f"input[{i}]",
                    code="invalid_value",
                )
        return texts

    def token_estimate(self) -> int:
        """The tokens charged against a TPM limit on admission (``ratelimit``'s estimate)."""
        return estimate_tokens([{"role": "user", "content": t} for t in self.texts()], 0)

    def token_bound(self) -> int:
        """An upper bound on the input tokens, without a tokenizer (budget holds)."""
        return prompt_token_bound([{"role": "user", "content": t} for t in self.texts()])


async def create_embeddings(
    service: ChatService, req: EmbeddingRequest, key: KeyInfo | None = None
) -> Outcome:
    """Embed on the tier ``req`` names, meter it, settle it; a ``list`` of ``embedding``s."""
    gw = service.gw
    tier, route = embedding_tier(gw, req.model)
    texts = req.texts()
    params = EmbedParams(texts, req.encoding_format, req.dimensions, extra=req.model_extra or {})
    hold = gw.budget.hold(key, req.token_bound(), {tier.name: 0})
    await hold.reserve(tier.name)
    plan = Plan([tier], route, hold, {tier.name: 0})
    call = Call(new_id(), datetime.now(UTC), False, key.key_id if key else None, plan)
    try:
        window = gw.meter.begin(tier.name, weight=0.0 if tier.backend.queues else 1.0)
        try:
            result = await tier.backend.embed(params, lambda: window.set_weight(1.0))
        except BackendError as exc:
            await service.record_failure(call, window, exc)
            raise client_error(exc) from exc
        except BaseException:  # cancelled (client gone): no receipt, but no open window
            window.abort()
            raise
        receipt = window.end(result.prompt_tokens, 0)
        await service.settle(call, receipt, "ok", 200)
    except BaseException:
        await asyncio.shield(hold.release())  # never settled: give it back
        raise
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encoded(v, req.encoding_format)}
            for i, v in enumerate(result.vectors)
        ],
        "model": tier.public_id,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        "joulegate": call.info(receipt),
    }
    return Outcome(response_headers(tier, receipt), body=body)


def embedding_tier(gw: Gateway, model: str) -> tuple[Tier, Route | None]:
    """The tier ``model`` names, or for ``auto`` the cheapest that offers embeddings.

    404 for an unknown model; 400 when the tier (or every tier) lacks the capability.
    """
    able = [t for t in gw.tiers if "embeddings" in t.settings.supported]
    hint = (
        " Tiers that do: " + ", ".join(t.public_id for t in able) + "."
        if able
        else " No configured tier does: set `embeddings = true` in the [tiers.capabilities] "
        "of a tier whose model can (docs/compatibility.md)."
    )
    if model == AUTO:
        if not able:
            raise APIError(
                400,
                "No tier offers embeddings." + hint,
                param="model",
                code="unsupported_capability",
            )
        return able[0], Route(able[0].name, reason="the cheapest tier that offers embeddings")
    tier = gw.find_model(model)
    if tier is None:
        raise model_not_found(gw, model)
    if tier not in able:
        raise APIError(
            400,
            f"Tier {tier.public_id!r} does not support embeddings." + hint,
            param="model",
            code="unsupported_capability",
        )
    return tier, None


def _encoded(vector: list[float] | str, encoding_format: str) -> list[float] | str:
    """``vector`` in the format the client asked for, whichever one the tier sent."""
    if encoding_format == "base64":
        if isinstance(vector, str):
            return vector
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    if isinstance(vector, str):
        raw = base64.b64decode(vector)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return vector


# -- the answer, as the OpenAPI document describes it -----------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class EmbeddingItem(_Open):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingList(_Open):
    """The vectors, in input order; ``joulegate`` is the receipt (input tokens only)."""

    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: dict[str, int]
    joulegate: dict[str, Any]
