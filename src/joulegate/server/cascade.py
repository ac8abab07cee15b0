"""The cascade: let the cheap tier answer first, keep its answer only when it is confident.

``[routing] mode = "cascade"`` (or ``"route+cascade"``) plans an ``auto`` request onto the
cheapest tier that has a confidence model in the loaded router file (``planning.py`` builds
the :class:`Step`). ``serving.py`` runs that tier with ``want_logprobs`` and this module:

1. **holds** its first tokens (:func:`hold`): at most ``cascade_hold_tokens``, or the whole
   answer when it is shorter. Nothing reaches the client yet.
2. **decides** (:func:`decide`): the confidence model reads the held tokens' log-probs (the
   same first-N features calibration fit it on) and the router's score, and predicts
   P(acceptable). The answer is kept iff that is >= the model's keep threshold for the
   request's quality target (``ConfidenceModel.keep_threshold``: the lowest P at which the
   answers it kept in calibration, out of fold, were acceptable at >= the target rate), so
   the target means "at least this share of kept answers acceptable". Planning looks the
   threshold up (cached per target) and plans no cheap try when there is none. A tier that
   sent no log-probs, or an empty answer, is never kept: unsure means escalate.
3. **releases**: a kept answer is streamed from the held tokens on, then the rest live
   (:func:`replay`); an escalated one is stopped right there (the cheap tier generates no
   more than it was held for), metered as a discarded attempt, and the next tier answers.

The client's receipt counts both attempts (``Receipt.after``) and ``joulegate.route`` says
what happened (:class:`Report`). Why hold instead of streaming the cheap answer at once:
tokens that reached the client cannot be taken back, so the decision has to come first;
the price is time to first token, measured in benchmarks/README.md ("Cascade").
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from joulegate.backends.base import Finish, TextDelta
from joulegate.server.gateway import Tier

if TYPE_CHECKING:  # numpy and scikit-learn are imported only when a router is loaded
    from joulegate.metering import Receipt
    from joulegate.routing import Router
    from joulegate.routing.confidence import ConfidenceModel

__all__ = ["Held", "Report", "Step", "Verdict", "cheapest_judged", "decide", "hold", "replay"]


def cheapest_judged(router: Router, tiers: Sequence[Tier]) -> tuple[Tier, ConfidenceModel] | None:
    """The cheapest tier (``tiers`` cheapest first) that has a confidence model, and it.

    The models come from the router file (``joulegate calibrate`` fits one per tier it
    measured); a router without them gives None, and no tier judges its own answers. The
    most expensive tier is never returned: there is nothing to escalate to from it.
    """
    for tier in tiers[:-1]:
        model = router.confidence_model(tier.public_id)
        if model is not None:
            return tier, model
    return None


@dataclass(frozen=True)
class Step:
    """The planned cheap try: which tier, how its answer is judged, where to go if it fails."""

    tier: Tier
    model: ConfidenceModel
    router_score: float | None  # the router's P(acceptable) for this tier, if it has a head
    quality_target: float  # the share of kept answers that should be acceptable
    keep_threshold: float  # keep iff P(acceptable) >= this: model.keep_threshold(target)
    hold_tokens: int
    escalate_to: list[Tier]  # the plan's tiers after an escalation, fallbacks included
    mode: str


@dataclass
class Held:
    """What the cheap tier said before the decision: events in order, and their log-probs."""

    events: list[TextDelta | Finish] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    deltas: int = 0

    @property
    def finish(self) -> Finish | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, Finish) else None

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def tokens(self) -> int:
        """Tokens generated so far (what a stopped attempt is charged for)."""
        finish = self.finish
        if finish is not None:
            return finish.usage.completion_tokens
        return max(len(self.logprobs), self.deltas)


async def hold(
    events: AsyncIterator[TextDelta | Finish], limit: int, held: Held | None = None
) -> Held:
    """Read ``events`` into ``held`` until the answer ends or ``limit`` tokens' log-probs
    have come.

    A backend that attaches no log-probs to its deltas (only to ``Finish``) is held to the
    end of its answer: without them there is nothing to decide on earlier. Raises what the
    backend raises (``held`` then has what came before); the caller closes ``events``.
    """
    held = Held() if held is None else held
    async for event in events:
        held.events.append(event)
        if isinstance(event, Finish):
            break
        held.deltas += 1
        if event.logprobs:
            held.logprobs.extend(event.logprobs)
        if len(held.logprobs) >= limit:
            break
    return held


@dataclass(frozen=True)
class Verdict:
    keep: bool
    confidence: float | None  # P(acceptable); None when it could not be read
    decision_ms: float
    tokens: int  # the tokens whose log-probs the decision read


def decide(step: Step, held: Held) -> Verdict:
    """Keep the held answer iff the confidence model's P(acceptable) >= the step's keep
    threshold (the one calibrated for the request's quality target).

    The features are those calibration used: the log-probs of the first ``first_n`` tokens
    (``Finish.logprobs`` when the answer ended within the hold) and the length of the text
    of those tokens.
    """
    start = time.perf_counter()
    finish = held.finish
    logprobs: Sequence[float] = held.logprobs
    if finish is not None and finish.logprobs is not None:
        logprobs = finish.logprobs
    n = min(len(logprobs), step.model.first_n)
    text = _head_text(held, step.model.first_n)
    confidence: float | None = None
    if n and text.strip():
        try:
            confidence = step.model.p_acceptable(logprobs[:n], text, step.router_score)
        except ValueError:  # e.g. a model fit with the router's score, and the tier has none
            confidence = None
    keep = confidence is not None and confidence >= step.keep_threshold
    return Verdict(keep, confidence, (time.perf_counter() - start) * 1000.0, n)


def _head_text(held: Held, first_n: int) -> str:
    """The text of the first ``first_n`` deltas: the prefix the features describe (one
    delta is one token for the embedded tier, as in calibration)."""
    deltas = [e.text for e in held.events if isinstance(e, TextDelta)]
    return "".join(deltas[:first_n])


async def replay(
    held: Sequence[TextDelta | Finish], rest: AsyncIterator[TextDelta | Finish]
) -> AsyncIterator[TextDelta | Finish]:
    """The held events, then the rest of the stream live; closing it closes ``rest``."""
    try:
        for event in held:
            yield event
            if isinstance(event, Finish):
                return
        async for event in rest:
            yield event
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


@dataclass
class Report:
    """What the cascade did, merged into the response's ``joulegate.route``."""

    mode: str
    cheap: str  # the tier tried first
    escalated: bool = False
    confidence: float | None = None
    keep_threshold: float | None = None  # the P(acceptable) the answer had to reach
    decision_ms: float | None = None
    discarded: Receipt | None = None  # the cheap attempt's own receipt, when thrown away
    note: str | None = None  # why it escalated without a verdict (the tier failed, ...)
    fallbacks_before: int = 0  # failed tiers recorded before the escalation
    escalated_to: str | None = None  # the tier the plan moved on to

    def as_dict(self, answered_by: str, fallback_from: Sequence[str]) -> dict[str, Any]:
        """``tried``: the cheap tier, then (after an escalation) each tier that failed and
        the one that answered, in order."""
        tried = [self.cheap]
        if self.escalated:
            tried += [*fallback_from[self.fallbacks_before :], answered_by]
        out: dict[str, Any] = {
            "mode": self.mode,
            "escalated": self.escalated,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "keep_threshold": None
            if self.keep_threshold is None
            else round(self.keep_threshold, 4),
            "tried": tried,
        }
        if self.escalated_to is not None:  # the decision's tier is where it escalated to
            out["tier"] = self.escalated_to
        if self.decision_ms is not None:
            out["cascade_decision_ms"] = round(self.decision_ms, 3)
        if self.discarded is not None:
            d = self.discarded
            out["discarded"] = {
                "tier": d.tier,
                "completion_tokens": d.completion_tokens,
                "energy_j": d.energy_j,
                "cost_usd": d.cost_usd,
                "co2e_g": d.co2e_g,
            }
        if self.note is not None:
            out["cascade_note"] = self.note
        return out
