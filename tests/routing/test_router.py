"""Runtime decisions: tier choice, tier mapping, the shipped default router, latency."""

from __future__ import annotations

import time

import numpy as np
import pytest

from joulegate.routing import RouteDecision, Router
from joulegate.routing.model import TrainConfig, train
from joulegate.routing.router import tier_probabilities

from .conftest import planted

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def router() -> Router:
    from joulegate.routing.features import FeatureSpec

    return Router(train(planted(), TrainConfig(spec=FeatureSpec(hash_bits=12))))


def test_hard_prompt_goes_to_strong_tier_easy_prompt_to_cheap(router: Router) -> None:
    tiers = ["local", "cloud"]
    hard = router.decide("please tell me about the eigenvalue of this one", tiers, 0.9)
    easy = router.decide("please tell me about the capital of this one", tiers, 0.9)
    assert isinstance(hard, RouteDecision)
    assert (hard.tier, easy.tier) == ("cloud", "local")
    assert set(hard.scores) == set(tiers)
    assert hard.decision_ms >= 0.0 and hard.quality_target == 0.9


def test_quality_target_extremes(router: Router) -> None:
    tiers = ["a", "b", "c"]
    prompt = "please tell me about the eigenvalue"
    assert router.decide(prompt, tiers, 0.0).tier == "a"  # anything is good enough
    d = router.decide(prompt, tiers, 1.0)  # only a tier predicted as good as the best
    best = max(d.scores.values())
    assert d.scores[d.tier] == pytest.approx(best)


def test_single_tier_is_always_chosen(router: Router) -> None:
    assert router.decide("anything", ["only"], 0.99).tier == "only"


def test_n_tiers_interpolate_between_two_heads() -> None:
    probs = tier_probabilities(np.array([0.2, 0.8]), 3)
    np.testing.assert_allclose(probs, [0.2, 0.5, 0.8])
    np.testing.assert_allclose(tier_probabilities(np.array([0.1, 0.5, 0.9]), 3), [0.1, 0.5, 0.9])


def test_invalid_target_is_rejected(router: Router) -> None:
    with pytest.raises(ValueError):
        router.decide("x", ["a", "b"], 1.5)


def test_shipped_default_router_loads_and_decides_quickly() -> None:
    default = Router.load()
    assert default.models == ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"]
    prompt = "Natalia sold clips to 48 of her friends in April. " * 20
    default.decide(prompt, ["small", "large"])  # warm-up
    times = []
    for _ in range(20):
        t = time.perf_counter()
        default.decide(prompt, ["small", "large"])
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.05  # generous: CI machines are slow and shared


def test_quality_target_for_share_calibrates_the_escalation_rate() -> None:
    data = planted(400, seed=3)
    from joulegate.routing.features import FeatureSpec

    router = Router(train(data, TrainConfig(spec=FeatureSpec(hash_bits=12))))
    for share in (0.2, 0.5):
        target = router.quality_target_for_share(share)
        escalated = [
            router.decide(p, ["cheap", "dear"], target).tier == "dear" for p in data.prompts
        ]
        assert np.mean(escalated) == pytest.approx(share, abs=0.08)


def test_concurrent_decisions_match_sequential_ones(router: Router) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prompts = [f"please tell me about the {w} of {i}" for i, w in enumerate(["lemma", "city"] * 20)]
    expected = [router.decide(p, ["a", "b"]).scores for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda p: router.decide(p, ["a", "b"]).scores, prompts))
    assert got == expected
