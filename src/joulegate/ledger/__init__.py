"""The ledger: one durable row per request, and the API keys whose budgets it enforces.

``Ledger`` writes receipts by group commit and reads aggregates; ``KeyStore`` keeps hashed
API keys and reserves/settles their budgets atomically. The schema is migrated with alembic
scripts shipped in this package. SQLite (WAL) by default, PostgreSQL by URL.
"""

from joulegate.ledger.errors import (
    BudgetExceeded,
    DuplicateRequest,
    LedgerClosed,
    LedgerError,
    UnknownKey,
)
from joulegate.ledger.keys import KeyInfo, KeyStore
from joulegate.ledger.outcomes import OutcomeRecord, OutcomeStore
from joulegate.ledger.records import LedgerRecord
from joulegate.ledger.reservations import Reservation
from joulegate.ledger.settings import LedgerSettings
from joulegate.ledger.store import Ledger, default_url

__all__ = [
    "BudgetExceeded",
    "DuplicateRequest",
    "KeyInfo",
    "KeyStore",
    "Ledger",
    "LedgerClosed",
    "LedgerError",
    "LedgerRecord",
    "LedgerSettings",
    "OutcomeRecord",
    "OutcomeStore",
    "Reservation",
    "UnknownKey",
    "default_url",
]
