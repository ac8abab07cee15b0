"""RouteLLM metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from joulegate.routing import metrics as m

# Four prompts: weak right on 0 and 1, strong right on 0, 1, 2. weak = 0.5, strong = 0.75, and
# only prompt 2 gains from escalation.
WEAK = np.array([1.0, 1.0, 0.0, 0.0])
STRONG = np.array([1.0, 1.0, 1.0, 0.0])


def test_pgr_is_zero_for_always_weak_and_one_for_always_strong() -> None:
    assert m.pgr(0.5, 0.5, 0.75) == 0.0
    assert m.pgr(0.75, 0.5, 0.75) == 1.0


def test_threshold_curve_follows_routellm_quantile_thresholds() -> None:
    # Quantile edges of [0.1, 0.2, 0.9, 0.3] at 0, .5, 1 are 0.1, 0.25, 0.9; the last edge uses ">".
    scores = np.array([0.1, 0.2, 0.9, 0.3])
    points = m.threshold_curve(scores, WEAK, STRONG, num_results=2)
    assert [(p.strong_share, p.quality) for p in points] == [(1.0, 0.75), (0.5, 0.75), (0.0, 0.5)]
    # PGR 0 -> 1 -> 1 over shares 0, .5, 1: area 0.25 + 0.5.
    assert m.apgr(points, 0.5, 0.75) == pytest.approx(0.75)
    assert m.cpt(points, 0.5, 0.75, 0.5) == pytest.approx(0.25)


def test_perfect_router_curve_and_apgr() -> None:
    points = m.optimal_curve(WEAK, STRONG)
    quality = [p.quality for p in points]
    assert quality[:4] == pytest.approx([0.5, 0.6, 0.7, 0.75])
    assert quality[4:] == pytest.approx([0.75] * 7)
    # PGR 0, .4, .8, then 1 for seven steps of 0.1.
    assert m.apgr(points, 0.5, 0.75) == pytest.approx(0.1 * (0.2 + 0.6 + 0.9 + 7))
    assert m.cpt(points, 0.5, 0.75, 0.5) == pytest.approx(0.125)


def test_constant_scores_give_the_all_or_nothing_router() -> None:
    # Every threshold equals the constant: all strong at 10 points, all weak at the last.
    points = m.threshold_curve(np.zeros(4), WEAK, STRONG)
    shares = sorted(p.strong_share for p in points)
    assert shares == [0.0] + [1.0] * 10
    assert m.apgr(points, 0.5, 0.75) == pytest.approx(0.5)
    assert m.cpt(points, 0.5, 0.75, 0.5) == pytest.approx(0.5)


def test_random_router_scores_about_half() -> None:
    rng = np.random.default_rng(1)
    weak = (rng.random(20_000) < 0.6).astype(float)
    strong = (rng.random(20_000) < 0.8).astype(float)
    r = m.report("random", m.threshold_curve(m.random_scores(20_000), weak, strong), weak, strong)
    assert r.apgr == pytest.approx(0.5, abs=0.05)
    assert r.cpt50 == pytest.approx(0.5, abs=0.05)


def test_oracle_scores_beat_random() -> None:
    gain = STRONG - WEAK
    r = m.report("oracle", m.threshold_curve(gain, WEAK, STRONG), WEAK, STRONG)
    assert r.apgr > 0.5
