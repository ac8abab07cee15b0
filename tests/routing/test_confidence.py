"""Confidence features and the fitted model: a planted signal is learned, shuffled labels are
not, and the model survives a save/load round trip as plain JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from joulegate.routing.confidence import (
    FEATURE_NAMES,
    ConfidenceModel,
    PrecisionCurve,
    confidence_features,
)


def _feature(row: np.ndarray, name: str) -> float:
    return float(row[FEATURE_NAMES.index(name)])


def test_one_bad_token_shows_in_min_and_low_quantiles_not_only_the_mean() -> None:
    sure = [-0.01] * 40
    one_slip = [-0.01] * 39 + [-6.0]
    a = confidence_features(sure, "x" * 80)
    b = confidence_features(one_slip, "x" * 80)
    assert _feature(b, "mean_logprob") > -0.2  # the mean barely notices
    assert _feature(b, "min_logprob") == pytest.approx(-6.0)
    assert _feature(a, "min_logprob") == pytest.approx(-0.01)
    assert _feature(b, "share_low") == pytest.approx(1 / 40)


def test_features_use_only_the_first_n_tokens_so_streaming_sees_the_same_numbers() -> None:
    head = [-0.1, -0.5, -0.2, -1.0] * 12  # 48 tokens
    tail = [-9.0] * 50  # what a streaming cascade never waits for
    full = confidence_features(head + tail, "answer", first_n=48)
    held = confidence_features(head, "answer", first_n=48)
    np.testing.assert_allclose(full, held)
    assert _feature(full, "log_n_tokens") == pytest.approx(math.log1p(48))


def test_no_logprobs_is_an_error_not_a_neutral_value() -> None:
    with pytest.raises(ValueError, match="no token log-probs"):
        confidence_features([], "answer")


def test_infinite_logprobs_are_floored() -> None:
    row = confidence_features([-0.1, float("-inf")], "a")
    assert np.isfinite(row).all()


def _synthetic(n: int, seed: int, shuffle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Answers whose worst token is very unlikely are wrong; confident ones are right."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i in range(n):
        right = i % 2 == 0
        length = int(rng.integers(3, 60))
        lp = -rng.exponential(0.15, size=length)
        if not right:
            lp[rng.integers(0, length)] = -rng.uniform(3.0, 8.0)  # one guessed token
        elif rng.random() < 0.1:
            lp[rng.integers(0, length)] = -rng.uniform(3.0, 8.0)  # label noise
        rows.append(confidence_features(lp, "y" * int(rng.integers(5, 200))))
        labels.append(1.0 if right else 0.0)
    y = np.array(labels)
    if shuffle:
        y = y[rng.permutation(n)]
    return np.array(rows), y


def test_planted_signal_is_learned_and_separates_held_out_answers() -> None:
    x_train, y_train = _synthetic(400, seed=1)
    x_test, y_test = _synthetic(400, seed=2)
    model = ConfidenceModel.fit(x_train, y_train)
    p = model.predict_proba(x_test)
    assert roc_auc_score(y_test, p) > 0.85
    # Kept at a high target, the answers are mostly right.
    kept = p >= 0.8
    assert kept.sum() > 50 and y_test[kept].mean() > 0.85


def test_shuffled_labels_do_not_learn_the_signal() -> None:
    x_train, y_train = _synthetic(400, seed=3, shuffle=True)
    x_test, y_test = _synthetic(400, seed=4)
    model = ConfidenceModel.fit(x_train, y_train)
    assert abs(roc_auc_score(y_test, model.predict_proba(x_test)) - 0.5) < 0.15


def test_router_score_joins_the_features_when_fit_with_it() -> None:
    x, y = _synthetic(200, seed=5)
    router = np.where(y > 0.5, 0.9, 0.2)
    model = ConfidenceModel.fit(x, y, router_scores=router)
    assert model.uses_router_score and model.feature_names[-1] == "router_score"
    with pytest.raises(ValueError, match="router"):
        model.p_acceptable([-0.1, -0.2], "answer")
    high = model.p_acceptable([-0.1, -0.2], "answer", router_score=0.9)
    low = model.p_acceptable([-0.1, -0.2], "answer", router_score=0.2)
    assert high > low


def test_save_and_load_round_trip_as_json(tmp_path: Path) -> None:
    x, y = _synthetic(200, seed=6)
    model = ConfidenceModel.fit(x, y, meta={"tier": "embedded", "model": "gemma"})
    path = tmp_path / "confidence.json"
    model.save(path)
    data = json.loads(path.read_text())  # plain JSON: nothing in it can run code
    assert data["meta"]["tier"] == "embedded" and data["meta"]["n_train"] == 200
    loaded = ConfidenceModel.load(path)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    lp, answer = [-0.05, -2.5, -0.3], "The answer is 4."
    assert loaded.p_acceptable(lp, answer) == pytest.approx(model.p_acceptable(lp, answer))
    assert loaded.p_acceptable(lp, answer) == pytest.approx(
        float(model.predict_proba(confidence_features(lp, answer))[0])
    )


def test_load_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(ValueError, match="not a joulegate-confidence-model"):
        ConfidenceModel.load(path)


def test_keep_threshold_reaches_the_target_on_held_out_answers() -> None:
    """The point of the precision curve: at a quality target t, the answers the model keeps
    on data it never saw are acceptable at about rate t, and it keeps far more of them than
    the naive rule "P >= t" (whose probabilities say nothing about the kept share)."""
    model = ConfidenceModel.fit(*_synthetic(400, seed=1))
    x_test, y_test = _synthetic(4000, seed=99)
    p = model.predict_proba(x_test)
    thresholds = [model.keep_threshold(t) for t in (0.8, 0.9, 0.95)]
    assert all(t is not None for t in thresholds) and thresholds == sorted(thresholds)
    for target, threshold in zip((0.8, 0.9, 0.95), thresholds, strict=True):
        assert threshold is not None
        kept = p >= threshold
        assert y_test[kept].mean() >= target - 0.03  # what the point estimate promises
    kept_95 = p >= thresholds[2]  # type: ignore[operator]
    assert kept_95.mean() > 0.4 and kept_95.mean() > 1.5 * (p >= 0.95).mean()
    assert model.keep_threshold(0.0) == 0.0  # a target of 0 keeps everything


def test_keep_threshold_is_none_when_the_target_is_unreachable() -> None:
    """Shuffled grades: the model learns no signal, and no threshold keeps answers that are
    90% acceptable when half are; so nothing is kept, and it can say why."""
    model = ConfidenceModel.fit(*_synthetic(400, seed=3, shuffle=True))
    assert model.keep_threshold(0.9) is None and model.keep_threshold(0.95) is None
    assert "no keep threshold reaches quality_target 0.9" in model.why_no_threshold(0.9)


def test_a_threshold_needs_min_kept_rows_behind_it() -> None:
    """Five right answers at the very top, then a coin toss: the top five alone would
    "reach" any target, but a threshold must keep at least ``min_kept`` rows."""
    p = np.linspace(0.0, 1.0, 100)
    y = np.r_[np.tile([0.0, 1.0], 48)[:95], np.ones(5)]
    curve = PrecisionCurve.from_predictions(p, y, folds=5, seed=0)
    assert curve.threshold(0.95, min_kept=5) == pytest.approx(p[95])
    assert curve.threshold(0.95, min_kept=10) is None
    assert curve.threshold(0.5, min_kept=10) == 0.0  # half are acceptable: keep all


def test_the_precision_curve_is_monotone_and_out_of_fold() -> None:
    x, y = _synthetic(300, seed=8)
    model = ConfidenceModel.fit(x, y)
    curve = model.curve
    assert curve is not None and curve.folds == 5 and curve.n == 300
    assert curve.thresholds[0] == 0.0 and curve.precision[0] == pytest.approx(y.mean())
    assert np.all(np.diff(curve.thresholds) > 0) and np.all(np.diff(curve.precision) >= 0)
    assert np.all(np.diff(curve.kept) <= 0)
    # Out of fold: the in-sample predictions of the final model give another curve.
    in_sample = np.sort(model.predict_proba(x))
    assert not np.isin(curve.thresholds[1:], in_sample).all()


def test_the_curve_survives_a_round_trip_and_a_v1_file_keeps_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = ConfidenceModel.fit(*_synthetic(200, seed=6), meta={"tier": "embedded/gemma"})
    path = tmp_path / "confidence.json"
    model.save(path)
    loaded = ConfidenceModel.load(path)
    for target in (0.5, 0.8, 0.9, 0.95):
        assert loaded.keep_threshold(target) == model.keep_threshold(target)
    old = model.to_dict()
    old["version"] = 1
    del old["curve"], old["min_kept"]
    with caplog.at_level("WARNING"):
        v1 = ConfidenceModel.from_dict(old)
    assert "format v1" in caplog.text and "embedded/gemma" in caplog.text
    assert v1.curve is None and v1.keep_threshold(0.5) is None
    assert "joulegate calibrate" in v1.why_no_threshold(0.5)


def test_fit_needs_both_outcomes() -> None:
    x, _ = _synthetic(20, seed=7)
    with pytest.raises(ValueError, match="both acceptable and unacceptable"):
        ConfidenceModel.fit(x, np.ones(20))
