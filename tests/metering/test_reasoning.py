"""Reasoning tiers: their thinking is metered as output, named on the receipt, and expected
to cost many times more per answer than a chat tier's."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from joulegate.backends.settings import TierSettings
from joulegate.metering import CpuModelSensor, Meter, MeteringSettings, TierProfile
from joulegate.metering.pricing import TierPricing
from metering._support import Tier


@dataclass
class ReasoningTier(Tier):
    reasoning: bool = True


PROFILE = TierProfile(joules_per_input_token=0.5, joules_per_output_token=3.0)


def _meter(*tiers: Tier) -> Meter:
    settings = MeteringSettings()
    return Meter(settings, list(tiers), CpuModelSensor.from_settings(settings))


def test_reasoning_tokens_are_output_tokens_and_their_energy_is_named() -> None:
    meter = _meter(Tier("chat", profile=PROFILE), ReasoningTier("thinker", profile=PROFILE))
    receipt = meter.begin("thinker").end(12, 11, reasoning_tokens=9)
    assert receipt.energy_j == pytest.approx(12 * 0.5 + 11 * 3.0)  # all 11 output tokens
    assert receipt.reasoning_tokens == 9
    assert receipt.reasoning_energy_j == pytest.approx(9 * 3.0)
    plain = meter.begin("chat").end(12, 11)
    assert plain.reasoning_tokens == 0 and plain.reasoning_energy_j == 0.0
    # Never more reasoning than output.
    assert meter.begin("thinker").end(1, 2, reasoning_tokens=5).reasoning_tokens == 2


def test_a_reasoning_answer_is_expected_to_cost_ten_times_the_tokens() -> None:
    settings = MeteringSettings()
    chat = TierPricing.resolve(Tier("chat", profile=PROFILE), settings)
    thinker = TierPricing.resolve(ReasoningTier("thinker", profile=PROFILE), settings)
    assert chat.output_multiplier == 1.0 and thinker.output_multiplier == 10.0
    assert thinker.expected_answer(100, 350).energy_j == pytest.approx(100 * 0.5 + 3500 * 3.0)
    own = ReasoningTier("own", profile=TierProfile(output_multiplier=4.0))
    assert TierPricing.resolve(own, settings).output_multiplier == 4.0


def test_a_reasoning_tier_listed_before_a_cheaper_answer_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="joulegate.metering.meter"):
        _meter(ReasoningTier("thinker", profile=PROFILE), Tier("chat", profile=PROFILE))
    assert "thinker is a reasoning tier listed before chat" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="joulegate.metering.meter"):
        _meter(Tier("chat", profile=PROFILE), ReasoningTier("thinker", profile=PROFILE))
    assert "reasoning tier" not in caplog.text


def test_tier_settings_carry_reasoning_to_the_meter() -> None:
    tier = TierSettings(name="r", model="deepseek-reasoner", base_url="http://x", reasoning=True)
    assert "reasoning" in tier.supported
    assert TierPricing.resolve(tier, MeteringSettings()).output_multiplier == 10.0
