"""RouteLLM's routing metrics (PGR, APGR, CPT), computed exactly as its evaluation code does.

Mirrors lm-sys/RouteLLM ``routellm/evals/benchmarks.py`` (``evaluate``,
``get_optimal_accuracy``) and ``routellm/evals/evaluate.py`` (``pct_call_metric``,
``auc_metric``, ``apgr_metric``), so our numbers are comparable with its published table:

- Thresholds are the edges of ``pd.qcut(scores, num_results=10)``: the 0, 10, ..., 100th
  percentiles of the router's scores (linear interpolation, duplicates kept). At every edge but
  the last, a prompt goes to the strong model when ``score >= threshold``; at the last edge
  when ``score > threshold``. That gives 11 operating points from 100% to ~0% strong calls.
- Quality at a point is the mean correctness of the routed answers.
- PGR = (quality - weak) / (strong - weak), where weak/strong are the single models' qualities.
- APGR = (AUC - weak_AUC) / (strong_AUC - weak_AUC), AUCs by the trapezoid rule over the
  points sorted by strong-call share (as a fraction); i.e. the area under the PGR curve.
- CPT(x) = ``np.interp(weak + x (strong - weak), qualities, shares)`` with points sorted by
  share — RouteLLM does not force the qualities to be monotone, and neither do we.
- The perfect ("optimal") router sends to the strong model only the prompts the weak model
  gets wrong and the strong one right, up to the share budget, evaluated at shares
  0, 10, ..., 100%, as RouteLLM's ``plot_optimal`` does.

Where pandas would leave ordering unspecified (ties in a sort) we use a stable sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CurvePoint",
    "RoutingReport",
    "apgr",
    "cpt",
    "optimal_curve",
    "pgr",
    "random_scores",
    "report",
    "threshold_curve",
]

NUM_RESULTS = 10  # RouteLLM evaluate.py default (--num-results)


@dataclass(frozen=True)
class CurvePoint:
    """One operating point: share of strong calls (0-1) and the quality it reaches (0-1)."""

    strong_share: float
    quality: float
    threshold: float = float("nan")


@dataclass(frozen=True)
class RoutingReport:
    """Summary of one router's curve against the two single models."""

    name: str
    points: list[CurvePoint]
    weak_quality: float
    strong_quality: float
    apgr: float
    cpt50: float
    cpt80: float
    cpt20: float

    def pgrs(self) -> list[float]:
        return [pgr(p.quality, self.weak_quality, self.strong_quality) for p in self.points]


def pgr(quality: float, weak: float, strong: float) -> float:
    """Performance gap recovered: 0 at the weak model's quality, 1 at the strong model's."""
    return (quality - weak) / (strong - weak)


def threshold_curve(
    scores: np.ndarray,
    weak_correct: np.ndarray,
    strong_correct: np.ndarray,
    num_results: int = NUM_RESULTS,
) -> list[CurvePoint]:
    """RouteLLM's operating points for a router that scores each prompt's need for the strong
    model (higher = more likely to be routed to the strong model)."""
    scores = np.asarray(scores, dtype=np.float64)
    weak = np.asarray(weak_correct, dtype=np.float64)
    strong = np.asarray(strong_correct, dtype=np.float64)
    thresholds = np.quantile(scores, np.linspace(0.0, 1.0, num_results + 1))
    points = []
    for i, t in enumerate(thresholds):
        chosen = scores >= t if i != len(thresholds) - 1 else scores > t
        results = np.where(chosen, strong, weak)
        points.append(CurvePoint(float(chosen.mean()), float(results.mean()), float(t)))
    return points


def optimal_curve(
    weak_correct: np.ndarray, strong_correct: np.ndarray, num_results: int = NUM_RESULTS
) -> list[CurvePoint]:
    """The perfect router at shares 0, 1/num_results, ..., 1 (RouteLLM ``get_optimal_accuracy``)."""
    weak = np.asarray(weak_correct, dtype=np.float64)
    strong = np.asarray(strong_correct, dtype=np.float64)
    total = len(weak)
    # Graded scores generalise RouteLLM's boolean count: the best prompts to escalate are those
    # with the largest positive gain, taken greedily up to the budget.
    gains = np.sort(np.clip(strong - weak, 0.0, None))[::-1]
    points = []
    for k in range(num_results + 1):
        share = k / num_results
        budget = total * share
        whole = int(np.floor(budget))
        bonus = gains[:whole].sum() + (budget - whole) * (gains[whole] if whole < total else 0.0)
        points.append(CurvePoint(share, float((weak.sum() + bonus) / total)))
    return points


def _sorted(points: Sequence[CurvePoint]) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort([p.strong_share for p in points], kind="stable")
    shares = np.array([points[i].strong_share for i in order])
    quality = np.array([points[i].quality for i in order])
    return shares, quality


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """``np.trapz`` (renamed ``trapezoid`` in numpy 2), spelled out to work on both."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def apgr(points: Sequence[CurvePoint], weak: float, strong: float) -> float:
    """Average PGR: area between the curve and the weak line over the strong-weak area."""
    shares, quality = _sorted(points)
    auc = _trapezoid(quality, shares)
    weak_auc = _trapezoid(np.full_like(shares, weak), shares)
    strong_auc = _trapezoid(np.full_like(shares, strong), shares)
    return float((auc - weak_auc) / (strong_auc - weak_auc))


def cpt(points: Sequence[CurvePoint], weak: float, strong: float, target_pgr: float) -> float:
    """Call-performance threshold: strong-call share (0-1) at which PGR reaches ``target_pgr``."""
    shares, quality = _sorted(points)
    return float(np.interp(target_pgr * (strong - weak) + weak, quality, shares))


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """RouteLLM's random router: an independent uniform score per prompt (seeded)."""
    return np.random.default_rng(seed).uniform(size=n)


def report(
    name: str, points: list[CurvePoint], weak_correct: np.ndarray, strong_correct: np.ndarray
) -> RoutingReport:
    """Every RouteLLM metric for one curve."""
    weak = float(np.mean(weak_correct))
    strong = float(np.mean(strong_correct))
    return RoutingReport(
        name=name,
        points=points,
        weak_quality=weak,
        strong_quality=strong,
        apgr=apgr(points, weak, strong),
        cpt50=cpt(points, weak, strong, 0.5),
        cpt80=cpt(points, weak, strong, 0.8),
        cpt20=cpt(points, weak, strong, 0.2),
    )
