"""The semantic cache's bars on the held-back pairs: false hits, hits, and context.

``python -m benchmarks.cache_quality [--embedder minilm|hashed]``

Everything runs through the shipped ``ResponseCache`` at its default settings with
``mode = "semantic"`` (the opt-in), on the embedded SQLite store in a temporary directory:

- **False hits / hits.** Each held-back pair is cast as two requests in one conversation
  state (a system prompt of its own, the same parameters): the first sentence's request is
  answered and stored, the second is looked up; then the other way round, in a fresh state.
  A SICK CONTRADICTION or MSRP non-paraphrase pair served in either direction is a false
  hit; for SICK ENTAILMENT and MSRP paraphrases, the share served is the hit rate.
- **Context.** For every pair that hit above, the same second question is asked again
  after a different history, under a different system prompt, and with other parameters:
  none may hit. The identical request in the same state must hit (exactly).

Vectors the embedders benchmark already computed for these sentences are reused (the same
embedder class made them); any other text is embedded as it comes.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._machine import machine_info
from benchmarks._output import OUT, print_table, write_result
from benchmarks._paraphrase import ORIGIN, Pair, load_pairs
from joulegate.cache.embedder import Embedder, HashedNgrams, MiniLM
from joulegate.cache.service import Probe, ResponseCache
from joulegate.cache.settings import CacheSettings
from joulegate.cache.sqlite_store import SQLiteStore

ANSWER = {
    "text": "an answer",
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "reasoning_tokens": 0},
}


class Memo:
    """An embedder that serves known sentences from precomputed vectors."""

    def __init__(self, inner: Embedder, known: dict[str, np.ndarray]) -> None:
        self.inner, self.known = inner, known
        self.name, self.dim = inner.name, inner.dim

    def embed(self, text: str) -> np.ndarray:
        vec = self.known.get(text)
        return vec if vec is not None else self.inner.embed(text)


def _known_vectors(name: str) -> dict[str, np.ndarray]:
    d = OUT / "cache_embedders"
    if not (d / "sentences.json").exists() or not (d / f"{name}.npy").exists():
        return {}
    return dict(
        zip(json.loads((d / "sentences.json").read_text()), np.load(d / f"{name}.npy"), strict=True)
    )


def body(
    question: str, system: str, history: list[dict[str, str]] | None = None, **params: Any
) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}, *(history or [])]
    return {
        "model": "auto",
        "messages": [*messages, {"role": "user", "content": question}],
        **params,
    }


def ask(cache: ResponseCache, req: dict[str, Any]) -> tuple[Probe, Any]:
    probe = cache.probe("auto", req, None)
    assert probe is not None
    return probe, cache._lookup(probe)


def store(cache: ResponseCache, req: dict[str, Any]) -> None:
    probe, hit = ask(cache, req)
    assert hit is None or hit.kind == "exact"
    cache._store(probe, ANSWER, ORIGIN)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", choices=("minilm", "hashed"), default="minilm")
    ap.add_argument("--quick", action="store_true", help="every 10th pair")
    args = ap.parse_args(argv)
    pairs = load_pairs("held")
    if args.quick:
        pairs = pairs[::10]
    inner: Embedder = MiniLM() if args.embedder == "minilm" else HashedNgrams()
    known = _known_vectors("minilm-onnx-int8") if args.embedder == "minilm" else {}
    settings = CacheSettings(mode="semantic", embedder=args.embedder)
    tmp = Path(tempfile.mkdtemp(prefix="cache_quality-"))
    cache = ResponseCache(
        settings, SQLiteStore(tmp / "cache.db", inner.dim, settings.max_entries), Memo(inner, known)
    )
    cache._rng = random.Random(15)  # exploration draws, fixed for a repeatable run
    cache.open()

    served: dict[tuple[str, int], bool] = {}
    kinds: Counter[str] = Counter()
    for i, p in enumerate(pairs):
        for direction, (first, second) in enumerate(((p.a, p.b), (p.b, p.a))):
            system = f"You answer questions. Conversation {i}-{direction}."
            store(cache, body(first, system))
            _, hit = ask(cache, body(second, system))
            served[(p.pair_id + p.source, direction)] = hit is not None
            if hit is not None:
                kinds[hit.kind] += 1

    def rate(sel: list[Pair]) -> dict[str, Any]:
        either = sum(
            served[(p.pair_id + p.source, 0)] or served[(p.pair_id + p.source, 1)] for p in sel
        )
        each = sum(served[(p.pair_id + p.source, d)] for p in sel for d in (0, 1))
        return {
            "pairs": len(sel),
            "served_either_way": either,
            "rate_either_way": either / len(sel) if sel else 0.0,
            "rate_per_request": each / (2 * len(sel)) if sel else 0.0,
        }

    groups = {
        "SICK CONTRADICTION": [p for p in pairs if p.label == "CONTRADICTION"],
        "MSRP non-paraphrase": [p for p in pairs if p.label == "non-paraphrase"],
        "SICK ENTAILMENT": [p for p in pairs if p.label == "ENTAILMENT"],
        "MSRP paraphrase": [p for p in pairs if p.label == "paraphrase"],
        "SICK NEUTRAL": [p for p in pairs if p.label == "NEUTRAL"],
    }
    results = {name: rate(sel) for name, sel in groups.items()}
    rows = [
        [n, r["pairs"], r["served_either_way"], r["rate_either_way"], r["rate_per_request"]]
        for n, r in results.items()
    ]
    print_table(
        "held-back pairs, default settings (mode = semantic)",
        ["pairs", "n", "served", "rate (either way)", "rate (per request)"],
        rows,
    )

    # Context: every pair that hit, asked again in other states; and the identical request.
    hit_pairs = [p for p in pairs if served[(p.pair_id + p.source, 0)]]
    context = Counter[str]()
    for j, p in enumerate(hit_pairs):
        system = f"Context test {j}."
        history = [
            {"role": "user", "content": "Earlier question."},
            {"role": "assistant", "content": "Earlier answer."},
        ]
        store(cache, body(p.a, system, history))
        trials = {
            "different history": body(
                p.b, system, [history[0], {"role": "assistant", "content": "Other."}]
            ),
            "no history": body(p.b, system),
            "different system prompt": body(p.b, system + " Be brief.", history),
            "different temperature": body(p.b, system, history, temperature=0.7),
        }
        for name, req in trials.items():
            context[f"{name}: hits"] += ask(cache, req)[1] is not None
            context[f"{name}: asked"] += 1
        _, same = ask(cache, body(p.a, system, history))
        context["same state, same question: exact hits"] += bool(same and same.kind == "exact")
        context["same state, same question: asked"] += 1
        _, para = ask(cache, body(p.b, system, history))
        context["same state, paraphrase: hits"] += para is not None
        context["same state, paraphrase: asked"] += 1
    print_table("context", ["case", "count"], sorted(context.items()))
    stats = cache.stats()["total"]
    payload = {
        "machine": machine_info(),
        "embedder": inner.name,
        "settings": settings.model_dump(mode="json"),
        "held_pairs": len(pairs),
        "results": results,
        "hit_kinds": dict(kinds),
        "context": dict(context),
        "cache_stats": stats,
    }
    name = "cache_quality" + ("" if args.embedder == "minilm" else f"-{args.embedder}")
    write_result(name + ("-quick" if args.quick else ""), payload)
    cache.store.close()
    return payload


if __name__ == "__main__":
    main()
