"""When a semantic candidate is served: per-entry thresholds toward a maximum error rate.

A single cosine cut-off is either too strict for paraphrases or too loose for near-misses,
and where it sits depends on the embedder and the traffic. vCache (ICLR 2026) instead
learns, per cached entry, where its neighbours stop being answerable by it, and serves a
hit only while the estimated error stays under a user-set bound δ
(``[cache] max_error_rate``). This is that scheme, kept small:

- **A score.** ``calibration.json`` (fitted by ``benchmarks/cache_fit.py`` on the fit part
  of the SICK and MSRP pairs) combines the cosine of the two last user turns and their
  content-word overlap into one score ℓ (a logistic regression of "interchangeable" against
  "must not share an answer", over the pairs that pass the guard).
- **What δ bounds.** The share of requests that must not share an answer with an entry
  (a contradiction, a different question in the same conversation state) that would still
  be served from it: the false-hit rate the benchmark measures. The calibration keeps,
  for a grid of rates, the score above which that share of the fit part's such pairs lies
  (a Wilson upper bound at two sigma, so that new pairs have room); ``base_threshold``
  interpolates it. ``error(ℓ)`` is the calibrated chance that a hit at ℓ is wrong, among
  hits at that score (fitted on the high-similarity pairs): its mean over served hits is
  the estimated false-hit rate that ``joulegate cache stats`` and the reports show.
- **Per-entry thresholds.** Every entry starts at ``base_threshold(δ)`` and keeps its own
  offset. An explored near-hit (below) whose answers disagree raises that entry's
  threshold above the score it was seen at, at once. Agreeing answers lower it only with
  enough evidence for the bound: after ``n ≥ ln(0.05) / ln(1 - δ)`` agreeing observations
  and none disagreeing (the rule of three at 95%: 299 for δ = 1%), to the lowest score seen.
- **Exploration.** A share ``explore_rate`` of would-be hits is answered by the model
  instead; the new answer is compared with the cached one, and the entry learns from it.
  The same observations count the disagreements that ``joulegate cache stats`` reports
  beside the estimate. (Near-misses are not explored: at δ = 1% lowering a threshold takes
  hundreds of agreeing observations, and a question that can reach no threshold is then
  known to be a miss before it is embedded, ``index.py``.)
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

CALIBRATION = Path(__file__).with_name("calibration.json")
STEP = 0.25  # how far above a disagreeing observation an entry's threshold moves
CONFIDENCE = 0.05  # the rule of three's 95%

Kind = Literal["hit", "explore", "miss"]


@dataclass(frozen=True)
class Calibration:
    """The score ``w_cos·cosine + w_overlap·overlap + bias``, the score above which each
    false-hit rate lies (``rates``, ascending rate, descending score), and the error model
    ``P(wrong | score) = σ(err_w·score + err_b)``."""

    embedder: str
    w_cos: float
    w_overlap: float
    bias: float
    rates: tuple[tuple[float, float], ...]
    err_w: float
    err_b: float
    # Candidates under this cosine are not scored at all (they cannot reach any threshold).
    min_cosine: float

    def score(self, cosine: float, overlap: float) -> float:
        return self.w_cos * cosine + self.w_overlap * overlap + self.bias

    def error(self, score: float) -> float:
        """The estimated chance that a hit at ``score`` serves a wrong answer."""
        z = self.err_w * score + self.err_b
        return 1.0 / (1.0 + math.exp(-max(min(z, 700.0), -700.0)))

    def min_overlap(self, threshold: float) -> float:
        """The content-word overlap a candidate needs to reach ``threshold`` even at
        cosine 1 (the index's lexical prefilter); 0 when overlap does not raise the score."""
        if self.w_overlap <= 0:
            return 0.0
        return max(0.0, (threshold - self.w_cos - self.bias) / self.w_overlap)

    def base_threshold(self, max_error_rate: float) -> float:
        """The score above which at most ``max_error_rate`` of the pairs that must not
        share an answer lie (log-linear between the fitted rates; past the strictest one,
        nothing but a near-identical text hits)."""
        pts = self.rates
        if not pts:
            return math.inf
        if max_error_rate <= pts[0][0]:
            return pts[0][1] + 1.0
        for (r0, s0), (r1, s1) in itertools.pairwise(pts):
            if max_error_rate <= r1:
                t = (math.log(max_error_rate) - math.log(r0)) / (math.log(r1) - math.log(r0))
                return s0 + t * (s1 - s0)
        return pts[-1][1]


# For an embedder the shipped file has no fit for: only near-identical texts hit.
_STRICT = Calibration("unfitted", 1.0, 0.0, 0.0, ((1.0, 0.99),), 0.0, -10.0, 0.99)


@cache
def load_calibration(embedder: str, path: Path = CALIBRATION) -> Calibration:
    """The fit for ``embedder`` (its ``name``) from ``calibration.json``."""
    try:
        fit = json.loads(path.read_text())["fits"][embedder]
    except (OSError, ValueError, KeyError):
        return _STRICT
    return Calibration(
        embedder,
        fit["w_cos"],
        fit["w_overlap"],
        fit["bias"],
        tuple((float(r), float(s)) for r, s in fit["rates"]),
        fit["err_w"],
        fit["err_b"],
        fit["min_cosine"],
    )


def evidence_needed(max_error_rate: float) -> int:
    """Agreeing observations, with none disagreeing, that bound the error under the rate."""
    return math.ceil(math.log(CONFIDENCE) / math.log(1.0 - max_error_rate))


@dataclass
class EntryThreshold:
    """An entry's own threshold state (stored with the entry)."""

    offset: float = 0.0
    agreed: int = 0
    disagreed: int = 0
    lowest_agreed: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "offset": self.offset,
            "agreed": self.agreed,
            "disagreed": self.disagreed,
            "lowest_agreed": self.lowest_agreed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object] | None) -> EntryThreshold:
        if not d:
            return cls()
        low = d.get("lowest_agreed")
        return cls(
            float(d.get("offset", 0.0)),  # type: ignore[arg-type]
            int(d.get("agreed", 0)),  # type: ignore[call-overload]
            int(d.get("disagreed", 0)),  # type: ignore[call-overload]
            None if low is None else float(low),  # type: ignore[arg-type]
        )

    def learn(self, score: float, agreed: bool, base: float, max_error_rate: float) -> None:
        """One explored observation at ``score`` (``base``: the starting threshold): the
        answers agreed or not."""
        if not agreed:
            self.disagreed += 1
            self.offset = max(self.offset, score - base + STEP)
            return
        self.agreed += 1
        self.lowest_agreed = score if self.lowest_agreed is None else min(self.lowest_agreed, score)
        if not self.disagreed and self.agreed >= evidence_needed(max_error_rate):
            self.offset = min(self.offset, self.lowest_agreed - base)


def decide(
    score: float, base: float, offset: float, explore_rate: float, rng: random.Random
) -> Kind:
    """Serve (``hit``), answer with the model and compare (``explore``), or ``miss``."""
    if score >= base + offset:
        return "explore" if rng.random() < explore_rate else "hit"
    return "miss"
