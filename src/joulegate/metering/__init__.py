"""Energy, cost and CO2e receipts for every request (docs/energy.md).

sensor = select_sensor(settings.metering)              # NVML, RAPL or the CPU model
meter = Meter(settings.metering, settings.tiers, sensor)
window = meter.begin("embedded")
...                                                   # window.first_token() on the first
receipt = window.end(prompt_tokens, completion_tokens)
observe(receipt)                                      # Prometheus
body["joulegate"] = receipt.as_dict(); headers.update(receipt.headers())

Sensor selection lives here, in the package's front door, as zeus's ``zeus.device`` does it:
``sensors.py`` is only the interface, the implementations import it, and only this module
knows them all, so no module of the package imports one that imports it back.
"""

from __future__ import annotations

import logging

from joulegate.metering.accountant import EnergyAccountant
from joulegate.metering.cpu_model import CpuModelSensor
from joulegate.metering.meter import Meter, MeterWindow
from joulegate.metering.metrics import MeteringMetrics, default_metrics, observe
from joulegate.metering.nvml import NvmlSensor
from joulegate.metering.pricing import TierLike, TierPricing
from joulegate.metering.rapl import RaplSensor
from joulegate.metering.receipt import SOURCES, Receipt
from joulegate.metering.sensors import MeteringError, Sensor, SensorUnavailable
from joulegate.metering.settings import MeteringSettings, TierProfile

__all__ = [
    "SOURCES",
    "CpuModelSensor",
    "EnergyAccountant",
    "Meter",
    "MeterWindow",
    "MeteringError",
    "MeteringMetrics",
    "MeteringSettings",
    "NvmlSensor",
    "RaplSensor",
    "Receipt",
    "Sensor",
    "SensorUnavailable",
    "TierLike",
    "TierPricing",
    "TierProfile",
    "default_metrics",
    "observe",
    "select_sensor",
]


log = logging.getLogger(__name__)


def select_sensor(settings: MeteringSettings) -> Sensor:
    """Open the sensor ``settings.sensor`` names, or the best available one for "auto".

    "auto" tries NVML only when the local model runs on the GPU (``local_uses_gpu``); a GPU
    that the model does not use would meter the wrong device. Then RAPL, when the powercap
    counters are readable (usually root only). Then the CPU power model, which always works.
    An explicit choice that cannot be opened raises :class:`SensorUnavailable`.
    """
    choice = settings.sensor
    if choice == "nvml":
        return NvmlSensor.open(settings.nvml_devices)
    if choice == "rapl":
        return RaplSensor.open(settings.rapl_root)
    if choice == "cpu-model":
        return CpuModelSensor.from_settings(settings)

    reasons: list[str] = []
    if settings.local_uses_gpu:
        try:
            return NvmlSensor.open(settings.nvml_devices)
        except SensorUnavailable as exc:
            reasons.append(f"nvml: {exc}")
    else:
        reasons.append("nvml: skipped, local_uses_gpu is false")
    try:
        return RaplSensor.open(settings.rapl_root)
    except SensorUnavailable as exc:
        reasons.append(f"rapl: {exc}")
    log.info("metering with the CPU power model (%s)", "; ".join(reasons))
    return CpuModelSensor.from_settings(settings)
