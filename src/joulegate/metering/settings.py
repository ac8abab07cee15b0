"""Metering assumptions: every coefficient is configurable and documented in docs/energy.md.

Each default names its source in the comment beside it; docs/energy.md has the arithmetic.
Nothing here is fetched at run time: a default is a published figure frozen at the date given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

SensorChoice = Literal["auto", "nvml", "rapl", "cpu-model"]


class TierProfile(BaseModel):
    """Per-tier energy, price and carbon profile. ``None`` means "use the metering default".

    For a remote (``kind = "openai"``) tier the per-token fields are the whole energy model:
    nothing on that tier can be measured from here, so its receipts say ``estimated:profile``.
    For a local tier the per-token fields are only used when that tier is the *baseline* of
    another tier's request (see docs/energy.md, "Counterfactual").
    """

    # Joules per token, full-stack (accelerator + host + idle share + facility overhead).
    # Default: MeteringSettings.remote_joules_per_input_token / _output_token.
    joules_per_input_token: float | None = Field(default=None, ge=0)
    joules_per_output_token: float | None = Field(default=None, ge=0)
    # API list price, USD per million tokens. Default: MeteringSettings.remote_usd_per_mtok_*.
    usd_per_mtok_input: float | None = Field(default=None, ge=0)
    usd_per_mtok_output: float | None = Field(default=None, ge=0)
    # Grid carbon intensity where this tier runs, g CO2e per kWh.
    # Default: MeteringSettings.grid_gco2_per_kwh (local) / remote_grid_gco2_per_kwh (remote).
    grid_gco2_per_kwh: float | None = Field(default=None, ge=0)
    # Power usage effectiveness multiplied onto the tier's energy. Default: MeteringSettings.pue
    # (local) / remote_pue (remote; 1.0 because the remote per-token defaults are full-stack).
    pue: float | None = Field(default=None, ge=1.0)
    # Local tiers only: electricity price and amortised hardware. Default: MeteringSettings.
    usd_per_kwh: float | None = Field(default=None, ge=0)
    hardware_usd_per_hour: float | None = Field(default=None, ge=0)
    # True: an "openai"-kind tier that runs on *this* machine (a local vLLM / llama-server)
    # and is metered by the sensor like the embedded tier. None/False: remote, estimated.
    measured: bool | None = None
    # Reasoning tiers only: how many times the output tokens of an ordinary answer one of
    # its answers takes, thinking included. Default: MeteringSettings.reasoning_output_multiplier.
    output_multiplier: float | None = Field(default=None, ge=1.0)


class MeteringSettings(BaseModel):
    # -- sensor ---------------------------------------------------------------------------
    # "auto": NVML when a GPU is usable and local_uses_gpu, else RAPL when readable, else
    # the CPU power model. An explicit choice that is unavailable is an error at start-up.
    sensor: SensorChoice = "auto"
    # Whether the local model runs on an NVIDIA GPU (llama.cpp n_gpu_layers > 0, or a
    # measured upstream on this machine's GPU). False: "auto" never picks NVML.
    local_uses_gpu: bool = False
    # NVML device indices to sum; None: every device NVML reports.
    nvml_devices: list[int] | None = None
    # Root of the powercap tree (a test can point it at a fake tree).
    rapl_root: Path = Path("/sys/class/powercap")

    # -- CPU power model (Cloud Carbon Footprint methodology: W = min + u x (max - min)) -------
    # Per-vCPU idle and full-load watts. Source: cloud-carbon-coefficients, `amd-epyc-gen3`
    # (SPECpower-derived), the closest published coefficients for our 4th-gen EPYC CI hosts.
    cpu_min_w_per_vcpu: float = Field(default=0.45, ge=0)
    cpu_max_w_per_vcpu: float = Field(default=2.02, ge=0)
    # vCPUs whose idle power is attributed; None: the CPUs this process may run on (its
    # affinity mask; os.cpu_count() where the platform has none).
    vcpus: int | None = Field(default=None, ge=1)
    # Memory power. Source: Cloud Carbon Footprint, 0.392 W per GB.
    memory_w_per_gb: float = Field(default=0.392, ge=0)
    # GB of memory to charge; None: this process's resident set, sampled at every reading.
    memory_gb: float | None = Field(default=None, ge=0)

    # -- local tiers: facility, money, carbon -----------------------------------------------
    # PUE for this machine. 1.0: a personal machine or CI VM has no facility overhead we can
    # see (set 1.56 for an average data centre, Uptime Institute 2024; 1.1 hyperscale).
    pue: float = Field(default=1.0, ge=1.0)
    # USD per kWh. Source: U.S. EIA, average retail price of electricity to residential
    # customers, 2024 annual, 16.48 cents/kWh (Electric Power Monthly, table 5.3).
    usd_per_kwh: float = Field(default=0.1648, ge=0)
    # Amortised hardware, USD per hour of device time used. Assumption, not a published
    # figure: a USD 1,500 machine written off over 3 years of wall-clock time (26,280 h).
    hardware_usd_per_hour: float = Field(default=1500.0 / (3 * 8760), ge=0)
    # Grid carbon intensity, g CO2e per kWh. Source: Our World in Data, United States 2023,
    # 369.5 g/kWh (as packaged in CodeCarbon's global_energy_mix.json).
    grid_gco2_per_kwh: float = Field(default=369.5, ge=0)

    # -- remote tiers: defaults for TierProfile fields left at None --------------------------
    # Full-stack joules per token of a GPT-4o-class model. Derived from Epoch AI (Feb 2025):
    # 0.3 Wh for a typical query, 2.5 Wh with a 10k-token input -> (2.5 - 0.3) Wh / 10k tokens
    # = 0.79 J per input token; (1,080 J - ~100 input tokens x 0.79 J) / ~500 output tokens
    # = 2.0 J per output token. Cross-checked in docs/energy.md against Google's 0.24 Wh
    # median prompt and ML.ENERGY's Llama 3.1 70B/405B measurements scaled to full-stack.
    remote_joules_per_input_token: float = Field(default=0.8, ge=0)
    remote_joules_per_output_token: float = Field(default=2.0, ge=0)
    # OpenAI API list price for gpt-4o (2024-08-06 snapshot): USD 2.50 in / 10.00 out per Mtok.
    remote_usd_per_mtok_input: float = Field(default=2.50, ge=0)
    remote_usd_per_mtok_output: float = Field(default=10.00, ge=0)
    # Where a remote tier runs is usually unknown: the US grid average, as for local tiers.
    remote_grid_gco2_per_kwh: float = Field(default=369.5, ge=0)
    # 1.0: the per-token defaults above already include facility overhead (full-stack).
    remote_pue: float = Field(default=1.0, ge=1.0)

    # -- reasoning tiers (docs/energy.md, "Reasoning tiers") -----------------------------------
    # Output tokens per answer of a reasoning model, relative to an ordinary chat model's.
    # Source: ML.ENERGY Leaderboard v3 (Dec 2025): reasoning responses run about 10x the
    # tokens (and about 25x the energy: 4,625 J vs 184 J) of chat responses. Metering counts
    # the actual tokens; this only sizes what the gateway expects *before* an answer: the
    # token bound and budget hold of a request that names no max_tokens.
    reasoning_output_multiplier: float = Field(default=10.0, ge=1.0)

    # -- budget reservations for local tiers (docs/keys.md) ----------------------------------
    # A local tier's request reserves the J and device seconds measured so far per generated
    # token (prompt cost included), times this margin.
    worst_case_margin: float = Field(default=2.0, ge=1.0)
    # Before the tier's first measured request: this many seconds of every vCPU at full power
    # per generated token, a tenth of that per prompt token (0.1 s: ~10 tok/s, well below the
    # ~55 tok/s measured here on 2 cores).
    cold_s_per_token: float = Field(default=0.1, gt=0)

    # -- cache hits ---------------------------------------------------------------------------
    # Energy charged for answering from the cache. 0.0: a lookup costs microjoules, far below
    # what any sensor here resolves; the receipt says energy_source = "cache".
    cache_hit_j: float = Field(default=0.0, ge=0)
