"""Runtime routing: map a prompt to the cheapest configured tier that meets the quality target.

A router file holds heads keyed by *tier public id* (``embedded/gemma-3-270m``), each fit on
that tier's own graded answers (``joulegate calibrate``). No tier is ever given another
model's head. For the configured tiers (cheapest first) the policy is:

- **calibrated**: the tier has a head; ``p = head(prompt)``.
- **reference**: the most expensive tier, when it has no head, is assumed to answer
  acceptably (``p = 1``). This is the safe default: nothing is known to be better.
- **uncalibrated**: a cheaper tier with no head is never chosen by the router. Sending
  prompts to a tier nobody measured is how quality is lost unnoticed, so such a tier only
  serves requests that name it (or fallbacks).

Rule: the cheapest tier ``i`` with ``p_i >= quality_target * max_j p_j`` (over the tiers with
a ``p``); otherwise the most expensive tier. With an uncalibrated reference (``p = 1``) this
is the absolute rule ``p_i >= quality_target``: a cheap tier keeps a prompt when it is
predicted to answer it acceptably with at least that probability.

Loading a router for tiers it has no head for logs one warning naming them and saying what
happens instead. The router is read-only after load, so ``decide`` is safe to call from many
threads; the per-tier-list policy is computed once and cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .model import RouterModel
from .settings import DEFAULT_QUALITY_TARGET

if TYPE_CHECKING:
    from .confidence import ConfidenceModel

__all__ = [
    "CALIBRATED",
    "DEFAULT_QUALITY_TARGET",
    "DEFAULT_ROUTER_FILE",
    "REFERENCE",
    "UNCALIBRATED",
    "RouteDecision",
    "Router",
    "TierPolicy",
    "choose",
]

log = logging.getLogger(__name__)

DEFAULT_ROUTER_FILE = "default_router.npz"
CALIBRATED = "calibrated"
REFERENCE = "reference"
UNCALIBRATED = "uncalibrated"


@dataclass(frozen=True)
class RouteDecision:
    """What the router chose and why; the server reports it in the response's ``joulegate``.

    ``scores`` has a probability for each tier the router could choose (calibrated tiers and
    the reference); ``policy`` says, for every configured tier, which rule applied to it.
    """

    tier: str
    scores: dict[str, float]
    quality_target: float
    decision_ms: float
    policy: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TierPolicy:
    """How the router treats one list of configured tiers (computed once per list)."""

    tiers: tuple[str, ...]
    policy: dict[str, str]
    heads: tuple[int | None, ...]  # the head index of each tier, None without one

    @property
    def any_head(self) -> bool:
        return any(h is not None for h in self.heads)


class Router:
    """A fitted router; load once, call ``decide`` per request."""

    def __init__(
        self,
        model: RouterModel,
        default_quality_target: float = DEFAULT_QUALITY_TARGET,
        tiers: Sequence[str] | None = None,
        source: str = "router",
    ) -> None:
        self.model = model
        self.default_quality_target = default_quality_target
        self.source = source
        self._policies: dict[tuple[str, ...], TierPolicy] = {}
        self._lock = threading.Lock()
        self._confidence: dict[str, ConfidenceModel | None] = {}
        # Pay one-off setup (dense weights, hasher caches) now, not in the first request; after
        # this nothing mutates but the policy cache, which only ever gains equal entries.
        self.head_probabilities("warm-up")
        if tiers is not None:
            self.policy_for(tiers)  # warns now, at start-up, if the file does not fit

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        default_quality_target: float = DEFAULT_QUALITY_TARGET,
        tiers: Sequence[str] | None = None,
    ) -> Router:
        """Load a router file (``None``: the one shipped in the package, fit on the embedded
        tier). With ``tiers`` (public ids, cheapest first), warn at once if it does not fit."""
        if path is None:
            ref = resources.files(__package__).joinpath(DEFAULT_ROUTER_FILE)
            with resources.as_file(ref) as shipped:
                model = RouterModel.load(Path(shipped))
            source = "the shipped router"
        else:
            model = RouterModel.load(Path(path))
            source = str(path)
        return cls(model, default_quality_target, tiers, source)

    @property
    def models(self) -> list[str]:
        """The tiers (public ids) that have a head."""
        return list(self.model.models)

    @property
    def fit_tiers(self) -> list[str]:
        """The tiers the file was fit for, with or without a head."""
        return self.model.tiers

    def confidence_model(self, tier: str) -> ConfidenceModel | None:
        """The cascade's confidence model for ``tier`` (a public id), if calibration fit one."""
        if tier not in self._confidence:
            data = (self.model.meta.get("confidence") or {}).get(tier)
            model = None
            if data is not None:
                from .confidence import ConfidenceModel

                model = ConfidenceModel.from_dict(data)
            self._confidence[tier] = model
        return self._confidence[tier]

    def quality_target_for_share(self, share: float) -> float:
        """The quality target that escalates about ``share`` of calls past the cheapest tier.

        Calibrated on the router's training prompts (in-sample, so a little optimistic), for the
        case of two tiers; use it to express a budget as "at most 30% of calls to the big model".
        """
        quantiles = self.model.meta.get("relative_quantiles")
        if not quantiles:
            raise ValueError("this router file carries no calibration quantiles")
        share = min(max(share, 0.0), 1.0)
        return float(np.interp(share, np.linspace(0.0, 1.0, len(quantiles)), quantiles))

    def head_probabilities(self, prompt: str) -> np.ndarray:
        return self.model.predict_one(prompt)

    def policy_for(self, tiers: Sequence[str]) -> TierPolicy:
        """The policy for these configured tiers (cheapest first); warns once per tier list."""
        key = tuple(tiers)
        found = self._policies.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._policies.get(key)
            if found is None:
                found = self._policy(key)
                self._policies[key] = found
            return found

    def _policy(self, tiers: tuple[str, ...]) -> TierPolicy:
        if not tiers:
            raise ValueError("no tiers to route between")
        index = {m: i for i, m in enumerate(self.model.models)}
        heads = tuple(index.get(t) for t in tiers)
        policy: dict[str, str] = {}
        for i, (t, h) in enumerate(zip(tiers, heads, strict=True)):
            if h is not None:
                policy[t] = CALIBRATED
            elif i == len(tiers) - 1:
                policy[t] = REFERENCE
            else:
                policy[t] = UNCALIBRATED
        uncalibrated = [t for t in tiers if policy[t] == UNCALIBRATED]
        if uncalibrated:
            log.warning(
                "%s was fit on tiers %s; configured %s no head in it, so `auto` never routes "
                "there and chooses among %s instead (%s: %s). Run `joulegate calibrate` to "
                "measure the configured tiers and point [routing] router_path at its file.",
                self.source,
                self.fit_tiers or "none",
                ", ".join(_describe_missing(t, self.fit_tiers) for t in uncalibrated)
                + (" has" if len(uncalibrated) == 1 else " have"),
                [t for t in tiers if policy[t] != UNCALIBRATED],
                tiers[-1],
                policy[tiers[-1]],
            )
        return TierPolicy(tiers, policy, heads)

    def decide(
        self, prompt: str, tiers: Sequence[str], quality_target: float | None = None
    ) -> RouteDecision:
        """Pick the cheapest tier (``tiers``: public ids, cheapest first) that meets the target."""
        start = time.perf_counter()
        target = self.default_quality_target if quality_target is None else quality_target
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"quality_target must lie in [0, 1], got {target}")
        pol = self.policy_for(tiers)
        last = len(pol.tiers) - 1
        probs = self.head_probabilities(prompt) if pol.any_head else None
        p: list[float | None] = []
        for i, h in enumerate(pol.heads):
            if h is not None and probs is not None:
                p.append(float(probs[h]))
            else:
                p.append(1.0 if i == last else None)
        chosen = choose(p, target)
        elapsed = (time.perf_counter() - start) * 1000.0
        return RouteDecision(
            tier=pol.tiers[chosen],
            scores={t: v for t, v in zip(pol.tiers, p, strict=True) if v is not None},
            quality_target=target,
            decision_ms=elapsed,
            policy=dict(pol.policy),
        )


def choose(p: Sequence[float | None], target: float) -> int:
    """The rule: the index of the cheapest tier whose ``p`` is at least ``target`` times the
    best ``p`` (``None``: the tier cannot be chosen); else the last, most expensive tier.
    ``decide`` applies it per request; a refit (``routing/learning.py``) scores routers by it."""
    last = len(p) - 1
    bar = target * max((v for v in p if v is not None), default=1.0)
    for i in range(last):
        v = p[i]
        if v is not None and v >= bar:
            return i
    return last


def _describe_missing(tier: str, fit_tiers: Sequence[str]) -> str:
    """``tier``, and the model of the same tier name the file was fit on, if any."""
    name = tier.split("/", 1)[0]
    other = [t for t in fit_tiers if t.split("/", 1)[0] == name and t != tier]
    return f"{tier} (fit on {other[0]}, another model)" if other else tier
