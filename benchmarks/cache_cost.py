"""What the response cache adds to a request that it cannot answer, with 100k entries.

``python -m benchmarks.cache_cost [--entries N] [--redis URL]``

The worst case for the semantic search: every entry in one conversation context
(single-turn questions under one system prompt, one set of parameters), so one lookup
searches all of them. The entries are real texts with their real MiniLM vectors
(``benchmarks/_questions.py``: SICK/MSRP sentences, GSM8K train questions, their sentences
and worked steps, MMLU prompts, stems and options), as a cache that has answered 100k
distinct questions holds them. Everything runs on one core (this process pinned to CPU 0,
BLAS and onnxruntime on one thread). Only lookups that end in a miss are timed, for three
kinds of question the cache cannot answer:

- **unrelated**: GSM8K *test* questions (no entry comes from them): a new question;
- **same topic**: the second sentence of held-back SICK/MSRP pairs that must not share an
  answer, with neither sentence stored: a sentence among thousands of look-alikes from the
  same few hundred scenes, the densest neighbourhood the data has;
- **near**: the same, with the pair's other sentence stored (a contradiction, or a
  non-paraphrase that shares most words): the miss that has to be ruled out by meaning.

Measured: an exact-only miss (``mode = "exact"``: the key hash and a dict lookup); a
semantic miss (the lexical prefilter, and when it cannot rule the question out, the
embedding, the search with its projection prefilter past 4,096 entries, the guard and
scoring); how many misses were embedded; the embedding and the search alone; the
projection prefilter's recall against brute force; and the same through the Redis store,
as a replica sees it (sync from the change log, then the local search), when ``--redis``
names a server (default: the local one).

The alternative embedded store the issue named, sqlite-vec, is measured beside the
in-process search when it can load: ``pip install sqlite-vec apsw`` (this CPython's
``sqlite3`` was built without extension loading, so the extension goes through apsw). Its
``vec0`` table holds the same vectors under a partition key (the context), and the same
questions ask it for their 4 nearest.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks._machine import machine_info
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._paraphrase import ORIGIN, load_pairs
from benchmarks._questions import embedded_corpus, gsm8k
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


def _entries(n: int, exclude: set[str]) -> tuple[list[str], np.ndarray]:
    """The first ``n`` real questions of the corpus (but ``exclude``) and their vectors."""
    sentences = json.loads((OUT / "cache_embedders" / "sentences.json").read_text())
    texts, vectors = embedded_corpus(sentences)
    keep = [i for i, t in enumerate(texts) if t not in exclude][:n]
    if len(keep) < n:
        raise SystemExit(f"the corpus has {len(keep):,} questions, fewer than {n:,}")
    return [texts[i] for i in keep], vectors[keep]


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


def _time_misses(
    cache: ResponseCache, questions: list[str], mode: str
) -> tuple[list[float], int, int]:
    """Milliseconds per lookup that ended in a miss (probe included), how many of those
    were embedded, and how many lookups were hits instead (not timed)."""
    times, embedded, hits = [], 0, 0
    for q in questions:
        t = time.perf_counter()
        probe = cache.probe("auto", _body(q), None, requested=mode)
        assert probe is not None
        hit = cache._lookup(probe)
        elapsed = (time.perf_counter() - t) * 1000
        if hit is not None:
            hits += 1
            continue
        times.append(elapsed)
        embedded += probe.vector is not None
    return times, embedded, hits


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
    held = load_pairs("held")
    negatives = [p for p in held if p.must_not_hit]
    far, near = negatives[:lookups], negatives[lookups : 2 * lookups]
    planted = [p for p in held if p.same][:200]
    kinds = {
        "unrelated": [item["question"] for item in gsm8k("test")[:lookups]],
        "same topic": [p.b for p in far],
        "near": [p.b for p in near],  # their partners p.a are stored
    }
    exclude = {*kinds["same topic"], *(p.a for p in far), *kinds["near"]}
    names, vecs = _entries(n, exclude | {p.b for p in planted})
    settings = CacheSettings(mode="semantic", max_entries=n + 10_000, explore_rate=0.0)
    tmp = Path(tempfile.mkdtemp(prefix="cache_cost-"))
    embedder = MiniLM()
    result: dict[str, Any] = {"machine": machine_info(), "entries": n, "kinds": {}}
    rows: list[list[Any]] = []
    with threadpool_limits(1):
        cache = ResponseCache(
            settings, SQLiteStore(tmp / "c.db", 384, settings.max_entries), embedder
        )
        cache.open()
        t = time.perf_counter()
        _fill(cache, names, vecs)
        result["fill_s_sqlite"] = time.perf_counter() - t
        embed_ms = []
        for q in kinds["same topic"]:
            t = time.perf_counter()
            embedder.embed(q)
            embed_ms.append((time.perf_counter() - t) * 1000)
        rows.append(["embed one question (MiniLM int8)", None, _p(embed_ms, 50), _p(embed_ms, 95)])
        pooled: list[float] = []
        pooled_embedded = 0
        for kind, questions in kinds.items():
            exact_ms, _, _ = _time_misses(cache, questions, "exact")
            ms, embedded, hits = _time_misses(cache, questions, "semantic")
            pooled += ms
            pooled_embedded += embedded
            result["kinds"][kind] = {
                "lookups": len(questions),
                "hits": hits,
                "misses": len(ms),
                "misses_embedded": embedded / max(1, len(ms)),
                "exact_miss": {"p50_ms": _p(exact_ms, 50), "p95_ms": _p(exact_ms, 95)},
                "semantic_miss": {"p50_ms": _p(ms, 50), "p95_ms": _p(ms, 95)},
            }
            rows.append([f"{kind}: exact mode", None, _p(exact_ms, 50), _p(exact_ms, 95)])
            rows.append(
                [f"{kind}: semantic mode", embedded / max(1, len(ms)), _p(ms, 50), _p(ms, 95)]
            )
        share = pooled_embedded / max(1, len(pooled))
        result["pooled_semantic_miss"] = {
            "p50_ms": _p(pooled, 50),
            "p95_ms": _p(pooled, 95),
            "misses_embedded": share,
        }
        rows.append(["all three kinds: semantic mode", share, _p(pooled, 50), _p(pooled, 95)])
        index = cache.store.index
        ctx = cache.probe("auto", _body("x"), None)
        assert ctx is not None
        qv = [embedder.embed(q) for q in kinds["same topic"][:100]]
        search_ms = []
        for v in qv:
            t = time.perf_counter()
            index.nearest(ctx.namespace, ctx.keys.context, v)
            search_ms.append((time.perf_counter() - t) * 1000)
        rows.append(["the vector search alone", None, _p(search_ms, 50), _p(search_ms, 95)])
        result["search_alone"] = {"p50_ms": _p(search_ms, 50), "p95_ms": _p(search_ms, 95)}
        result["embed"] = {"p50_ms": _p(embed_ms, 50), "p95_ms": _p(embed_ms, 95)}
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
        vec0 = _sqlite_vec(tmp / "vec0.db", vecs, qv)
        if vec0 is not None:
            result["sqlite_vec_search"] = vec0
            rows.append(
                ["sqlite-vec: the vector search alone", None, vec0["p50_ms"], vec0["p95_ms"]]
            )
        if args.redis:
            result["redis"] = _redis(args.redis, settings, names, vecs, kinds, embedder, rows)
    print_table(
        f"cache lookup on a miss, {n:,} entries in one context, one core",
        ["", "misses embedded", "p50 ms", "p95 ms"],
        rows,
    )
    console.print(
        f"projection prefilter recall@1 vs brute force: {result['prefilter_recall_at_1']:.3f}"
    )
    write_result("cache_cost" + ("-quick" if args.quick else ""), result)
    return result


def _sqlite_vec(path: Path, vecs: np.ndarray, queries: list[np.ndarray]) -> dict[str, float] | None:
    """The 4 nearest of each query in a sqlite-vec ``vec0`` table of ``vecs``, or None when
    sqlite-vec or apsw is not installed."""
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        console.print("[dim]sqlite-vec: skipped (pip install sqlite-vec apsw)[/]")
        return None
    con = apsw.Connection(str(path))
    con.enable_load_extension(True)
    con.load_extension(sqlite_vec.loadable_path())
    con.execute(
        "create virtual table v using vec0(ctx text partition key, "
        f"embedding float[{vecs.shape[1]}] distance_metric=cosine)"
    )
    with con:
        con.executemany(
            "insert into v(rowid, ctx, embedding) values (?, 'c', ?)",
            ((i + 1, v.tobytes()) for i, v in enumerate(vecs)),
        )
    times = []
    for q in queries:
        t = time.perf_counter()
        list(
            con.execute(
                "select rowid, distance from v where embedding match ? and ctx = 'c' and k = 4",
                (np.asarray(q, dtype=np.float32).tobytes(),),
            )
        )
        times.append((time.perf_counter() - t) * 1000)
    con.close()
    return {"p50_ms": _p(times, 50), "p95_ms": _p(times, 95)}


def _redis(
    url: str,
    settings: CacheSettings,
    names: list[str],
    vecs: np.ndarray,
    kinds: dict[str, list[str]],
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
    questions = [q for qs in kinds.values() for q in qs]
    exact_ms, _, _ = _time_misses(replica, questions, "exact")
    semantic_ms, embedded, _ = _time_misses(replica, questions, "semantic")
    rows += [
        ["redis replica, all three kinds: exact mode", None, _p(exact_ms, 50), _p(exact_ms, 95)],
        [
            "redis replica, all three kinds: semantic mode",
            embedded / max(1, len(semantic_ms)),
            _p(semantic_ms, 50),
            _p(semantic_ms, 95),
        ],
    ]
    for key in client.scan_iter("joulegate:cache:*"):
        client.delete(key)
    return {
        "fill_s": fill_s,
        "replica_open_s": open_s,
        "exact_miss": {"p50_ms": _p(exact_ms, 50), "p95_ms": _p(exact_ms, 95)},
        "semantic_miss": {"p50_ms": _p(semantic_ms, 50), "p95_ms": _p(semantic_ms, 95)},
    }


if __name__ == "__main__":
    main()
