"""The labelled sentence pairs of ``../shared/data/paraphrase`` (SICK, MSRP), split once.

Each pair stands for two requests in the same conversation state whose last user turns are
the two sentences. ``same`` says whether one may be answered with the other's answer:
SICK ENTAILMENT and MSRP paraphrases are; SICK CONTRADICTION and MSRP non-paraphrases must
never be (the false-hit bar); SICK NEUTRAL pairs are related but not interchangeable, so
they are negatives too when thresholds are fitted.

The split is by a hash of each pair's id, fixed for good: 70% ``fit`` (the thresholds in
``joulegate/cache/calibration.json`` are learned on it) and 30% ``held`` (every figure in
benchmarks/README.md is measured on it). The data is for evaluation only and never shipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks._output import REPO

DATA = REPO.parent / "shared" / "data" / "paraphrase"
HELD_SHARE = 0.30

# The origin the cache benchmarks store their entries with (``ResponseCache._store``): a
# stand-in for the tier that answered, which none of their figures reads.
ORIGIN = {
    "tier": "embedded",
    "model": "embedded/x",
    "energy_j": 1.0,
    "cost_usd": 0.0,
    "co2e_g": 0.0,
    "energy_source": "modeled:cpu",
}


@dataclass(frozen=True)
class Pair:
    source: str  # "sick" | "msrp"
    pair_id: str
    a: str
    b: str
    label: str  # ENTAILMENT / NEUTRAL / CONTRADICTION, or paraphrase / non-paraphrase

    @property
    def same(self) -> bool:
        """May one be answered from the other's cache entry?"""
        return self.label in ("ENTAILMENT", "paraphrase")

    @property
    def must_not_hit(self) -> bool:
        """The pairs of the false-hit bar."""
        return self.label in ("CONTRADICTION", "non-paraphrase")

    @property
    def part(self) -> str:
        h = int.from_bytes(hashlib.sha256(f"{self.source}:{self.pair_id}".encode()).digest()[:4])
        return "held" if h / 2**32 < HELD_SHARE else "fit"


def _sick(root: Path) -> Iterator[Pair]:
    for name in ("SICK_train.txt", "SICK_trial.txt"):
        for line in (root / "sick" / name).read_text().splitlines()[1:]:
            pid, a, b, _score, label = line.split("\t")
            yield Pair("sick", pid, a, b, label)


def _msrp(root: Path) -> Iterator[Pair]:
    d = root / "msrp"
    rows = zip(
        (d / "train_id.txt").read_text().splitlines(),
        (d / "train_a.toks").read_text().splitlines(),
        (d / "train_b.toks").read_text().splitlines(),
        (d / "train_sim.txt").read_text().splitlines(),
        strict=True,
    )
    for i, (pid, a, b, sim) in enumerate(rows):
        label = "paraphrase" if sim.strip() == "1" else "non-paraphrase"
        yield Pair("msrp", f"{i}:{pid.strip()}", a, b, label)


def load_pairs(part: str | None = None, root: Path = DATA) -> list[Pair]:
    """Every pair, or those of one part (``fit`` or ``held``)."""
    if not root.is_dir():
        raise SystemExit(f"the paraphrase data is not at {root} (../shared/data/paraphrase)")
    pairs = [*_sick(root), *_msrp(root)]
    return pairs if part is None else [p for p in pairs if p.part == part]
