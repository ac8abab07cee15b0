"""Reserve, then settle: per-key budgets held under any concurrency.

Before a request is dispatched, its worst case (the tier's per-token profile or measured
rate, times the prompt and the most tokens it may generate) is reserved atomically
against the key's remaining budget; afterwards the reservation is replaced by the actual
receipt. Checking first and charging later would let N concurrent requests all pass the
same check; reserving makes the N+1-th wait for money that is really there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joulegate.backends.prompt_frame import message_text
from joulegate.ledger import BudgetExceeded, KeyInfo, KeyStore, Reservation
from joulegate.metering import Meter, Receipt
from joulegate.server.errors import APIError

BUDGET_NAMES = {"j": "energy (J)", "usd": "cost (USD)", "co2e_g": "CO2e (g)"}


@dataclass
class Hold:
    reservation: Reservation
    tier: str


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


class BudgetGuard:
    def __init__(self, keys: KeyStore, meter: Meter) -> None:
        self.keys = keys
        self.meter = meter

    async def reserve(
        self, key: KeyInfo, candidates: list[str], prompt_tokens: int, max_tokens: int
    ) -> Hold:
        """Reserve on the first candidate tier the budget covers.

        ``candidates`` is the preferred tier alone, or (for keys set to downgrade) the
        preferred tier followed by cheaper ones. The first refusal is the one reported.
        """
        first_error: BudgetExceeded | None = None
        for tier in candidates:
            f = self.meter.worst_case(tier, prompt_tokens, max_tokens)
            try:
                r = await self.keys.reserve_async(key.key_id, f.energy_j, f.cost_usd, f.co2e_g)
            except BudgetExceeded as exc:
                first_error = first_error or exc
                continue
            return Hold(r, tier)
        assert first_error is not None
        raise budget_error(first_error)

    async def settle(self, hold: Hold, receipt: Receipt) -> None:
        await self.keys.settle_async(
            hold.reservation, receipt.energy_j, receipt.cost_usd, receipt.co2e_g
        )

    async def release(self, hold: Hold) -> None:
        await self.keys.release_async(hold.reservation)
