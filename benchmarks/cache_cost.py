"""What the response cache adds to a request that it cannot answer, with 100k entries.

``python -m benchmarks.cache_cost [--entries N] [--redis URL]``

The worst case for the semantic search: every entry in one conversation context
(single-turn questions under one system prompt, one set of parameters), so one lookup
searches all of them. 18k entries are the real vectors of the SICK/MSRP sentences; the rest
are mixtures of them with noise, so the space is as crowded as real text. Everything runs
on one core (this process pinned to CPU 0, BLAS and onnxruntime on one thread). Measured:

- an exact-only miss (``mode = "exact"``): the key hash and a dict lookup;
- a semantic miss: embedding the question, then the search (``index.nearest``, with its
  projection prefilter past 4,096 entries), guard and scoring of the candidates;
- the search alone, and the prefilter's recall (does it return the neighbour an exact
  brute-force search finds, for held-back paraphrase pairs whose first half is stored);
- the same miss through the Redis store, as a replica sees it (sync from the change log,
  then the local search), when ``--redis`` names a server (default: the local one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks._machine import machine_info
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._paraphrase import ORIGIN, load_pairs
from joulegate.cache.embedder import MiniLM
from joulegate.cache.entry import Entry
from joulegate.cache.service import ResponseCache
from joulegate.cache.settings import CacheSettings
from joulegate.cache.sqlite_store import SQLiteStore

SYSTEM = "You are a helpful assistant."
ANSWER = {
    "text": "x",
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "reasoning_tokens": 0},
}


def _body(question: str) -> dict[str, Any]:
    return {
        "model": "auto",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
    }


def _entries(n: int, rng: np.random.Generator, exclude: set[str]) -> tuple[list[str], np.ndarray]:
    """``n`` (question, vector) pairs: the real sentences (but ``exclude``), then mixtures
    of two of them, with their texts joined, so words and vectors crowd alike."""
    d = OUT / "cache_embedders"
    texts = json.loads((d / "sentences.json").read_text())
    real = np.load(d / "minilm-onnx-int8.npy").astype(np.float32)
    keep = [i for i, t in enumerate(texts) if t not in exclude][:n]
    names = [texts[i] for i in keep]
    out = [real[keep]]
    while len(names) < n:
        k = min(len(keep), n - len(names))
        ia, ib = rng.choice(keep, k), rng.choice(keep, k)
        mix = real[ia] + 0.6 * real[ib]
        mix += 0.05 * rng.standard_normal(mix.shape).astype(np.float32)
        out.append(mix / np.linalg.norm(mix, axis=1, keepdims=True))
        names += [f"{texts[a]} {texts[b]}" for a, b in zip(ia, ib, strict=True)]
    return names, np.concatenate(out)


def _fill(cache: ResponseCache, names: list[str], vecs: np.ndarray) -> None:
    now = time.time()
    for name, vec in zip(names, vecs, strict=True):
        probe = cache.probe("auto", _body(name), None)
        assert probe is not None
        entry = Entry(
            Entry.new_id(),
            probe.namespace,
            probe.keys.exact,
            probe.keys.context,
            probe.keys.text,
            ANSWER,
            ORIGIN,
            now,
            now + 86_400,
        )
        cache.store.put(entry, vec)


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _time_lookups(
    cache: ResponseCache, questions: list[str], mode: str, embedded: list[int] | None = None
) -> list[float]:
    """Per-lookup milliseconds (probe included); ``embedded`` gets how many were embedded."""
    times = []
    for q in questions:
        t = time.perf_counter()
        probe = cache.probe("auto", _body(q), None, requested=mode)
        assert probe is not None
        hit = cache._lookup(probe)
        times.append((time.perf_counter() - t) * 1000)
        assert hit is None or mode == "semantic"
        if embedded is not None:
            embedded.append(probe.vector is not None)
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="'' to skip")
    ap.add_argument("--quick", action="store_true", help="5,000 entries, 50 lookups")
    args = ap.parse_args(argv)
    n = 5_000 if args.quick else args.entries
    lookups = 50 if args.quick else 300
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(15)
    held = load_pairs("held")
    # Misses by construction. Far: neither sentence of the pair is stored. Near: the other
    # sentence of a contradiction or non-paraphrase pair is stored (shares most words).
    negatives = [p for p in held if p.must_not_hit]
    far, near = negatives[:lookups], negatives[lookups : 2 * lookups]
    questions = [p.b for p in far]
    near_questions = [p.b for p in near]
    planted = [p for p in held if p.same][:200]
    names, vecs = _entries(
        n, rng, {*questions, *(p.a for p in far), *near_questions, *(p.b for p in planted)}
    )
    settings = CacheSettings(mode="semantic", max_entries=n + 10_000, explore_rate=0.0)
    tmp = Path(tempfile.mkdtemp(prefix="cache_cost-"))
    embedder = MiniLM()
    result: dict[str, Any] = {"machine": machine_info(), "entries": n}
    with threadpool_limits(1):
        cache = ResponseCache(
            settings, SQLiteStore(tmp / "c.db", 384, settings.max_entries), embedder
        )
        cache.open()
        t = time.perf_counter()
        _fill(cache, names, vecs)
        result["fill_s_sqlite"] = time.perf_counter() - t
        embed_ms = []
        for q in questions:
            t = time.perf_counter()
            embedder.embed(q)
            embed_ms.append((time.perf_counter() - t) * 1000)
        exact_ms = _time_lookups(cache, questions, "exact")
        embedded: list[int] = []
        semantic_ms = _time_lookups(cache, questions, "semantic", embedded)
        result["far_misses_embedded"] = sum(embedded) / len(embedded)
        near_embedded: list[int] = []
        near_ms = _time_lookups(cache, near_questions, "semantic", near_embedded)
        result["near_misses_embedded"] = sum(near_embedded) / max(1, len(near_embedded))
        index = cache.store.index
        ctx = cache.probe("auto", _body("x"), None)
        assert ctx is not None
        qv = [embedder.embed(q) for q in questions[:100]]
        search_ms = []
        for v in qv:
            t = time.perf_counter()
            index.nearest(ctx.namespace, ctx.keys.context, v)
            search_ms.append((time.perf_counter() - t) * 1000)
        # Recall: held-back paraphrase pairs, the first sentence stored, the second asked.
        group = index._groups[(ctx.namespace, ctx.keys.context)]
        found = 0
        for p in planted:
            v = embedder.embed(p.b)  # the partner p.a is stored
            brute = group.ids[int(np.argmax(group.vectors[: len(group.ids)] @ v))]
            found += (
                index.nearest(ctx.namespace, ctx.keys.context, v, k=1)[0].slot.entry_id == brute
            )
        result["prefilter_recall_at_1"] = found / len(planted)
        cache.store.close()
        rows = [
            ["embed the question (MiniLM int8)", _p(embed_ms, 50), _p(embed_ms, 95)],
            ["exact-only miss", _p(exact_ms, 50), _p(exact_ms, 95)],
            ["semantic miss, far (exact + semantic)", _p(semantic_ms, 50), _p(semantic_ms, 95)],
            ["semantic miss, near (a partner stored)", _p(near_ms, 50), _p(near_ms, 95)],
            ["search alone", _p(search_ms, 50), _p(search_ms, 95)],
        ]
        result["sqlite"] = {r[0]: {"p50_ms": r[1], "p95_ms": r[2]} for r in rows}
        if args.redis:
            result["redis"] = _redis(args.redis, settings, names, vecs, questions, embedder, rows)
    print_table(
        f"cache lookup on a miss, {n:,} entries in one context, one core",
        ["", "p50 ms", "p95 ms"],
        rows,
    )
    console.print(f"prefilter recall@1 vs brute force: {result['prefilter_recall_at_1']:.3f}")
    console.print(
        f"misses embedded: far {result['far_misses_embedded']:.1%}, "
        f"near {result['near_misses_embedded']:.1%}"
    )
    write_result("cache_cost" + ("-quick" if args.quick else ""), result)
    return result


def _redis(
    url: str,
    settings: CacheSettings,
    names: list[str],
    vecs: np.ndarray,
    questions: list[str],
    embedder: MiniLM,
    rows: list[list[Any]],
) -> dict[str, Any]:
    import redis

    from joulegate.cache.redis_store import RedisStore

    client = redis.Redis.from_url(url)
    for key in client.scan_iter("joulegate:cache:*"):
        client.delete(key)
    s = settings.model_copy(update={"store": "redis", "redis_url": url})
    writer = ResponseCache(s, RedisStore(url, 384, s.max_entries, s.ttl_s), embedder)
    writer.open()
    t = time.perf_counter()
    _fill(writer, names, vecs)
    fill_s = time.perf_counter() - t
    replica = ResponseCache(s, RedisStore(url, 384, s.max_entries, s.ttl_s), embedder)
    t = time.perf_counter()
    replica.open()
    open_s = time.perf_counter() - t
    exact_ms = _time_lookups(replica, questions, "exact")
    semantic_ms = _time_lookups(replica, questions, "semantic")
    rows += [
        ["redis replica: exact-only miss", _p(exact_ms, 50), _p(exact_ms, 95)],
        ["redis replica: semantic miss", _p(semantic_ms, 50), _p(semantic_ms, 95)],
    ]
    for key in client.scan_iter("joulegate:cache:*"):
        client.delete(key)
    return {
        "fill_s": fill_s,
        "replica_open_s": open_s,
        "exact_miss": {"p50_ms": _p(exact_ms, 50), "p95_ms": _p(exact_ms, 95)},
        "semantic_miss": {"p50_ms": _p(semantic_ms, 50), "p95_ms": _p(semantic_ms, 95)},
        "median_ms": statistics.median(semantic_ms),
    }


if __name__ == "__main__":
    main()
