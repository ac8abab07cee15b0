"""NVML: read the real counter where a GPU exists; elsewhere, check the failure is clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulegate.metering import MeteringSettings, NvmlSensor, SensorUnavailable, select_sensor


def _real_nvml() -> tuple[NvmlSensor | None, str]:
    try:
        return NvmlSensor.open(), ""
    except SensorUnavailable as exc:
        return None, str(exc)


def test_real_gpu_counter_is_cumulative() -> None:
    sensor, why = _real_nvml()
    if sensor is None:
        pytest.skip(f"no usable NVIDIA GPU: {why}")
    try:
        first = sensor.energy_j()
        readings = [sensor.energy_j() for _ in range(50)]
        assert first >= 0 and readings == sorted(readings)
        assert sensor.source == "measured:nvml"
    finally:
        sensor.close()


def test_explicit_nvml_without_a_gpu_is_a_clear_error() -> None:
    sensor, _ = _real_nvml()
    if sensor is not None:
        sensor.close()
        pytest.skip("this machine has a usable NVIDIA GPU")
    with pytest.raises(SensorUnavailable) as err:
        select_sensor(MeteringSettings(sensor="nvml"))
    assert any(w in str(err.value) for w in ("nvidia-ml-py", "NVML", "GPU"))


def test_nonexistent_device_index_is_rejected() -> None:
    sensor, why = _real_nvml()
    if sensor is None:
        pytest.skip(f"no usable NVIDIA GPU: {why}")
    sensor.close()
    with pytest.raises(SensorUnavailable, match="do not exist"):
        NvmlSensor.open([10_000])


def test_auto_ignores_the_gpu_unless_the_local_model_uses_it(tmp_path: Path) -> None:
    sensor = select_sensor(MeteringSettings(sensor="auto", rapl_root=tmp_path / "none"))
    assert sensor.name == "cpu-model"


def test_auto_falls_back_to_the_cpu_model_when_nvml_is_wanted_but_absent(
    tmp_path: Path,
) -> None:
    real, _ = _real_nvml()
    if real is not None:
        real.close()
        pytest.skip("this machine has a usable NVIDIA GPU")
    s = MeteringSettings(sensor="auto", local_uses_gpu=True, rapl_root=tmp_path / "none")
    assert select_sensor(s).name == "cpu-model"
