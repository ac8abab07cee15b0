"""Fit the router shipped in the package from the embedded tier's measured probe outcomes.

The embedded model (Gemma 3 270M, Q4_K_M) is known in advance, so a fresh install should
already know what it can answer. ``benchmarks/measure_embedded.py`` answered every probe
item with it (the server's backend, prompt frame and sampler; gold-graded) and recorded each
answer's token log-probs. This script turns those outcomes into
``src/joulegate/routing/default_router.npz``:

- the **head** for ``embedded/gemma-3-270m``: P(the embedded tier answers acceptably |
  prompt), fit on the gold-graded items (routine + hard; open items need a judge and there
  is no larger tier here to be one);
- its **ConfidenceModel** for the cascade: the answer's log-prob features (first 48 tokens)
  plus the head's *out-of-fold* score, so that the model never sees an in-sample router
  score better than any it will get when serving; and its out-of-fold precision curve,
  from which the gateway reads the keep threshold for a quality target
  (``ConfidenceModel.keep_threshold``).

It also reports, honestly out-of-sample, how well each separates acceptable answers:

- the head's AUROC from 5-fold cross-validation (every prompt scored by a head fit without it);
- the confidence model's AUROC from nested cross-validation: in each outer fold, the head's
  scores on the training part come from an inner cross-validation, the test part is scored by
  a head fit on the training part, and the confidence model is fit on the training part only;
- what the cascade keeps at a few quality targets under the gateway's own rule, on the same
  outer folds: each fold's model keeps an answer iff P >= its ``keep_threshold(target)``,
  read from the precision curve of that model (folds inside the training part), so the
  threshold never saw the answers it is applied to.

    python -m benchmarks.fit_shipped_router            # fit, write the router and the metrics
    python -m benchmarks.fit_shipped_router --check    # metrics only; the router is not written
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from joulegate.ledger.outcomes import prompt_sha256
from joulegate.routing.confidence import DEFAULT_FIRST_N, ConfidenceModel, confidence_features
from joulegate.routing.model import (
    TierOutcomes,
    TrainConfig,
    fit_tier_heads,
    out_of_fold_scores,
)
from joulegate.routing.probes import load_probe_set

HERE = Path(__file__).resolve().parent
OUTCOMES = HERE / "results" / "embedded_probe_outcomes.jsonl"
METRICS = HERE / "results" / "shipped_router_fit.json"
ROUTER = HERE.parent / "src" / "joulegate" / "routing" / "default_router.npz"
TIER = "embedded/gemma-3-270m"
FOLDS = 5
SEED = 0


def load_rows(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The gold-graded rows measured on the shipped probe set, with their prompts, and counts."""
    items = {i.id: i for i in load_probe_set()}
    rows = []
    seen: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        item = items.get(row["id"])
        if item is None or prompt_sha256(item.prompt) != row["prompt_sha256"]:
            raise SystemExit(f"{path}: {row['id']} is not an item of the shipped probe set")
        if row.get("model") != TIER:
            raise SystemExit(f"{path}: {row['id']} was answered by {row.get('model')}, not {TIER}")
        seen[item.kind] += 1
        if row["score"] is None or not row.get("logprobs"):
            continue
        rows.append({**row, "prompt": item.prompt, "kind": item.kind})
    counts = {
        "probe_items": len(items),
        "probe_items_by_kind": dict(Counter(i.kind for i in items.values())),
        "measured": sum(seen.values()),
        "measured_by_kind": dict(seen),
        "gold_graded_used": len(rows),
    }
    return rows, counts


def features(rows: list[dict[str, Any]]) -> np.ndarray:
    """Confidence features as a cascade computes them: the first 48 tokens' log-probs and the
    characters those tokens spelled (``head_chars``, measured when the answers streamed)."""
    return np.array(
        [
            confidence_features(r["logprobs"], "x" * int(r["head_chars"]), first_n=DEFAULT_FIRST_N)
            for r in rows
        ]
    )


def _auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def _head_scores(
    train_prompts: list[str], train_y: np.ndarray, test_prompts: list[str], config: TrainConfig
) -> np.ndarray:
    model = fit_tier_heads([TierOutcomes(TIER, train_prompts, train_y)], [TIER], config)
    return model.predict_texts(test_prompts)[:, 0]


def evaluate(rows: list[dict[str, Any]], config: TrainConfig) -> dict[str, Any]:
    """Out-of-sample AUROCs of the head, the log-prob features alone, and the combination."""
    prompts = [r["prompt"] for r in rows]
    y = np.array([r["score"] for r in rows], dtype=np.float64)
    labels = (y >= 0.5).astype(int)
    x = features(rows)
    kinds = np.array([r["kind"] for r in rows])
    head_oof = out_of_fold_scores(prompts, y, config, FOLDS)
    conf_nested = np.empty(len(rows))
    conf_logprobs_only = np.empty(len(rows))
    targets = (0.85, 0.9, 0.95)
    kept_by_rule = {t: np.zeros(len(rows), bool) for t in targets}
    fold_thresholds: dict[float, list[float | None]] = {t: [] for t in targets}
    outer = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    for tr, te in outer.split(np.zeros(len(y)), labels):
        tr_prompts = [prompts[i] for i in tr]
        inner = out_of_fold_scores(tr_prompts, y[tr], config, FOLDS)
        test_head = _head_scores(tr_prompts, y[tr], [prompts[i] for i in te], config)
        model = ConfidenceModel.fit(x[tr], y[tr], router_scores=inner)
        conf_nested[te] = model.predict_proba(np.column_stack([x[te], test_head]))
        for t in targets:
            threshold = model.keep_threshold(t)
            fold_thresholds[t].append(threshold)
            if threshold is not None:
                kept_by_rule[t][te] = conf_nested[te] >= threshold
        alone = ConfidenceModel.fit(x[tr], y[tr])
        conf_logprobs_only[te] = alone.predict_proba(x[te])
    out: dict[str, Any] = {
        "n": len(rows),
        "acceptable_share": float(labels.mean()),
        "auroc": {
            "head_cv": _auroc(labels, head_oof),
            "confidence_logprobs_only_cv": _auroc(labels, conf_logprobs_only),
            "confidence_with_head_nested_cv": _auroc(labels, conf_nested),
        },
        "by_kind": {},
    }
    for kind in sorted(set(kinds)):
        m = kinds == kind
        out["by_kind"][kind] = {
            "n": int(m.sum()),
            "acceptable_share": float(labels[m].mean()),
            "head_cv": _auroc(labels[m], head_oof[m]),
            "confidence_with_head_nested_cv": _auroc(labels[m], conf_nested[m]),
        }
    # What the cascade keeps at a few targets under the gateway's rule, judged out of sample
    # (a fold whose model reaches no threshold keeps nothing: the gateway plans no cheap try).
    routine = kinds == "routine"
    for target in targets:
        kept = kept_by_rule[target]
        out.setdefault("kept_at_target", {})[str(target)] = {
            "rule": "P >= keep_threshold(target), each outer fold's own curve",
            "fold_thresholds": fold_thresholds[target],
            "kept_share": float(kept.mean()),
            "kept": int(kept.sum()),
            "acceptable_among_kept": float(labels[kept].mean()) if kept.any() else None,
            "routine_kept_share": float(kept[routine].mean()) if routine.any() else None,
        }
    return out


def shipped_thresholds(model: ConfidenceModel) -> dict[str, Any]:
    """The shipped model's keep threshold per target, and what its own curve says it keeps."""
    out: dict[str, Any] = {}
    for target in (0.85, 0.9, 0.95):
        threshold = model.keep_threshold(target)
        if threshold is None or model.curve is None:
            out[str(target)] = {"keep_threshold": None, "why": model.why_no_threshold(target)}
        else:
            out[str(target)] = {"keep_threshold": threshold, **model.curve.at(threshold)}
    return out


def fit(
    rows: list[dict[str, Any]], counts: dict[str, Any], config: TrainConfig
) -> tuple[Any, ConfidenceModel]:
    """The shipped router: the head on every row, the confidence model with OOF head scores
    (and its precision curve, which ``ConfidenceModel.fit`` measures)."""
    prompts = [r["prompt"] for r in rows]
    y = np.array([r["score"] for r in rows], dtype=np.float64)
    oof = out_of_fold_scores(prompts, y, config, FOLDS)
    measured = {k: rows[0][k] for k in ("n_threads", "seed", "max_tokens") if k in rows[0]}
    confidence = ConfidenceModel.fit(
        features(rows),
        y,
        router_scores=oof,
        meta={"tier": TIER, "router_score": "out-of-fold", "source": OUTCOMES.name},
    )
    info = {
        "source": f"benchmarks/results/{OUTCOMES.name}",
        "graders": dict(Counter(f"gold:{r['grader']}" for r in rows)),
        "kinds": dict(Counter(r["kind"] for r in rows)),
        "measured_with": measured,
        "probe_coverage": counts,
    }
    router = fit_tier_heads(
        [TierOutcomes(TIER, prompts, y, info)],
        [TIER],
        config,
        confidence={TIER: confidence.to_dict()},
    )
    return router, confidence


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outcomes", type=Path, default=OUTCOMES)
    ap.add_argument("--out", type=Path, default=ROUTER)
    ap.add_argument("--check", action="store_true", help="print metrics; write nothing")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", FutureWarning)
    config = TrainConfig(seed=SEED)
    rows, counts = load_rows(args.outcomes)
    if counts["measured"] < counts["probe_items"]:
        print(
            f"note: {counts['measured']} of {counts['probe_items']} probe items measured so far; "
            "fitting on those",
            file=sys.stderr,
        )
    metrics = {"tier": TIER, "coverage": counts, **evaluate(rows, config)}
    print(json.dumps(metrics, indent=2))
    if args.check:
        return
    router, confidence = fit(rows, counts, config)
    metrics["shipped_keep_thresholds"] = shipped_thresholds(confidence)
    print(json.dumps(metrics["shipped_keep_thresholds"], indent=2))
    router.save(args.out)
    METRICS.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) and {METRICS}")


if __name__ == "__main__":
    main()
