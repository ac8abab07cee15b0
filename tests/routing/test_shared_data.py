"""Checks against the real RouteLLM outcome data in ../shared (skipped when it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from joulegate.routing import metrics as m
from joulegate.routing.data import load_outcomes
from joulegate.routing.evaluation import escalation_score, out_of_fold
from joulegate.routing.features import FeatureSpec
from joulegate.routing.model import TrainConfig

from .conftest import SHARED

pytestmark = [
    pytest.mark.skipif(
        not SHARED.is_dir(), reason=f"RouteLLM eval data not found at {SHARED} (../shared absent)"
    ),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


@pytest.mark.parametrize(
    ("name", "n", "weak", "strong", "perfect"),
    [("mmlu", 14037, 0.681, 0.806, 0.859), ("gsm8k", 1307, 0.637, 0.858, 0.930)],
)
def test_decontaminated_data_matches_the_readme(
    name: str, n: int, weak: float, strong: float, perfect: float
) -> None:
    data = load_outcomes(SHARED / name)
    assert len(data) == n
    assert data.by_capability() == [WEAK, STRONG]
    assert data.column(WEAK).mean() == pytest.approx(weak, abs=5e-4)
    assert data.column(STRONG).mean() == pytest.approx(strong, abs=5e-4)
    best = np.maximum(data.column(WEAK), data.column(STRONG)).mean()
    assert best == pytest.approx(perfect, abs=5e-4)


def test_short_out_of_fold_run_on_gsm8k_beats_random() -> None:
    """A fast version of the benchmark: prompt statistics only, 3 folds."""
    data = load_outcomes(SHARED / "gsm8k")
    config = TrainConfig(spec=FeatureSpec(word_ngrams=None, stats=True))
    probs = out_of_fold(data, WEAK, STRONG, folds=3, config=config)
    w, s = data.column(WEAK), data.column(STRONG)
    assert m.report("r", m.threshold_curve(escalation_score(probs), w, s), w, s).apgr > 0.56
