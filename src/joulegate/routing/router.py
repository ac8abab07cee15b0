"""Runtime routing: map a prompt to the cheapest configured tier that meets the quality target.

Decision rule. The model predicts ``p_k = P(head k answers acceptably)`` for each learned head
(weakest to strongest). Configured tiers are mapped onto heads (below), then the router picks
the cheapest tier ``i`` with ``p_i >= quality_target * max_j p_j``: a cheaper tier is good enough
when it is predicted to be at least ``quality_target`` times as likely to answer well as the
best tier. This *relative* target is used, rather than an absolute ``p_i >= target``, because it
measured clearly better on the RouteLLM data (it escalates only when escalating is predicted to
help; an absolute target also escalates prompts no tier will get right) — see docs/routing.md.
The most expensive tier is the fallback.

Tier mapping. With ``N`` configured tiers (cheapest first) and ``K`` learned heads, tier ``i``
sits at position ``i / (N - 1)`` on the head axis ``[0, K - 1]`` and takes the linear
interpolation of the neighbouring heads' probabilities. So with ``N == K`` each tier gets its own
head; with a 2-model router the cheapest tier is the weak head, the most expensive the strong
head, and middle tiers are interpolated.

The router is read-only after load, so ``decide`` is safe to call from many threads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .model import RouterModel
from .settings import DEFAULT_QUALITY_TARGET

__all__ = [
    "DEFAULT_QUALITY_TARGET",
    "DEFAULT_ROUTER_FILE",
    "RouteDecision",
    "Router",
    "tier_probabilities",
]

DEFAULT_ROUTER_FILE = "default_router.npz"


@dataclass(frozen=True)
class RouteDecision:
    """What the router chose and why; the server reports it in the response's ``joulegate``."""

    tier: str
    scores: dict[str, float]
    quality_target: float
    decision_ms: float


def tier_probabilities(head_probs: np.ndarray, n_tiers: int) -> np.ndarray:
    """Map ``K`` head probabilities onto ``n_tiers`` tiers by linear interpolation."""
    k = len(head_probs)
    if n_tiers == 1:
        return head_probs[-1:].copy()
    if k == 1:
        return np.repeat(head_probs, n_tiers)
    positions = np.linspace(0.0, k - 1.0, n_tiers)
    return np.interp(positions, np.arange(k, dtype=np.float64), head_probs)


class Router:
    """A trained router; load once, call ``decide`` per request."""

    def __init__(
        self, model: RouterModel, default_quality_target: float = DEFAULT_QUALITY_TARGET
    ) -> None:
        self.model = model
        self.default_quality_target = default_quality_target
        # Pay one-off setup (dense weights, hasher caches) now, not in the first request; after
        # this nothing mutates, so concurrent ``decide`` calls are safe.
        self.head_probabilities("warm-up")

    @classmethod
    def load(
        cls, path: Path | None = None, default_quality_target: float = DEFAULT_QUALITY_TARGET
    ) -> Router:
        """Load a router file; ``None`` loads the default router shipped in the package."""
        if path is None:
            ref = resources.files(__package__).joinpath(DEFAULT_ROUTER_FILE)
            with resources.as_file(ref) as shipped:
                model = RouterModel.load(Path(shipped))
        else:
            model = RouterModel.load(Path(path))
        return cls(model, default_quality_target)

    @property
    def models(self) -> list[str]:
        """The outcome models the heads were trained on, weakest first."""
        return list(self.model.models)

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

    def decide(
        self, prompt: str, tiers: Sequence[str], quality_target: float | None = None
    ) -> RouteDecision:
        """Pick the cheapest tier (``tiers`` ordered cheapest first) that meets the target."""
        if not tiers:
            raise ValueError("no tiers to route between")
        start = time.perf_counter()
        target = self.default_quality_target if quality_target is None else quality_target
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"quality_target must lie in [0, 1], got {target}")
        probs = tier_probabilities(self.head_probabilities(prompt), len(tiers))
        bar = target * float(probs.max())
        chosen = len(tiers) - 1
        for i, p in enumerate(probs[:-1]):
            if p >= bar:
                chosen = i
                break
        elapsed = (time.perf_counter() - start) * 1000.0
        return RouteDecision(
            tier=tiers[chosen],
            scores={t: float(p) for t, p in zip(tiers, probs, strict=True)},
            quality_target=target,
            decision_ms=elapsed,
        )
