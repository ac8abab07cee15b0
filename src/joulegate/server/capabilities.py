"""What a chat request needs of a tier, and which tiers can give it.

A request that sends ``tools``, a ``response_format``, an image or ``logprobs`` is asking
for something a tier either does or silently does not do: the embedded base model would
ignore the tools and make up an answer. So the plan only ever holds tiers that declare
every capability the request needs (``TierSettings.supported``), under ``auto`` and in
fallback alike; naming a tier that lacks one is a 400 that says which, and so is a
request no configured tier can serve. Nothing is dropped on the way.
"""

from __future__ import annotations

from dataclasses import replace

from joulegate.backends.settings import Capability
from joulegate.server.completions_protocol import TextCompletionRequest
from joulegate.server.errors import APIError
from joulegate.server.gateway import Gateway, Tier
from joulegate.server.protocol import ChatCompletionRequest

__all__ = ["capable_gateway", "required"]

AUTO = "auto"

# Content parts a model reads besides text, and the capability each needs.
_PART_NEEDS: dict[str, Capability] = {"image_url": "vision", "input_image": "vision"}


def required(req: ChatCompletionRequest) -> dict[Capability, str]:
    """Each capability ``req`` needs, with the parameter that needs it (for the error).

    Raises ``APIError`` 400 for a content part no tier kind can read (audio, files).
    """
    extra = req.model_extra or {}
    needs: dict[Capability, str] = {}
    if isinstance(req, TextCompletionRequest):  # /v1/completions
        needs["completions"] = "prompt"
    tool_choice = extra.get("tool_choice")
    if extra.get("tools") or extra.get("functions"):
        needs["tools"] = "tools" if extra.get("tools") else "functions"
    elif tool_choice not in (None, "none") or extra.get("function_call") not in (None, "none"):
        needs["tools"] = "tool_choice" if tool_choice is not None else "function_call"
    fmt = extra.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        needs["json_object"] = "response_format"
    elif kind == "json_schema":
        needs["json_schema"] = "response_format"
    elif kind not in (None, "text"):
        raise APIError(
            400,
            f"response_format type {kind!r} is not supported; use 'text', 'json_object' "
            "or 'json_schema'.",
            param="response_format",
            code="invalid_value",
        )
    if extra.get("logprobs") or extra.get("top_logprobs"):
        needs["logprobs"] = "logprobs" if extra.get("logprobs") else "top_logprobs"
    if extra.get("reasoning_effort") is not None:
        needs["reasoning"] = "reasoning_effort"
    for i, message in enumerate(req.messages):
        if message.role == "tool" or message.tool_calls or message.role == "function":
            needs.setdefault("tools", f"messages[{i}]")
        for part in message.content if isinstance(message.content, list) else ():
            if part.type == "text":
                continue
            need = _PART_NEEDS.get(part.type)
            if need is None:
                raise APIError(
                    400,
                    f"Content parts of type {part.type!r} are not supported by joulegate "
                    "(docs/compatibility.md).",
                    param=f"messages[{i}].content",
                    code="unsupported_content",
                )
            needs.setdefault(need, f"messages[{i}].content")
    return needs


def capable_gateway(gw: Gateway, req: ChatCompletionRequest) -> Gateway:
    """``gw`` narrowed to the tiers that can serve ``req``; ``gw`` itself when all can.

    Planning on the narrowed gateway keeps the router, the cascade and the fallbacks to
    those tiers. Raises ``APIError`` 400 when the named tier, or every tier, lacks a
    capability the request needs.
    """
    needs = required(req)
    if not needs:
        return gw
    able = [t for t in gw.tiers if _lacks(t, needs) is None]
    if req.model != AUTO:
        named = gw.find_model(req.model)
        if named is not None:
            missing = _lacks(named, needs)
            if missing is not None:
                raise APIError(
                    400,
                    f"Tier {named.public_id!r} does not support {missing} (needed by "
                    f"'{needs[missing]}')." + _alternatives(able),
                    param=needs[missing],
                    code="unsupported_capability",
                )
    if not able:
        names = ", ".join(sorted(needs))
        first = sorted(needs)[0]
        raise APIError(
            400,
            f"No configured tier supports what this request needs ({names}); declare it in "
            "a tier's [tiers.capabilities] if its model can (docs/compatibility.md).",
            param=needs[first],
            code="unsupported_capability",
        )
    if len(able) == len(gw.tiers):
        return gw
    return replace(gw, tiers=able)


def _lacks(tier: Tier, needs: dict[Capability, str]) -> Capability | None:
    supported = tier.settings.supported
    return next((c for c in needs if c not in supported), None)


def _alternatives(able: list[Tier]) -> str:
    if not able:
        return " No configured tier does."
    return " Tiers that do: " + ", ".join(t.public_id for t in able) + "."
