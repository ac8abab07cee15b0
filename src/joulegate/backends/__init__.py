"""How each tier's model is reached: in-process llama.cpp, or any OpenAI-compatible URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joulegate.backends.base import (
    Backend,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatParams,
    Completion,
    Finish,
    PromptTooLong,
    Started,
    StreamEvent,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    from joulegate.config import Settings, TierSettings

__all__ = [
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "ChatParams",
    "Completion",
    "Finish",
    "PromptTooLong",
    "Started",
    "StreamEvent",
    "TextDelta",
    "Usage",
    "build_backend",
]


def build_backend(tier: TierSettings, settings: Settings) -> Backend:
    """The backend for one configured tier (imports lazily: llama.cpp is heavy)."""
    if tier.kind == "embedded":
        from joulegate.backends.embedded import EmbeddedBackend

        e = settings.embedded
        return EmbeddedBackend(
            tier.name,
            tier.model,
            model_path=e.model_path,
            n_ctx=e.n_ctx,
            n_threads=e.n_threads,
            n_batch=e.n_batch,
            default_max_tokens=e.default_max_tokens,
        )
    from joulegate.backends.http import HTTPBackend

    return HTTPBackend.from_tier(tier)
