"""How each tier's model is reached: in-process llama.cpp, or any OpenAI-compatible URL."""

from __future__ import annotations

from joulegate.backends.base import (
    Backend,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatParams,
    Completion,
    Finish,
    PromptTooLong,
    RequestRejected,
    Started,
    StreamEvent,
    TextDelta,
    Usage,
    message_text,
)
from joulegate.backends.settings import EmbeddedSettings, TierSettings

__all__ = [
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "ChatParams",
    "Completion",
    "EmbeddedSettings",
    "Finish",
    "PromptTooLong",
    "RequestRejected",
    "Started",
    "StreamEvent",
    "TextDelta",
    "TierSettings",
    "Usage",
    "build_backend",
    "message_text",
]


def build_backend(tier: TierSettings, embedded: EmbeddedSettings) -> Backend:
    """The backend for one configured tier (imports lazily: llama.cpp is heavy).

    ``embedded`` configures the in-process model; only the embedded tier reads it.
    """
    if tier.kind == "embedded":
        from joulegate.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(tier.name, tier.model, embedded)
    from joulegate.backends.http import HTTPBackend

    return HTTPBackend(tier)
