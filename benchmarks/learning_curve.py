"""Learning from traffic, simulated: APGR after 100, 300 and 1,000 learned outcomes.

``python -m benchmarks.learning_curve`` replays RouteLLM's outcome data (MMLU and GSM8K,
Mixtral-8x7B as the cheap tier, GPT-4 as the strong one; ``../shared/data/routellm-evals``)
as a stream of live traffic, in a seeded random order:

- **start**: the shipped router. It has no head for a tier it never measured, so ``auto``
  sends every prompt to the strong tier (the documented policy): APGR 0.5, no routing skill.
- **learning**: each of the first N items is a shadowed request. Its outcome is what the
  judge would say of the cheap answer, "as good as the strong tier's" (1 when the cheap
  model is right or the strong one is wrong too; a perfect judge), built with the gateway's
  own ``shadow_record``: prompt hash and hashed features, no prompt text.
- **refit** at N = 100, 300, 1,000 with the gateway's own ``routing.learning.refit`` (the
  calibration fitting code, out-of-fold scoring and the swap rule at the default quality
  target). Both the fitted router and the one that would then be serving (the new one if
  the swap rule let it in, else the previous) are scored.
- **scoring**: on later items only (after the last checkpoint), never on an item any router
  learned from, with RouteLLM's APGR (``routing.metrics``) against the items' real
  correctness.

Results: ``benchmarks/results/learning_curve.json`` and ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._output import REPO, console, print_table, write_result
from joulegate.ledger import OutcomeRecord
from joulegate.routing import metrics as m
from joulegate.routing.answers import Answer
from joulegate.routing.data import Outcomes, load_outcomes
from joulegate.routing.evaluation import escalation_score
from joulegate.routing.learning import refit, shadow_record
from joulegate.routing.model import RouterModel
from joulegate.routing.router import Router
from joulegate.routing.settings import DEFAULT_QUALITY_TARGET

DATA = REPO.parent / "shared" / "data" / "routellm-evals"
CHECKPOINTS = (100, 300, 1000)


def _apgr(
    model: RouterModel, tiers: list[str], prompts: list[str], w: np.ndarray, s: np.ndarray
) -> float:
    """APGR of routing ``prompts`` with ``model`` for ``tiers`` (cheap, strong), scored on the
    items' real correctness ``w`` / ``s``. A model with no head for the cheap tier routes
    everything to the strong one: a constant score."""
    if tiers[0] in model.models:
        probs = model.predict_texts(prompts)
        p_cheap = probs[:, model.models.index(tiers[0])]
        p_strong = (
            probs[:, model.models.index(tiers[1])]
            if tiers[1] in model.models
            else np.ones(len(prompts))
        )
        score = escalation_score(np.column_stack([p_cheap, p_strong]))
    else:
        score = np.ones(len(prompts))
    return m.report("r", m.threshold_curve(score, w, s), w, s).apgr


def _learned(data: Outcomes, order: np.ndarray, n: int, tiers: list[str]) -> list[OutcomeRecord]:
    """The first ``n`` items of the stream as shadow outcomes of the cheap tier."""
    w, s = data.scores[:, 0], data.scores[:, 1]
    out = []
    for i in order[:n]:
        judged = 1.0 if w[i] >= s[i] else 0.0  # as good as the strong tier's answer
        answer = Answer(tiers[0], "", "stop", 1, 0.0, "estimated:profile")
        out.append(
            shadow_record(
                data.prompts[i],
                answer,
                judged,
                served=False,
                request_id=None,
                spec=SHIPPED.model.featurizer.spec,
            )
        )
    return out


SHIPPED = Router.load()


def run(data: Outcomes, seeds: int, test_size: int, checkpoints: tuple[int, ...]) -> dict[str, Any]:
    weak, strong = data.by_capability()
    data = Outcomes(
        data.prompts,
        [weak, strong],
        np.column_stack([data.column(weak), data.column(strong)]),
        data.source,
    )
    tiers = [f"cheap/{weak.split('/')[-1]}", f"strong/{strong.split('/')[-1]}"]
    target = DEFAULT_QUALITY_TARGET
    rows: dict[int, list[dict[str, Any]]] = {n: [] for n in (0, *checkpoints)}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(data))
        later = order[max(checkpoints) :][:test_size]  # never learned from, at any checkpoint
        prompts = [data.prompts[i] for i in later]
        w, s = data.scores[later, 0], data.scores[later, 1]
        serving = SHIPPED.model
        start = _apgr(serving, tiers, prompts, w, s)
        rows[0].append({"seed": seed, "apgr_fitted": start, "apgr_serving": start, "swapped": None})
        for n in checkpoints:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                decision = refit(_learned(data, order, n, tiers), tiers, serving, target)
            fitted = _apgr(decision.fit.router, tiers, prompts, w, s)
            if decision.swap:
                serving = decision.fit.router
            rows[n].append(
                {
                    "seed": seed,
                    "apgr_fitted": fitted,
                    "apgr_serving": _apgr(serving, tiers, prompts, w, s),
                    "swapped": decision.swap,
                    "new_kept": decision.new.kept,
                    "new_kept_score": decision.new.kept_score,
                    "refit_s": time.perf_counter() - t0,
                }
            )
            console.print(
                f"seed {seed}, {n:>5} outcomes: APGR fitted {fitted:.3f}, "
                f"swapped in: {decision.swap} ({decision.new.describe()})"
            )
    summary = []
    for n, per_seed in rows.items():
        fitted = np.array([r["apgr_fitted"] for r in per_seed])
        serving = np.array([r["apgr_serving"] for r in per_seed])
        swaps = [r["swapped"] for r in per_seed if r["swapped"] is not None]
        summary.append(
            {
                "outcomes": n,
                "apgr_fitted_mean": float(fitted.mean()),
                "apgr_fitted_sd": float(fitted.std(ddof=1)) if len(fitted) > 1 else 0.0,
                "apgr_serving_mean": float(serving.mean()),
                "swapped": f"{sum(swaps)}/{len(swaps)}" if swaps else "-",
            }
        )
    return {
        "weak": weak,
        "strong": strong,
        "items": len(data),
        "test_items": int(min(test_size, len(data) - max(checkpoints))),
        "seeds": seeds,
        "quality_target": target,
        "judge": "perfect: 1 when the cheap model is right or the strong one is wrong too",
        "summary": summary,
        "runs": {str(n): r for n, r in rows.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, nargs="+", default=[DATA / "mmlu", DATA / "gsm8k"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--test", type=int, default=5000, help="later items scored per seed")
    ap.add_argument("--quick", action="store_true", help="one seed, small checkpoints")
    args = ap.parse_args(argv)
    checkpoints = (30, 60) if args.quick else CHECKPOINTS
    seeds = 1 if args.quick else args.seeds
    test = 300 if args.quick else args.test
    data = load_outcomes(args.data)
    console.print(f"{len(data)} items from {[str(p) for p in args.data]}")
    result = run(data, seeds, test, checkpoints)
    print_table(
        f"APGR on later items ({result['test_items']} per seed, {seeds} seeds), "
        f"cheap {result['weak']} / strong {result['strong']}",
        ["learned outcomes", "APGR fitted (mean)", "sd", "APGR serving", "swapped in"],
        [
            [
                "0 (shipped router)" if r["outcomes"] == 0 else r["outcomes"],
                round(r["apgr_fitted_mean"], 3),
                round(r["apgr_fitted_sd"], 3),
                round(r["apgr_serving_mean"], 3),
                r["swapped"],
            ]
            for r in result["summary"]
        ],
    )
    write_result("learning_curve-quick" if args.quick else "learning_curve", result)
    return result


if __name__ == "__main__":
    main()
