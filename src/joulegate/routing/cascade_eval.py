"""``joulegate bench cascade``: energy per request against quality, for each way of using tiers.

Two tiers: the embedded model (measured here: its graded answers, token log-probs and metered
energy, from ``benchmarks/measure_embedded.py``) and a large tier. Six policies:

- **always-cheapest** / **always-largest**: every request on one tier;
- **route**: the prompt router's head for the embedded tier, ``p_head(prompt) >= target``
  keeps the prompt there (the large tier is the uncalibrated reference, ``p = 1``: the
  absolute rule of ``routing/router.py``);
- **cascade**: the embedded tier answers everything; its answer is kept iff the confidence
  model's ``P(acceptable) >= keep_threshold(target)``, else the large tier answers too;
- **route+cascade**: the cascade only where ``p_head >= min(min_route_score, target)``;
  the other prompts go straight to the large tier;
- **oracle**: the embedded answer exactly when it is right (a bound, not a policy).

The keep rule is the one the gateway runs (``server/cascade.py``): the threshold comes from
the confidence model's own out-of-fold precision curve (``ConfidenceModel.keep_threshold``),
measured inside the data that model was fit on. When no threshold reaches the target the
gateway plans no cheap try and takes the router's choice, and so does this evaluation.

Every point is out of sample: no item is scored by a model fit on it, and no threshold is
chosen on the items it is applied to (the curve of a model fit on a training fold comes from
folds *inside* that training fold).

- (a) **GSM8K test**: the head and the confidence model are fit on the *probe set*'s graded
  answers (which hold GSM8K *train* questions, never test ones) and scored on the GSM8K test
  questions the embedded tier answered; the large tier is GPT-4's graded answer to the same
  question in RouteLLM's ``gsm8k_responses.csv`` (joined on the question's SHA-256).
- (b) **the probe set**, by stratified k-fold over its gold-graded items (routine and hard):
  in each fold the head and the confidence model are refit on the other folds. The large
  tier is *assumed* right on every gold item (it is not measured here). Open-ended items
  are left out: grading them needs the judge, i.e. a large tier to judge with, and there is
  none in this data.

Energy: the embedded tier's own receipts (``energy_j`` of each measured answer; a cascade
that escalates pays the *whole* measured answer, though the gateway stops it at its hold,
so this overstates the cost of a discarded try), and a stated J per answer for the large
tier (default: Epoch AI's 0.3 Wh for a typical GPT-4o query, the figure the metering's
default upstream profile is derived from).

The confidence model is fit with the router's score as a feature only when asked
(``router_score=True``); its training rows then get *out-of-fold* router scores, as the
serving path would see them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sklearn.model_selection import StratifiedKFold

from .cascade_data import Items, load_gsm8k_items, load_probe_items
from .cascade_report import bars
from .confidence import DEFAULT_FIRST_N, ConfidenceModel
from .model import TierOutcomes, TrainConfig, fit_tier_heads, out_of_fold_scores
from .settings import DEFAULT_CASCADE_MIN_ROUTE_SCORE, DEFAULT_MODE, DEFAULT_QUALITY_TARGET

__all__ = [
    "DEFAULT_LARGE_J",
    "POLICIES",
    "Items",
    "evaluate",
    "load_gsm8k_items",
    "load_probe_items",
]

# Epoch AI, "How much energy does ChatGPT use?" (Feb 2025): ~0.3 Wh for a typical GPT-4o
# query = 1,080 J, full-stack; metering/settings.py derives its per-token defaults from it.
DEFAULT_LARGE_J = 1080.0
CHEAP = "embedded/gemma-3-270m"
LARGE = "large"
POLICIES = ("always-cheapest", "always-largest", "route", "cascade", "route+cascade", "oracle")
ACCEPTABLE_AT = 0.5
TARGETS = tuple(round(x, 3) for x in np.linspace(0.0, 1.0, 41))


# -- fitting and scoring ----------------------------------------------------------------


class KeepRule(Protocol):
    """What turns a quality target into a keep threshold (``ConfidenceModel``)."""

    def keep_threshold(self, target: float) -> float | None: ...


@dataclass
class Scored:
    """Out-of-sample scores for each item: the head's P(cheap acceptable | prompt) and the
    confidence model's P(acceptable | answer [, router score]); ``models[fold_of[i]]`` is
    the confidence model that scored item ``i``, whose curve sets its keep threshold."""

    p_head: np.ndarray
    p_conf: np.ndarray
    fold_of: np.ndarray
    models: Sequence[KeepRule]

    def keep_thresholds(self, target: float) -> np.ndarray:
        """Each item's keep threshold at ``target`` (NaN: its model reaches no threshold)."""
        per_model = [m.keep_threshold(target) for m in self.models]
        values = np.array([math.nan if t is None else t for t in per_model], dtype=np.float64)
        return values[self.fold_of]


@dataclass
class Fitted:
    head: Callable[[Sequence[str]], np.ndarray]
    confidence: ConfidenceModel


def fit(train: Items, router_score: bool, config: TrainConfig, folds: int = 5) -> Fitted:
    """The embedded tier's head and confidence model, fit on ``train`` only."""
    scores = train.cheap_score
    model = fit_tier_heads(
        [TierOutcomes(CHEAP, train.prompts, scores)], [CHEAP, LARGE], config, min_outcomes=1
    )
    if CHEAP in model.models:

        def head(prompts: Sequence[str]) -> np.ndarray:
            return np.asarray(model.predict_texts(list(prompts))[:, 0])
    else:  # one class only: a constant head
        rate = float(np.mean(scores >= ACCEPTABLE_AT))

        def head(prompts: Sequence[str]) -> np.ndarray:
            return np.full(len(prompts), rate)

    x = train.features()
    router = None
    if router_score:  # what the router says at serving time: a head that never saw the row
        router = out_of_fold_scores(train.prompts, scores, config, folds)
    confidence = ConfidenceModel.fit(
        x, scores, router_scores=router, acceptable_at=ACCEPTABLE_AT, meta={"tier": CHEAP}
    )
    return Fitted(head, confidence)


def score(fitted: Fitted, test: Items) -> Scored:
    p_head = fitted.head(test.prompts)
    x = test.features(fitted.confidence.first_n)
    if fitted.confidence.uses_router_score:
        x = np.column_stack([x, p_head])
    p_conf = fitted.confidence.predict_proba(x)
    return Scored(p_head, p_conf, np.zeros(len(test), dtype=int), [fitted.confidence])


def _strata(items: Items) -> np.ndarray:
    """Folds keep each kind's share of right and wrong answers."""
    right = items.cheap_score >= ACCEPTABLE_AT
    return np.array([f"{k}:{int(r)}" for k, r in zip(items.kinds, right, strict=True)])


def cross_validated(
    items: Items, folds: int, seed: int, router_score: bool, config: TrainConfig
) -> tuple[Scored, np.ndarray]:
    """Out-of-fold scores for every item (stratified by kind and grade) and each item's fold.

    Each fold's confidence model keeps its own precision curve, measured by the folds inside
    its training part, so the held-out fold's keep threshold is chosen without it: exactly
    what a model from ``joulegate calibrate`` does for the prompts it later serves.
    """
    strata = _strata(items)
    p_head = np.empty(len(items))
    p_conf = np.empty(len(items))
    fold_of = np.empty(len(items), dtype=int)
    models: list[KeepRule] = []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(splitter.split(np.zeros(len(items)), strata)):
        fitted = fit(items.subset(tr), router_score, config)
        s = score(fitted, items.subset(te))
        p_head[te], p_conf[te], fold_of[te] = s.p_head, s.p_conf, k
        models.append(fitted.confidence)
    return Scored(p_head, p_conf, fold_of, models), fold_of


# -- policies -------------------------------------------------------------------------


def outcome(
    policy: str, items: Items, s: Scored, target: float, min_route_score: float
) -> dict[str, np.ndarray]:
    """Per item: the score the client gets, the energy spent, tried/kept on the cheap tier.

    The cascades keep an answer iff ``p_conf >= keep_threshold(target)`` of the model that
    scored it; where that model has no threshold for the target, the gateway plans no cheap
    try and the router's choice answers (the ``route`` policy), and so it is here.
    """
    ok = items.cheap_score >= ACCEPTABLE_AT
    n = len(items)
    routed = s.p_head >= target
    if policy in ("cascade", "route+cascade"):
        threshold = s.keep_thresholds(target)
        has = ~np.isnan(threshold)
        confident = has & (s.p_conf >= np.where(has, threshold, np.inf))
    if policy == "always-cheapest":
        tried, kept = np.ones(n, bool), np.ones(n, bool)
    elif policy == "always-largest":
        tried, kept = np.zeros(n, bool), np.zeros(n, bool)
    elif policy == "route":
        kept = routed
        tried = kept
    elif policy == "cascade":
        tried = np.where(has, True, routed)
        kept = np.where(has, confident, routed)
    elif policy == "route+cascade":
        start = s.p_head >= min(min_route_score, target)
        tried = np.where(has, start, routed)
        kept = np.where(has, start & confident, routed)
    elif policy == "oracle":
        kept = ok
        tried = kept
    else:
        raise ValueError(f"unknown policy {policy!r}")
    quality = np.where(kept, items.cheap_score, items.large_score)
    energy = np.where(tried, items.cheap_j, 0.0) + np.where(kept, 0.0, items.large_j)
    return {"quality": quality, "energy": energy, "tried": tried, "kept": kept}


def summarize(
    o: dict[str, np.ndarray], items: Items, mask: np.ndarray | None = None
) -> dict[str, Any]:
    m = np.ones(len(items), bool) if mask is None else mask
    kept = o["kept"][m]
    n_kept = int(kept.sum())
    right_kept = int((items.cheap_score[m][kept] >= ACCEPTABLE_AT).sum())
    large_only = float(items.large_j[m].mean()) if m.any() else float("nan")
    energy = float(o["energy"][m].mean()) if m.any() else float("nan")
    return {
        "n": int(m.sum()),
        "quality": float(o["quality"][m].mean()) if m.any() else float("nan"),
        "energy_j": energy,
        "energy_saved": 1.0 - energy / large_only if m.any() else float("nan"),
        "tried_cheap": float(o["tried"][m].mean()) if m.any() else float("nan"),
        "kept_cheap": float(kept.mean()) if m.any() else float("nan"),
        "kept_n": n_kept,
        "kept_acceptable": right_kept / n_kept if n_kept else None,
    }


def curves(
    items: Items, s: Scored, min_route_score: float, mask: np.ndarray | None = None
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for policy in POLICIES:
        targets = TARGETS if policy in ("route", "cascade", "route+cascade") else (None,)
        points = []
        for t in targets:
            o = outcome(policy, items, s, 0.0 if t is None else t, min_route_score)
            points.append({"target": t, **summarize(o, items, mask)})
        out[policy] = points
    return out


def table(
    items: Items, s: Scored, target: float, min_route_score: float, mask: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    return {
        p: summarize(outcome(p, items, s, target, min_route_score), items, mask) for p in POLICIES
    }


def min_route_sweep(
    items: Items, s: Scored, target: float, mask: np.ndarray
) -> list[dict[str, Any]]:
    """route+cascade at ``target`` for a range of ``cascade_min_route_score``: how many
    prompts still try the cheap tier (each failed try costs its energy and time to first
    token) against what is kept."""
    out = []
    for m in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85):
        row = summarize(outcome("route+cascade", items, s, target, m), items, mask)
        out.append({"min_route_score": m, **row})
    return out


# -- timing ---------------------------------------------------------------------------


def decision_timing(model: ConfidenceModel, items: Items, repeats: int = 3) -> dict[str, float]:
    """Wall time of one confidence decision (features from the token log-probs + the model),
    the work the gateway does between holding the cheap tokens and releasing them."""
    router = 0.5 if model.uses_router_score else None
    times = []
    for lp, text in zip(items.logprobs[:50], items.head_text[:50], strict=True):
        model.p_acceptable(lp, text, router)  # warm-up
    for _ in range(repeats):
        for lp, text in zip(items.logprobs, items.head_text, strict=True):
            t0 = time.perf_counter()
            model.p_acceptable(lp, text, router)
            times.append(time.perf_counter() - t0)
    ordered = sorted(times)
    return {
        "n": len(times),
        "p50_ms": statistics.median(times) * 1000.0,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000.0,
    }


# -- the whole evaluation ------------------------------------------------------------------


def evaluate(
    probe_outcomes: Path,
    gsm8k_outcomes: Path | None,
    gsm8k_responses: Path | None,
    *,
    large_j: float = DEFAULT_LARGE_J,
    embedded_j: float | None = None,
    target: float = DEFAULT_QUALITY_TARGET,
    min_route_score: float = DEFAULT_CASCADE_MIN_ROUTE_SCORE,
    mode: str = DEFAULT_MODE,
    folds: int = 5,
    seed: int = 0,
    router_score: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Everything ``joulegate bench cascade`` prints, plots and saves, as one JSON-able dict."""
    config = TrainConfig(seed=seed)
    step = on_step or (lambda _msg: None)
    probes = load_probe_items(probe_outcomes, large_j, embedded_j)
    result: dict[str, Any] = {
        "settings": {
            "quality_target": target,
            "cascade_min_route_score": min_route_score,
            "mode": mode,
            "folds": folds,
            "seed": seed,
            "confidence_uses_router_score": router_score,
            "first_n": DEFAULT_FIRST_N,
            "large_j_per_answer": large_j,
            "large_j_source": "Epoch AI (Feb 2025): ~0.3 Wh per typical GPT-4o query"
            if large_j == DEFAULT_LARGE_J
            else "given with --large-j",
            "embedded_j": "measured per answer (its receipts)"
            if embedded_j is None
            else embedded_j,
        },
        "sets": {},
    }

    step(f"probe set: {folds}-fold cross-validation")
    cv, _ = cross_validated(probes, folds, seed, router_score, config)
    routine = probes.kinds == "routine"
    result["sets"]["probes"] = {
        "name": "probe set, routine items (k-fold)",
        "notes": probes.notes,
        "n": int(routine.sum()),
        "n_all_graded": len(probes),
        "table": table(probes, cv, target, min_route_score, routine),
        "table_all_graded": table(probes, cv, target, min_route_score),
        "curves": curves(probes, cv, min_route_score, routine),
    }
    result["sets"]["probes"]["min_route_sweep"] = min_route_sweep(probes, cv, target, routine)
    result["sets"]["probes"]["keep_thresholds"] = [m.keep_threshold(target) for m in cv.models]

    step("fitting on the whole probe set")
    full = fit(probes, router_score, config)
    result["decision_time"] = decision_timing(full.confidence, probes)
    result["full_fit"] = _fit_summary(full.confidence, target)

    if gsm8k_outcomes is not None and gsm8k_responses is not None:
        step("GSM8K test: scoring with the probe-set models")
        gsm = load_gsm8k_items(gsm8k_outcomes, gsm8k_responses, large_j, embedded_j)
        if len(gsm):
            s = score(full, gsm)
            result["sets"]["gsm8k"] = {
                "name": "GSM8K test (fit on the probe set)",
                "notes": gsm.notes,
                "n": len(gsm),
                "table": table(gsm, s, target, min_route_score),
                "curves": curves(gsm, s, min_route_score),
                "keep_thresholds": [full.confidence.keep_threshold(target)],
            }
    result["bars"] = bars(result, mode)
    return result


def _fit_summary(model: ConfidenceModel, target: float) -> dict[str, Any]:
    """The model fit on the whole probe set (what GSM8K is scored with, and what the shipped
    router holds): its keep threshold at ``target`` and what its own out-of-fold curve says
    that threshold keeps."""
    threshold = model.keep_threshold(target)
    out: dict[str, Any] = {"keep_threshold": threshold, "min_kept": model.min_kept}
    if model.curve is not None:
        if threshold is not None:
            out["curve_at_threshold"] = model.curve.at(threshold)
        else:
            out["why_none"] = model.why_no_threshold(target)
    return out
