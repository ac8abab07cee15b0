"""How sure was a tier of its own answer? Features from token log-probs, and a tiny model.

A cascade keeps a cheap tier's answer only when it is likely acceptable. The cheapest signal
of that is the tier's own token log-probabilities (shared/reference/embedded-confidence.md:
on the embedded model they separate right from wrong answers with AUROC ~0.95 across kinds of
question). This module turns them into a few numbers and maps those to P(acceptable).

Why these features:

- **Length-robust.** The mean log-prob of a long answer is dominated by easy filler tokens;
  one badly guessed token (a wrong digit) hides in it. So the minimum and low quantiles
  (p10, p25) and the share of tokens below a threshold are used as well as the mean.
- **First N tokens only** (``first_n``, default 48). When streaming, the cascade holds the
  cheap tier's tokens until it decides, so it can only ever see a bounded prefix. Computing
  the same features on the same prefix for finished answers means one fitted model serves
  both paths. ``n_tokens`` is therefore capped at ``first_n`` too, and the answer length in
  characters should be that of the same prefix (the caller passes the text it holds).
- **The prompt router's score** joins them when the model is fit with it, so that what is
  known about the prompt and what the answer looked like are weighed together.

The model is scikit-learn's ``LogisticRegression`` on standardised features. It is stored
as plain JSON (no pickle: a model file must not be able to run code) and predicts with one
numpy dot product, so a decision costs microseconds, well under the 1 ms budget.

**What the quality target means for a cascade.** A user who sets ``quality_target = 0.95``
expects at least 95% of the cheap answers the cascade *keeps* to be acceptable. Keeping an
answer when its own P(acceptable) >= 0.95 does not promise that: a logistic model's
probabilities are only roughly calibrated, and on the embedded tier they rarely reach 0.9 at
all (so nothing was kept), while at 0.85 the kept answers were 88% right. So ``fit`` also
measures a **precision curve** (:class:`PrecisionCurve`): it refits the same model in K folds
of the fit data (fixed seed), scores every row with a model that never saw it, and records
for each threshold the share of rows with P >= threshold that are acceptable. The cascade
keeps an answer iff P >= :meth:`ConfidenceModel.keep_threshold` (target): the lowest
threshold whose out-of-fold precision reaches the target over at least ``min_kept`` rows, or
None (keep nothing) when no threshold does. ``joulegate bench cascade`` evaluates exactly
this rule, with the model and its curve refit inside each training fold.

File format v2 carries the curve. A v1 file (fit before the curve existed) still loads, with
a warning and no curve: its ``keep_threshold`` is always None, so the cascade keeps nothing
with it and ``auto`` requests take the router's choice until ``joulegate calibrate`` refits
it. The old rule (P >= target) is deliberately not the fallback: it is the rule whose kept
answers fell short of the target.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_FIRST_N",
    "DEFAULT_LOW_LOGPROB",
    "DEFAULT_MIN_KEPT",
    "FEATURE_NAMES",
    "ConfidenceModel",
    "PrecisionCurve",
    "confidence_features",
]

log = logging.getLogger(__name__)

DEFAULT_FIRST_N = 48
# ln(0.1): a token the model gave less than a 10% chance.
DEFAULT_LOW_LOGPROB = math.log(0.1)
# -inf (a token sampled against a probability that underflowed) would poison every mean.
_FLOOR = -30.0
FORMAT = "joulegate-confidence-model"
FORMAT_VERSION = 2  # v2: the out-of-fold precision curve (v1 loads without one, see above)
# A threshold must keep at least this many fit rows before its precision counts: one or two
# lucky answers at the very top would otherwise "reach" any target.
DEFAULT_MIN_KEPT = 10
# The precision curve's out-of-fold predictions: folds and the seed of their split.
CURVE_FOLDS = 5
CURVE_SEED = 0
# At most this many thresholds are stored (rank-spaced over the out-of-fold predictions, so
# they are as dense among the confident top answers as anywhere).
CURVE_POINTS = 256

FEATURE_NAMES: tuple[str, ...] = (
    "mean_logprob",
    "min_logprob",
    "p10_logprob",
    "p25_logprob",
    "share_low",
    "log_n_tokens",
    "log_answer_chars",
)
ROUTER_FEATURE = "router_score"


def confidence_features(
    logprobs: Sequence[float] | np.ndarray,
    answer: str,
    *,
    first_n: int = DEFAULT_FIRST_N,
    low_logprob: float = DEFAULT_LOW_LOGPROB,
) -> np.ndarray:
    """The features of one answer, in ``FEATURE_NAMES`` order.

    ``logprobs`` are the answer's token log-probabilities in generation order; only the
    first ``first_n`` are used. Raises ``ValueError`` when there are none: with no token
    log-probs there is no confidence to read, and a cascade must treat that as unsure
    rather than as a neutral value.
    """
    if first_n < 1:
        raise ValueError("first_n must be at least 1")
    lp = np.asarray(logprobs[:first_n], dtype=np.float64)
    if lp.size == 0:
        raise ValueError("no token log-probs: the answer's confidence cannot be read")
    lp = np.clip(np.nan_to_num(lp, nan=_FLOOR, neginf=_FLOOR), _FLOOR, 0.0)
    ordered = np.sort(lp)
    return np.array(
        [
            lp.mean(),
            ordered[0],
            _quantile(ordered, 0.10),
            _quantile(ordered, 0.25),
            float(np.count_nonzero(lp < low_logprob)) / lp.size,
            math.log1p(lp.size),
            math.log1p(len(answer)),
        ]
    )


def _quantile(ordered: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile of sorted values (what ``np.quantile`` does, faster)."""
    pos = q * (ordered.size - 1)
    lo = int(pos)
    hi = min(lo + 1, ordered.size - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


@dataclass(frozen=True)
class PrecisionCurve:
    """Out-of-fold precision of "keep the answers with P >= threshold", per threshold.

    ``thresholds`` ascend from 0.0 (keep everything); ``kept`` is how many fit rows had
    P >= each, ``acceptable`` how many of those were acceptable (raw counts, for reports),
    and ``precision`` the share acceptable made monotone: the mean, over the kept rows, of
    an isotonic fit of acceptable-or-not on P. Averaged over a top set, a non-decreasing fit
    is non-decreasing in the threshold, so "the lowest threshold that reaches the target"
    is well defined; and pooling neighbours that break the order keeps a lucky streak of
    right answers near the top from claiming a precision that its neighbours do not share.
    """

    thresholds: np.ndarray
    kept: np.ndarray
    acceptable: np.ndarray
    precision: np.ndarray
    folds: int
    seed: int

    @property
    def n(self) -> int:
        """Rows the curve was measured on (all are kept at threshold 0)."""
        return int(self.kept[0])

    @classmethod
    def from_predictions(
        cls,
        p: np.ndarray,
        y: np.ndarray,
        *,
        folds: int,
        seed: int,
        points: int = CURVE_POINTS,
    ) -> PrecisionCurve:
        """The curve of out-of-fold predictions ``p`` against 0/1 labels ``y``."""
        from sklearn.isotonic import IsotonicRegression

        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n = p.size
        smooth = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit_transform(p, y)
        top = np.argsort(-p, kind="stable")  # the first k rows are those with the k highest P
        cum_smooth = np.concatenate([[0.0], np.cumsum(smooth[top])])
        cum_y = np.concatenate([[0.0], np.cumsum(y[top])])
        values = np.unique(p)
        if values.size > points - 1:  # rank-spaced: as dense at the top as anywhere
            values = values[
                np.unique(np.linspace(0, values.size - 1, points - 1).round()).astype(int)
            ]
        thresholds = np.unique(np.concatenate([[0.0], values]))
        kept = n - np.searchsorted(np.sort(p), thresholds, side="left")
        precision = np.maximum.accumulate(cum_smooth[kept] / kept)  # clears rounding dips only
        return cls(
            thresholds=thresholds,
            kept=kept.astype(np.int64),
            acceptable=cum_y[kept].round().astype(np.int64),
            precision=np.clip(precision, 0.0, 1.0),
            folds=folds,
            seed=seed,
        )

    def threshold(self, target: float, min_kept: int) -> float | None:
        """The lowest threshold whose precision is >= ``target`` over >= ``min_kept`` rows."""
        ok = (self.precision >= target - 1e-9) & (self.kept >= min_kept)
        hit = np.flatnonzero(ok)
        return float(self.thresholds[hit[0]]) if hit.size else None

    def best_precision(self, min_kept: int) -> float | None:
        """The highest precision over any threshold keeping >= ``min_kept`` rows."""
        ok = self.kept >= min_kept
        return float(self.precision[ok].max()) if ok.any() else None

    def at(self, threshold: float) -> dict[str, float | int]:
        """The curve's point for ``threshold``: what the fit data says keeping P >= it does."""
        i = max(0, int(np.searchsorted(self.thresholds, threshold, side="right")) - 1)
        return {
            "threshold": float(self.thresholds[i]),
            "precision": float(self.precision[i]),
            "kept_share": float(self.kept[i] / self.n),
            "kept": int(self.kept[i]),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "out-of-fold predictions, precision of an isotonic fit over kept rows",
            "folds": self.folds,
            "seed": self.seed,
            "thresholds": self.thresholds.tolist(),
            "kept": self.kept.tolist(),
            "acceptable": self.acceptable.tolist(),
            "precision": self.precision.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrecisionCurve:
        thresholds = np.asarray(data["thresholds"], dtype=np.float64)
        kept = np.asarray(data["kept"], dtype=np.int64)
        acceptable = np.asarray(data["acceptable"], dtype=np.int64)
        precision = np.asarray(data["precision"], dtype=np.float64)
        if not (thresholds.ndim == 1 and thresholds.size >= 1) or any(
            a.shape != thresholds.shape for a in (kept, acceptable, precision)
        ):
            raise ValueError("a precision curve needs equal-length, non-empty arrays")
        if np.any(np.diff(thresholds) <= 0) or np.any(np.diff(precision) < -1e-12):
            raise ValueError("a precision curve must ascend in threshold and in precision")
        return cls(thresholds, kept, acceptable, precision, int(data["folds"]), int(data["seed"]))


def _fit_logistic(
    x: np.ndarray, y: np.ndarray, c: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardise, fit, and return (center, scale, coef, intercept)."""
    from sklearn.linear_model import LogisticRegression

    center = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit((x - center) / scale, y)
    return center, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def _logistic(
    x: np.ndarray, center: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float
) -> np.ndarray:
    z = ((x - center) / scale) @ coef + intercept
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))


def _out_of_fold(
    x: np.ndarray, y: np.ndarray, c: float, folds: int, seed: int
) -> tuple[np.ndarray, int] | None:
    """Each row's P from a model fit without its fold (stratified), and the folds used;
    None when a class has fewer than two rows (no fold could hold one out and learn it)."""
    from sklearn.model_selection import StratifiedKFold

    k = min(folds, int(np.bincount(y, minlength=2).min()))
    if k < 2:
        return None
    p = np.empty(y.size)
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        p[te] = _logistic(x[te], *_fit_logistic(x[tr], y[tr], c))
    return p, k


@dataclass(frozen=True)
class ConfidenceModel:
    """P(acceptable | confidence features [, router score]) as a standardised logistic model,
    with the out-of-fold precision curve that turns a quality target into a keep threshold.

    ``meta`` records what the model was fit on (tier id, model, item counts), so a model
    fit on one tier is not silently applied to another.
    """

    feature_names: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    first_n: int = DEFAULT_FIRST_N
    low_logprob: float = DEFAULT_LOW_LOGPROB
    meta: dict[str, Any] = field(default_factory=dict)
    curve: PrecisionCurve | None = None  # None: a v1 file; nothing is kept with it
    min_kept: int = DEFAULT_MIN_KEPT
    # keep_threshold per target: the request may override the target, so more than one.
    _thresholds: dict[float, float | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def uses_router_score(self) -> bool:
        return ROUTER_FEATURE in self.feature_names

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        scores: np.ndarray,
        *,
        router_scores: np.ndarray | None = None,
        acceptable_at: float = 0.5,
        c: float = 1.0,
        first_n: int = DEFAULT_FIRST_N,
        low_logprob: float = DEFAULT_LOW_LOGPROB,
        min_kept: int = DEFAULT_MIN_KEPT,
        curve_folds: int = CURVE_FOLDS,
        curve_seed: int = CURVE_SEED,
        meta: dict[str, Any] | None = None,
    ) -> ConfidenceModel:
        """Fit on rows of ``confidence_features`` and graded scores in [0, 1].

        A score ``>= acceptable_at`` counts as acceptable. ``first_n`` and ``low_logprob``
        must be the values the features were computed with; they are stored so that
        prediction computes the same features. The precision curve comes from refitting the
        model in ``curve_folds`` stratified folds (seed ``curve_seed``); ``router_scores``
        should themselves be out of fold (a head that never saw the row), as serving sees them.
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"features must be (n, {len(FEATURE_NAMES)}), got {x.shape}")
        names = FEATURE_NAMES
        if router_scores is not None:
            x = np.column_stack([x, np.asarray(router_scores, dtype=np.float64)])
            names = (*FEATURE_NAMES, ROUTER_FEATURE)
        y = (np.asarray(scores, dtype=np.float64) >= acceptable_at).astype(int)
        if y.shape[0] != x.shape[0]:
            raise ValueError("features and scores differ in length")
        if y.min() == y.max():
            raise ValueError(
                "every answer is graded the same; a confidence model needs both acceptable "
                "and unacceptable answers to learn from"
            )
        center, scale, coef, intercept = _fit_logistic(x, y, c)
        oof = _out_of_fold(x, y, c, curve_folds, curve_seed)
        curve = None
        if oof is not None:
            curve = PrecisionCurve.from_predictions(oof[0], y, folds=oof[1], seed=curve_seed)
        info = {"n_train": int(y.size), "n_acceptable": int(y.sum()), **(meta or {})}
        return cls(
            feature_names=names,
            center=center,
            scale=scale,
            coef=coef,
            intercept=intercept,
            first_n=first_n,
            low_logprob=low_logprob,
            meta=info,
            curve=curve,
            min_kept=min_kept,
        )

    def keep_threshold(self, target: float) -> float | None:
        """Keep an answer iff its P(acceptable) >= this, so that kept answers are acceptable
        at a rate >= ``target`` (out of fold, on the fit data); None: no threshold reaches
        it over ``min_kept`` rows, and nothing should be kept. Cached per target."""
        try:
            return self._thresholds[target]
        except KeyError:
            pass
        value = None if self.curve is None else self.curve.threshold(target, self.min_kept)
        self._thresholds[target] = value
        return value

    def why_no_threshold(self, target: float) -> str:
        """Why ``keep_threshold(target)`` is None, in words for a receipt or a log line."""
        if self.curve is None:
            return (
                "the confidence model has no precision curve (a v1 file): run "
                "joulegate calibrate to refit it"
            )
        best = self.curve.best_precision(self.min_kept)
        reached = "none" if best is None else f"at most {100 * best:.1f}%"
        return (
            f"no keep threshold reaches quality_target {target:g}: of the calibration answers "
            f"it would keep (>= {self.min_kept}), {reached} were acceptable"
        )

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """P(acceptable) for each row of features (router score last, if the model uses it)."""
        x = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected {len(self.feature_names)} features {self.feature_names}, "
                f"got {x.shape[1]}"
            )
        return _logistic(x, self.center, self.scale, self.coef, self.intercept)

    def p_acceptable(
        self, logprobs: Sequence[float] | np.ndarray, answer: str, router_score: float | None = None
    ) -> float:
        """P(acceptable) for one answer; the cascade keeps it when this meets
        ``keep_threshold`` of its target."""
        row = confidence_features(
            logprobs, answer, first_n=self.first_n, low_logprob=self.low_logprob
        )
        if self.uses_router_score:
            if router_score is None:
                raise ValueError("this confidence model was fit with the router's score")
            row = np.append(row, router_score)
        z = float(((row - self.center) / self.scale) @ self.coef) + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "first_n": self.first_n,
            "low_logprob": self.low_logprob,
            "min_kept": self.min_kept,
            "curve": None if self.curve is None else self.curve.to_dict(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfidenceModel:
        """Load v2; load v1 without a curve (a warning; it keeps nothing); refuse the rest."""
        version = data.get("version")
        if data.get("format") != FORMAT or version not in (1, FORMAT_VERSION):
            raise ValueError(
                f"not a {FORMAT} v1/v{FORMAT_VERSION} file "
                f"(format={data.get('format')!r}, version={version!r})"
            )
        names = tuple(data["feature_names"])
        known = {*FEATURE_NAMES, ROUTER_FEATURE}
        if not set(names) <= known or names[: len(FEATURE_NAMES)] != FEATURE_NAMES:
            raise ValueError(f"unknown feature layout {names}")
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("center", "scale", "coef")]
        if any(a.shape != (len(names),) for a in arrays):
            raise ValueError("center, scale and coef must each have one value per feature")
        meta = dict(data.get("meta") or {})
        curve = None
        if data.get("curve") is not None:
            curve = PrecisionCurve.from_dict(data["curve"])
        elif version == 1:
            log.warning(
                "confidence model for %s is format v1 (no precision curve): the cascade keeps "
                "none of its answers until `joulegate calibrate` refits it",
                meta.get("tier", "a tier"),
            )
        return cls(
            feature_names=names,
            center=arrays[0],
            scale=arrays[1],
            coef=arrays[2],
            intercept=float(data["intercept"]),
            first_n=int(data["first_n"]),
            low_logprob=float(data["low_logprob"]),
            meta=meta,
            curve=curve,
            min_kept=int(data.get("min_kept", DEFAULT_MIN_KEPT)),
        )

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ConfidenceModel:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
