"""The OpenAI chat-completions wire format, as far as joulegate reads it.

Unknown fields are kept (``extra="allow"``) so parameters we do not interpret still reach
an upstream tier that does; fields we do interpret are validated strictly so a bad value
is a 400 with the field named, never a surprise from deep inside a backend.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Parameters joulegate consumes itself; everything else in the body is passed upstream.
CONSUMED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "n",
        "stream",
        "stream_options",
        "joulegate",
    }
)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class JoulegateOptions(BaseModel):
    """joulegate's own request options, sent by OpenAI clients through ``extra_body``."""

    model_config = ConfigDict(extra="forbid")
    quality_target: float | None = Field(default=None, ge=0.0, le=1.0)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    joulegate: JoulegateOptions | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return v

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def token_limit(self) -> int | None:
        """``max_completion_tokens`` is the newer name; it wins when both are sent."""
        return self.max_completion_tokens or self.max_tokens

    def passthrough(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if k not in CONSUMED}

    def messages_as_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]
