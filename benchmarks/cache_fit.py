"""Fit the semantic cache's calibration and search projection on the fit part of the pairs.

``python -m benchmarks.cache_fit`` writes ``src/joulegate/cache/calibration.json`` (per
embedder: the logistic model of ``P(a cached answer is right | cosine, overlap)``, fitted on
the fit-part pairs that pass the guard) and ``src/joulegate/cache/projection.npz`` (the 64
principal axes of the MiniLM vectors of the fit-part sentences, for the index's
prefilter). Only the fit part is used (``benchmarks/_paraphrase.py``); the held-back part
is for ``benchmarks.cache_quality``. Neither file holds any sentence of the data.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from benchmarks._output import OUT, REPO, console, print_table
from benchmarks._paraphrase import Pair, load_pairs
from joulegate.cache import guard
from joulegate.cache.embedder import Embedder, HashedNgrams, MiniLM

PACKAGE = REPO / "src" / "joulegate" / "cache"
PROJECTION_DIM = 64


def embed_all(embedder: Embedder, sentences: list[str], cache_dir: Path) -> dict[str, np.ndarray]:
    """Vectors for ``sentences``, reusing those ``benchmarks.cache_embedders`` computed."""
    reuse = {"all-MiniLM-L6-v2-onnx-int8": "minilm-onnx-int8", "hashed-char-ngrams": ""}
    known = cache_dir / "sentences.json"
    name = reuse.get(embedder.name, "")
    if name and known.exists() and (cache_dir / f"{name}.npy").exists():
        order = json.loads(known.read_text())
        vecs = np.load(cache_dir / f"{name}.npy")
        table = dict(zip(order, vecs, strict=True))
        if all(s in table for s in sentences):
            return {s: table[s] for s in sentences}
    return {s: embedder.embed(s) for s in sentences}


RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


def wilson_upper(k: int, n: int, z: float = 2.0) -> float:
    """The Wilson score interval's upper end for ``k`` of ``n``."""
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


def pair_features(p: Pair, vecs: dict[str, np.ndarray]) -> tuple[float, float] | None:
    """Cosine and overlap of a pair that passes the guard; None for one it refuses."""
    if guard.refuses(p.a, p.b) is not None:
        return None
    return float(vecs[p.a] @ vecs[p.b]), guard.overlap(p.a, p.b)


def fit(embedder: Embedder, pairs: list[Pair], cache_dir: Path) -> dict[str, Any]:
    sentences = sorted({s for p in pairs for s in (p.a, p.b)})
    vecs = embed_all(embedder, sentences, cache_dir)
    x, y = [], []  # interchangeable (1) or must not share an answer (0), past the guard
    for p in pairs:
        f = pair_features(p, vecs)
        if f is not None and (p.same or p.must_not_hit):
            x.append(f)
            y.append(int(p.same))
    xa, ya = np.array(x), np.array(y)
    model = LogisticRegression(C=10.0, max_iter=1000).fit(xa, ya)
    w_cos, w_overlap = (float(w) for w in model.coef_[0])
    bias = float(model.intercept_[0])
    scores = xa @ np.array([w_cos, w_overlap]) + bias
    # Every must-not pair counts in the rate, those the guard refused too (never served).
    n_neg = sum(p.must_not_hit for p in pairs)
    neg = np.sort(scores[ya == 0])[::-1]
    rates = []
    for rate in RATES:
        k = 0
        while k < len(neg) and wilson_upper(k + 1, n_neg) <= rate:
            k += 1
        if k == 0:
            cut = float(neg[0] + 0.5)
        elif k >= len(neg):
            cut = float(neg[-1] - 0.5)
        else:
            cut = float((neg[k - 1] + neg[k]) / 2)
        rates.append([rate, round(cut, 4)])
    # P(wrong | score) among the pairs near and above the loosest threshold: where hits are.
    high = scores >= rates[-1][1] - 1.0
    err = LogisticRegression(C=10.0, max_iter=1000).fit(scores[high, None], 1 - ya[high])
    # No candidate under this cosine reaches the threshold for δ = 10%, even with every
    # content word shared: it is not scored at all.
    reach = rates[-1][1] - w_overlap - bias
    min_cosine = min(1.0, max(0.0, reach / w_cos)) if w_cos > 0 else 1.0
    return {
        "w_cos": w_cos,
        "w_overlap": w_overlap,
        "bias": bias,
        "rates": rates,
        "err_w": float(err.coef_[0][0]),
        "err_b": float(err.intercept_[0]),
        "min_cosine": round(min_cosine, 4),
        "fit_pairs": len(pairs),
        "fit_must_not_hit": n_neg,
        "fit_pairs_past_guard": len(ya),
        "vectors": vecs if embedder.name.startswith("all-MiniLM") else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    args = ap.parse_args(argv)
    pairs = load_pairs("fit")
    cache_dir = OUT / "cache_embedders"
    fits: dict[str, Any] = {}
    basis = None
    for embedder in (MiniLM(), HashedNgrams()):
        console.print(f"fitting {embedder.name} on {len(pairs)} pairs ...")
        result = fit(embedder, pairs, cache_dir)
        vecs = result.pop("vectors")
        if vecs is not None:
            mat = np.stack(list(vecs.values()))
            # Uncentred: the prefilter approximates dot products, not distances to a mean.
            _, _, vt = np.linalg.svd(mat, full_matrices=False)
            basis = vt[:PROJECTION_DIM].T.astype(np.float32)
        fits[embedder.name] = result
    rows = [
        [n, f["w_cos"], f["w_overlap"], f["bias"], f["min_cosine"], f["fit_pairs_past_guard"]]
        for n, f in fits.items()
    ]
    print_table("calibration", ["embedder", "w_cos", "w_overlap", "bias", "min cos", "n"], rows)
    for n, f in fits.items():
        need = dict(f["rates"])[0.01]
        at_full = (need - f["w_overlap"] - f["bias"]) / f["w_cos"]
        console.print(
            f"{n}: at δ = 1% a hit needs cosine ≥ {at_full:.3f} with every content word shared"
        )
    doc = {
        "about": "Fitted by benchmarks/cache_fit.py on the fit part of ../shared/data/paraphrase"
        " (SICK, MSRP; see benchmarks/_paraphrase.py). P(right) = sigmoid(w_cos * cosine +"
        " w_overlap * overlap + bias), over pairs that pass the guard.",
        "fitted": datetime.now(UTC).isoformat(timespec="seconds"),
        "fits": fits,
    }
    if not args.dry_run:
        (PACKAGE / "calibration.json").write_text(json.dumps(doc, indent=2) + "\n")
        if basis is not None:
            np.savez(PACKAGE / "projection.npz", basis=basis)
        console.print(f"[dim]wrote {PACKAGE.relative_to(REPO)}/calibration.json, projection.npz[/]")
    assert not math.isnan(sum(f["bias"] for f in fits.values()))
    return doc


if __name__ == "__main__":
    main()
