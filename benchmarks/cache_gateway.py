"""The response cache through real gateways: hit vs model answer, isolation, replicas.

``python -m benchmarks.cache_gateway [--quick]``

- **Hit vs model.** One ``joulegate serve`` with the embedded model and
  ``[cache] mode = "semantic"`` (SQLite store). Each question is asked once (the model
  answers), again verbatim (an exact hit) and in other words (a semantic hit, when the
  thresholds allow). Latency is the client's wall time; energy is the receipt's.
- **Isolation.** Keys A and B (``joulegate keys create``) ask the same questions and their
  paraphrases: B (whose own answers are not stored, so any hit would be A's) must never get
  A's answers, on the SQLite store and on the Redis store.
- **Replicas.** Two gateways on one Redis store, in front of the instant upstream: eight
  threads send, to both at once, questions of their own and questions every thread asks.
  Afterwards the store must hold exactly one entry per distinct question (none doubled),
  and each replica must answer every question from the cache (none lost).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks._machine import machine_info
from benchmarks._output import OUT, REPO, console, print_table, write_result
from benchmarks._procs import running
from benchmarks._servers import start_joulegate, start_upstream

REDIS_URL = "redis://127.0.0.1:6379/14"
QUESTIONS = [
    ("What is the capital of Japan?", "What is the capital city of Japan?"),
    ("How do I reset my password?", "How can I reset my password?"),
    ("Name a primary colour.", "Name one primary colour."),
    ("What is the boiling point of water?", "What is the boiling point of water in degrees?"),
    ("Who wrote Hamlet?", "Who is the author of Hamlet?"),
    ("What is the largest planet?", "Which is the largest planet?"),
    ("Give me a synonym for happy.", "Give me a synonym of happy."),
    ("What is the speed of light?", "How fast is the speed of light?"),
]


def _ask(base: str, question: str, key: str | None = None, **extra: Any) -> tuple[float, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 24,
        "temperature": 0,
        **extra,
    }
    t = time.perf_counter()
    r = httpx.post(base + "/v1/chat/completions", json=body, headers=headers, timeout=300)
    ms = (time.perf_counter() - t) * 1000
    r.raise_for_status()
    return ms, r.json()


def _settle() -> None:
    time.sleep(1.0)  # answers are stored after the response, in the background


def _key(workdir: Path, name: str) -> str:
    """A new API key in the gateway's ledger (``joulegate keys create``)."""
    env = {
        **os.environ,
        "JOULEGATE_DATA_DIR": str(workdir / "data"),
        "JOULEGATE_CONFIG": str(workdir / "joulegate.toml"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "joulegate.cli", "keys", "create", "--name", name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _row(ms: float, body: Any) -> tuple[float, float, float]:
    return ms, body["joulegate"]["energy_j"], body["joulegate"]["latency_ms"]


def hits_vs_model(quick: bool) -> dict[str, Any]:
    workdir = OUT / "cache_gateway" / "embedded"
    env = {"JOULEGATE_CACHE__MODE": "semantic"}
    questions = QUESTIONS[:3] if quick else QUESTIONS
    gw = start_joulegate(workdir, None, env=env)
    # Per answer: client wall ms, the receipt's energy_j and latency_ms (the model's
    # generation, or the cache's lookup).
    rows: dict[str, list[tuple[float, float, float]]] = {
        "model": [],
        "exact hit": [],
        "semantic hit": [],
    }
    misses = 0
    with running(gw):
        _ask(gw.base_url, "Warm up.")
        for q, para in questions:
            ms, body = _ask(gw.base_url, q)
            rows["model"].append(_row(ms, body))
            _settle()
            ms, body = _ask(gw.base_url, q)
            assert body["joulegate"]["energy_source"] == "cache"
            rows["exact hit"].append(_row(ms, body))
            ms, body = _ask(gw.base_url, para)
            if body["joulegate"]["energy_source"] == "cache":
                rows["semantic hit"].append(_row(ms, body))
            else:
                misses += 1
                _settle()
    out: dict[str, Any] = {"questions": len(questions), "paraphrases_not_served": misses}
    for kind, vals in rows.items():
        if vals:
            out[kind] = {
                "n": len(vals),
                "latency_ms_p50": statistics.median(v[0] for v in vals),
                "energy_j_p50": statistics.median(v[1] for v in vals),
                "receipt_latency_ms_p50": statistics.median(v[2] for v in vals),
            }
    return out


def isolation(store: str, quick: bool) -> dict[str, Any]:
    workdir = OUT / "cache_gateway" / f"isolation-{store}"
    env = {
        "JOULEGATE_CACHE__MODE": "semantic",
        "JOULEGATE_CACHE__STORE": store,
        "JOULEGATE_CACHE__REDIS_URL": REDIS_URL,
    }
    _flush_redis()
    upstream = start_upstream(workdir)
    with running(upstream):
        gw = start_joulegate(workdir, upstream.base_url + "/v1", env=env)
        with running(gw):
            a, b = _key(workdir, "team-a"), _key(workdir, "team-b")
            questions = QUESTIONS[:3] if quick else QUESTIONS
            crossed = served_to_a = 0
            for q, para in questions:
                _ask(gw.base_url, q, a)
                _settle()
                served_to_a += _ask(gw.base_url, q, a)[1]["joulegate"]["energy_source"] == "cache"
                for text in (q, para):  # B stores nothing: any hit it got would be A's
                    _, body = _ask(gw.base_url, text, b, joulegate={"no_store": True})
                    crossed += body["joulegate"]["energy_source"] == "cache"
    return {
        "store": store,
        "asked_by_b": 2 * len(questions),
        "served_from_a": crossed,
        "a_served_its_own": served_to_a,
    }


def replicas(quick: bool) -> dict[str, Any]:
    import redis

    workdir = OUT / "cache_gateway" / "replicas"
    env = {
        "JOULEGATE_CACHE__STORE": "redis",
        "JOULEGATE_CACHE__MODE": "exact",
        "JOULEGATE_CACHE__REDIS_URL": REDIS_URL,
    }
    _flush_redis()
    upstream = start_upstream(workdir / "up")
    threads, own, shared = (4, 5, 5) if quick else (8, 25, 25)
    with running(upstream):
        gws = [start_joulegate(workdir / n, upstream.base_url + "/v1", env=env) for n in "ab"]
        with running(*gws):

            def work(t: int) -> int:
                asked = 0
                for i in range(max(own, shared)):
                    for q in (f"Thread {t} question {i}?", f"Shared question {i}?"):
                        _ask(gws[(t + i) % 2].base_url, q)
                        asked += 1
                return asked

            with cf.ThreadPoolExecutor(threads) as pool:
                sent = sum(pool.map(work, range(threads)))
            _settle()
            client = redis.Redis.from_url(REDIS_URL)
            entries = client.zcard("joulegate:cache:lru")
            distinct = threads * own + shared
            lost = 0
            for gw in gws:
                for t in range(threads):
                    for i in range(own):
                        lost += (
                            _ask(gw.base_url, f"Thread {t} question {i}?")[1]["joulegate"][
                                "energy_source"
                            ]
                            != "cache"
                        )
                for i in range(shared):
                    lost += (
                        _ask(gw.base_url, f"Shared question {i}?")[1]["joulegate"]["energy_source"]
                        != "cache"
                    )
    _flush_redis()
    return {
        "requests_sent_concurrently": sent,
        "distinct_questions": distinct,
        "entries_in_store": int(entries),
        "duplicated": int(entries) - distinct,
        "not_served_from_cache_afterwards": lost,
    }


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter("joulegate:cache:*"):
        client.delete(key)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"machine": machine_info()}
    result["hits_vs_model"] = h = hits_vs_model(args.quick)
    rows = [
        [k, v["n"], v["latency_ms_p50"], v["receipt_latency_ms_p50"], v["energy_j_p50"]]
        for k, v in h.items()
        if isinstance(v, dict)
    ]
    print_table(
        "embedded tier: a model answer vs a cache hit (p50)",
        ["", "n", "client ms", "receipt latency ms", "energy J"],
        rows,
    )
    result["isolation"] = [isolation(s, args.quick) for s in ("sqlite", "redis")]
    print_table(
        "isolation: key B asking key A's questions (and paraphrases)",
        ["store", "asked by B", "served A's entry", "A's own hits"],
        [
            [r["store"], r["asked_by_b"], r["served_from_a"], r["a_served_its_own"]]
            for r in result["isolation"]
        ],
    )
    result["replicas"] = r = replicas(args.quick)
    print_table(
        "two replicas, one Redis store, concurrent writes",
        ["", "value"],
        [[k, v] for k, v in r.items()],
    )
    write_result("cache_gateway" + ("-quick" if args.quick else ""), result)
    console.print(f"[dim]{REPO}[/]")
    return result


if __name__ == "__main__":
    main()
