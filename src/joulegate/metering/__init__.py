"""Energy, cost and CO2e receipts for every request (docs/energy.md).

meter = Meter(settings.metering, settings.tiers)      # picks a sensor unless given one
window = meter.begin("embedded")
...                                                   # window.first_token() on the first
receipt = window.end(prompt_tokens, completion_tokens)
observe(receipt)                                      # Prometheus
body["joulegate"] = receipt.as_dict(); headers.update(receipt.headers())
"""

from joulegate.metering.accountant import EnergyAccountant
from joulegate.metering.cpu_model import CpuModelSensor
from joulegate.metering.meter import Meter, MeterWindow
from joulegate.metering.metrics import MeteringMetrics, default_metrics, observe
from joulegate.metering.nvml import NvmlSensor
from joulegate.metering.pricing import TierLike, TierPlan
from joulegate.metering.rapl import RaplSensor
from joulegate.metering.receipt import SOURCES, Receipt
from joulegate.metering.sensors import MeteringError, Sensor, SensorUnavailable, select_sensor
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
    "TierPlan",
    "TierProfile",
    "default_metrics",
    "observe",
    "select_sensor",
]
