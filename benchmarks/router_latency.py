"""Routing cost: ``Router.decide`` latency (p50/p99) and throughput on one core.

Pins the process to a single CPU and single-threaded BLAS before numpy loads, then times
``decide`` on 50- and 500-token prompts (~0.75 words per token, so 38 and 375 English words
of GSM8K-like text) with the shipped default router.

    python benchmarks/router_latency.py --out benchmarks/results/router_latency.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from joulegate.routing import Router  # noqa: E402

_TEXT = (
    "A bakery sells 48 muffins in the morning and 3/4 as many in the afternoon. Each muffin "
    "costs $2.50 and the ingredients cost 40% of the price. How much profit does the bakery "
    "make in a week if it is open 6 days and sales double on Saturday? Explain every step. "
)


def _prompt(n_tokens: int) -> str:
    words = _TEXT.split()
    n_words = max(1, round(n_tokens * 0.75))
    return " ".join(words[i % len(words)] for i in range(n_words))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--iterations", type=int, default=500)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    router = Router.load()
    tiers = ["embedded/gemma-3-270m", "cloud/large-model"]  # the shipped head, and a reference
    results: dict[str, dict[str, float]] = {}
    for n_tokens in (50, 500):
        prompt = _prompt(n_tokens)
        for _ in range(20):
            router.decide(prompt, tiers)
        times = np.empty(args.iterations)
        for i in range(args.iterations):
            t = time.perf_counter()
            router.decide(prompt, tiers)
            times[i] = time.perf_counter() - t
        results[f"{n_tokens}_tokens"] = {
            "p50_ms": 1e3 * float(np.percentile(times, 50)),
            "p99_ms": 1e3 * float(np.percentile(times, 99)),
            "mean_ms": 1e3 * float(times.mean()),
            "decisions_per_s": float(1.0 / times.mean()),
            "prompt_chars": len(prompt),
        }
        print(n_tokens, results[f"{n_tokens}_tokens"], flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        args.out.write_text(
            json.dumps(
                {
                    "machine": platform.processor() or platform.machine(),
                    "cores_used": 1,
                    "load_average_1m_at_end": load1,
                    "iterations": args.iterations,
                    "results": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
