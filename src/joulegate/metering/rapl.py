"""RAPL through Linux powercap: package + DRAM energy counters in ``/sys/class/powercap``.

Zones are directories named ``intel-rapl:N`` (a CPU package) and ``intel-rapl:N:M`` (its
sub-domains); AMD Zen CPUs appear under the same names on Linux >= 5.8. We sum every zone
whose ``name`` is ``package-*`` or ``dram``: "core" and "uncore" are already inside their
package, and "psys" (whole platform, client parts) would count the package twice.

Each zone's ``energy_uj`` wraps at ``max_energy_range_uj``; a reading below the previous one
means one wrap. Two wraps between readings are undetectable, which at the usual 262 kJ range
means a gap of tens of minutes at full load; the meter reads the counter at every request's
start and end, so only an idle gap can be that long, and idle gaps are not attributed.

Since Linux 5.10 (CVE-2020-8694) ``energy_uj`` is readable by root only; then "auto" falls
back to the CPU model and an explicit ``sensor = "rapl"`` says why.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from joulegate.metering.sensors import Sensor, SensorUnavailable

DEFAULT_ROOT = Path("/sys/class/powercap")


@dataclass
class _Zone:
    path: Path
    name: str
    max_uj: int
    last_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def discover_zones(root: Path = DEFAULT_ROOT) -> list[tuple[Path, str]]:
    """The package and DRAM zones under ``root``, deduplicated, as (path, name)."""
    if not root.is_dir():
        raise SensorUnavailable(f"{root} does not exist (no powercap support or not Linux)")
    seen: set[Path] = set()
    zones: list[tuple[Path, str]] = []
    for entry in sorted(root.glob("intel-rapl:*")):
        real = entry.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            name = (entry / "name").read_text().strip()
        except OSError:
            continue
        if name.startswith("package") or name == "dram":
            zones.append((entry, name))
    if not zones:
        raise SensorUnavailable(f"no RAPL package or dram zone under {root}")
    return zones


class RaplSensor(Sensor):
    """Cumulative package + DRAM joules, corrected for counter wrap-around.

    RAPL measures the whole socket: other processes' work and the machine's idle power are
    in it. The accountant attributes only the intervals when a request is open.
    """

    name = "rapl"
    source = "measured:rapl"

    def __init__(self, zones: list[tuple[Path, str]]) -> None:
        self._lock = threading.Lock()
        self._zones: list[_Zone] = []
        for path, name in zones:
            try:
                max_uj = int((path / "max_energy_range_uj").read_text().strip())
                now = int((path / "energy_uj").read_text().strip())
            except PermissionError as exc:
                raise SensorUnavailable(
                    f"{path / 'energy_uj'} is not readable by this user ({exc.strerror}); "
                    "RAPL counters are root-only since Linux 5.10 (CVE-2020-8694)"
                ) from exc
            except (OSError, ValueError) as exc:
                raise SensorUnavailable(f"cannot read RAPL zone {path}: {exc}") from exc
            self._zones.append(_Zone(path, name, max_uj, now))
        self._total_uj = 0

    @classmethod
    def open(cls, root: Path = DEFAULT_ROOT) -> RaplSensor:
        return cls(discover_zones(Path(root)))

    @property
    def zone_names(self) -> list[str]:
        return [z.name for z in self._zones]

    def energy_j(self) -> float:
        with self._lock:
            for zone in self._zones:
                now = zone.read_uj()
                delta = now - zone.last_uj
                if delta < 0:  # wrapped once (a reset with no range known: count from 0)
                    delta = delta + zone.max_uj if zone.max_uj > 0 else now
                self._total_uj += max(0, delta)
                zone.last_uj = now
            return self._total_uj / 1e6
