"""Which tiers a request will try, in what order, why, and what its key's budget holds.

``auto`` asks the router for the cheapest tier expected to answer well; an explicit model id
names its tier. Either way the plan continues with the fallbacks: the more capable tiers,
then the cheaper ones as a last resort, so a failing tier never means a failed request while
another tier can answer.

In a cascade mode (``[routing] mode``), ``auto`` may instead start on the cheapest tier that
has a confidence model: the plan then carries a ``cascade`` step saying how that tier's
answer is judged and where the request goes if it is not kept (``server/cascade.py``).

A key with a budget reserves its worst case here, before anything runs. A key set to
downgrade may land on a cheaper tier its remaining budget still covers; that decision is
part of the plan, so the pipeline after it never plans again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from joulegate.backends.base import message_text
from joulegate.ledger import KeyInfo
from joulegate.server import cascade
from joulegate.server.budget import NO_BUDGET, Hold, prompt_token_bound
from joulegate.server.capabilities import capable_gateway
from joulegate.server.errors import APIError
from joulegate.server.gateway import Gateway, Tier
from joulegate.server.protocol import ChatCompletionRequest
from joulegate.server.ratelimit import estimate_tokens

if TYPE_CHECKING:  # the router (and numpy) is imported only when there is a choice to make
    from joulegate.routing import RouteDecision

AUTO = "auto"


@dataclass(frozen=True)
class Route:
    """Why a request starts on its first tier; the response reports it as ``joulegate.route``."""

    tier: str
    decision: RouteDecision | None = None  # the router's, when it chose among tiers
    reason: str | None = None  # why no decision was needed
    downgraded_from: str | None = None  # the tier the key's budget could no longer cover
    mode: str | None = None  # ``[routing] mode``, when the router chose among tiers

    def as_dict(self) -> dict[str, Any]:
        """The JSON the client sees: rounded, and only the fields that apply."""
        out: dict[str, Any] = {"tier": self.tier}
        if self.mode is not None:
            out["mode"] = self.mode
        if self.reason is not None:
            out["reason"] = self.reason
        if self.decision is not None:
            d = self.decision
            out["scores"] = {k: round(v, 4) for k, v in d.scores.items()}
            out["quality_target"] = d.quality_target
            out["decision_ms"] = round(d.decision_ms, 3)
            out["policy"] = dict(d.policy)
        if self.downgraded_from is not None:
            out["downgraded_from"] = self.downgraded_from
        return out


@dataclass(frozen=True)
class Plan:
    """What to try, in order, and what to send each tier.

    ``hold`` already holds the key's budget on ``tiers[0]``; whoever runs the plan owns it
    from here and must settle or release it.
    """

    tiers: list[Tier]
    route: Route | None  # None: the client named the model, and got it
    hold: Hold
    # ``max_tokens`` to send each tier (by name); None lets the tier apply its own default.
    max_tokens: Mapping[str, int | None]
    # Set when ``tiers[0]`` is a cascade's cheap try, judged before its answer is used.
    cascade: cascade.Step | None = None


async def plan_request(gw: Gateway, req: ChatCompletionRequest, key: KeyInfo | None = None) -> Plan:
    """Choose the tiers and, for a key with a budget, reserve its worst case on the first.

    Raises ``APIError`` 404 for an unknown model, 400 when the request needs a capability
    (tools, images, ...) the named tier or every tier lacks, and 429 when the budget covers
    no tier.
    """
    # Only tiers that can serve the request are planned: routed to, cascaded or fallen back on.
    gw = capable_gateway(gw, req)
    gw = _within_token_limits(gw, req)
    first, route, step = _choose(gw, req)
    requested = req.token_limit()
    cap = gw.settings.server.max_tokens
    if key is None or not key.has_budget:
        # None lets the tier apply its own default, unless the server caps it lower.
        unbounded = {
            t.name: requested or (None if cap is None else min(cap, default_max_tokens(gw, t)))
            for t in gw.tiers
        }
        return Plan(with_fallbacks(gw, first), route, NO_BUDGET, unbounded, step)
    # A budget needs a bound to reserve against: a request that names no max_tokens gets
    # the default of the tier it runs on (or the server's cap, if lower).
    bounds = {
        t.name: requested or min(cap or default_max_tokens(gw, t), default_max_tokens(gw, t))
        for t in gw.tiers
    }
    hold = gw.budget.hold(key, prompt_token_bound(req.messages_as_dicts()), bounds)
    cheaper: list[str] = []
    if key.on_exceed == "downgrade":
        cheaper = [t.name for t in reversed(gw.tiers[: gw.tiers.index(first)])]
    tier = gw.tier(await hold.reserve(first.name, *cheaper))
    if tier is not first:
        step = None  # the budget chose a cheaper tier than the cascade's: no cheap try left
        route = (
            replace(route, tier=tier.name, downgraded_from=first.name)
            if route is not None
            else Route(tier.name, downgraded_from=first.name)
        )
    return Plan(with_fallbacks(gw, tier), route, hold, bounds, step)


def default_max_tokens(gw: Gateway, tier: Tier) -> int:
    """The bound a budgeted request that names no ``max_tokens`` gets on ``tier``: what the
    embedded model generates by default, or the upstream tier's own setting."""
    if tier.settings.kind == "embedded":
        return gw.settings.embedded.default_max_tokens
    bound = tier.settings.default_max_tokens
    if tier.settings.reasoning and "default_max_tokens" not in tier.settings.model_fields_set:
        # A reasoning model thinks before it answers: the ordinary bound would cut it off
        # mid-thought, and the budget must hold what such an answer really costs.
        bound = round(bound * gw.meter.pricing(tier.name).output_multiplier)
    return bound


def token_cost(gw: Gateway, req: ChatCompletionRequest) -> int:
    """What ``req`` is charged against a TPM limit on admission: its prompt, estimated,
    plus the most it may generate (its max_tokens, else the largest tier default)."""
    bound = req.token_limit() or max(default_max_tokens(gw, t) for t in gw.tiers)
    cap = gw.settings.server.max_tokens
    return estimate_tokens(req.messages_as_dicts(), bound if cap is None else min(bound, cap))


def context_tokens(gw: Gateway, tier: Tier) -> int | None:
    """The most tokens ``tier`` can hold, prompt and answer together (None: not known here,
    so the upstream judges)."""
    if tier.settings.kind == "embedded":
        return gw.settings.embedded.n_ctx
    return tier.settings.context_length


def _within_token_limits(gw: Gateway, req: ChatCompletionRequest) -> Gateway:
    """``gw`` narrowed to the tiers whose context can hold the ``max_tokens`` asked for.

    A limit no tier can meet is a 400 naming the parameter, as OpenAI answers it, never a
    silent clamp: a client that asked for 10^12 tokens has a bug worth hearing about. The
    same for more than the server's ``[server] max_tokens``.
    """
    requested = req.token_limit()
    if requested is None:
        return gw
    param = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
    cap = gw.settings.server.max_tokens
    if cap is not None and requested > cap:
        raise APIError(
            400,
            f"{param} is too large: {requested}. This server allows at most {cap} "
            "completion tokens per request.",
            param=param,
            code="invalid_value",
        )
    fits = [t for t in gw.tiers if (context_tokens(gw, t) or requested) >= requested]
    named = gw.find_model(req.model) if req.model != AUTO else None
    if named is not None and named not in fits:
        raise APIError(
            400,
            f"{param} is too large: {requested}. The model '{named.public_id}' has a context "
            f"of {context_tokens(gw, named)} tokens, prompt included.",
            param=param,
            code="invalid_value",
        )
    if not fits:
        largest = max(context_tokens(gw, t) or 0 for t in gw.tiers)
        raise APIError(
            400,
            f"{param} is too large: {requested}. No configured model has a context that "
            f"large (the largest holds {largest} tokens, prompt included).",
            param=param,
            code="invalid_value",
        )
    return gw if len(fits) == len(gw.tiers) else replace(gw, tiers=fits)


def with_fallbacks(gw: Gateway, first: Tier) -> list[Tier]:
    """The chosen tier, then the more capable ones, then the cheaper ones as a last resort."""
    i = gw.tiers.index(first)
    return [first, *gw.tiers[i + 1 :], *reversed(gw.tiers[:i])]


def _choose(
    gw: Gateway, req: ChatCompletionRequest
) -> tuple[Tier, Route | None, cascade.Step | None]:
    """The first tier to try, why (``None``: the client named it), and the cascade step
    when that tier is a cheap try."""
    if req.model == AUTO:
        return _route(gw, req)
    tier = gw.find_model(req.model)
    if tier is None:
        raise model_not_found(gw, req.model)
    return tier, None, None


def router_prompt(req: ChatCompletionRequest) -> str:
    """The text the router reads: what the user asked, not what the assistant said (the
    router is fit on prompts). Shadow sampling keys its outcomes by the same text."""
    messages = req.messages_as_dicts()
    return "\n".join(message_text(m) for m in messages if m["role"] != "assistant")


def model_not_found(gw: Gateway, model: str) -> APIError:
    """The 404 for a model id no tier has, listing those that exist."""
    return APIError(
        404,
        f"The model '{model}' does not exist. Available: "
        + ", ".join([AUTO, *(t.public_id for t in gw.tiers)]),
        param="model",
        code="model_not_found",
    )


def _route(gw: Gateway, req: ChatCompletionRequest) -> tuple[Tier, Route, cascade.Step | None]:
    tiers = gw.tiers
    if gw.router is None or len(tiers) == 1:
        return tiers[0], Route(tiers[0].name, reason="single tier"), None
    target = req.joulegate.quality_target if req.joulegate else None
    prompt = router_prompt(req)
    # Tiers are known to the router by public id: a head fit on one model never routes another.
    decision = gw.router.decide(prompt, [t.public_id for t in tiers], target)
    tier = next(t for t in tiers if t.public_id == decision.tier)
    route = Route(tier.name, decision=decision, mode=gw.settings.routing.mode)
    step, skipped = _cascade_step(gw, tier, route)
    if step is None:
        return tier, replace(route, reason=skipped), None
    return step.tier, replace(route, tier=step.tier.name), step


def _cascade_step(
    gw: Gateway, chosen: Tier, route: Route
) -> tuple[cascade.Step | None, str | None]:
    """The cheap try a cascade mode puts before the router's choice; else why there is none."""
    settings, tiers, decision = gw.settings.routing, gw.tiers, route.decision
    if settings.mode == "route" or gw.router is None or decision is None:
        return None, None
    judged = cascade.cheapest_judged(gw.router, tiers)
    if judged is None:
        return None, "no cascade: no tier below the largest has a confidence model"
    cheap, model = judged
    threshold = model.keep_threshold(decision.quality_target)
    if threshold is None:  # no P is high enough: a cheap try could only be thrown away
        return None, f"no cascade: {model.why_no_threshold(decision.quality_target)}"
    score = decision.scores.get(cheap.public_id)
    at = tiers.index(cheap)
    low = score is None or score < settings.cascade_min_route_score
    if settings.mode == "route+cascade" and chosen is not cheap and low:
        # The router gives the cheap tier no chance on this prompt: don't pay to ask it.
        return None, "no cascade: router score below cascade_min_route_score"
    # Escalate to the next tier up; in route+cascade to the router's choice if that is higher.
    up = tiers[at + 1]
    if settings.mode == "route+cascade" and tiers.index(chosen) > at + 1:
        up = chosen
    step = cascade.Step(
        tier=cheap,
        model=model,
        router_score=score,
        quality_target=decision.quality_target,
        keep_threshold=threshold,
        hold_tokens=settings.cascade_hold_tokens,
        escalate_to=with_fallbacks(gw, up),
        mode=settings.mode,
    )
    return step, None
