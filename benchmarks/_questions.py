"""A large store of real questions, with their real embeddings, for the cache's cost bar.

The bar asks what a miss costs with 100k entries. A cache only ever holds entries whose
vector is the embedding of their own text, so the crowd is made of real texts from
``../shared/data``, each embedded once by the shipped embedder:

- every SICK and MSRP sentence (short, one topic, a tiny vocabulary: the densest part);
- GSM8K *train* questions, whole and sentence by sentence, and the lines of their worked
  answers (the test questions are kept out: they are the "unrelated" misses);
- MMLU prompts from RouteLLM's data: whole, their question stems alone, and their answer
  options of four words or more.

Texts longer than the cache compares by meaning (``max_semantic_chars``) are left out.
The vectors are cached in ``benchmarks/out/questions`` (about 15 minutes on two cores the
first time, with a progress bar), keyed by a hash of the texts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from rich.progress import Progress

from benchmarks._output import OUT, REPO

SHARED = REPO.parent / "shared" / "data"
MAX_CHARS = 2_000
_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")
_CALC = re.compile(r"<<[^>]*>>")


def gsm8k(part: str) -> list[dict[str, str]]:
    path = SHARED / "gsm8k" / f"{part}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _worked_steps(answer: str) -> Iterator[str]:
    """The lines of a GSM8K solution, without the calculator marks and the final ``####``."""
    for line in answer.splitlines():
        if not line.startswith("####") and len(line.split()) >= 4:
            yield _CALC.sub("", line).strip()


def _mmlu() -> Iterator[str]:
    root = SHARED / "routellm-evals" / "mmlu" / "responses"
    for path in sorted(root.glob("*.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                prompt = row["prompt"].strip()
                yield prompt
                stem, _, choices = prompt.partition("\nA.")
                yield stem.strip()
                for choice in re.split(r"\n[B-D]\. ", choices.removesuffix("Answer:")):
                    if len(choice.split()) >= 4:
                        yield choice.strip()


def corpus(sentences: list[str]) -> list[str]:
    """Distinct texts, in a fixed order: ``sentences`` (the paraphrase data), then GSM8K
    train, then MMLU."""
    out: dict[str, None] = dict.fromkeys(sentences)
    for item in gsm8k("train"):
        q = item["question"]
        out[q] = None
        out.update(dict.fromkeys(s for s in _SENTENCE.split(q) if len(s.split()) >= 4))
        out.update(dict.fromkeys(_worked_steps(item["answer"])))
    out.update(dict.fromkeys(_mmlu()))
    return [t for t in out if t and len(t) <= MAX_CHARS]


_worker_model = None


def _embed_chunk(texts: list[str]) -> np.ndarray:
    global _worker_model
    if _worker_model is None:
        from joulegate.cache.embedder import MiniLM

        _worker_model = MiniLM()
    return np.stack([_worker_model.embed(t) for t in texts])


def embedded_corpus(sentences: list[str]) -> tuple[list[str], np.ndarray]:
    """The corpus and its MiniLM vectors, computed once and cached on disk."""
    texts = corpus(sentences)
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = OUT / "questions" / f"minilm-{digest}.npy"
    if cache.exists():
        return texts, np.load(cache)
    chunks = [texts[i : i + 500] for i in range(0, len(texts), 500)]
    parts: list[np.ndarray] = []
    with (
        Progress() as progress,
        ProcessPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as pool,
    ):
        task = progress.add_task(f"embedding {len(texts):,} real questions", total=len(texts))
        for part in pool.map(_embed_chunk, chunks):
            parts.append(part)
            progress.advance(task, len(part))
    vectors = np.concatenate(parts).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return texts, vectors
