"""A local upstream the sensor cannot see is still a local model: priced as one.

The issue this guards: embedded + a local llama.cpp server marked ``measured = true``, on a
machine without energy counters (the process-scoped CPU model), priced the local server's
answers at gpt-4o list prices and reported "80 % cost saved".
"""

from __future__ import annotations

import pytest

from joulegate.metering import CpuModelSensor, Meter, MeteringSettings, TierProfile

from ._support import Tier

J_PER_KWH = 3.6e6
PROFILE = {"joules_per_input_token": 0.0035, "joules_per_output_token": 0.074}  # the example's


def test_unmeasurable_local_upstream_is_priced_at_electricity_not_list_prices(
    cpu_sensor: CpuModelSensor,
) -> None:
    settings = MeteringSettings(sensor="cpu-model", pue=1.4, grid_gco2_per_kwh=56.0)
    tiers = [
        Tier("embedded", kind="embedded"),
        Tier("llama", profile=TierProfile(measured=True, **PROFILE)),
    ]
    r = Meter(settings, tiers, sensor=cpu_sensor).begin("llama").end(100, 50)
    assert r.energy_source == "estimated:profile"  # the CPU model cannot see its process
    energy = (0.0035 * 100 + 0.074 * 50) * 1.4  # this machine's PUE, not the hosted one
    assert r.energy_j == pytest.approx(energy)
    assert r.cost_usd == pytest.approx(energy / J_PER_KWH * settings.usd_per_kwh)
    assert r.co2e_g == pytest.approx(energy / J_PER_KWH * 56.0)  # this machine's grid
    hosted = (2.5 * 100 + 10.0 * 50) / 1e6
    assert r.cost_usd < hosted / 1000  # nowhere near gpt-4o's list price


def test_explicit_prices_and_hosted_tiers_keep_list_prices(cpu_sensor: CpuModelSensor) -> None:
    settings = MeteringSettings(sensor="cpu-model")
    priced = TierProfile(measured=True, usd_per_mtok_input=1.0, usd_per_mtok_output=2.0, **PROFILE)
    tiers = [Tier("llama", profile=priced), Tier("hosted", model="gpt-4o")]
    meter = Meter(settings, tiers, sensor=cpu_sensor)
    assert meter.begin("llama").end(100, 50).cost_usd == pytest.approx((100 + 100) / 1e6)
    hosted = meter.begin("hosted").end(100, 50)
    assert hosted.cost_usd == pytest.approx((2.5 * 100 + 10.0 * 50) / 1e6)
    assert hosted.energy_j == pytest.approx(0.8 * 100 + 2.0 * 50)  # full-stack, remote PUE 1
