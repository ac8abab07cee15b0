"""What calibration and the judge need from a gateway: ask a tier, get its metered answer.

Kept as a small protocol so that ``routing`` does not import the server (the layers point
down): ``joulegate calibrate`` passes an ``Ask`` that sends each prompt through the real
pipeline (``ChatService``), so calibration traffic is metered and written to the ledger
like any request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Answer", "Ask", "AskFailed"]


@dataclass(frozen=True)
class Answer:
    """One tier's answer to one prompt, with what the gateway's meter and ledger said."""

    tier: str  # the public id of the tier that answered
    text: str
    finish_reason: str
    completion_tokens: int
    energy_j: float
    energy_source: str
    request_id: str | None = None
    # The answer's token log-probs, when asked for and the tier can give them.
    logprobs: tuple[float, ...] | None = None


class AskFailed(Exception):
    """The tier gave no usable answer (an error, or another tier answered in its place)."""


class Ask(Protocol):
    async def __call__(
        self,
        tier: str,
        prompt: str,
        *,
        max_tokens: int,
        logprobs: bool = False,
        temperature: float | None = None,
    ) -> Answer:
        """``tier``'s answer to ``prompt`` as a single user message; raises ``AskFailed``."""
        ...
