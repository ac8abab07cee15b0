"""Receipts: positive, and every figure follows from the energy and the configuration."""

from __future__ import annotations

import json
import time

import pytest

from joulegate.metering import (
    CpuModelSensor,
    Meter,
    MeteringSettings,
    Receipt,
    TierProfile,
)
from joulegate.metering.receipt import format_field

from ._support import RecordingSensor, Tier, burn_cpu

J_PER_KWH = 3.6e6


@pytest.fixture
def tiers() -> list[Tier]:
    return [
        Tier("embedded", kind="embedded", model="gemma-3-270m"),
        Tier(
            "mid",
            model="gpt-4o-mini",
            profile=TierProfile(
                joules_per_input_token=0.1,
                joules_per_output_token=0.3,
                usd_per_mtok_input=0.15,
                usd_per_mtok_output=0.60,
                grid_gco2_per_kwh=56.0,
            ),
        ),
        Tier("large", model="gpt-4o"),
    ]


@pytest.fixture
def meter(settings: MeteringSettings, tiers: list[Tier], cpu_sensor: CpuModelSensor) -> Meter:
    return Meter(settings, tiers, sensor=cpu_sensor)


def run_local(meter: Meter, seconds: float, p: int = 20, c: int = 50) -> Receipt:
    w = meter.begin("embedded")
    burn_cpu(seconds / 4)
    w.first_token()
    burn_cpu(seconds * 3 / 4)
    return w.end(p, c)


def test_local_receipt_is_positive_and_follows_from_energy(
    meter: Meter, settings: MeteringSettings
) -> None:
    r = run_local(meter, 0.1)
    assert r.energy_source == "modeled:cpu"
    assert r.energy_j > 0 and r.cost_usd > 0 and r.co2e_g > 0 and r.device_s > 0
    assert r.latency_ms > 0 and r.ttft_ms is not None and 0 < r.ttft_ms <= r.latency_ms
    assert r.co2e_g == pytest.approx(r.energy_j / J_PER_KWH * settings.grid_gco2_per_kwh)
    assert r.cost_usd == pytest.approx(
        r.energy_j / J_PER_KWH * settings.usd_per_kwh
        + settings.hardware_usd_per_hour * r.device_s / 3600
    )
    # A lone window is charged its whole wall time.
    assert r.device_s * 1000 == pytest.approx(r.latency_ms, rel=0.05, abs=1.0)


def test_long_generation_costs_more_than_short(meter: Meter) -> None:
    short = run_local(meter, 0.05)
    long = run_local(meter, 0.3)
    assert long.energy_j > short.energy_j
    assert long.cost_usd > short.cost_usd and long.co2e_g > short.co2e_g


def test_pue_multiplies_local_energy(tiers: list[Tier], cpu_sensor: CpuModelSensor) -> None:
    rec = RecordingSensor(cpu_sensor)
    meter = Meter(MeteringSettings(pue=1.5), tiers, sensor=rec)
    w = meter.begin("embedded")
    start = rec.readings[-1]
    burn_cpu(0.05)
    r = w.end(1, 1)
    assert r.energy_j == pytest.approx(1.5 * (rec.readings[-1] - start))


def test_remote_receipt_is_estimated_from_the_profile(meter: Meter) -> None:
    w = meter.begin("mid")
    r = w.end(1000, 500)
    assert r.energy_source == "estimated:profile"
    assert r.energy_j == pytest.approx(1000 * 0.1 + 500 * 0.3)
    assert r.cost_usd == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)
    assert r.co2e_g == pytest.approx(r.energy_j / J_PER_KWH * 56.0)
    assert r.device_s == 0.0


def test_remote_defaults_are_used_for_unset_profile_fields(
    meter: Meter, settings: MeteringSettings
) -> None:
    r = meter.begin("large").end(100, 500)
    assert r.energy_j == pytest.approx(
        100 * settings.remote_joules_per_input_token + 500 * settings.remote_joules_per_output_token
    )
    assert r.cost_usd == pytest.approx((100 * 2.50 + 500 * 10.00) / 1e6)
    assert r.co2e_g == pytest.approx(r.energy_j / J_PER_KWH * settings.remote_grid_gco2_per_kwh)


def test_baseline_is_the_same_tokens_on_the_last_tier(meter: Meter) -> None:
    r = run_local(meter, 0.05, p=100, c=500)
    large = meter.begin("large").end(100, 500)
    assert r.baseline_tier == "large"
    assert r.baseline_energy_j == pytest.approx(large.energy_j)
    assert r.baseline_cost_usd == pytest.approx(large.cost_usd)
    assert r.baseline_co2e_g == pytest.approx(large.co2e_g)


def test_request_on_the_baseline_tier_is_its_own_baseline(meter: Meter) -> None:
    r = meter.begin("large").end(10, 20)
    assert (r.baseline_energy_j, r.baseline_cost_usd, r.baseline_co2e_g) == (
        r.energy_j,
        r.cost_usd,
        r.co2e_g,
    )


def test_single_local_tier_is_its_own_baseline(
    settings: MeteringSettings, cpu_sensor: CpuModelSensor
) -> None:
    meter = Meter(settings, [Tier("embedded", kind="embedded")], sensor=cpu_sensor)
    r = run_local(meter, 0.05)
    assert r.baseline_tier == "embedded"
    assert r.baseline_energy_j == r.energy_j and r.baseline_cost_usd == r.cost_usd


def test_local_baseline_uses_observed_energy_per_token(
    settings: MeteringSettings, cpu_sensor: CpuModelSensor
) -> None:
    meter = Meter(
        settings,
        [Tier("small"), Tier("embedded", kind="embedded")],
        sensor=cpu_sensor,
    )
    before = meter.begin("small").end(10, 10)
    assert before.baseline_energy_j == before.energy_j  # nothing observed yet: itself
    local = run_local(meter, 0.05, p=10, c=30)
    after = meter.begin("small").end(10, 10)
    assert after.baseline_energy_j == pytest.approx(local.energy_j / 40 * 20)


def test_measured_upstream_needs_a_sensor_that_sees_other_processes(
    settings: MeteringSettings, cpu_sensor: CpuModelSensor
) -> None:
    """A model server in another process is invisible to the process-scoped CPU model, so a
    tier marked ``measured`` is estimated from its profile there, and metered under a
    machine-wide counter (RAPL, NVML; a recording sensor stands in for one here)."""
    tiers = [Tier("vllm", profile=TierProfile(measured=True)), Tier("large")]
    r = Meter(settings, tiers, sensor=cpu_sensor).begin("vllm").end(5, 5)
    assert r.energy_source == "estimated:profile" and r.device_s == 0
    wide = RecordingSensor(cpu_sensor)  # a wrapper claims no process scope: machine-wide
    assert cpu_sensor.process_scoped and not wide.process_scoped
    w = Meter(settings, tiers, sensor=wide).begin("vllm")
    burn_cpu(0.05)
    r = w.end(5, 5)
    assert r.energy_source == wide.source and r.device_s > 0 and r.energy_j > 0


def test_cache_hit_has_a_computed_baseline(meter: Meter) -> None:
    r = meter.cached("embedded", 100, 500, latency_ms=1.5)
    large = meter.begin("large").end(100, 500)
    assert r.energy_source == "cache"
    assert r.energy_j == 0.0 and r.cost_usd == 0.0 and r.co2e_g == 0.0
    assert r.baseline_energy_j == pytest.approx(large.energy_j)
    assert r.latency_ms == 1.5 and r.ttft_ms is None


def test_end_is_idempotent_and_abort_after_end_is_harmless(meter: Meter) -> None:
    w = meter.begin("embedded")
    first = w.end(3, 4)
    time.sleep(0.01)
    w.abort()
    assert w.end(3, 4) is first


def test_aborted_window_stops_taking_energy(meter: Meter) -> None:
    w = meter.begin("embedded")
    w.abort()
    other = meter.begin("embedded")
    burn_cpu(0.05)
    r = other.end(1, 1)
    assert w.end(0, 0).energy_j < r.energy_j


def test_context_manager_closes_a_forgotten_window(meter: Meter) -> None:
    with pytest.raises(RuntimeError), meter.begin("embedded"):
        raise RuntimeError("upstream failed")
    assert meter._accountant.open_windows == 0


def test_first_token_is_idempotent(meter: Meter) -> None:
    w = meter.begin("mid")
    w.first_token()
    time.sleep(0.01)
    w.first_token()
    r = w.end(1, 1)
    assert r.ttft_ms is not None and r.ttft_ms < r.latency_ms


def test_unknown_tier_names_the_configured_ones(meter: Meter) -> None:
    with pytest.raises(KeyError, match="embedded"):
        meter.begin("nope")


def test_negative_tokens_are_rejected(meter: Meter) -> None:
    with pytest.raises(ValueError):
        meter.begin("mid").end(-1, 0)


def test_receipt_serialises_to_json_and_headers(meter: Meter) -> None:
    r = run_local(meter, 0.02)
    body = json.loads(json.dumps(r.as_dict()))
    for key in (
        "tier",
        "model",
        "energy_j",
        "energy_source",
        "cost_usd",
        "co2e_g",
        "latency_ms",
        "ttft_ms",
        "prompt_tokens",
        "completion_tokens",
        "baseline_energy_j",
        "baseline_cost_usd",
    ):
        assert key in body
    h = r.headers()
    assert float(h["x-joulegate-energy-j"]) == pytest.approx(r.energy_j, rel=1e-5)
    assert float(h["x-joulegate-cost-usd"]) == pytest.approx(r.cost_usd, rel=1e-5)
    assert float(h["x-joulegate-co2e-g"]) == pytest.approx(r.co2e_g, rel=1e-5)
    assert h["x-joulegate-energy-source"] == "modeled:cpu"


def test_receipt_names_the_model_by_its_public_id(meter: Meter) -> None:
    """The id a client sends and sees in the response, never the bare upstream name."""
    assert run_local(meter, 0.01).model == "embedded/gemma-3-270m"
    assert meter.begin("mid").end(1, 1).model == "mid/gpt-4o-mini"


def test_figures_are_formatted_for_a_person() -> None:
    assert format_field("latency_ms", 384.5918760000586) == "384.6"
    assert format_field("energy_j", 12.345678) == "12.35"
    assert format_field("cost_usd", 1.2345e-05) == "0.000012"
    assert format_field("ttft_ms", None) == "-"
    assert format_field("prompt_tokens", 12) == "12"
    assert format_field("energy_source", "modeled:cpu") == "modeled:cpu"


def test_gateway_tier_settings_fit_the_meter() -> None:
    from joulegate.config import Settings

    s = Settings()
    meter = Meter(s.metering, s.tiers, sensor=CpuModelSensor.from_settings(s.metering))
    r = meter.begin(s.tiers[0].name).end(1, 1)
    assert r.energy_j > 0


def test_local_worst_case_covers_a_long_answer_after_short_ones(
    settings: MeteringSettings, cpu_sensor: CpuModelSensor
) -> None:
    """Budgets reserve the worst case: after cheap one-token requests (prompt cached), the
    estimate for a long answer must still exceed what that answer really costs."""
    meter = Meter(settings, [Tier("embedded", kind="embedded")], sensor=cpu_sensor)
    cold = meter.worst_case("embedded", 100, 40)
    assert cold.energy_j > 0
    for _ in range(3):
        w = meter.begin("embedded")
        burn_cpu(0.005)  # one token's worth of work
        w.end(100, 1)
    reserved = meter.worst_case("embedded", 100, 40)
    w = meter.begin("embedded")
    burn_cpu(0.2)  # forty tokens' worth
    actual = w.end(100, 40)
    assert reserved.energy_j > actual.energy_j
    assert reserved.cost_usd > actual.cost_usd
