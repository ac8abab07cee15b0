"""Ask one tier through the gateway's own pipeline: metered, in the ledger, labelled by purpose.

``routing`` defines what it needs of a gateway as the ``Ask`` protocol
(``routing/answers.py``) so that it never imports the server; this is that protocol's
implementation. ``joulegate calibrate`` asks with ``purpose = "calibration"``, shadow
sampling (``server/shadow.py``) with ``"shadow"``: either way each answer is a ledger row
like any request, so a report shows what measuring the tiers cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from joulegate.routing.answers import Answer, AskFailed
from joulegate.server.errors import APIError
from joulegate.server.protocol import ChatCompletionRequest
from joulegate.server.serving import ChatService

__all__ = ["GatewayAsker"]


class GatewayAsker:
    """``Ask`` through ``service``: explicit model ids, so nothing is routed or cascaded."""

    def __init__(self, service: ChatService, purpose: str = "calibration", seed: int = 0) -> None:
        self.service = service
        self.purpose = purpose
        self.seed = seed

    async def __call__(
        self,
        tier: str,
        prompt: str,
        *,
        max_tokens: int,
        logprobs: bool = False,
        temperature: float | None = None,
    ) -> Answer:
        """``tier``'s answer to ``prompt`` as a single user message."""
        return await self.messages(
            tier,
            [{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            logprobs=logprobs,
            temperature=temperature,
        )

    async def messages(
        self,
        tier: str,
        messages: Sequence[dict[str, Any]],
        *,
        max_tokens: int | None,
        logprobs: bool = False,
        temperature: float | None = None,
    ) -> Answer:
        """``tier``'s answer to a whole conversation; raises ``AskFailed`` when the tier
        gives none (an error, or a fallback tier answered in its place)."""
        req = ChatCompletionRequest.model_validate(
            {
                "model": tier,
                "messages": list(messages),
                "max_tokens": max_tokens,
                "temperature": temperature,
                "seed": self.seed,
            }
        )
        try:
            out = await self.service.create(req, purpose=self.purpose, want_logprobs=logprobs)
        except APIError as exc:
            raise AskFailed(f"{exc.status_code} {exc.message}") from exc
        body = out.body
        assert body is not None
        info = body["joulegate"]
        if body["model"] != tier:  # it failed, and a fallback answered: not this tier's answer
            raise AskFailed(f"{tier} failed; {body['model']} answered instead")
        choice = body["choices"][0]
        return Answer(
            tier=tier,
            text=str(choice["message"].get("content") or ""),
            finish_reason=str(choice["finish_reason"]),
            completion_tokens=int(body["usage"]["completion_tokens"]),
            energy_j=float(info["energy_j"]),
            energy_source=str(info["energy_source"]),
            request_id=str(info["request_id"]),
            logprobs=out.logprobs,
        )
