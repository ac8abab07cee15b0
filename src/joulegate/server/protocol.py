"""The OpenAI chat-completions wire format, as far as joulegate reads it.

Unknown fields are kept (``extra="allow"``) so parameters we do not interpret still reach
an upstream tier that does; fields we do interpret are validated strictly so a bad value
is a 400 with the field named, never a surprise from deep inside a backend.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

# Request limits, declared in the schema (so the OpenAPI document says them) and enforced
# by validation: a conversation this long or a value nested this deep is an attack or a bug,
# and each one costs the parser, the router and the upstream time in proportion.
MAX_MESSAGES = 1024
MAX_DEPTH = 32

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


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    arguments: str


class ToolCall(BaseModel):
    """A tool call an assistant message made earlier in the conversation."""

    model_config = ConfigDict(extra="allow")
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


# What the validator below enforces, said in the schema (OpenAPI): a tool message names the
# call it answers; only assistant messages carry tool calls.
_MESSAGE_ROLES_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "properties": {
                "role": {"enum": ["system", "developer", "user"]},
                "tool_calls": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]},
            }
        },
        {"properties": {"role": {"const": "assistant"}}},
        {
            "properties": {
                "role": {"const": "tool"},
                "tool_call_id": {"type": "string", "minLength": 1},
                "tool_calls": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]},
            },
            "required": ["tool_call_id"],
        },
    ]
}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=_MESSAGE_ROLES_SCHEMA)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    # An assistant turn that called tools (its content is then usually null), and the
    # tool's answer, which names the call it answers.
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_turns_are_complete(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs the tool_call_id it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The message with its nulls dropped (a tier may map it further: the backend's
        ``tier_messages``)."""
        return self.model_dump(exclude_none=True)


class StreamOptions(BaseModel):
    include_usage: bool = False


class JoulegateOptions(BaseModel):
    """joulegate's own request options, sent by OpenAI clients through ``extra_body``."""

    model_config = ConfigDict(extra="forbid")
    quality_target: float | None = Field(default=None, ge=0.0, le=1.0)
    # The response cache for this request (docs/cache.md): "off", "exact", or "semantic"
    # (same question in other words); it may lower the deployment's mode, not raise it past
    # what ``[cache]`` allows.
    cache: Literal["off", "exact", "semantic"] | None = None
    # Never store this request's answer in the cache.
    no_store: bool | None = None


# Up to four stop sequences, as OpenAI allows; checked by a validator (so the error names
# ``stop``) and said in the schema for the OpenAPI document.
MAX_STOP = 4
_STOP_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "maxItems": MAX_STOP},
        {"type": "null"},
    ]
}


class BoundedBody(BaseModel):
    """A request body that nests lists and objects at most ``MAX_DEPTH`` levels deep, checked
    before validation: every endpoint's body (chat, completions, responses, embeddings) passes
    its unknown fields through to an upstream, so none may carry a structure that costs more
    to walk than to send."""

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: Any) -> Any:
        if _depth_exceeds(data, MAX_DEPTH):
            raise ValueError(f"the request nests values more than {MAX_DEPTH} levels deep")
        return data


class ChatCompletionRequest(BoundedBody):
    model_config = ConfigDict(
        extra="allow",
        # Shown by /docs ("Try it out") and sent first by the fuzzer.
        json_schema_extra={
            "examples": [{"model": "auto", "messages": [{"role": "user", "content": "Say hi."}]}]
        },
    )

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: Annotated[str | list[str] | None, WithJsonSchema(_STOP_SCHEMA)] = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    joulegate: JoulegateOptions | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences are allowed")
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
        return [m.as_dict() for m in self.messages]


# -- responses, as the OpenAPI document describes them -------------------------------------
# The routes build plain dicts (``chunks.py``: this is the hot path); these models only
# document what comes back, and the fuzzing test holds each answer to them.


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error, whatever the status: OpenAI's shape, which its SDKs parse."""

    error: ErrorDetail


class AssistantMessage(_Open):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Choice(_Open):
    index: int
    message: AssistantMessage
    logprobs: dict[str, Any] | None = None
    finish_reason: str | None


class UsageOut(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(_Open):
    """A ``chat.completion``; ``joulegate`` is the receipt: energy, cost, CO2e, route."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: UsageOut
    joulegate: dict[str, Any]


class Model(_Open):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[Model]


class Health(_Open):
    """200 while any tier answers; 503 (same body, ``degraded``) when none does."""

    status: Literal["ok", "degraded"]
    tiers: dict[str, bool]
    sensor: str


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects deeper than ``limit`` (iterative: a deep
    value must not cost a deep Python stack either)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
