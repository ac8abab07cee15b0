"""What the embedded tier answers right, and how sure it was: graded outcomes + token log-probs.

Runs the real embedded backend (the tier the server builds: same prompt frame, same default
sampler, a fixed seed) over

- the shipped probe set (``joulegate.routing.probes``) and
- the GSM8K *test* questions (``../shared/data/gsm8k/test.jsonl``),

grades each answer with the gold graders, and appends one JSON row per item to

- ``benchmarks/results/embedded_probe_outcomes.jsonl`` (with the answer text), and
- ``benchmarks/results/embedded_gsm8k_test_outcomes.jsonl`` (no question or answer text:
  the question's SHA-256 and its line index in test.jsonl, which are also its row in
  RouteLLM's ``gsm8k_responses.csv``, whose ``prompt`` column is the same question text).

Each row carries the token log-probs (3 decimals), the receipt's energy and latency from the
gateway's own meter, and the score. Resumable: items already in the output are skipped, so a
run stopped with Ctrl-C continues where it stopped. Items run in a fixed-seed random order,
so any prefix of a run (``--limit``) is a random sample of the set.

    python -m benchmarks.measure_embedded --set probes
    python -m benchmarks.measure_embedded --set gsm8k --limit 600
    python -m benchmarks.measure_embedded --summary       # tables from what is there
    python -m benchmarks.measure_embedded --regrade       # grade stored probe answers again
    python -m benchmarks.measure_embedded --overhead      # the cost of reading log-probs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from joulegate.routing.confidence import FEATURE_NAMES, ConfidenceModel, confidence_features
from joulegate.routing.graders import final_number, grade, gsm8k_gold
from joulegate.routing.probes import ProbeItem

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PROBE_OUT = RESULTS / "embedded_probe_outcomes.jsonl"
GSM8K_OUT = RESULTS / "embedded_gsm8k_test_outcomes.jsonl"
OVERHEAD_OUT = RESULTS / "embedded_logprob_overhead.json"
GSM8K_DIR = HERE.parent.parent / "shared" / "data" / "gsm8k"
ROUTELLM_GSM8K = HERE.parent.parent / "shared" / "data" / "routellm-evals" / "gsm8k"

SEED = 7  # the sampler's seed, the same for every item
ORDER_SEED = 20261130  # the order items run in
MAX_TOKENS = 96
FIRST_N = 48  # tokens a cascade holds before deciding; the features read these

console = Console(width=None if sys.stdout.isatty() else 140)


@dataclass(frozen=True)
class Job:
    """One prompt to answer and how to grade it; ``meta`` goes into the output row."""

    key: str
    prompt: str
    grader: str | None
    gold: str | tuple[str, ...] | None
    meta: dict[str, Any]
    keep_answer: bool
    item: ProbeItem | None = None  # probe items grade themselves (multiple-choice options)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def probe_jobs() -> list[Job]:
    from joulegate.routing.probes import load_probe_set

    jobs = [
        Job(
            key=it.id,
            prompt=it.prompt,
            grader=it.grader,
            gold=it.gold,
            meta={
                "id": it.id,
                "prompt_sha256": sha256(it.prompt),
                "kind": it.kind,
                "category": it.category,
                "grader": it.grader,
            },
            keep_answer=True,
            item=it,
        )
        for it in load_probe_set()
    ]
    random.Random(ORDER_SEED).shuffle(jobs)
    return jobs


def gsm8k_jobs() -> list[Job]:
    test = GSM8K_DIR / "test.jsonl"
    if not test.exists():
        raise SystemExit(f"{test} not found: the GSM8K test set lives in ../shared/data/gsm8k")
    contaminated: set[str] = set()
    listed = ROUTELLM_GSM8K / "contaminated_prompts.jsonl"
    if listed.exists():
        with listed.open(encoding="utf-8") as fh:
            contaminated = {json.loads(line)["eval_prompt"] for line in fh if line.strip()}
    jobs = []
    with test.open(encoding="utf-8") as fh:
        for index, line in enumerate(line for line in fh if line.strip()):
            row = json.loads(line)
            q = row["question"]
            jobs.append(
                Job(
                    key=f"gsm8k-test-{index:04d}",
                    prompt=q,
                    grader="number",
                    gold=gsm8k_gold(row["answer"]),
                    meta={
                        "id": f"gsm8k-test-{index:04d}",
                        # Join keys: the SHA-256 of the question text (= RouteLLM's ``prompt``
                        # column) and the 0-based line in test.jsonl (= the CSV's row).
                        "question_sha256": sha256(q),
                        "test_index": index,
                        "routellm_contaminated": q in contaminated,
                        "kind": "hard",
                        "category": "gsm8k_test",
                        "grader": "number",
                    },
                    keep_answer=False,
                )
            )
    random.Random(ORDER_SEED).shuffle(jobs)
    return jobs


def done_keys(path: Path) -> set[str]:
    """Ids already measured; a torn last line (killed mid-write) is cut off."""
    if not path.exists():
        return set()
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        path.write_bytes(raw)
    keys = set()
    for line in raw.decode("utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError, KeyError):
            keys.add(json.loads(line)["id"])
    return keys


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


class Embedded:
    """The embedded tier as the server builds it, metered by the server's own meter."""

    def __init__(self, threads: int) -> None:
        from joulegate.backends import build_backend
        from joulegate.config import Settings
        from joulegate.metering import Meter, select_sensor

        settings = Settings()
        tier = next(t for t in settings.tiers if t.kind == "embedded")
        embedded = settings.embedded.model_copy(update={"n_threads": threads})
        self.model = f"{tier.name}/{tier.model}"
        self.backend = build_backend(tier, embedded)
        self.meter = Meter(settings.metering, [tier], select_sensor(settings.metering))
        self.tier = tier.name
        self.threads = threads

    async def start(self) -> None:
        await self.backend.start()

    async def close(self) -> None:
        await self.backend.aclose()
        self.meter.close()

    async def answer(
        self,
        prompt: str,
        max_tokens: int,
        want_logprobs: bool = True,
        seed: int = SEED,
        temperature: float | None = None,
    ) -> dict[str, Any]:
        from joulegate.backends import ChatParams, Finish, Started, TextDelta

        params = ChatParams(
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            seed=seed,
            temperature=temperature,
            want_logprobs=want_logprobs,
        )
        window = self.meter.begin(self.tier, weight=0.0)
        parts: list[str] = []
        head_chars = 0
        finish: Finish | None = None
        t0 = time.perf_counter()
        try:
            async for event in self.backend.stream(params):
                if isinstance(event, Started):
                    window.set_weight(1.0)
                elif isinstance(event, TextDelta):
                    window.first_token()
                    parts.append(event.text)
                    if len(parts) <= FIRST_N:
                        head_chars += len(event.text)
                elif isinstance(event, Finish):
                    finish = event
        except BaseException:
            window.abort()
            raise
        wall = time.perf_counter() - t0
        if finish is None:
            window.abort()
            raise RuntimeError("the backend ended without a Finish event")
        receipt = window.end(finish.usage.prompt_tokens, finish.usage.completion_tokens)
        return {
            "answer": "".join(parts),
            "head_chars": head_chars,
            "finish_reason": finish.finish_reason,
            "prompt_tokens": finish.usage.prompt_tokens,
            "n_tokens": finish.usage.completion_tokens,
            "logprobs": finish.logprobs,
            "energy_j": receipt.energy_j,
            "energy_source": receipt.energy_source,
            "latency_ms": receipt.latency_ms,
            "ttft_ms": receipt.ttft_ms,
            "wall_s": wall,
        }


def _score(job: Job, answer: str) -> float | None:
    if job.grader is None or job.gold is None:
        return None
    if job.item is not None:
        return job.item.grade(answer)
    return grade(job.grader, answer, job.gold)


def regrade(path: Path = PROBE_OUT) -> int:
    """Grade the stored probe answers again with today's graders; returns rows changed.

    Answers are kept for the probe set, so a grader fix needs no new generation.
    """
    from joulegate.routing.probes import load_probe_set

    items = {it.id: it for it in load_probe_set()}
    rows = read_rows(path)
    changed = 0
    for row in rows:
        item = items.get(row["id"])
        if item is None or "answer" not in row:
            continue
        score = item.grade(row["answer"]) if item.gradable else None
        if score != row["score"]:
            changed += 1
            row["score"] = score
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    tmp.replace(path)
    return changed


def _row(job: Job, out: dict[str, Any], embedded: Embedded, max_tokens: int) -> dict[str, Any]:
    answer = out["answer"]
    row: dict[str, Any] = dict(job.meta)
    row["score"] = _score(job, answer)
    if job.keep_answer:
        row["answer"] = answer
    else:
        number = final_number(answer)
        row["answer_number"] = None if number is None else str(number)
    lps = out["logprobs"]
    row.update(
        {
            "answer_chars": len(answer),
            "head_chars": out["head_chars"],
            "finish_reason": out["finish_reason"],
            "prompt_tokens": out["prompt_tokens"],
            "n_tokens": out["n_tokens"],
            "logprobs": None if lps is None else [round(v, 3) for v in lps],
            "energy_j": round(out["energy_j"], 5),
            "energy_source": out["energy_source"],
            "latency_ms": round(out["latency_ms"], 2),
            "ttft_ms": None if out["ttft_ms"] is None else round(out["ttft_ms"], 2),
            "wall_s": round(out["wall_s"], 4),
            "model": embedded.model,
            "n_threads": embedded.threads,
            "seed": SEED,
            "max_tokens": max_tokens,
        }
    )
    return row


async def measure(jobs: list[Job], path: Path, threads: int, max_tokens: int) -> int:
    """Answer every job not yet in ``path``; returns how many were measured now."""
    done = done_keys(path)
    todo = [j for j in jobs if j.key not in done]
    console.print(
        f"[bold]{path.name}[/]: {len(jobs)} items, {len(done)} already measured, "
        f"{len(todo)} to go (max_tokens {max_tokens}, {threads} thread(s), seed {SEED})"
    )
    if not todo:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    embedded = Embedded(threads)
    await embedded.start()
    measured = 0
    scores: list[float] = []
    t_start = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    try:
        with path.open("a", encoding="utf-8") as fh, Progress(*columns, console=console) as bar:
            task = bar.add_task(path.stem, total=len(todo), status="")
            for job in todo:
                out = await embedded.answer(job.prompt, max_tokens)
                row = _row(job, out, embedded, max_tokens)
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")  # one write: one line
                fh.flush()
                measured += 1
                if row["score"] is not None:
                    scores.append(row["score"])
                rate = measured / (time.perf_counter() - t_start)
                acc = f"acc {statistics.fmean(scores):.1%}" if scores else ""
                bar.update(task, advance=1, status=f"{acc} {rate * 60:.1f}/min")
                if not console.is_terminal and measured % 25 == 0:
                    console.log(f"{path.stem}: {measured}/{len(todo)} {acc}, {rate * 60:.1f}/min")
    except KeyboardInterrupt:
        console.print(f"[yellow]stopped[/]: {measured} measured this run; rerun to continue")
    finally:
        await embedded.close()
    return measured


# -- the cost of reading log-probs ------------------------------------------------------

OVERHEAD_PROMPTS = [
    "Count from 1 to 60, separated by commas, all on one line.",
    "List forty colours, separated by commas, all on one line.",
    "Name thirty animals, separated by commas, all on one line.",
]


async def overhead(threads: int, rounds: int) -> dict[str, Any]:
    """Same prompts, greedy, with and without log-probs, alternating; ms per token each."""
    embedded = Embedded(threads)
    await embedded.start()
    per_token: dict[bool, list[float]] = {False: [], True: []}
    try:
        await embedded.answer("Say hello.", 8, want_logprobs=False, temperature=0.0)
        for _ in range(rounds):
            for prompt in OVERHEAD_PROMPTS:
                for want in (False, True):
                    out = await embedded.answer(prompt, MAX_TOKENS, want, temperature=0.0)
                    gen_s = out["wall_s"] - (out["ttft_ms"] or 0.0) / 1000
                    per_token[want].append(gen_s * 1000 / max(out["n_tokens"] - 1, 1))
        # The backend's own recorder, made by the generations above: time the read alone,
        # on the real logits the last generation left in the context.
        tap = embedded.backend._logprobs  # type: ignore[attr-defined]
        tap.begin(False)
        reps = 500
        t0 = time.perf_counter()
        for _ in range(reps):
            tap._logprob(0, -1)
        read_ms = (time.perf_counter() - t0) * 1000 / reps
        n_vocab = tap._n_vocab
    finally:
        await embedded.close()
    off, on = statistics.median(per_token[False]), statistics.median(per_token[True])
    result = {
        "n_vocab": n_vocab,
        "n_threads": threads,
        "answers_each": len(per_token[False]),
        "ms_per_token_without": round(off, 3),
        "ms_per_token_with": round(on, 3),
        "overhead_ms_per_token": round(on - off, 3),
        "overhead_share": round((on - off) / off, 4),
        "logprob_read_ms": round(read_ms, 4),
    }
    return result


# -- summary ----------------------------------------------------------------------------


def _auroc(labels: np.ndarray, values: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, values))


def _features(row: dict[str, Any]) -> np.ndarray | None:
    lps = row.get("logprobs")
    if not lps:
        return None
    return confidence_features(lps, "x" * int(row.get("head_chars", 0)), first_n=FIRST_N)


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def summary(paths: list[Path]) -> None:
    for path in paths:
        rows = read_rows(path)
        if not rows:
            console.print(f"{path.name}: no rows yet")
            continue
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[(r["kind"], r["category"])].append(r)
        table = Table(title=f"{path.name}: accuracy by category ({len(rows)} answers)")
        for col in ("kind", "category", "n", "accuracy", "tokens", "J/answer", "latency ms"):
            table.add_column(col, justify="left" if col in ("kind", "category") else "right")
        for (kind, category), rs in sorted(groups.items()):
            graded = [r["score"] for r in rs if r["score"] is not None]
            table.add_row(
                kind,
                category,
                str(len(rs)),
                _fmt(statistics.fmean(graded), ".1%") if graded else "judge",
                _fmt(statistics.fmean(r["n_tokens"] for r in rs), ".1f"),
                _fmt(statistics.fmean(r["energy_j"] for r in rs), ".2f"),
                _fmt(statistics.median(r["latency_ms"] for r in rs), ".0f"),
            )
        console.print(table)

        gradable = [r for r in rows if r["score"] is not None and r.get("logprobs")]
        if not gradable:
            continue
        pools = {"all graded": gradable}
        for kind in sorted({r["kind"] for r in gradable}):
            pools[kind] = [r for r in gradable if r["kind"] == kind]
        auc = Table(
            title=f"{path.name}: AUROC of each confidence feature "
            f"(first {FIRST_N} tokens; >0.5: higher means right)"
        )
        auc.add_column("feature")
        for name, pool in pools.items():
            right = sum(r["score"] >= 0.5 for r in pool)
            auc.add_column(f"{name} (n={len(pool)}, right={right})", justify="right")
        cols = {}
        for name, pool in pools.items():
            x = np.array([_features(r) for r in pool])
            y = np.array([r["score"] >= 0.5 for r in pool], dtype=int)
            cols[name] = [_auroc(y, x[:, j]) for j in range(len(FEATURE_NAMES))]
        for j, feature in enumerate(FEATURE_NAMES):
            auc.add_row(feature, *(_fmt(cols[name][j]) for name in pools))
        console.print(auc)
        _decision_time(gradable)


def _decision_time(rows: list[dict[str, Any]]) -> None:
    """p50 of one confidence decision (features + model), on this data's answers."""
    x = np.array([_features(r) for r in rows])
    y = np.array([r["score"] for r in rows])
    if (y >= 0.5).all() or (y < 0.5).all():
        return
    model = ConfidenceModel.fit(x, y, first_n=FIRST_N)
    times = []
    for r in rows[:500]:
        answer = "x" * int(r.get("head_chars", 0))
        t0 = time.perf_counter()
        model.p_acceptable(r["logprobs"], answer)
        times.append(time.perf_counter() - t0)
    console.print(
        f"confidence decision time: p50 {statistics.median(times) * 1e6:.0f} µs, "
        f"p99 {np.quantile(times, 0.99) * 1e6:.0f} µs over {len(times)} answers"
    )


def _sets(choice: str) -> Iterator[tuple[str, Path]]:
    if choice in ("probes", "both"):
        yield "probes", PROBE_OUT
    if choice in ("gsm8k", "both"):
        yield "gsm8k", GSM8K_OUT


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="grade the embedded tier's answers, with log-probs")
    ap.add_argument("--set", choices=("probes", "gsm8k", "both"), default="both")
    ap.add_argument("--limit", type=int, help="measure only the first N items (random order)")
    ap.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (CPU is shared)")
    ap.add_argument("--summary", action="store_true", help="only print the tables")
    ap.add_argument("--overhead", action="store_true", help="measure the log-prob read cost")
    ap.add_argument("--rounds", type=int, default=3, help="--overhead: rounds of the prompts")
    ap.add_argument(
        "--regrade", action="store_true", help="re-grade stored probe answers, then summarise"
    )
    args = ap.parse_args(argv)
    if args.regrade:
        console.print(f"re-graded {PROBE_OUT.name}: {regrade()} scores changed")
        args.summary = True
    if args.overhead:
        result = asyncio.run(overhead(args.threads, args.rounds))
        RESULTS.mkdir(parents=True, exist_ok=True)
        OVERHEAD_OUT.write_text(json.dumps(result, indent=2) + "\n")
        console.print(result)
        return
    paths = []
    for name, path in _sets(args.set):
        paths.append(path)
        if args.summary:
            continue
        jobs = probe_jobs() if name == "probes" else gsm8k_jobs()
        if args.limit is not None:
            jobs = jobs[: args.limit]
        try:
            asyncio.run(measure(jobs, path, args.threads, args.max_tokens))
        except KeyboardInterrupt:
            console.print("[yellow]stopped[/]; rerun to continue")
            break
    summary(paths)


if __name__ == "__main__":
    main()
