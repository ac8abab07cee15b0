"""Calibration: measure what each configured tier answers acceptably, then fit the router.

``joulegate calibrate`` runs this. Every probe item goes to every selected tier through the
gateway's own pipeline (so each answer is metered and written to the ledger with
``purpose="calibration"``), is graded, and becomes a row of the ``outcomes`` table:

- items with a gold answer are graded by the gold graders (``gold:number``, ``gold:choice``,
  ``gold:short``);
- open items are graded by the **judge**: the strongest configured tier compares the cheaper
  tier's answer with its own, in both orders (``routing/judge.py``). The strongest tier's own
  answer to an open item is the reference, so it gets no outcome there.
- On a sample of gold items (``judge_check``) the judge grades the cheaper tiers as well, so
  its agreement with gold can be measured and printed; those rows are stored with grader
  ``judge:v1`` and never used for fitting where a gold grade exists.

The run is resumable (a ``(prompt, tier)`` pair already graded for this purpose is skipped),
bounded in concurrency, and stoppable: ``stop()`` lets the items in flight finish and be
recorded, then returns. ``fit_from_outcomes`` then fits one head per tier with enough
outcomes (``routing.model.fit_tier_heads``) and a ``ConfidenceModel`` per tier whose answers
carried token log-probs, using the head's *out-of-fold* score as its router feature.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from joulegate.ledger import OutcomeRecord, OutcomeStore
from joulegate.ledger.outcomes import prompt_sha256

from .answers import Answer, Ask, AskFailed
from .confidence import DEFAULT_FIRST_N, FEATURE_NAMES, ConfidenceModel, confidence_features
from .judge import JUDGE_GRADER, Judge
from .model import (
    MIN_OUTCOMES,
    RouterModel,
    TierOutcomes,
    TrainConfig,
    fit_tier_heads,
    no_head_reason,
    out_of_fold_scores,
)
from .probes import ProbeItem

__all__ = [
    "CALIBRATION",
    "CalibrationConfig",
    "CalibrationRun",
    "Calibrator",
    "FitReport",
    "answer_features",
    "fit_from_outcomes",
    "summarize",
]

log = logging.getLogger(__name__)

CALIBRATION = "calibration"
GOLD_PREFIX = "gold:"


@dataclass(frozen=True)
class CalibrationConfig:
    """What to measure and how hard to push the tiers."""

    tiers: Sequence[str]  # public ids to calibrate, cheapest first
    judge_tier: str | None  # the strongest configured tier (public id); None: no judge
    purpose: str = CALIBRATION
    max_tokens: int = 96  # per answer: enough for a short worked answer, bounded cost
    concurrency: int = 4
    judge_check: int = 50  # gold items per cheaper tier that the judge grades as well
    first_n: int = DEFAULT_FIRST_N  # tokens the confidence features read
    seed: int = 0


@dataclass
class CalibrationRun:
    """What a run did: counts, and whether it was stopped before the end."""

    items: int = 0  # items that needed work this run
    done: int = 0  # of those, finished and recorded
    outcomes: int = 0  # rows written this run
    failed: int = 0  # answers that could not be had (recorded nowhere; retried next run)
    skipped_open: int = 0  # open items left ungraded for want of a judge
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)


def answer_features(answer: Answer, first_n: int = DEFAULT_FIRST_N) -> dict[str, Any]:
    """What is stored with an outcome: confidence features (when there are log-probs), the
    answer's size, and its first ``first_n`` log-probs so the features can be recomputed.

    The characters of the first ``first_n`` tokens are estimated in proportion to the tokens
    (a finished answer's text is not split by token here); answers shorter than ``first_n``
    tokens, most probe answers, are exact.
    """
    n = answer.completion_tokens
    head_chars = len(answer.text) if n <= first_n else round(len(answer.text) * first_n / n)
    out: dict[str, Any] = {
        "n_tokens": n,
        "answer_chars": len(answer.text),
        "head_chars": head_chars,
        "finish_reason": answer.finish_reason,
    }
    if answer.logprobs:
        values = confidence_features(answer.logprobs, "x" * head_chars, first_n=first_n)
        out.update(zip(FEATURE_NAMES, map(float, values), strict=True))
        out["logprobs_head"] = [round(v, 3) for v in answer.logprobs[:first_n]]
    return out


class Calibrator:
    """Runs the probe items through the tiers and records graded outcomes."""

    def __init__(
        self,
        items: Sequence[ProbeItem],
        ask: Ask,
        store: OutcomeStore,
        config: CalibrationConfig,
        on_item: Callable[[], None] | None = None,
    ) -> None:
        self.items = list(items)
        self.ask = ask
        self.store = store
        self.config = config
        self.on_item = on_item
        self.judge = Judge(ask, config.judge_tier) if config.judge_tier else None
        self._stop = asyncio.Event()
        self._calls = asyncio.Semaphore(config.concurrency)

    def stop(self) -> None:
        """Finish the items in flight, record them, and start no more."""
        self._stop.set()

    def plan(self) -> tuple[list[tuple[ProbeItem, list[str]]], int]:
        """Each item with the tiers it still needs a grade from (items needing none left out),
        and how many open items are left out because there is no judge to grade them."""
        done = self.store.keys(self.config.purpose, self.config.tiers)
        work = []
        no_judge = 0
        for item in self.items:
            if not item.gradable and self.judge is None:
                no_judge += 1
                continue
            sha = prompt_sha256(item.prompt)
            todo = [t for t in self.config.tiers if (sha, t) not in done]
            if not item.gradable:  # the judge tier's own answer is the reference, not graded
                todo = [t for t in todo if t != self.config.judge_tier]
            if todo:
                work.append((item, todo))
        return work, no_judge

    async def run(self) -> CalibrationRun:
        work, no_judge = await asyncio.to_thread(self.plan)
        result = CalibrationRun(items=len(work), skipped_open=no_judge)
        rng = random.Random(self.config.seed)
        gold = [i for i, (item, _) in enumerate(work) if item.gradable]
        checked = set(rng.sample(gold, min(self.config.judge_check, len(gold))))
        queue: asyncio.Queue[tuple[int, ProbeItem, list[str]]] = asyncio.Queue()
        for i, (item, todo) in enumerate(work):
            queue.put_nowait((i, item, todo))

        async def worker() -> None:
            while not self._stop.is_set():
                try:
                    i, item, todo = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                rows = await self._item(item, todo, i in checked, result)
                if rows:
                    await asyncio.to_thread(self.store.add, rows)
                result.outcomes += len(rows)
                result.done += 1
                if self.on_item is not None:
                    self.on_item()

        await asyncio.gather(*(worker() for _ in range(max(1, self.config.concurrency))))
        result.interrupted = self._stop.is_set() and result.done < result.items
        return result

    async def _answer(self, tier: str, prompt: str, result: CalibrationRun) -> Answer | None:
        async with self._calls:
            try:
                return await self.ask(
                    tier, prompt, max_tokens=self.config.max_tokens, logprobs=True
                )
            except AskFailed as exc:
                result.failed += 1
                result.failures.append(f"{tier}: {exc}")
                log.warning("calibration: no answer from %s (%s); retried next run", tier, exc)
                return None

    async def _judge(
        self, question: str, cheap: str, reference: str, result: CalibrationRun
    ) -> tuple[float, float] | None:
        assert self.judge is not None
        async with self._calls:
            try:
                verdict = await self.judge.score(question, cheap, reference)
            except AskFailed as exc:
                result.failed += 1
                result.failures.append(f"judge {self.judge.tier}: {exc}")
                log.warning("calibration: the judge gave no verdict (%s); retried next run", exc)
                return None
        return verdict.score, verdict.energy_j

    async def _item(
        self, item: ProbeItem, todo: list[str], check_judge: bool, result: CalibrationRun
    ) -> list[OutcomeRecord]:
        cfg = self.config
        sha = prompt_sha256(item.prompt)
        needs_reference = self.judge is not None and ((not item.gradable) or check_judge)
        answers: dict[str, Answer] = {}
        asked = [*todo]
        if needs_reference and cfg.judge_tier not in asked:
            asked.append(str(cfg.judge_tier))
        for tier in asked:
            answer = await self._answer(tier, item.prompt, result)
            if answer is not None:
                answers[tier] = answer
        reference = answers.get(str(cfg.judge_tier)) if needs_reference else None
        rows: list[OutcomeRecord] = []

        def row(tier: str, score: float, grader: str, extra: dict[str, Any]) -> OutcomeRecord:
            ans = answers[tier]
            features = {
                **answer_features(ans, cfg.first_n),
                "item": item.id,
                "kind": item.kind,
                **extra,
            }
            return OutcomeRecord(
                purpose=cfg.purpose,
                prompt_sha256=sha,
                tier=tier.split("/", 1)[0],
                model=tier,
                score=score,
                grader=grader,
                features=features,
                energy_j=ans.energy_j,
                energy_source=ans.energy_source,
                request_id=ans.request_id,
                prompt=item.prompt,
            )

        for tier in todo:
            if tier not in answers:
                continue
            text = answers[tier].text
            cheaper = tier != cfg.judge_tier
            if item.gradable:
                rows.append(row(tier, item.grade(text), GOLD_PREFIX + str(item.grader), {}))
            if reference is not None and cheaper:
                judged = await self._judge(item.prompt, text, reference.text, result)
                if judged is not None:
                    score, energy = judged
                    rows.append(row(tier, score, JUDGE_GRADER, {"judge_energy_j": energy}))
        return rows


# -- fitting ---------------------------------------------------------------------------------


@dataclass
class FitReport:
    """What was fit: the router, and why tiers got no head or no confidence model."""

    router: RouterModel
    heads: list[str]
    without_head: dict[str, str]
    confidence: dict[str, dict[str, Any]]
    without_confidence: dict[str, str]


def _graded(outcomes: Sequence[OutcomeRecord]) -> dict[str, dict[str, OutcomeRecord]]:
    """Per tier, one outcome per prompt: a gold grade where there is one, else the judge's."""
    best: dict[str, dict[str, OutcomeRecord]] = defaultdict(dict)
    for o in outcomes:
        have = best[o.model].get(o.prompt_sha256)
        if have is None or (
            o.grader.startswith(GOLD_PREFIX) and not have.grader.startswith(GOLD_PREFIX)
        ):
            best[o.model][o.prompt_sha256] = o
    return best


def fit_from_outcomes(
    outcomes: Sequence[OutcomeRecord],
    tiers: Sequence[str],
    prompts: dict[str, str] | None = None,
    config: TrainConfig | None = None,
    min_outcomes: int = MIN_OUTCOMES,
    first_n: int = DEFAULT_FIRST_N,
) -> FitReport:
    """Fit the router (and confidence models) for ``tiers`` from graded outcomes.

    ``prompts`` maps prompt SHA-256 to text for outcomes stored without their prompt; an
    outcome whose prompt is known to neither is left out.
    """
    config = config or TrainConfig()
    prompts = dict(prompts or {})
    graded = _graded([o for o in outcomes if o.model in tiers])
    data: list[TierOutcomes] = []
    confidence: dict[str, dict[str, Any]] = {}
    without_confidence: dict[str, str] = {}
    for tier in tiers:
        rows = [
            o for o in graded.get(tier, {}).values() if (o.prompt or prompts.get(o.prompt_sha256))
        ]
        texts = [o.prompt or prompts[o.prompt_sha256] for o in rows]
        scores = np.array([o.score for o in rows], dtype=np.float64)
        graders = Counter(o.grader for o in rows)
        data.append(TierOutcomes(tier, texts, scores, {"graders": dict(graders)}))
        fitted = _fit_confidence(tier, rows, texts, scores, config, min_outcomes, first_n)
        if isinstance(fitted, str):
            without_confidence[tier] = fitted
        else:
            confidence[tier] = fitted.to_dict()
    router = fit_tier_heads(data, tiers, config, min_outcomes, confidence)
    return FitReport(
        router=router,
        heads=list(router.models),
        without_head=dict(router.meta.get("without_head", {})),
        confidence=confidence,
        without_confidence=without_confidence,
    )


def _fit_confidence(
    tier: str,
    rows: Sequence[OutcomeRecord],
    texts: list[str],
    scores: np.ndarray,
    config: TrainConfig,
    min_outcomes: int,
    first_n: int,
) -> ConfidenceModel | str:
    """The tier's confidence model, or why it has none."""
    have = [i for i, o in enumerate(rows) if all(k in o.features for k in FEATURE_NAMES)]
    if not have:
        return "its answers carried no token log-probs"
    reason = no_head_reason(scores[have], min_outcomes)
    if reason is not None:
        return reason
    x = np.array([[rows[i].features[k] for k in FEATURE_NAMES] for i in have])
    router_scores = None
    if no_head_reason(scores, min_outcomes) is None:
        # Out of fold: the router score it will see when serving never saw the prompt.
        oof = out_of_fold_scores(texts, scores, config)
        router_scores = oof[have]
    return ConfidenceModel.fit(
        x,
        scores[have],
        router_scores=router_scores,
        first_n=first_n,
        meta={"tier": tier, "router_score": "out-of-fold" if router_scores is not None else None},
    )


# -- reporting -------------------------------------------------------------------------------


def summarize(
    outcomes: Sequence[OutcomeRecord], tiers: Sequence[str], kinds: dict[str, str]
) -> dict[str, Any]:
    """Per tier: items, mean score, mean score by kind; and the judge's agreement with gold.

    ``kinds`` maps prompt SHA-256 to the item's kind (``routine``, ``hard``, ``open``).
    Agreement is ``1 - |judge - gold|`` averaged over the gold items the judge also graded
    (a 0.5 from the judge counts half), with the share of exact agreement beside it.
    """
    graded = _graded(outcomes)
    per_tier: dict[str, dict[str, Any]] = {}
    for tier in tiers:
        rows = list(graded.get(tier, {}).values())
        by_kind: dict[str, list[float]] = defaultdict(list)
        for o in rows:
            by_kind[kinds.get(o.prompt_sha256) or str(o.features.get("kind", "?"))].append(o.score)
        per_tier[tier] = {
            "items": len(rows),
            "mean_score": float(np.mean([o.score for o in rows])) if rows else math.nan,
            "by_kind": {k: (len(v), float(np.mean(v))) for k, v in sorted(by_kind.items())},
        }
    gold: dict[tuple[str, str], float] = {}
    judged: dict[tuple[str, str], float] = {}
    for o in outcomes:
        key = (o.prompt_sha256, o.model)
        if o.grader.startswith(GOLD_PREFIX):
            gold[key] = o.score
        elif o.grader == JUDGE_GRADER:
            judged[key] = o.score
    both = [k for k in judged if k in gold]
    agreement = None
    if both:
        diffs = np.array([abs(judged[k] - gold[k]) for k in both])
        agreement = {
            "n": len(both),
            "agreement": float(1.0 - diffs.mean()),
            "exact": float(np.mean(diffs == 0.0)),
            "undecided": float(np.mean([judged[k] == 0.5 for k in both])),
        }
    return {"tiers": per_tier, "judge": agreement}
