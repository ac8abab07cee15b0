"""Which tiers a request will try, in what order, and why.

``auto`` asks the router for the cheapest tier expected to answer well; an explicit model id
names its tier. Either way the plan continues with the fallbacks: the more capable tiers,
then the cheaper ones as a last resort, so a failing tier never means a failed request while
another tier can answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joulegate.backends.prompt_frame import message_text
from joulegate.server.errors import APIError
from joulegate.server.gateway import Gateway, Tier
from joulegate.server.protocol import ChatCompletionRequest

AUTO = "auto"


@dataclass
class Plan:
    """Which tiers to try, in order, and why the first was chosen."""

    tiers: list[Tier]
    route: dict[str, Any] | None = None


def plan_request(gw: Gateway, req: ChatCompletionRequest) -> Plan:
    if req.model == AUTO:
        return _route(gw, req)
    tier = gw.find_model(req.model)
    if tier is None:
        raise APIError(
            404,
            f"The model '{req.model}' does not exist. Available: "
            + ", ".join([AUTO, *(t.public_id for t in gw.tiers)]),
            param="model",
            code="model_not_found",
        )
    return Plan(with_fallbacks(gw, tier))


def with_fallbacks(gw: Gateway, first: Tier) -> list[Tier]:
    """The chosen tier, then the more capable ones, then the cheaper ones as a last resort."""
    i = gw.tiers.index(first)
    return [first, *gw.tiers[i + 1 :], *reversed(gw.tiers[:i])]


def _route(gw: Gateway, req: ChatCompletionRequest) -> Plan:
    tiers = gw.tiers
    if gw.router is None or len(tiers) == 1:
        return Plan(with_fallbacks(gw, tiers[0]), {"tier": tiers[0].name, "reason": "single tier"})
    target = req.joulegate.quality_target if req.joulegate else None
    # What the user asked, not what the assistant said: the router was trained on prompts.
    prompt = "\n".join(message_text(m) for m in req.messages_as_dicts() if m["role"] != "assistant")
    decision = gw.router.decide(prompt, [t.name for t in tiers], target)
    route = {
        "tier": decision.tier,
        "scores": {k: round(v, 4) for k, v in decision.scores.items()},
        "quality_target": decision.quality_target,
        "decision_ms": round(decision.decision_ms, 3),
    }
    return Plan(with_fallbacks(gw, gw.tier(decision.tier)), route)
