"""The router must learn a planted signal, and must not "learn" from shuffled labels."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from joulegate.routing import metrics as m
from joulegate.routing.data import Outcomes, load_outcomes
from joulegate.routing.evaluation import escalation_score, out_of_fold
from joulegate.routing.model import RouterModel, TrainConfig, train

from .conftest import planted, write_jsonl

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _oof_apgr(data: Outcomes, config: TrainConfig) -> float:
    probs = out_of_fold(data, "weak-model", "strong-model", folds=4, config=config)
    w, s = data.column("weak-model"), data.column("strong-model")
    return m.report("r", m.threshold_curve(escalation_score(probs), w, s), w, s).apgr


def test_router_learns_planted_signal_out_of_fold(small_config: TrainConfig) -> None:
    assert _oof_apgr(planted(), small_config) > 0.68  # perfect router: 0.83


def test_router_does_not_learn_from_shuffled_labels(small_config: TrainConfig) -> None:
    assert _oof_apgr(planted(shuffle=True), small_config) < 0.6


def test_heads_are_ordered_weakest_first_and_survive_save_load(
    tmp_path: Path, small_config: TrainConfig
) -> None:
    data = planted()
    # Put the strong model first in the file: training must still order heads by capability.
    swapped = Outcomes(data.prompts, data.models[::-1], data.scores[:, ::-1], data.source)
    model = train(swapped, small_config)
    assert model.models == ["weak-model", "strong-model"]
    path = tmp_path / "r.npz"
    model.save(path)
    loaded = RouterModel.load(path)
    texts = ["please tell me about the eigenvalue", "what is the capital"]
    np.testing.assert_allclose(loaded.predict_texts(texts), model.predict_texts(texts), rtol=1e-5)
    hard, easy = loaded.predict_texts(texts)
    assert hard[0] < easy[0]  # weak head: the hard prompt is less likely to succeed


def test_router_file_is_not_a_pickle(tmp_path: Path, small_config: TrainConfig) -> None:
    path = tmp_path / "r.npz"
    train(planted(), small_config).save(path)
    with np.load(path, allow_pickle=False) as z:
        assert "meta_json" in z.files


def test_jsonl_with_n_models_and_graded_scores_trains_one_head_each(
    tmp_path: Path, small_config: TrainConfig
) -> None:
    base = planted(120)
    mid = np.clip(0.5 * base.scores[:, 0] + 0.5 * base.scores[:, 1], 0, 1)  # graded in [0, 1]
    three = Outcomes(
        base.prompts,
        ["weak-model", "mid-model", "strong-model"],
        np.column_stack([base.scores[:, 0], mid, base.scores[:, 1]]),
        "three",
    )
    data = load_outcomes(write_jsonl(three, tmp_path / "three.jsonl"))
    assert data.models == ["weak-model", "mid-model", "strong-model"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train(data, small_config)
    assert model.models == ["weak-model", "mid-model", "strong-model"]
    assert model.coef.shape[0] == 3


def test_jsonl_rejects_scores_outside_unit_interval(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "hi", "scores": {"a": 1.5, "b": 0.0}}\n')
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_outcomes(path)


def test_fast_single_prompt_path_matches_batch_prediction(small_config: TrainConfig) -> None:
    model = train(planted(), small_config)
    texts = ["please tell me about the eigenvalue?", "what is the capital of 3.5 $", ""]
    batch = model.predict_texts(texts)
    for text, expected in zip(texts, batch, strict=True):
        np.testing.assert_allclose(model.predict_one(text), expected, rtol=1e-6)
