"""RAPL over powercap. A real counter is read where one is readable; everywhere else the
reading code runs against a real file tree laid out like /sys/class/powercap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joulegate.metering import MeteringSettings, RaplSensor, SensorUnavailable, select_sensor
from joulegate.metering.rapl import DEFAULT_ROOT, discover_zones

from ._support import burn_cpu

MAX_UJ = 262_143_328_850


def zone(root: Path, dirname: str, name: str, energy_uj: int, max_uj: int = MAX_UJ) -> Path:
    d = root / dirname
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_uj(d: Path, value: int) -> None:
    (d / "energy_uj").write_text(f"{value}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "powercap"
    return {
        "root": root,
        "pkg": zone(root, "intel-rapl:0", "package-0", 1_000_000),
        "core": zone(root, "intel-rapl:0:0", "core", 500_000),
        "dram": zone(root, "intel-rapl:0:1", "dram", 2_000_000),
        "psys": zone(root, "intel-rapl:1", "psys", 9_000_000),
        "mmio": zone(root, "intel-rapl-mmio:0", "package-0", 1_000_000),
    }


def test_package_and_dram_are_summed_and_nothing_else(powercap: dict[str, Path]) -> None:
    sensor = RaplSensor.open(powercap["root"])
    assert sorted(sensor.zone_names) == ["dram", "package-0"]
    assert sensor.energy_j() == 0.0
    set_uj(powercap["pkg"], 4_000_000)  # +3 J
    set_uj(powercap["dram"], 2_500_000)  # +0.5 J
    set_uj(powercap["core"], 9_500_000)  # inside the package: ignored
    set_uj(powercap["psys"], 99_000_000)  # whole platform: ignored
    assert sensor.energy_j() == pytest.approx(3.5)
    assert sensor.source == "measured:rapl"


def test_counter_wrap_around_is_corrected(powercap: dict[str, Path]) -> None:
    set_uj(powercap["pkg"], MAX_UJ - 1_000_000)
    sensor = RaplSensor.open(powercap["root"])
    set_uj(powercap["pkg"], 2_000_000)  # wrapped: 1 J before the top + 2 J after
    assert sensor.energy_j() == pytest.approx(3.0)
    set_uj(powercap["pkg"], 3_000_000)
    assert sensor.energy_j() == pytest.approx(4.0)


def test_zones_listed_twice_are_counted_once(powercap: dict[str, Path]) -> None:
    (powercap["root"] / "intel-rapl:0:1-alias").symlink_to(powercap["dram"])
    zones = discover_zones(powercap["root"])
    assert len(zones) == 2


def test_missing_tree_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="does not exist"):
        RaplSensor.open(tmp_path / "nope")


def test_tree_without_package_zones_is_unavailable(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:1", "psys", 1)
    with pytest.raises(SensorUnavailable, match="no RAPL package"):
        RaplSensor.open(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_counter_says_why(powercap: dict[str, Path]) -> None:
    (powercap["pkg"] / "energy_uj").chmod(0)
    with pytest.raises(SensorUnavailable, match="root-only"):
        RaplSensor.open(powercap["root"])


def test_explicit_rapl_choice_uses_the_configured_root(powercap: dict[str, Path]) -> None:
    sensor = select_sensor(MeteringSettings(sensor="rapl", rapl_root=powercap["root"]))
    assert isinstance(sensor, RaplSensor)


def test_auto_prefers_readable_rapl_over_the_cpu_model(powercap: dict[str, Path]) -> None:
    sensor = select_sensor(MeteringSettings(sensor="auto", rapl_root=powercap["root"]))
    assert sensor.name == "rapl"


def _real_rapl() -> RaplSensor | None:
    try:
        return RaplSensor.open(DEFAULT_ROOT)
    except SensorUnavailable:
        return None


def test_real_rapl_counts_work() -> None:
    sensor = _real_rapl()
    if sensor is None:
        try:
            discover_zones(DEFAULT_ROOT)
            why = "RAPL zones exist but energy_uj is not readable by this user"
        except SensorUnavailable as exc:
            why = str(exc)
        pytest.skip(f"no readable RAPL on this machine: {why}")
    before = sensor.energy_j()
    burn_cpu(0.3)
    assert sensor.energy_j() > before
