"""Reserve, then settle: per-key budgets held under any concurrency.

Before a request is dispatched, its worst case (the tier's per-token profile or measured
rate, times the prompt and the most tokens it may generate) is reserved atomically
against the key's remaining budget; afterwards the reservation is replaced by the actual
receipt. Checking first and charging later would let N concurrent requests all pass the
same check; reserving makes the N+1-th wait for money that is really there.

Each request carries one :class:`Hold` from planning to its receipt, so the reservation has
one owner: planning reserves it, a fallback moves it, the receipt settles it and a failure
releases it. A key without a budget gets :data:`NO_BUDGET`, whose every step is a no-op.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from joulegate.backends.base import message_text
from joulegate.ledger import BudgetExceeded, KeyInfo, KeyStore, Reservation
from joulegate.metering import Meter, Receipt
from joulegate.server.errors import APIError

BUDGET_NAMES = {"j": "energy (J)", "usd": "cost (USD)", "co2e_g": "CO2e (g)"}


def prompt_token_bound(messages: list[dict[str, Any]]) -> int:
    """An upper bound on prompt tokens without a tokenizer: a token is at least one byte
    of text, plus a few tokens of chat framing per message."""
    return sum(len(message_text(m).encode("utf-8")) + 8 for m in messages) + 64


def budget_error(exc: BudgetExceeded) -> APIError:
    name = BUDGET_NAMES.get(exc.budget, exc.budget)
    when = (
        f" It resets at {exc.resets_at.isoformat()}."
        if exc.resets_at
        else " It is a lifetime budget and does not reset."
    )
    headers = {}
    if exc.resets_at is not None:
        wait = max(1, math.ceil((exc.resets_at - datetime.now(UTC)).total_seconds()))
        headers["retry-after"] = str(wait)
    return APIError(
        429,
        f"This key's {name} budget is exhausted: {exc.spent:.6g} of {exc.limit:.6g} used, and "
        f"this request may need up to {exc.requested:.6g}.{when}",
        type="insufficient_quota",
        code="budget_exceeded",
        param=exc.budget,
        headers=headers,
    )


class Hold:
    """One request's claim on its key's budget. This base class is the claim of a key with
    no budget: there is nothing to hold, so every step does nothing."""

    async def reserve(self, tier: str, *cheaper: str) -> str:
        """Reserve the worst case on ``tier``; returns the tier reserved on."""
        return tier

    async def move_to(self, tier: str) -> None:
        """Resize the reservation for ``tier`` (a fallback runs on a tier of its own)."""

    async def settle(self, receipt: Receipt) -> None:
        """Replace the reservation by what the request really used."""

    async def release(self) -> None:
        """Give the reservation back unused; a no-op once settled."""


NO_BUDGET = Hold()


class BudgetHold(Hold):
    """The claim of a key with a budget: at most one reservation at a time, finished once."""

    def __init__(
        self,
        keys: KeyStore,
        meter: Meter,
        key: KeyInfo,
        prompt_tokens: int,
        max_tokens: Mapping[str, int],
    ) -> None:
        self._keys = keys
        self._meter = meter
        self._key = key
        self._prompt_tokens = prompt_tokens
        # The most tokens each tier may generate for this request: the reservation's bound.
        self._max_tokens = max_tokens
        self._held: Reservation | None = None
        self._tier: str | None = None  # the tier the held reservation was sized for

    async def reserve(self, tier: str, *cheaper: str) -> str:
        """Reserve on the first of ``tier`` and then ``cheaper`` that the budget covers.

        ``cheaper`` is empty unless the key downgrades when its budget runs low. A refusal
        on every tier is a 429 that reports the first one (the tier the client wanted).
        """
        first_error: BudgetExceeded | None = None
        for name in (tier, *cheaper):
            try:
                await self._reserve(name)
            except BudgetExceeded as exc:
                first_error = first_error or exc
                continue
            return name
        assert first_error is not None
        raise budget_error(first_error)

    async def move_to(self, tier: str) -> None:
        if self._held is not None and tier == self._tier:
            return
        await self.release()
        try:
            await self._reserve(tier)
        except BudgetExceeded as exc:
            raise budget_error(exc) from exc

    async def settle(self, receipt: Receipt) -> None:
        held, self._held = self._held, None
        if held is not None:
            await self._keys.settle_async(held, receipt.energy_j, receipt.cost_usd, receipt.co2e_g)

    async def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await self._keys.release_async(held)

    async def _reserve(self, tier: str) -> None:
        assert self._held is None, "a hold keeps one reservation at a time"
        f = self._meter.worst_case(tier, self._prompt_tokens, self._max_tokens[tier])
        self._held = await self._keys.reserve_async(
            self._key.key_id, f.energy_j, f.cost_usd, f.co2e_g
        )
        self._tier = tier


class BudgetGuard:
    """Where a request's hold comes from: the key store to reserve in, and the meter that
    prices a tier's worst case."""

    def __init__(self, keys: KeyStore, meter: Meter) -> None:
        self.keys = keys
        self.meter = meter

    def hold(self, key: KeyInfo | None, prompt_tokens: int, max_tokens: Mapping[str, int]) -> Hold:
        """An empty hold for one request; ``NO_BUDGET`` when the key has no budget."""
        if key is None or not key.has_budget:
            return NO_BUDGET
        return BudgetHold(self.keys, self.meter, key, prompt_tokens, max_tokens)

    async def charge(self, key: KeyInfo | None, receipt: Receipt) -> None:
        """Count a receipt that took no hold (a cache hit) against the key's budgets."""
        if key is not None and key.has_budget:
            await self.keys.charge_async(
                key.key_id, receipt.energy_j, receipt.cost_usd, receipt.co2e_g
            )
