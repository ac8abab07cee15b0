"""Runtime decisions: heads by tier id, the policy for tiers without one, the shipped router."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from joulegate.routing import RouteDecision, Router
from joulegate.routing.features import FeatureSpec
from joulegate.routing.model import RouterModel, TierOutcomes, TrainConfig, fit_tier_heads

from .conftest import planted

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

SMALL, MID, BIG = "local/small-model", "lan/mid-model", "cloud/big-model"
CONFIG = TrainConfig(spec=FeatureSpec(hash_bits=12))
HARD = "please tell me about the eigenvalue of this one"
EASY = "please tell me about the capital of this one"


def _tier(tier: str, column: int, n: int = 240, seed: int = 0) -> TierOutcomes:
    data = planted(n, seed=seed)
    return TierOutcomes(tier, data.prompts, data.scores[:, column])


@pytest.fixture(scope="module")
def small_only() -> RouterModel:
    """Fit on the small tier's own outcomes only: the big tier is uncalibrated."""
    return fit_tier_heads([_tier(SMALL, 0)], [SMALL, BIG], CONFIG)


def test_hard_prompt_goes_to_the_big_tier_easy_prompt_stays_small(small_only: RouterModel) -> None:
    router = Router(small_only)
    hard = router.decide(HARD, [SMALL, BIG], 0.8)
    easy = router.decide(EASY, [SMALL, BIG], 0.8)
    assert isinstance(hard, RouteDecision)
    assert (hard.tier, easy.tier) == (BIG, SMALL)
    assert hard.policy == {SMALL: "calibrated", BIG: "reference"}
    assert hard.scores[BIG] == 1.0  # the uncalibrated top tier is the reference
    assert hard.scores[SMALL] < 0.8 <= easy.scores[SMALL]
    assert hard.decision_ms >= 0.0 and hard.quality_target == 0.8


def test_the_target_is_absolute_against_an_uncalibrated_reference(small_only: RouterModel) -> None:
    router = Router(small_only)
    p = router.decide(EASY, [SMALL, BIG], 0.5).scores[SMALL]
    assert router.decide(EASY, [SMALL, BIG], p - 1e-6).tier == SMALL
    assert router.decide(EASY, [SMALL, BIG], min(p + 1e-6, 1.0)).tier == BIG
    assert router.decide(HARD, [SMALL, BIG], 0.0).tier == SMALL  # anything meets zero


def test_an_uncalibrated_cheaper_tier_is_never_chosen(
    small_only: RouterModel, caplog: pytest.LogCaptureFixture
) -> None:
    """A tier nobody measured gets no prompts from ``auto``, whatever the target; the log
    says so once, when the router is set up for these tiers, and says what happens instead."""
    with caplog.at_level(logging.WARNING, logger="joulegate.routing.router"):
        router = Router(small_only, tiers=[MID, SMALL, BIG])
        for prompt in (EASY, HARD):
            for target in (0.0, 0.5, 1.0):
                d = router.decide(prompt, [MID, SMALL, BIG], target)
                assert d.tier != MID
                assert d.policy[MID] == "uncalibrated" and MID not in d.scores
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once, not per request
    msg = warnings[0].getMessage()
    assert MID in msg and "never routes" in msg and "joulegate calibrate" in msg
    assert SMALL in msg  # what it was fit on


def test_a_router_fit_on_other_tiers_warns_and_sends_everything_to_the_reference(
    small_only: RouterModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Loaded for a different model under the same tier name, the file's head is not used
    for it: the warning names both models, and every prompt goes to the top tier."""
    path = tmp_path / "router.npz"
    small_only.save(path)
    other = "local/another-model"
    with caplog.at_level(logging.WARNING, logger="joulegate.routing.router"):
        router = Router.load(path, tiers=[other, BIG])
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{other} (fit on {SMALL}, another model)" in warning and str(path) in warning
    for prompt in (EASY, HARD):
        d = router.decide(prompt, [other, BIG], 0.0)
        assert d.tier == BIG and d.scores == {BIG: 1.0}


def test_the_router_file_records_what_it_was_fit_on(tmp_path: Path) -> None:
    tiny = TierOutcomes(MID, ["a b c?"] * 10, np.r_[np.ones(5), np.zeros(5)])
    model = fit_tier_heads(
        [_tier(SMALL, 0), tiny, _tier(BIG, 1)],
        [SMALL, MID, BIG],
        CONFIG,
        confidence={SMALL: {"format": "x"}},
    )
    path = tmp_path / "r.npz"
    model.save(path)
    loaded = RouterModel.load(path)
    assert loaded.models == [SMALL, BIG]  # heads by tier id, cheapest first
    assert loaded.tiers == [SMALL, MID, BIG]
    assert "only 10 graded answers" in loaded.meta["without_head"][MID]
    assert loaded.meta["fit_on"][SMALL]["n"] == 240
    assert loaded.meta["confidence"] == {SMALL: {"format": "x"}}


def test_a_tier_whose_answers_are_all_graded_alike_gets_no_head() -> None:
    data = planted(60)
    model = fit_tier_heads([TierOutcomes(SMALL, data.prompts, np.ones(60))], [SMALL, BIG], CONFIG)
    assert model.models == []
    assert "one class" in model.meta["without_head"][SMALL]
    d = Router(model).decide(EASY, [SMALL, BIG], 0.0)
    assert d.tier == BIG and d.policy[SMALL] == "uncalibrated"


def test_two_calibrated_tiers_use_the_relative_rule() -> None:
    model = fit_tier_heads([_tier(SMALL, 0), _tier(BIG, 1)], [SMALL, BIG], CONFIG)
    router = Router(model)
    d = router.decide(HARD, [SMALL, BIG], 1.0)
    assert d.policy == {SMALL: "calibrated", BIG: "calibrated"}
    assert d.tier == BIG and d.scores[BIG] < 1.0  # the big tier's own head, not assumed
    assert router.decide(HARD, [SMALL, BIG], 0.0).tier == SMALL


def test_single_tier_is_always_chosen(small_only: RouterModel) -> None:
    assert Router(small_only).decide("anything", [SMALL], 0.99).tier == SMALL
    assert Router(small_only).decide("anything", ["solo/x"], 0.99).tier == "solo/x"


def test_invalid_target_is_rejected(small_only: RouterModel) -> None:
    with pytest.raises(ValueError):
        Router(small_only).decide("x", [SMALL, BIG], 1.5)


def test_shipped_router_knows_the_embedded_tier_and_decides_quickly() -> None:
    default = Router.load()
    embedded = "embedded/gemma-3-270m"
    assert default.models == [embedded]
    assert default.confidence_model(embedded) is not None
    assert default.confidence_model("cloud/big-model") is None
    tiers = [embedded, "cloud/big-model"]
    easy = default.decide("What is the capital of France?", tiers)
    hard = default.decide("Natalia sold clips to 48 of her friends in April. " * 20, tiers)
    assert easy.scores[embedded] > hard.scores[embedded]
    assert hard.tier == "cloud/big-model"
    times = []
    for _ in range(20):
        t = time.perf_counter()
        default.decide("Natalia sold clips to 48 of her friends in April. " * 20, tiers)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.05  # generous: CI machines are slow and shared


def test_quality_target_for_share_calibrates_the_escalation_rate(small_only: RouterModel) -> None:
    data = planted(240, seed=0)  # the training prompts the quantiles were taken on
    router = Router(small_only)
    for share in (0.2, 0.5):
        target = router.quality_target_for_share(share)
        escalated = [router.decide(p, [SMALL, BIG], target).tier == BIG for p in data.prompts]
        assert np.mean(escalated) == pytest.approx(share, abs=0.08)


def test_concurrent_decisions_match_sequential_ones(small_only: RouterModel) -> None:
    from concurrent.futures import ThreadPoolExecutor

    router = Router(small_only)
    prompts = [f"please tell me about the {w} of {i}" for i, w in enumerate(["lemma", "city"] * 20)]
    expected = [router.decide(p, [SMALL, BIG]).scores for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda p: router.decide(p, [SMALL, BIG]).scores, prompts))
    assert got == expected
