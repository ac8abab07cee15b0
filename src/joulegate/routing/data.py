"""Outcome data: which model answered which prompt acceptably.

The router learns from *outcomes*, not from preferences: a table of prompts and, for every
model, a score in [0, 1] (1 = acceptable). Two on-disk formats are read:

- RouteLLM's evaluation directories (``routellm/evals/mmlu``, ``routellm/evals/gsm8k``): CSV
  files with a ``prompt`` column and one boolean column per model. The questions listed in the
  directory's ``contaminated_prompts.jsonl`` are dropped, exactly as RouteLLM does, so figures
  stay comparable with its paper.
- A generic JSONL file, one ``{"prompt": str, "scores": {model: float}}`` object per line, so
  that any outcome data (N models, graded scores) can be trained on and evaluated.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Outcomes", "load_outcomes"]

_CONTAMINATED = "contaminated_prompts.jsonl"
_BOOLEAN = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


@dataclass(frozen=True)
class Outcomes:
    """Prompts and a ``(n_prompts, n_models)`` matrix of scores in [0, 1]."""

    prompts: list[str]
    models: list[str]
    scores: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        if self.scores.shape != (len(self.prompts), len(self.models)):
            raise ValueError(
                f"scores shape {self.scores.shape} does not match "
                f"{len(self.prompts)} prompts x {len(self.models)} models"
            )

    def __len__(self) -> int:
        return len(self.prompts)

    def column(self, model: str) -> np.ndarray:
        """One model's scores; raises ``KeyError`` naming the models that exist."""
        if model not in self.models:
            raise KeyError(f"model {model!r} not in data; have {self.models}")
        return self.scores[:, self.models.index(model)]

    def by_capability(self) -> list[str]:
        """Model names ordered weakest to strongest by mean score (ties keep file order)."""
        means = self.scores.mean(axis=0)
        order = sorted(range(len(self.models)), key=lambda j: (means[j], j))
        return [self.models[j] for j in order]

    def subset(self, index: np.ndarray) -> Outcomes:
        return Outcomes(
            prompts=[self.prompts[i] for i in index],
            models=list(self.models),
            scores=self.scores[index],
            source=self.source,
        )


def load_outcomes(paths: Sequence[Path] | Path) -> Outcomes:
    """Load and concatenate outcome data; every part must name the same models."""
    parts = [_load_one(Path(p)) for p in ([paths] if isinstance(paths, Path) else paths)]
    if not parts:
        raise ValueError("no data paths given")
    models = parts[0].models
    for part in parts[1:]:
        if set(part.models) != set(models):
            raise ValueError(f"{part.source} has models {part.models}, expected {models}")
    prompts: list[str] = []
    blocks: list[np.ndarray] = []
    for part in parts:
        prompts.extend(part.prompts)
        blocks.append(part.scores[:, [part.models.index(m) for m in models]])
    return Outcomes(
        prompts=prompts,
        models=list(models),
        scores=np.vstack(blocks),
        source="+".join(p.source for p in parts),
    )


def _load_one(path: Path) -> Outcomes:
    if not path.exists():
        raise FileNotFoundError(path)
    if path.is_dir():
        csvs = sorted(path.rglob("*.csv"))
        if not csvs:
            raise ValueError(f"no CSV files under {path}")
        contaminated = _contaminated_prompts(path)
        return _from_csvs(csvs, contaminated, source=str(path))
    if path.suffix == ".csv":
        return _from_csvs([path], _contaminated_prompts(path.parent), source=str(path))
    return _from_jsonl(path)


def _contaminated_prompts(directory: Path) -> set[str]:
    """RouteLLM's list of eval questions that overlap its router training data."""
    found: set[str] = set()
    for candidate in (directory / _CONTAMINATED, directory.parent / _CONTAMINATED):
        if candidate.exists():
            with candidate.open(encoding="utf-8") as fh:
                found.update(json.loads(line)["eval_prompt"] for line in fh if line.strip())
            break
    return found


def _from_csvs(files: Iterable[Path], contaminated: set[str], source: str) -> Outcomes:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    prompts: list[str] = []
    rows: list[list[float]] = []
    models: list[str] | None = None
    for file in files:
        with file.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            # Model columns are the boolean outcome columns; response-text columns are skipped.
            cols = [f for f in fields if f != "prompt" and not f.endswith("_response")]
            if models is None:
                models = cols
            elif set(cols) != set(models):
                raise ValueError(f"{file} has model columns {cols}, expected {models}")
            for row in reader:
                if row["prompt"] in contaminated:
                    continue
                prompts.append(row["prompt"])
                rows.append([_as_score(row[m], file) for m in models])
    if models is None:
        raise ValueError(f"no rows in {source}")
    return Outcomes(prompts, models, np.asarray(rows, dtype=np.float64), source=source)


def _as_score(value: str, file: Path) -> float:
    v = value.strip().lower()
    if v in _BOOLEAN:
        return _BOOLEAN[v]
    score = float(v)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"{file}: score {value!r} outside [0, 1]")
    return score


def _from_jsonl(path: Path) -> Outcomes:
    prompts: list[str] = []
    records: list[dict[str, float]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            try:
                prompts.append(str(obj["prompt"]))
                records.append({str(k): float(v) for k, v in obj["scores"].items()})
            except (KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}:{lineno}: need 'prompt' and 'scores'") from exc
    if not records:
        raise ValueError(f"no records in {path}")
    models = list(records[0])
    scores = np.empty((len(records), len(models)))
    for i, rec in enumerate(records):
        if set(rec) != set(models):
            raise ValueError(f"{path}: record {i + 1} scores models {sorted(rec)}, not {models}")
        scores[i] = [rec[m] for m in models]
    if scores.min() < 0.0 or scores.max() > 1.0:
        raise ValueError(f"{path}: scores must lie in [0, 1]")
    return Outcomes(prompts, models, scores, source=str(path))
