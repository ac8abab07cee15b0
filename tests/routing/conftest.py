"""Small synthetic outcome data with a planted signal, shared by the routing tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from joulegate.routing.data import Outcomes
from joulegate.routing.features import FeatureSpec
from joulegate.routing.model import TrainConfig

EASY = ["capital", "colour", "animal", "river", "greeting", "fruit", "song", "city"]
HARD = ["integral", "eigenvalue", "theorem", "derivative", "proof", "lemma", "manifold", "tensor"]
FILLER = ["what", "is", "the", "of", "a", "please", "tell", "me", "about", "this", "one", "for"]

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routellm-evals"


def planted(n: int = 240, seed: int = 0, shuffle: bool = False) -> Outcomes:
    """Prompts mentioning a HARD word defeat the weak model; the strong one mostly succeeds."""
    rng = np.random.default_rng(seed)
    prompts, scores = [], []
    for i in range(n):
        hard = i % 2 == 1
        topic = rng.choice(HARD if hard else EASY)
        words = [*rng.choice(FILLER, size=6), topic, *rng.choice(FILLER, size=3)]
        prompts.append(" ".join(words) + "?")
        weak_ok = (not hard) if rng.random() > 0.1 else hard
        strong_ok = rng.random() > 0.05
        scores.append([float(weak_ok), float(strong_ok)])
    arr = np.array(scores)
    if shuffle:
        arr = arr[rng.permutation(n)]
    return Outcomes(prompts, ["weak-model", "strong-model"], arr, source="planted")


def write_jsonl(data: Outcomes, path: Path) -> Path:
    with path.open("w") as fh:
        for prompt, row in zip(data.prompts, data.scores, strict=True):
            scores = dict(zip(data.models, map(float, row), strict=True))
            fh.write(json.dumps({"prompt": prompt, "scores": scores}) + "\n")
    return path


@pytest.fixture
def small_config() -> TrainConfig:
    """Fewer hash bits than production: the planted vocabulary is tiny and tests stay fast."""
    return TrainConfig(spec=FeatureSpec(hash_bits=12))
