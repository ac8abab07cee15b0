"""Prometheus series: one receipt moves every counter by its own figures."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from joulegate.metering import MeteringMetrics, Receipt, observe
from joulegate.metering.receipt import AMOUNTS, BASELINE_AMOUNTS


def receipt(**kw: object) -> Receipt:
    base: dict[str, object] = dict(
        tier="embedded",
        model="m",
        energy_j=12.5,
        energy_source="modeled:cpu",
        cost_usd=0.002,
        co2e_g=0.0013,
        latency_ms=250.0,
        ttft_ms=40.0,
        prompt_tokens=10,
        completion_tokens=20,
        baseline_tier="large",
        baseline_energy_j=48.0,
        baseline_cost_usd=0.0002,
        baseline_co2e_g=0.005,
    )
    base.update(kw)
    return Receipt(**base)  # type: ignore[arg-type]


def test_observe_counts_by_tier() -> None:
    reg = CollectorRegistry()
    m = MeteringMetrics(reg)
    observe(receipt(), metrics=m)
    observe(receipt(energy_j=7.5, ttft_ms=None), status="error", metrics=m)

    def v(name: str, **labels: str) -> float:
        value = reg.get_sample_value(name, labels)
        assert value is not None, name
        return value

    assert (
        v("joulegate_requests_total", tier="embedded", status="ok", energy_source="modeled:cpu")
        == 1
    )
    assert v("joulegate_energy_joules_total", tier="embedded", energy_source="modeled:cpu") == (
        pytest.approx(20.0)
    )
    assert v("joulegate_co2e_grams_total", tier="embedded") == pytest.approx(0.0026)
    assert v("joulegate_cost_usd_total", tier="embedded") == pytest.approx(0.004)
    assert v("joulegate_baseline_energy_joules_total", tier="embedded") == pytest.approx(96.0)
    assert v("joulegate_request_latency_seconds_count", tier="embedded") == 2
    assert v("joulegate_time_to_first_token_seconds_count", tier="embedded") == 1
    assert v("joulegate_tokens_total", tier="embedded", kind="completion") == 40
    assert b"joulegate_request_latency_seconds_bucket" in generate_latest(reg)


def test_default_registry_is_used_without_arguments() -> None:
    from prometheus_client import REGISTRY

    from joulegate.metering import default_metrics

    assert default_metrics() is default_metrics()
    before = REGISTRY.get_sample_value("joulegate_cost_usd_total", {"tier": "zz"}) or 0.0
    observe(receipt(tier="zz"))
    assert REGISTRY.get_sample_value("joulegate_cost_usd_total", {"tier": "zz"}) == (
        pytest.approx(before + 0.002)
    )


def test_every_priced_amount_and_its_baseline_has_a_counter() -> None:
    """A figure added to the receipt's lists cannot silently miss Prometheus."""
    reg = CollectorRegistry()
    m = MeteringMetrics(reg)
    r = receipt()
    observe(r, metrics=m)
    assert set(m.amounts) == {*AMOUNTS, *BASELINE_AMOUNTS}
    for field, counter in m.amounts.items():
        name = counter.describe()[0].name
        labels = {"tier": "embedded"}
        if field == "energy_j":
            labels["energy_source"] = "modeled:cpu"
        assert reg.get_sample_value(f"{name}_total", labels) == pytest.approx(getattr(r, field))
