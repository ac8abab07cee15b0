"""Learning from traffic: shadow outcomes, and refits that must not make routing worse.

Shadow sampling (``server/shadow.py``) turns a sampled live request into an outcome: the
cheap tier's answer, judged against the strongest tier's (``routing/judge.py``), stored with
``purpose = "shadow"``. This module holds the parts that need no server:

- :func:`shadow_record` builds that outcome. Unless ``store_prompts`` is set, the prompt
  text is never stored: only its SHA-256 and its router features (``prompt_features``:
  hashed n-gram counts and length statistics), which is all a refit reads.
- :func:`outcome_prompts` gives every stored outcome a prompt a router can be fit on: its
  text where it was kept, else a ``HashedPrompt`` built from the stored features.
- :func:`refit` fits a new router on calibration and shadow outcomes (the calibration
  fitting code, ``calibration.fit_from_outcomes``) and decides whether it may replace the
  current one.

**The swap rule.** Both routers are scored on the same outcomes by the quality of what they
keep on a cheaper tier at the configured quality target (``quality_target``): the mean
score of the answers a cheaper tier would give to the prompts the router keeps there. The
new router is scored out of fold (k-fold: each prompt by a router fit without it); the
current one is a fixed file and is scored as it is (in-sample where it was fit on these
outcomes, which flatters it and makes the rule conservative). A router that keeps nothing
on a cheaper tier puts no answer at risk and scores 1. Figures at or above the target all
count as the target: a router that keeps its promise is not beaten by one that keeps
nothing. The new router is swapped in iff its score is no worse than the current one's.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from joulegate.ledger import OutcomeRecord
from joulegate.ledger.learning import SHADOW
from joulegate.ledger.outcomes import prompt_sha256

from .answers import Answer
from .calibration import FitReport, _graded, answer_features, fit_from_outcomes
from .features import FeatureSpec, HashedPrompt, prompt_features
from .judge import JUDGE_GRADER
from .model import MIN_OUTCOMES, RouterModel, TrainConfig
from .router import choose

__all__ = [
    "PROMPT_FEATURES",
    "SHADOW",
    "KeptQuality",
    "RefitDecision",
    "evaluate_router",
    "outcome_prompts",
    "refit",
    "save_keeping_previous",
    "shadow_record",
]

log = logging.getLogger(__name__)

# The outcome feature holding the prompt's router features (``features.prompt_features``).
PROMPT_FEATURES = "prompt_features"
# Tolerance of the swap rule's comparison (float noise, not a quality margin).
_EPS = 1e-9


def shadow_record(
    prompt: str,
    cheap: Answer,
    score: float,
    *,
    served: bool,
    request_id: str | None,
    spec: FeatureSpec,
    store_prompt: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> OutcomeRecord:
    """The outcome of one shadowed request: ``cheap`` (a cheaper tier's answer to
    ``prompt``) was judged ``score`` against the strongest tier's answer.

    ``served``: the client got this very answer (it counts towards quality retained);
    False when the request was escalated and the cheap tier answered only in the shadow.
    """
    features: dict[str, Any] = {
        **answer_features(cheap),
        "served": served,
        PROMPT_FEATURES: prompt_features(prompt, spec),
        **(extra or {}),
    }
    return OutcomeRecord(
        purpose=SHADOW,
        prompt_sha256=prompt_sha256(prompt),
        tier=cheap.tier.split("/", 1)[0],
        model=cheap.tier,
        score=score,
        grader=JUDGE_GRADER,
        features=features,
        energy_j=cheap.energy_j,
        energy_source=cheap.energy_source,
        request_id=request_id,
        prompt=prompt if store_prompt else None,
    )


def outcome_prompts(
    outcomes: Sequence[OutcomeRecord], known: Mapping[str, str] | None = None
) -> dict[str, str]:
    """SHA-256 -> a prompt to fit on, for every outcome whose prompt is known: the stored
    text, the text in ``known`` (e.g. the probe set), else a ``HashedPrompt`` of the stored
    features. Outcomes with none of these are left out of fitting."""
    out: dict[str, str] = dict(known or {})
    for o in outcomes:
        if o.prompt:
            out[o.prompt_sha256] = o.prompt
        elif o.prompt_sha256 not in out and PROMPT_FEATURES in o.features:
            out[o.prompt_sha256] = HashedPrompt(o.prompt_sha256, o.features[PROMPT_FEATURES])
    return out


@dataclass(frozen=True)
class KeptQuality:
    """What a router keeps on a cheaper tier, and how good those answers were."""

    evaluated: int  # prompts scored
    kept: int  # of those, kept on a cheaper tier
    kept_score: float | None  # mean score of the kept answers (None: nothing kept)

    @property
    def score(self) -> float:
        """Quality of what is kept; 1.0 when nothing is (no answer put at risk)."""
        return 1.0 if self.kept_score is None else self.kept_score

    def at_target(self, target: float) -> float:
        """The score the swap rule compares: anything at or above the target is the target."""
        return min(self.score, target)

    def describe(self) -> str:
        if self.kept_score is None:
            return f"keeps none of {self.evaluated} prompts on a cheaper tier"
        return (
            f"keeps {self.kept} of {self.evaluated} prompts on a cheaper tier, "
            f"{self.kept_score:.3f} of them acceptable"
        )


def _tier_probabilities(model: RouterModel, keys: Sequence[str], tiers: Sequence[str]) -> list:
    """Per prompt, ``p`` per tier as ``Router.decide`` sees it (routing/router.py's policy):
    a head's probability; 1 for the most expensive tier without one; None otherwise."""
    index = {m: i for i, m in enumerate(model.models)}
    probs = model.predict_texts(list(keys)) if model.models and keys else None
    last = len(tiers) - 1
    rows = []
    for r in range(len(keys)):
        p: list[float | None] = []
        for i, t in enumerate(tiers):
            h = index.get(t)
            if h is not None and probs is not None:
                p.append(float(probs[r, h]))
            else:
                p.append(1.0 if i == last else None)
        rows.append(p)
    return rows


def evaluate_router(
    model: RouterModel,
    keys: Sequence[str],
    scores: Mapping[str, Mapping[str, float]],
    tiers: Sequence[str],
    target: float,
) -> KeptQuality:
    """Route ``keys`` (prompts, or ``HashedPrompt``s) at ``target`` and score what is kept
    on a cheaper tier by the graded outcomes ``scores[tier][key]``; prompts kept on a
    tier that has no outcome for them are not counted."""
    kept: list[float] = []
    evaluated = 0
    for key, p in zip(keys, _tier_probabilities(model, keys, tiers), strict=True):
        chosen = tiers[choose(p, target)]
        if chosen == tiers[-1]:
            evaluated += 1
            continue
        s = scores.get(chosen, {}).get(key)
        if s is None:
            continue
        evaluated += 1
        kept.append(s)
    return KeptQuality(evaluated, len(kept), float(np.mean(kept)) if kept else None)


def _scores_by_key(
    outcomes: Sequence[OutcomeRecord], tiers: Sequence[str], prompts: Mapping[str, str]
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Graded scores per tier keyed by fit prompt, and the prompts a cheaper tier was graded on."""
    graded = _graded([o for o in outcomes if o.model in tiers])
    scores: dict[str, dict[str, float]] = {}
    keys: set[str] = set()
    for tier, by_sha in graded.items():
        for sha, o in by_sha.items():
            key = prompts.get(sha)
            if key is None:
                continue
            scores.setdefault(tier, {})[key] = o.score
            if tier != tiers[-1]:
                keys.add(key)
    return scores, sorted(keys)


def cross_validated(
    outcomes: Sequence[OutcomeRecord],
    tiers: Sequence[str],
    prompts: Mapping[str, str],
    target: float,
    config: TrainConfig,
    min_outcomes: int = MIN_OUTCOMES,
    folds: int = 5,
) -> KeptQuality:
    """The out-of-fold :class:`KeptQuality` of routers fit by ``fit_from_outcomes``: prompts
    are split in ``folds``; each part is routed by a router fit on the others."""
    scores, keys = _scores_by_key(outcomes, tiers, prompts)
    if len(keys) < 2:
        return KeptQuality(len(keys), 0, None)
    sha_of = {k: s for s, k in prompts.items()}
    kept: list[float] = []
    evaluated = 0
    splitter = KFold(min(folds, len(keys)), shuffle=True, random_state=config.seed)
    for _train, test in splitter.split(keys):
        held = {sha_of[keys[i]] for i in test}
        fit = fit_from_outcomes(
            [o for o in outcomes if o.prompt_sha256 not in held],
            tiers,
            dict(prompts),
            config,
            min_outcomes,
        )
        part = evaluate_router(fit.router, [keys[i] for i in test], scores, tiers, target)
        evaluated += part.evaluated
        if part.kept_score is not None:
            kept += [part.kept_score] * part.kept
    return KeptQuality(evaluated, len(kept), float(np.mean(kept)) if kept else None)


@dataclass
class RefitDecision:
    """A refit: the new router, both routers' figures, and whether the new one may serve."""

    fit: FitReport
    new: KeptQuality  # out of fold
    current: KeptQuality  # the router serving now, on the same outcomes
    target: float
    outcomes: int
    by_purpose: dict[str, int] = field(default_factory=dict)

    @property
    def swap(self) -> bool:
        return self.new.at_target(self.target) >= self.current.at_target(self.target) - _EPS

    def describe(self) -> str:
        verdict = "swapped in" if self.swap else "kept the current router"
        return (
            f"refit on {self.outcomes} outcomes {self.by_purpose}: at quality target "
            f"{self.target:g}, the new router (cross-validated) {self.new.describe()}; the "
            f"current one {self.current.describe()} -> {verdict}"
        )


def refit(
    outcomes: Sequence[OutcomeRecord],
    tiers: Sequence[str],
    current: RouterModel | None,
    target: float,
    *,
    known_prompts: Mapping[str, str] | None = None,
    config: TrainConfig | None = None,
    min_outcomes: int = MIN_OUTCOMES,
) -> RefitDecision:
    """Fit a router for ``tiers`` on ``outcomes`` and score it against ``current``.

    The feature spec is the current router's (stored shadow features were made with it).
    """
    config = config or TrainConfig()
    if current is not None:
        config = replace(config, spec=current.featurizer.spec)
    usable = [o for o in outcomes if o.model in tiers]
    prompts = outcome_prompts(usable, known_prompts)
    usable = [o for o in usable if o.prompt_sha256 in prompts and _fits(prompts, o, config)]
    fit = fit_from_outcomes(usable, tiers, prompts, config, min_outcomes)
    new = cross_validated(usable, tiers, prompts, target, config, min_outcomes)
    scores, keys = _scores_by_key(usable, tiers, prompts)
    now = (
        evaluate_router(current, keys, scores, tiers, target)
        if current is not None
        else KeptQuality(len(keys), 0, None)
    )
    purposes: dict[str, int] = {}
    for o in usable:
        purposes[o.purpose] = purposes.get(o.purpose, 0) + 1
    return RefitDecision(fit, new, now, target, len(usable), purposes)


def _fits(prompts: Mapping[str, str], o: OutcomeRecord, config: TrainConfig) -> bool:
    """Whether the outcome's prompt can be featurized under ``config.spec``."""
    key = prompts[o.prompt_sha256]
    if not isinstance(key, HashedPrompt):
        return True
    return FeatureSpec.from_dict(key.features.get("spec", {})) == config.spec


def save_keeping_previous(model: RouterModel, path: Path) -> Path | None:
    """Write ``model`` to ``path`` atomically; an existing file is kept as ``<stem>.prev.npz``
    first. Returns the previous file's new path, if there was one."""
    path = Path(path)
    previous = None
    if path.exists():
        previous = path.with_name(f"{path.stem}.prev{path.suffix or '.npz'}")
        shutil.copy2(path, previous)
    tmp = path.with_name(f".{path.name}.tmp")
    model.save(tmp)
    os.replace(tmp, path)
    return previous
