"""Honest evaluation: every routing score is predicted by a router that never saw that prompt.

Two protocols, both deterministic for a given seed:

- ``out_of_fold``: stratified k-fold cross-validation on one dataset; each prompt is scored by
  the router trained on the other folds (hyperparameters are picked by an inner CV inside the
  training folds, see ``model.fit_heads``, so the outer folds are never used for tuning).
- ``transfer``: train on one dataset, score another.

The routing score handed to the RouteLLM metrics is ``1 - P(weak) / max(P(weak), P(strong))``.
That is exactly the rule the server applies (``Router.decide`` keeps the weak tier iff
``P(weak) >= quality_target * max(P)``), so sweeping the threshold sweeps ``quality_target`` and
the benchmark measures the decision the gateway actually makes.

``evaluate`` runs one protocol and reports the router beside RouteLLM's random router and the
perfect router, with the metric code of ``routing.metrics`` (``joulegate bench route``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from . import metrics as m
from .data import Outcomes
from .features import RawFeatures, extract_raw
from .model import TrainConfig, fit_heads, train

__all__ = ["absolute_score", "escalation_score", "evaluate", "out_of_fold", "transfer"]


def escalation_score(probs: np.ndarray, weak_index: int = 0) -> np.ndarray:
    """Higher = more in need of the strong model; ``1 - quality_target`` at which it escalates."""
    return 1.0 - probs[:, weak_index] / np.maximum(probs.max(axis=1), 1e-12)


def absolute_score(probs: np.ndarray, weak_index: int = 0) -> np.ndarray:
    """The alternative rule (escalate when ``P(weak)`` is low), reported for comparison."""
    return 1.0 - probs[:, weak_index]


def _pair_columns(data: Outcomes, weak: str, strong: str) -> np.ndarray:
    return np.column_stack([data.column(weak), data.column(strong)])


def out_of_fold(
    data: Outcomes,
    weak: str,
    strong: str,
    folds: int = 5,
    config: TrainConfig | None = None,
    raw: RawFeatures | None = None,
    on_fold: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Out-of-fold P(acceptable) for (weak, strong), shape ``(n, 2)``."""
    config = config or TrainConfig()
    scores = _pair_columns(data, weak, strong)
    raw = raw if raw is not None else extract_raw(data.prompts, config.spec)
    # Stratify on the joint outcome pattern so every fold sees the same mix of cases.
    strata = (scores[:, 0] >= 0.5).astype(int) * 2 + (scores[:, 1] >= 0.5).astype(int)
    if np.bincount(strata).min() < folds:
        strata = (scores[:, 0] >= 0.5).astype(int)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=config.seed)
    out = np.full(scores.shape, np.nan)
    for k, (tr, te) in enumerate(splitter.split(np.zeros(len(strata)), strata)):
        router = fit_heads(raw.rows(tr), scores[tr], [weak, strong], config)
        out[te] = router.predict_proba(router.featurizer.transform_raw(raw.rows(te)))
        if on_fold is not None:
            on_fold(k)
    return out


def transfer(
    train_data: Outcomes,
    test_data: Outcomes,
    weak: str,
    strong: str,
    config: TrainConfig | None = None,
) -> np.ndarray:
    """P(acceptable) for (weak, strong) on ``test_data`` from a router trained on ``train_data``."""
    pair = Outcomes(
        train_data.prompts,
        [weak, strong],
        _pair_columns(train_data, weak, strong),
        train_data.source,
    )
    router = train(pair, config)
    probs = router.predict_texts(test_data.prompts)
    # ``train`` orders heads by training capability; put them back in (weak, strong) order.
    return probs[:, [router.models.index(weak), router.models.index(strong)]]


def evaluate(
    data: Outcomes,
    train_data: Outcomes | None = None,
    weak: str | None = None,
    strong: str | None = None,
    folds: int = 5,
    seed: int = 0,
    on_fold: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score every prompt honestly and return all metrics as a JSON-ready dict.

    Without ``train_data``: ``folds``-fold cross-validation on ``data`` (``on_fold`` is
    called after each fold). With it: train on ``train_data``, score ``data`` (transfer).
    ``weak`` and ``strong`` default to the models with the lowest and highest mean quality.
    """
    order = data.by_capability()
    weak = weak or order[0]
    strong = strong or order[-1]
    config = TrainConfig(seed=seed)
    if train_data is None:
        probs = out_of_fold(data, weak, strong, folds, config, on_fold=on_fold)
        protocol = f"{folds}-fold CV, seed {seed}, out-of-fold"
    else:
        probs = transfer(train_data, data, weak, strong, config)
        protocol = f"transfer: trained on {train_data.source}"
    w, s = data.column(weak), data.column(strong)
    rel, absolute = escalation_score(probs), absolute_score(probs)
    reports = [
        m.report("joulegate (relative target)", m.threshold_curve(rel, w, s), w, s),
        m.report("joulegate (absolute target)", m.threshold_curve(absolute, w, s), w, s),
        m.report("random", m.threshold_curve(m.random_scores(len(data), seed), w, s), w, s),
        m.report("perfect", m.optimal_curve(w, s), w, s),
    ]
    return {
        "data": data.source,
        "n": len(data),
        "protocol": protocol,
        "weak": weak,
        "strong": strong,
        "weak_quality": float(w.mean()),
        "strong_quality": float(s.mean()),
        "routers": [
            {
                "name": r.name,
                "apgr": r.apgr,
                "cpt20": r.cpt20,
                "cpt50": r.cpt50,
                "cpt80": r.cpt80,
                "points": [
                    {"strong_share": p.strong_share, "quality": p.quality, "pgr": g}
                    for p, g in zip(r.points, r.pgrs(), strict=True)
                ],
            }
            for r in reports
        ],
    }
