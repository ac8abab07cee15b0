"""The items ``joulegate bench cascade`` evaluates: one row per question, both tiers' grades.

(a) GSM8K test questions the embedded tier answered, with GPT-4's graded answer to the same
question from RouteLLM's ``gsm8k_responses.csv`` as the large tier; (b) the probe set's
gold-graded items, with the large tier assumed right (``cascade_eval``'s docstring says why).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .confidence import DEFAULT_FIRST_N, confidence_features

__all__ = ["GPT4", "Items", "load_gsm8k_items", "load_probe_items"]

GPT4 = "gpt-4-1106-preview"


@dataclass
class Items:
    """Graded answers of the cheap tier, with what the large tier scored on the same items."""

    name: str
    ids: list[str]
    prompts: list[str]
    kinds: np.ndarray  # str: routine | hard | ...
    cheap_score: np.ndarray
    large_score: np.ndarray
    logprobs: list[list[float]]
    head_text: list[str]  # a stand-in of the first-N tokens' text, for its length
    cheap_j: np.ndarray
    large_j: np.ndarray
    notes: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: np.ndarray) -> Items:
        return Items(
            self.name,
            [self.ids[i] for i in idx],
            [self.prompts[i] for i in idx],
            self.kinds[idx],
            self.cheap_score[idx],
            self.large_score[idx],
            [self.logprobs[i] for i in idx],
            [self.head_text[i] for i in idx],
            self.cheap_j[idx],
            self.large_j[idx],
            self.notes,
        )

    def features(self, first_n: int = DEFAULT_FIRST_N) -> np.ndarray:
        return np.array(
            [
                confidence_features(lp, text, first_n=first_n)
                for lp, text in zip(self.logprobs, self.head_text, strict=True)
            ]
        )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written by a running measurement
                continue
    return rows


def _head_text(row: dict[str, Any]) -> str:
    # Only the length of the first-N tokens' text enters the features; the GSM8K rows keep
    # no answer text, so every row is represented by that many characters.
    return "x" * int(row.get("head_chars") or row.get("answer_chars") or 0)


def load_probe_items(path: Path, large_j: float, embedded_j: float | None = None) -> Items:
    """The probe set's gold-graded answers (open items left out: no judge outcomes)."""
    from .probes import load_probe_set

    prompts = {p.id: p.prompt for p in load_probe_set()}
    rows = _read_jsonl(path)
    kept = [r for r in rows if r.get("score") is not None and r.get("logprobs")]
    open_items = sum(1 for r in rows if r.get("kind") == "open")
    return _items(
        "probe set",
        kept,
        [prompts[r["id"]] for r in kept],
        np.ones(len(kept)),  # assumed: the large tier answers every gold item right
        large_j,
        embedded_j,
        [
            f"{len(kept)} gold-graded answers of {len(rows)} measured; "
            f"{open_items} open-ended items left out (no judge outcomes)",
            "large tier assumed right on every gold item",
        ],
    )


def load_gsm8k_items(
    path: Path, responses_csv: Path, large_j: float, embedded_j: float | None = None
) -> Items:
    """The embedded tier's GSM8K test answers joined with GPT-4's graded answers."""
    with Path(responses_csv).open(encoding="utf-8", newline="") as fh:
        large = {
            hashlib.sha256(r["prompt"].encode("utf-8")).hexdigest(): r for r in csv.DictReader(fh)
        }
    rows, prompts, large_scores = [], [], []
    missing = 0
    for r in _read_jsonl(path):
        match = large.get(r.get("question_sha256", ""))
        if match is None or r.get("score") is None or not r.get("logprobs"):
            missing += 1
            continue
        rows.append(r)
        prompts.append(match["prompt"])
        large_scores.append(1.0 if match[GPT4] == "True" else 0.0)
    notes = [f"{len(rows)} GSM8K test questions measured on the embedded tier"]
    if missing:
        notes.append(f"{missing} rows without a GPT-4 match or log-probs left out")
    return _items(
        "GSM8K test",
        rows,
        prompts,
        np.array(large_scores),
        large_j,
        embedded_j,
        [*notes, f"large tier: {GPT4} outcomes from RouteLLM's gsm8k_responses.csv"],
    )


def _items(
    name: str,
    rows: Sequence[dict[str, Any]],
    prompts: list[str],
    large_score: np.ndarray,
    large_j: float,
    embedded_j: float | None,
    notes: list[str],
) -> Items:
    n = len(rows)
    cheap_j = (
        np.full(n, embedded_j)
        if embedded_j is not None
        else np.array([float(r["energy_j"]) for r in rows])
    )
    return Items(
        name=name,
        ids=[str(r["id"]) for r in rows],
        prompts=prompts,
        kinds=np.array([str(r.get("kind", "")) for r in rows]),
        cheap_score=np.array([float(r["score"]) for r in rows]),
        large_score=np.asarray(large_score, dtype=np.float64),
        logprobs=[list(r["logprobs"]) for r in rows],
        head_text=[_head_text(r) for r in rows],
        cheap_j=cheap_j,
        large_j=np.full(n, large_j),
        notes=notes,
    )
