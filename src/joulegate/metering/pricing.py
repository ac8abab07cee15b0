"""Energy -> money and carbon, per tier. Every formula a receipt follows is in this file.

Local (measured) tier, device energy E_dev joules over a fair share of s device-seconds:
    energy_j = E_dev x pue
    cost_usd = energy_j / 3.6e6 x usd_per_kwh + hardware_usd_per_hour x s / 3600
    co2e_g   = energy_j / 3.6e6 x grid_gco2_per_kwh
Remote (estimated) tier, p prompt and c completion tokens:
    energy_j = (J_in x p + J_out x c) x pue
    cost_usd = (usd_per_mtok_input x p + usd_per_mtok_output x c) / 1e6
    co2e_g   = energy_j / 3.6e6 x grid_gco2_per_kwh
An upstream on this machine that the sensor cannot see (``measured = true`` under the
process-scoped CPU model) is estimated the same way, but priced as what it is, a local
model: this machine's PUE and grid, and electricity rather than a hosted API's list price
(unless its profile sets per-token prices):
    cost_usd = energy_j / 3.6e6 x usd_per_kwh
Every tier's energy_j carries its own facility overhead (local tiers: [metering] pue;
hosted tiers: full-stack figures), so one saving, baseline - actual, needs no correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from joulegate.metering.settings import MeteringSettings, TierProfile

J_PER_KWH = 3.6e6


class TierLike(Protocol):
    """What the meter needs of a tier; ``joulegate.backends.TierSettings`` fits."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def public_id(self) -> str: ...
    @property
    def profile(self) -> TierProfile: ...


@dataclass(frozen=True)
class Figures:
    energy_j: float
    cost_usd: float
    co2e_g: float


@dataclass(frozen=True)
class TierPricing:
    """A tier's profile with every ``None`` replaced by the metering default: the prices and
    energy figures its receipts are computed with. (Which tiers a request tries is a
    different thing, ``server.planning.Plan``.)"""

    name: str
    model: str  # the public id, ``<tier>/<model>``: what receipts and the ledger call "model"
    local: bool  # measured by this machine's sensor
    pue: float
    grid_gco2_per_kwh: float
    usd_per_kwh: float
    hardware_usd_per_hour: float
    # Remote: always set. Local: only what the profile sets (used as a baseline estimate).
    joules_per_input_token: float | None
    joules_per_output_token: float | None
    usd_per_mtok_input: float
    usd_per_mtok_output: float
    # How many times an ordinary answer's output tokens one answer of this tier takes: 1,
    # or for a reasoning tier the profile's (or the default) multiplier.
    output_multiplier: float = 1.0
    # Runs on this machine (embedded, or ``measured = true``), measurable or not: priced
    # with this machine's PUE, grid and electricity.
    on_machine: bool = False
    # ``estimated`` charges the per-token list prices (a hosted tier, or a profile that
    # sets them); otherwise the electricity of the estimated energy.
    per_token_price: bool = True

    @classmethod
    def resolve(
        cls, tier: TierLike, s: MeteringSettings, *, sensor_sees_other_processes: bool = True
    ) -> TierPricing:
        """``measured = true`` on an upstream tier is honoured only by a machine-wide sensor
        (RAPL, NVML); a process-scoped one would see none of that server's work."""
        p = tier.profile
        here = tier.kind == "embedded" or bool(p.measured)
        local = tier.kind == "embedded" or (bool(p.measured) and sensor_sees_other_processes)

        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        return cls(
            name=tier.name,
            model=tier.public_id,
            local=local,
            pue=pick(p.pue, s.pue if here else s.remote_pue),
            grid_gco2_per_kwh=pick(
                p.grid_gco2_per_kwh, s.grid_gco2_per_kwh if here else s.remote_grid_gco2_per_kwh
            ),
            usd_per_kwh=pick(p.usd_per_kwh, s.usd_per_kwh),
            hardware_usd_per_hour=pick(p.hardware_usd_per_hour, s.hardware_usd_per_hour),
            joules_per_input_token=(
                p.joules_per_input_token
                if local
                else pick(p.joules_per_input_token, s.remote_joules_per_input_token)
            ),
            joules_per_output_token=(
                p.joules_per_output_token
                if local
                else pick(p.joules_per_output_token, s.remote_joules_per_output_token)
            ),
            usd_per_mtok_input=pick(p.usd_per_mtok_input, s.remote_usd_per_mtok_input),
            usd_per_mtok_output=pick(p.usd_per_mtok_output, s.remote_usd_per_mtok_output),
            output_multiplier=(
                pick(p.output_multiplier, s.reasoning_output_multiplier)
                if getattr(tier, "reasoning", False)
                else 1.0
            ),
            on_machine=here,
            per_token_price=not here
            or p.usd_per_mtok_input is not None
            or p.usd_per_mtok_output is not None,
        )

    def expected_answer(self, prompt_tokens: int, output_tokens: int) -> Figures:
        """What one answer is expected to cost before it is given: ``output_tokens`` of an
        ordinary answer, times the tier's output multiplier (many times more for a reasoning
        tier). Estimated from the per-token profile; a local tier without one has no figure
        here (its cost is measured), and gets energy 0 with its list prices."""
        return self.estimated(prompt_tokens, round(output_tokens * self.output_multiplier))

    @property
    def has_token_profile(self) -> bool:
        return self.joules_per_input_token is not None and self.joules_per_output_token is not None

    def co2e_g(self, energy_j: float) -> float:
        return energy_j / J_PER_KWH * self.grid_gco2_per_kwh

    def measured(self, device_j: float, device_s: float) -> Figures:
        """Figures for energy measured on this machine over ``device_s`` seconds of use."""
        energy = device_j * self.pue
        cost = (
            energy / J_PER_KWH * self.usd_per_kwh + self.hardware_usd_per_hour * device_s / 3600.0
        )
        return Figures(energy, cost, self.co2e_g(energy))

    def estimated(self, prompt_tokens: int, completion_tokens: int) -> Figures:
        """Figures from the per-token profile: at list prices (remote tiers), or at this
        machine's electricity price for a local model the sensor cannot see."""
        j_in = self.joules_per_input_token or 0.0
        j_out = self.joules_per_output_token or 0.0
        energy = (j_in * prompt_tokens + j_out * completion_tokens) * self.pue
        if self.per_token_price:
            cost = (
                self.usd_per_mtok_input * prompt_tokens
                + self.usd_per_mtok_output * completion_tokens
            ) / 1e6
        else:
            cost = energy / J_PER_KWH * self.usd_per_kwh
        return Figures(energy, cost, self.co2e_g(energy))
