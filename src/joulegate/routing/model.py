"""The learned part of the router: one calibrated logistic head per model, and its file format.

Each head predicts P(model answers this prompt acceptably). A router fit by calibration
(``fit_tier_heads``) keys its heads by *tier public id* (``embedded/gemma-3-270m``) and records
the tiers it was fit for, so it is never applied to a model it did not measure (see
``routing/router.py`` for the policy). ``train`` fits heads on outcome data keyed by model name
(RouteLLM's evaluation data), in capability order; ``joulegate bench route`` uses it to
benchmark the learner.
Logistic regression is used because its probabilities are calibrated by construction (it
minimises log-loss), and it trains and predicts fast on sparse text features; other learners
(boosted trees, MLPs) were not tried. ``C`` is fixed at 1.0 by default. Passing several ``cs``
selects ``C`` per head by an inner cross-validation on the training rows only, which nests
inside any outer evaluation folds.

File format: a single ``.npz`` (loaded with ``allow_pickle=False``): sparse head weights, the
IDF vectors, statistic scaling and a JSON metadata string. No pickle, no joblib.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from .data import Outcomes
from .features import FeatureSpec, Featurizer, RawFeatures, extract_raw

__all__ = [
    "FORMAT_VERSION",
    "MIN_OUTCOMES",
    "RouterModel",
    "TierOutcomes",
    "TrainConfig",
    "fit_heads",
    "fit_tier_heads",
    "no_head_reason",
    "out_of_fold_scores",
    "train",
]

FORMAT_VERSION = 1
# Fewer graded answers than this and a head would mostly learn noise: the tier gets no head,
# and the router's policy for uncalibrated tiers applies instead.
MIN_OUTCOMES = 30
# Each class (acceptable / not) needs at least this many rows for a head to separate them.
MIN_PER_CLASS = 3


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs; the defaults are the configuration reported in docs/routing.md."""

    spec: FeatureSpec = field(default_factory=FeatureSpec)
    cs: tuple[float, ...] = (1.0,)
    inner_folds: int = 3
    seed: int = 0


@dataclass
class RouterModel:
    """Featurizer + per-model logistic heads, ordered weakest to strongest."""

    featurizer: Featurizer
    models: list[str]
    coef: sp.csr_matrix  # (n_heads, width)
    intercept: np.ndarray  # (n_heads,)
    meta: dict[str, Any] = field(default_factory=dict)
    _dense_coef: np.ndarray | None = field(default=None, repr=False, compare=False)

    def predict_proba(self, x: sp.csr_matrix) -> np.ndarray:
        """P(acceptable) per row and head, shape ``(n_rows, n_heads)``."""
        z = np.asarray((x @ self.coef.T).todense()) + self.intercept[np.newaxis, :]
        return 1.0 / (1.0 + np.exp(-z))

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba(self.featurizer.transform(texts))

    def predict_one(self, text: str) -> np.ndarray:
        """P(acceptable) per head for one prompt: the fast path used per request."""
        if self._dense_coef is None:
            self._dense_coef = np.asarray(self.coef.todense())
        cols, vals = self.featurizer.sparse_row(text)
        z = self._dense_coef[:, cols] @ vals + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: Path) -> None:
        f = self.featurizer
        meta = dict(self.meta)
        meta.update(
            format_version=FORMAT_VERSION,
            models=self.models,
            spec=f.spec.to_dict(),
            n_idf_blocks=len(f.idf),
        )
        arrays: dict[str, np.ndarray] = {
            "meta_json": np.array(json.dumps(meta)),
            "coef_data": self.coef.data.astype(np.float32),
            "coef_indices": self.coef.indices.astype(np.int32),
            "coef_indptr": self.coef.indptr.astype(np.int64),
            "coef_shape": np.array(self.coef.shape, dtype=np.int64),
            "intercept": self.intercept.astype(np.float64),
            "stat_mean": f.stat_mean,
            "stat_scale": f.stat_scale,
        }
        for i, idf in enumerate(f.idf):
            arrays[f"idf_{i}"] = idf.astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

    @property
    def tiers(self) -> list[str]:
        """The tiers the file was fit for (with or without a head); heads' names if unrecorded."""
        return list(self.meta.get("tiers") or self.models)

    @classmethod
    def load(cls, path: Path) -> RouterModel:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported router format {meta.get('format_version')}")
            spec = FeatureSpec.from_dict(meta["spec"])
            idf = [z[f"idf_{i}"] for i in range(int(meta["n_idf_blocks"]))]
            featurizer = Featurizer(spec, idf, z["stat_mean"], z["stat_scale"])
            shape = tuple(int(v) for v in z["coef_shape"])
            coef = sp.csr_matrix(
                (z["coef_data"].astype(np.float64), z["coef_indices"], z["coef_indptr"]),
                shape=shape,
            )
            intercept = z["intercept"]
        if coef.shape[1] != featurizer.width:
            raise ValueError(f"{path}: weights do not match the feature width")
        return cls(featurizer, list(meta["models"]), coef, intercept, meta)


def _fit_head(
    x: sp.csr_matrix, y: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, float, float | None]:
    """Fit one logistic head on scores in [0, 1]; returns (weights, intercept, chosen C)."""
    if np.all((y == 0.0) | (y == 1.0)):
        xs, ys, w = x, y.astype(int), None
    else:  # graded scores: a soft label s is a positive with weight s and a negative with 1 - s
        xs = sp.vstack([x, x], format="csr")
        ys = np.r_[np.ones(len(y), int), np.zeros(len(y), int)]
        w = np.r_[y, 1.0 - y]
    positives = float(np.average(ys, weights=w))
    if positives <= 0.0 or positives >= 1.0 or min(np.bincount(ys)) < config.inner_folds:
        p = min(max(positives, 1e-4), 1 - 1e-4)
        return np.zeros(x.shape[1]), float(np.log(p / (1 - p))), None
    if len(config.cs) == 1:
        clf: LogisticRegression | LogisticRegressionCV = LogisticRegression(
            C=config.cs[0], solver="liblinear", max_iter=1000
        )
        clf.fit(xs, ys, sample_weight=w)
        c_value = config.cs[0]
    else:
        inner = StratifiedKFold(config.inner_folds, shuffle=True, random_state=config.seed)
        clf = LogisticRegressionCV(
            Cs=list(config.cs),
            cv=inner,
            scoring="neg_log_loss",
            solver="liblinear",
            max_iter=1000,
        )
        clf.fit(xs, ys, sample_weight=w)
        c_value = float(clf.C_[0])
    return clf.coef_[0], float(clf.intercept_[0]), c_value


def fit_heads(
    raw: RawFeatures,
    scores: np.ndarray,
    models: list[str],
    config: TrainConfig,
    on_head: Callable[[str], None] | None = None,
) -> RouterModel:
    """Fit the featurizer and one head per column of ``scores`` (columns weakest first)."""
    featurizer = Featurizer.fit(raw, config.spec)
    x = featurizer.transform_raw(raw)
    weights, intercepts, chosen = [], [], []
    for j, model in enumerate(models):
        w, b, c = _fit_head(x, scores[:, j], config)
        weights.append(w)
        intercepts.append(b)
        chosen.append(c)
        if on_head is not None:
            on_head(model)
    coef = sp.csr_matrix(np.vstack(weights))
    coef.eliminate_zeros()
    router = RouterModel(featurizer, list(models), coef, np.array(intercepts))
    # Quantiles of the cheapest head's relative score on the training prompts let a caller turn
    # a target share of escalated calls into a quality target without data at serving time.
    probs = router.predict_proba(x)
    relative = probs[:, 0] / np.maximum(probs.max(axis=1), 1e-12)
    router.meta.update(
        chosen_c=chosen,
        mean_scores=[float(v) for v in scores.mean(axis=0)],
        n_train=len(raw),
        relative_quantiles=np.quantile(relative, np.linspace(0, 1, 101)).tolist(),
    )
    return router


def train(
    data: Outcomes,
    config: TrainConfig | None = None,
    on_head: Callable[[str], None] | None = None,
) -> RouterModel:
    """Train a router on outcome data: features, then a head per model in capability order."""
    config = config or TrainConfig()
    order = data.by_capability()
    scores = np.column_stack([data.column(m) for m in order])
    raw = extract_raw(data.prompts, config.spec)
    router = fit_heads(raw, scores, order, config, on_head)
    router.meta.update(
        trained_on=data.source,
        trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        config={"cs": list(config.cs), "inner_folds": config.inner_folds, "seed": config.seed},
    )
    return router


@dataclass(frozen=True)
class TierOutcomes:
    """One tier's graded answers: the prompts it was asked and a score in [0, 1] for each."""

    tier: str  # the tier's public id, ``<tier>/<model>``
    prompts: list[str]
    scores: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)  # recorded in the file's ``fit_on``

    def __post_init__(self) -> None:
        if len(self.prompts) != len(self.scores):
            raise ValueError(
                f"{self.tier}: {len(self.prompts)} prompts but {len(self.scores)} scores"
            )


def no_head_reason(scores: np.ndarray, min_outcomes: int = MIN_OUTCOMES) -> str | None:
    """Why these outcomes cannot support a head (``None``: they can)."""
    n = len(scores)
    if n < min_outcomes:
        return f"only {n} graded answers (a head needs {min_outcomes})"
    acceptable = int(np.count_nonzero(np.asarray(scores) >= 0.5))
    if min(acceptable, n - acceptable) < MIN_PER_CLASS:
        verdict = "acceptable" if acceptable > n - acceptable else "unacceptable"
        return f"{n - min(acceptable, n - acceptable)} of {n} answers graded {verdict}: one class"
    return None


def fit_tier_heads(
    data: Sequence[TierOutcomes],
    tiers: Sequence[str],
    config: TrainConfig | None = None,
    min_outcomes: int = MIN_OUTCOMES,
    confidence: dict[str, dict[str, Any]] | None = None,
) -> RouterModel:
    """One head per tier of ``data`` that has enough outcomes of both classes.

    ``tiers`` are the public ids the router is fit *for* (cheapest first), including tiers
    with too little data: the file records them, so loading it for other tiers can say so.
    The featurizer (IDF, statistic scaling) is fit on every prompt any tier answered.
    ``confidence`` holds each tier's ``ConfidenceModel.to_dict()`` for the cascade.
    """
    config = config or TrainConfig()
    unknown = [d.tier for d in data if d.tier not in tiers]
    if unknown:
        raise ValueError(f"outcomes for {unknown}, which are not among the tiers {list(tiers)}")
    prompts = sorted({p for d in data for p in d.prompts})
    featurizer = Featurizer.fit(extract_raw(prompts, config.spec), config.spec)
    models: list[str] = []
    weights: list[np.ndarray] = []
    intercepts: list[float] = []
    fit_on: dict[str, dict[str, Any]] = {}
    without: dict[str, str] = {}
    for d in sorted(data, key=lambda d: list(tiers).index(d.tier)):
        scores = np.asarray(d.scores, dtype=np.float64)
        fit_on[d.tier] = {
            "n": len(scores),
            "mean_score": float(scores.mean()) if len(scores) else None,
            **d.info,
        }
        reason = no_head_reason(scores, min_outcomes)
        if reason is not None:
            without[d.tier] = reason
            continue
        w, b, _ = _fit_head(featurizer.transform(d.prompts), scores, config)
        models.append(d.tier)
        weights.append(w)
        intercepts.append(b)
    for t in tiers:
        if t not in fit_on:
            without[t] = "no graded answers"
    coef = sp.csr_matrix(np.vstack(weights) if weights else np.zeros((0, featurizer.width)))
    coef.eliminate_zeros()
    router = RouterModel(featurizer, models, coef, np.asarray(intercepts, dtype=np.float64))
    router.meta.update(
        tiers=list(tiers),
        fit_on=fit_on,
        without_head=without,
        confidence=dict(confidence or {}),
        n_train=len(prompts),
        trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        config={"spec": config.spec.to_dict(), "cs": list(config.cs), "seed": config.seed},
    )
    if models:
        # The cheapest head's probability on the training prompts, against the reference
        # (p = 1) or the best head: ``Router.quality_target_for_share`` reads its quantiles.
        probs = router.predict_texts(prompts)
        # One head (the shipped router) is meant to serve below an uncalibrated reference.
        reference = tiers[-1] not in models or len(models) == 1
        best = np.maximum(probs.max(axis=1), 1.0 if reference else 0.0)
        relative = probs[:, 0] / np.maximum(best, 1e-12)
        router.meta["relative_quantiles"] = np.quantile(relative, np.linspace(0, 1, 101)).tolist()
    return router


def out_of_fold_scores(
    prompts: Sequence[str],
    scores: np.ndarray,
    config: TrainConfig | None = None,
    folds: int = 5,
) -> np.ndarray:
    """P(acceptable) for every prompt from a head that never saw it (stratified k-fold).

    What a cascade's confidence model must be fit with: an in-sample router score would be
    better than any score the router gives at serving time, and the model would lean on it.
    """
    config = config or TrainConfig()
    y = (np.asarray(scores) >= 0.5).astype(int)
    folds = max(2, min(folds, int(np.bincount(y, minlength=2).min())))
    raw = extract_raw(list(prompts), config.spec)
    out = np.empty(len(prompts))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=config.seed)
    for tr, te in splitter.split(np.zeros(len(y)), y):
        featurizer = Featurizer.fit(raw.rows(tr), config.spec)
        w, b, _ = _fit_head(featurizer.transform_raw(raw.rows(tr)), np.asarray(scores)[tr], config)
        z = featurizer.transform_raw(raw.rows(te)) @ w + b
        out[te] = 1.0 / (1.0 + np.exp(-np.asarray(z).ravel()))
    return out
