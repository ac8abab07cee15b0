"""Where receipts are kept."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LedgerSettings(BaseModel):
    # None: a SQLite file in the data dir. PostgreSQL: postgresql+psycopg://user@host/db
    url: str | None = None
    # SQLite only. FULL fsyncs every group commit, so a committed row survives power loss;
    # NORMAL survives a process crash (kill -9) but may lose the last commits on power loss.
    # Group commit amortises the fsync over every request in the batch, so FULL is the default.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Most rows one group commit writes; a burst larger than this takes several commits.
    batch_max: int = Field(default=512, ge=1)
