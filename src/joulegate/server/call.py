"""One request's bookkeeping as it moves through the pipeline, and what it comes to.

``Call`` is what the pipeline knows of a request between planning and the ledger: its plan,
the tiers that failed before the answer, a cascade's discarded try, the cache's recording.
It writes the ledger row and the response's ``joulegate`` object from the same fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joulegate.ledger import LedgerRecord
from joulegate.metering import Receipt
from joulegate.server import caching, cascade
from joulegate.server.gateway import Tier
from joulegate.server.planning import Plan, Route
from joulegate.server.protocol import ChatCompletionRequest

__all__ = ["Answered", "Call", "Outcome", "response_headers"]


@dataclass
class Outcome:
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None
    # The answer's token log-probs, for a caller that asked (``joulegate calibrate``).
    logprobs: tuple[float, ...] | None = None


@dataclass
class Call:
    """One request's bookkeeping as it moves through the pipeline."""

    request_id: str
    started: datetime
    stream: bool
    key_id: str | None
    plan: Plan
    fallback_from: list[str] = field(default_factory=list)
    # Why each of those tiers failed: the ledger row keeps it, even when a fallback answered.
    fallback_errors: list[str] = field(default_factory=list)
    purpose: str = "serve"  # the ledger's label: "calibration" for `joulegate calibrate`
    cascade: cascade.Report | None = None  # what a cascade's cheap try came to
    discarded: Receipt | None = None  # that try's receipt, when its answer was not kept
    cache: caching.Recording | None = None  # a cache miss's answer, to store once settled
    request: ChatCompletionRequest | None = None  # for ChatService.after_answer
    learn: bool = True  # the key lets shadow sampling learn from its traffic

    def total(self, receipt: Receipt) -> Receipt:
        """What the client pays: the answer's receipt plus a discarded cheap try's."""
        return receipt if self.discarded is None else receipt.after(self.discarded)

    def record(
        self,
        receipt: Receipt,
        status: str,
        http_status: int,
        error: str | None = None,
    ) -> LedgerRecord:
        """The ledger row for ``receipt`` (the request's total, discarded tries included)."""
        return LedgerRecord.from_receipt(
            receipt,
            request_id=self.request_id,
            ts=self.started,
            key_id=self.key_id,
            status=status,
            http_status=http_status,
            stream=self.stream,
            fallback_from=self.fallback_from,
            # A fallback's answer is "ok", and its row still says what failed before it.
            error=error if error is not None else ("; ".join(self.fallback_errors)[:500] or None),
            purpose=self.purpose,
        )

    def info(self, receipt: Receipt) -> dict[str, Any]:
        """The response's ``joulegate`` object for the answer ``receipt`` metered."""
        info = {"request_id": self.request_id, **self.total(receipt).as_dict()}
        if self.plan.route is not None:
            info["route"] = self.plan.route.as_dict()
            if self.cascade is not None:
                info["route"].update(self.cascade.as_dict(receipt.tier, self.fallback_from))
        if self.fallback_from:
            info["fallback_from"] = list(self.fallback_from)
        return info


@dataclass(frozen=True)
class Answered:
    """A client's request, answered and settled: what ``ChatService.after_answer`` is told
    (shadow sampling, ``server/shadow.py``, learns from it after the answer has gone)."""

    request: ChatCompletionRequest
    request_id: str
    learn: bool  # False: the key opted out of learning (keys create --no-learn)
    route: Route | None  # how ``auto`` chose (None: the client named the model)
    escalated: bool  # a cascade's cheap answer was not kept
    tier: str  # the public id of the tier that answered
    text: str
    finish_reason: str
    completion_tokens: int
    logprobs: tuple[float, ...] | None
    receipt: Receipt  # what the client paid


def response_headers(tier: Tier, receipt: Receipt | None) -> dict[str, str]:
    """Which tier and model answered, and the receipt's figures once it is known."""
    headers = {"x-joulegate-tier": tier.name, "x-joulegate-model": tier.public_id}
    if receipt is not None:
        headers.update(receipt.headers())
    return headers
