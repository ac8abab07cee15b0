"""The CPU power model: energy follows real work done by this process."""

from __future__ import annotations

import os
import time

import pytest

from joulegate.metering import CpuModelSensor, MeteringSettings, select_sensor

from ._support import burn_cpu, burn_in_threads


def measure(sensor: CpuModelSensor, work: object, *args: float) -> float:
    before = sensor.energy_j()
    work(*args)  # type: ignore[operator]
    return sensor.energy_j() - before


def test_long_generation_uses_more_energy_than_short(cpu_sensor: CpuModelSensor) -> None:
    short = measure(cpu_sensor, burn_cpu, 0.05)
    long = measure(cpu_sensor, burn_cpu, 0.25)
    assert 0 < short < long


def test_busy_window_costs_more_than_idle_window_of_same_length(
    cpu_sensor: CpuModelSensor,
) -> None:
    idle = measure(cpu_sensor, time.sleep, 0.2)
    busy = measure(cpu_sensor, burn_cpu, 0.2)
    # About 0.2 CPU-s x (2.02 - 0.45) W = 0.31 J more; allow scheduling noise.
    assert busy - idle > 0.5 * 0.2 * (cpu_sensor.max_w - cpu_sensor.min_w)


def test_work_on_other_threads_is_counted(cpu_sensor: CpuModelSensor) -> None:
    """llama.cpp computes on its own threads: the calling thread only waits."""
    t0 = time.process_time()
    worked = measure(cpu_sensor, burn_in_threads, 0.1)
    cpu_s = time.process_time() - t0
    assert cpu_s >= 0.2  # two threads x 0.1 s, none of it on this thread
    assert worked > 0.9 * cpu_s * (cpu_sensor.max_w - cpu_sensor.min_w)


def test_idle_power_is_charged_for_wall_time() -> None:
    sensor = CpuModelSensor(min_w_per_vcpu=1.0, max_w_per_vcpu=2.0, vcpus=4, memory_gb=0.0)
    t0, c0 = time.monotonic(), time.process_time()
    joules = measure(sensor, time.sleep, 0.1)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    # 4 vCPUs x 1 W over the wall time, plus 1 W per CPU-second the sleep call used.
    assert 0.4 <= joules <= 4 * wall + cpu + 1e-9


def test_counter_never_decreases(cpu_sensor: CpuModelSensor) -> None:
    readings = [cpu_sensor.energy_j() for _ in range(1000)]
    assert readings == sorted(readings)


def test_defaults_come_from_settings() -> None:
    s = MeteringSettings(cpu_min_w_per_vcpu=0.5, cpu_max_w_per_vcpu=3.0, vcpus=3, memory_gb=2)
    sensor = CpuModelSensor.from_settings(s)
    assert (sensor.min_w, sensor.max_w, sensor.vcpus) == (0.5, 3.0, 3)
    assert sensor.idle_w == pytest.approx(3 * 0.5 + 2 * 0.392)
    assert sensor.source == "modeled:cpu"


def test_sensor_cpu_model_in_the_settings_selects_the_cpu_model() -> None:
    sensor = select_sensor(MeteringSettings(sensor="cpu-model", vcpus=3))
    assert isinstance(sensor, CpuModelSensor) and sensor.vcpus == 3
    assert sensor.source == "modeled:cpu"


def test_vcpus_default_to_the_affinity_mask(settings: MeteringSettings) -> None:
    sensor = CpuModelSensor.from_settings(settings)
    assert sensor.vcpus == len(os.sched_getaffinity(0))


def test_memory_defaults_to_resident_set(settings: MeteringSettings) -> None:
    sensor = CpuModelSensor.from_settings(settings)
    assert 0.001 < sensor.memory_gb() < 64


def test_max_below_min_is_rejected() -> None:
    with pytest.raises(ValueError, match="max"):
        CpuModelSensor(min_w_per_vcpu=2.0, max_w_per_vcpu=1.0)
