"""The ledger's exceptions: one small hierarchy callers can catch as ``LedgerError``."""

from __future__ import annotations

from datetime import datetime


class LedgerError(Exception):
    """Base class for everything the ledger raises on purpose."""


class LedgerClosed(LedgerError):
    """``record()`` was called before ``start()`` or after ``close()``."""


class DuplicateRequest(LedgerError):
    """A row with this ``request_id`` is already in the ledger (another process wrote it)."""


class UnknownKey(LedgerError):
    """The API key id does not exist or has been revoked."""


class BudgetExceeded(LedgerError):
    """The key's remaining budget cannot cover this request's worst case.

    ``budget`` names the exhausted budget (``"j"``, ``"usd"`` or ``"co2e_g"``); ``spent``
    counts settled spend plus outstanding reservations in the current period;
    ``resets_at`` is when the period rolls over, ``None`` for a lifetime budget.
    """

    def __init__(
        self,
        budget: str,
        limit: float,
        spent: float,
        requested: float,
        resets_at: datetime | None,
    ) -> None:
        self.budget = budget
        self.limit = limit
        self.spent = spent
        self.requested = requested
        self.resets_at = resets_at
        when = f"; resets at {resets_at.isoformat()}" if resets_at else ""
        super().__init__(
            f"{budget} budget exceeded: {spent:g} of {limit:g} used, "
            f"this request needs up to {requested:g}{when}"
        )
