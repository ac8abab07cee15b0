"""What every tier looks like to the rest of the gateway.

A backend turns chat parameters into a stream of events. Everything else (routing,
metering, the ledger, HTTP) sits outside and only sees these types, so an embedded
llama.cpp model and a remote vLLM cluster are interchangeable.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChatParams:
    """A validated chat request, independent of HTTP."""

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # Other OpenAI parameters an upstream may understand; passed through untouched.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Started:
    """The backend began work on this request, after waiting its turn.

    Only backends that queue (``Backend.queues``) send it: the meter then charges a
    request for the device only from this moment, not while it waited behind others.
    """


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finish:
    finish_reason: str
    usage: Usage


StreamEvent = Started | TextDelta | Finish


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage


class BackendError(Exception):
    """Base of the errors a backend raises; the server maps each to an OpenAI error."""

    status_code = 502
    error_type = "api_error"
    code: str | None = "upstream_error"
    # True when another tier may answer instead (nothing reached the client yet).
    retryable = True


class PromptTooLong(BackendError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "context_length_exceeded"
    retryable = False


class BackendUnavailable(BackendError):
    status_code = 503
    code = "tier_unavailable"


class BackendTimeout(BackendError):
    status_code = 504
    code = "upstream_timeout"


class Backend(abc.ABC):
    """One tier's way of reaching its model."""

    tier: str
    model: str
    # True when requests wait for one another on a shared device (and send ``Started``).
    queues: bool = False

    @abc.abstractmethod
    def stream(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        """Yield ``Started`` (if the backend queues), text deltas, then exactly one ``Finish``.

        Closing the iterator early (client gone) must stop the generation.
        """

    async def health(self) -> bool:
        return True

    async def start(self) -> None:
        """Load models or open connection pools; called once at server start."""

    async def aclose(self) -> None:
        """Release what ``start`` took."""
