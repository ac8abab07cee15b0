"""Fixtures for the metering tests."""

from __future__ import annotations

import pytest

from joulegate.metering import CpuModelSensor, MeteringSettings


@pytest.fixture
def settings() -> MeteringSettings:
    return MeteringSettings(sensor="cpu-model")


@pytest.fixture
def cpu_sensor(settings: MeteringSettings) -> CpuModelSensor:
    return CpuModelSensor.from_settings(settings)
