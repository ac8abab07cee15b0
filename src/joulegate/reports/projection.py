"""Fleet-scale projection: what a per-query saving is worth at a year of real traffic.

The ledger says how many joules each request took; operators and the public debate think
in GWh, homes, tonnes CO2e and money. This module is the pure arithmetic between the two,
with no I/O, so every number the CLI and the dashboard print is testable on its own.
Sources for every default are in ``docs/projection.md``.

Two scenarios are compared at the same query volume:

* **baseline** — every query served by the largest tier;
* **routed** — the measured (or given) tier mix, optionally with a *rebound*: cheaper,
  more efficient queries invite more of them.

Rebound uses the constant-elasticity form standard in the rebound literature (Sorrell &
Dimitropoulos 2008, *Ecological Economics* 65:636): demand for the service scales with the
efficiency gain raised to an elasticity ``e``::

    routed_queries = queries × (baseline_J_per_query / routed_J_per_query) ** e

``e = 0`` is no rebound, ``0 < e < 1`` a partial rebound (some of the saving is taken back),
``e = 1`` a full rebound (energy back at the baseline), ``e > 1`` backfire (Jevons).

Energy basis. Joules measured at the device (GPU/CPU counters, or a GPU-only profile such
as the ML.ENERGY leaderboard) exclude cooling and power conversion, so they are multiplied
by the PUE to get facility energy (``energy_basis="device"``). Full-stack figures (Google's
0.24 Wh per Gemini prompt, Epoch AI's 0.3 Wh per GPT-4o query, joulegate's remote-tier
estimates) already include it and must not be multiplied again (``"facility"``). Each
scenario has its own basis. Grid carbon and electricity price are per kWh drawn from the
grid, so they apply to facility energy.

From the ledger (:func:`inputs_from_ledger`) both scenarios are on the receipts' basis, as
metered: every tier's joules already carry its own facility overhead (``[metering] pue`` on
this machine's tiers, full-stack figures for hosted ones, docs/energy.md), so the PUE is
applied to every tier or to none and never again here. The projection's saved share is
then exactly the one receipts, ``joulegate report`` and the dashboard show. To project a
data-centre deployment of the local tiers, set ``[metering] pue`` (1.56 for an average one):
the receipts then carry it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "DAYS_PER_YEAR",
    "DEFAULT_GRID_G_PER_KWH",
    "DEFAULT_KWH_PER_HOME_YEAR",
    "DEFAULT_PUE",
    "DEFAULT_QUERIES_PER_DAY",
    "DEFAULT_USD_PER_KWH",
    "HOURS_PER_YEAR",
    "Projection",
    "ProjectionInputs",
    "Scenario",
    "TierShare",
    "homes_for_continuous_load",
    "inputs_from_ledger",
    "project",
]

EnergyBasis = Literal["device", "facility"]

DAYS_PER_YEAR = 365.0
HOURS_PER_YEAR = DAYS_PER_YEAR * 24.0  # 8,760 h: the convention behind "10 GW ≈ 87.6 TWh/yr"
J_PER_KWH = 3.6e6

# U.S. EIA, FAQ 97 "How much electricity does an American home use?" (2020 data, FAQ of Oct 2021):
# 10,715 kWh per residential customer per year.
DEFAULT_KWH_PER_HOME_YEAR = 10_715.0
# Our World in Data (Ember / Energy Institute), carbon intensity of electricity generation,
# United States, 2023: 369.5 gCO2e/kWh (lifecycle). EIA FAQ 74 gives ≈ 390 g CO2/kWh (2022).
DEFAULT_GRID_G_PER_KWH = 369.5
# Uptime Institute, Global Data Center Survey 2024: average annual PUE 1.56.
DEFAULT_PUE = 1.56
# U.S. EIA, Electric Power Annual 2023: average retail price to industrial customers,
# 8.06 ¢/kWh. Large data centers buy power on industrial-class tariffs.
DEFAULT_USD_PER_KWH = 0.0806
# One billion queries a day: the order of one large assistant (OpenAI reported ChatGPT at
# ~1 bn prompts/day in Dec 2024 and 2.5 bn in Jul 2025), so the answer is "one big service".
DEFAULT_QUERIES_PER_DAY = 1e9


@dataclass(frozen=True, slots=True)
class TierShare:
    """One tier's share of the traffic and its energy per query (joules)."""

    name: str
    share: float
    energy_per_query_j: float


@dataclass(frozen=True, slots=True)
class ProjectionInputs:
    """Everything the projection depends on; each field has a documented default source."""

    energy_per_query_j: float
    baseline_energy_per_query_j: float
    queries_per_day: float = DEFAULT_QUERIES_PER_DAY
    energy_basis: EnergyBasis = "device"
    baseline_energy_basis: EnergyBasis | None = None  # None: same as energy_basis
    pue: float = DEFAULT_PUE
    grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH
    usd_per_kwh: float = DEFAULT_USD_PER_KWH
    kwh_per_home_year: float = DEFAULT_KWH_PER_HOME_YEAR
    rebound_elasticity: float = 0.0
    # Price paid per query to the model providers (API spend), when known: separate from
    # the electricity bill, and usually far larger for hosted models.
    cost_per_query_usd: float | None = None
    baseline_cost_per_query_usd: float | None = None
    tier_mix: tuple[TierShare, ...] = ()
    source: str = "given"

    def __post_init__(self) -> None:
        if self.energy_per_query_j <= 0 or self.baseline_energy_per_query_j <= 0:
            raise ValueError("energy per query must be positive (no requests in the ledger?)")
        if self.queries_per_day < 0:
            raise ValueError("queries per day must be >= 0")
        if self.pue < 1.0:
            raise ValueError(f"PUE is facility/IT energy and cannot be below 1, got {self.pue}")
        if self.baseline_energy_basis is None:
            object.__setattr__(self, "baseline_energy_basis", self.energy_basis)
        for basis in (self.energy_basis, self.baseline_energy_basis):
            if basis not in ("device", "facility"):
                raise ValueError(f"energy basis must be 'device' or 'facility', not {basis!r}")

    @classmethod
    def from_tier_mix(
        cls, mix: Sequence[TierShare], baseline_energy_per_query_j: float | None = None, **kw: Any
    ) -> ProjectionInputs:
        """Routed energy is the share-weighted mean; the baseline defaults to the costliest tier."""
        total = sum(t.share for t in mix)
        if not mix or total <= 0:
            raise ValueError("a tier mix needs at least one tier with a positive share")
        normalised = tuple(replace(t, share=t.share / total) for t in mix)
        routed = sum(t.share * t.energy_per_query_j for t in normalised)
        baseline = baseline_energy_per_query_j or max(t.energy_per_query_j for t in normalised)
        return cls(
            energy_per_query_j=routed,
            baseline_energy_per_query_j=baseline,
            tier_mix=normalised,
            **kw,
        )

    @property
    def efficiency_gain(self) -> float:
        """How many routed queries fit in the energy of one baseline query."""
        return self.baseline_energy_per_query_j / self.energy_per_query_j


@dataclass(frozen=True, slots=True)
class Scenario:
    """One year of a fleet, in the units the public debate uses."""

    queries_per_day: float
    energy_per_query_j: float  # facility-side, after PUE where the input was device-side
    kwh_per_year: float
    homes: float
    tonnes_co2e: float
    electricity_usd: float
    spend_usd: float | None = None

    @property
    def gwh_per_year(self) -> float:
        return self.kwh_per_year / 1e6

    @property
    def average_mw(self) -> float:
        """The continuous load this fleet puts on the grid."""
        return self.kwh_per_year / HOURS_PER_YEAR / 1e3

    def minus(self, other: Scenario) -> Scenario:
        """``self - other`` field by field: the saving when ``self`` is the baseline."""
        spend = (
            None
            if self.spend_usd is None or other.spend_usd is None
            else self.spend_usd - other.spend_usd
        )
        return Scenario(
            queries_per_day=self.queries_per_day - other.queries_per_day,
            energy_per_query_j=self.energy_per_query_j - other.energy_per_query_j,
            kwh_per_year=self.kwh_per_year - other.kwh_per_year,
            homes=self.homes - other.homes,
            tonnes_co2e=self.tonnes_co2e - other.tonnes_co2e,
            electricity_usd=self.electricity_usd - other.electricity_usd,
            spend_usd=spend,
        )

    def as_dict(self) -> dict[str, float | None]:
        return {
            "queries_per_day": self.queries_per_day,
            "energy_per_query_j": self.energy_per_query_j,
            "kwh_per_year": self.kwh_per_year,
            "gwh_per_year": self.gwh_per_year,
            "average_mw": self.average_mw,
            "homes": self.homes,
            "tonnes_co2e": self.tonnes_co2e,
            "electricity_usd": self.electricity_usd,
            "spend_usd": self.spend_usd,
        }


@dataclass(frozen=True, slots=True)
class Projection:
    """Baseline vs routed, plus the routed scenario before rebound for comparison."""

    inputs: ProjectionInputs
    baseline: Scenario
    routed: Scenario
    routed_without_rebound: Scenario
    savings: Scenario = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "savings", self.baseline.minus(self.routed))

    @property
    def energy_saved_fraction(self) -> float:
        return self.savings.kwh_per_year / self.baseline.kwh_per_year

    @property
    def rebound_fraction(self) -> float:
        """Share of the expected saving taken back by extra demand (0 = none, 1 = all)."""
        expected = self.baseline.kwh_per_year - self.routed_without_rebound.kwh_per_year
        if expected == 0:
            return 0.0
        return 1.0 - self.savings.kwh_per_year / expected

    def as_dict(self) -> dict[str, Any]:
        i = self.inputs
        return {
            "inputs": {
                "source": i.source,
                "queries_per_day": i.queries_per_day,
                "energy_per_query_j": i.energy_per_query_j,
                "baseline_energy_per_query_j": i.baseline_energy_per_query_j,
                "energy_basis": i.energy_basis,
                "baseline_energy_basis": i.baseline_energy_basis,
                "pue": i.pue,
                "grid_g_per_kwh": i.grid_g_per_kwh,
                "usd_per_kwh": i.usd_per_kwh,
                "kwh_per_home_year": i.kwh_per_home_year,
                "rebound_elasticity": i.rebound_elasticity,
                "cost_per_query_usd": i.cost_per_query_usd,
                "baseline_cost_per_query_usd": i.baseline_cost_per_query_usd,
                "tier_mix": [
                    {"name": t.name, "share": t.share, "energy_per_query_j": t.energy_per_query_j}
                    for t in i.tier_mix
                ],
            },
            "baseline": self.baseline.as_dict(),
            "routed": self.routed.as_dict(),
            "routed_without_rebound": self.routed_without_rebound.as_dict(),
            "savings": self.savings.as_dict(),
            "energy_saved_fraction": self.energy_saved_fraction,
            "rebound_fraction": self.rebound_fraction,
        }


def homes_for_continuous_load(
    gigawatts: float, kwh_per_home_year: float = DEFAULT_KWH_PER_HOME_YEAR
) -> float:
    """Average US homes whose yearly electricity equals ``gigawatts`` drawn all year."""
    return gigawatts * 1e6 * HOURS_PER_YEAR / kwh_per_home_year


def _scenario(
    inputs: ProjectionInputs,
    queries_per_day: float,
    energy_per_query_j: float,
    basis: EnergyBasis,
    cost_per_query_usd: float | None,
) -> Scenario:
    facility_j = energy_per_query_j * (inputs.pue if basis == "device" else 1.0)
    queries_per_year = queries_per_day * DAYS_PER_YEAR
    kwh = queries_per_year * facility_j / J_PER_KWH
    return Scenario(
        queries_per_day=queries_per_day,
        energy_per_query_j=facility_j,
        kwh_per_year=kwh,
        homes=kwh / inputs.kwh_per_home_year,
        tonnes_co2e=kwh * inputs.grid_g_per_kwh / 1e6,
        electricity_usd=kwh * inputs.usd_per_kwh,
        spend_usd=None if cost_per_query_usd is None else queries_per_year * cost_per_query_usd,
    )


def project(inputs: ProjectionInputs) -> Projection:
    """Project one year of baseline and routed traffic at ``inputs.queries_per_day``."""
    i = inputs
    rebound_queries = i.queries_per_day * i.efficiency_gain**i.rebound_elasticity
    return Projection(
        inputs=i,
        baseline=_scenario(
            i,
            i.queries_per_day,
            i.baseline_energy_per_query_j,
            i.baseline_energy_basis or i.energy_basis,
            i.baseline_cost_per_query_usd,
        ),
        routed=_scenario(
            i, rebound_queries, i.energy_per_query_j, i.energy_basis, i.cost_per_query_usd
        ),
        routed_without_rebound=_scenario(
            i, i.queries_per_day, i.energy_per_query_j, i.energy_basis, i.cost_per_query_usd
        ),
    )


def _num(row: Mapping[str, Any], *keys: str) -> float:
    for k in keys:
        v = row.get(k)
        if v is not None:
            return float(v)
    return 0.0


def inputs_from_ledger(
    totals: Mapping[str, Any],
    by_tier: Sequence[Mapping[str, Any]] = (),
    *,
    queries: float | None = None,
    **kw: Any,
) -> ProjectionInputs:
    """Per-query figures from the ledger (``Ledger.totals()`` / ``summary(by="tier")``).

    The receipts' joules are taken as metered (see the module docstring: each tier's
    facility overhead is in them already), so the projected saving is the ledger's own,
    ``baseline - actual``. ``queries``: how many client queries the totals cover (the
    ``serve`` requests); by default every request. Learning requests (calibration, shadow)
    add their energy to the routed scenario and nothing to the baseline, so their overhead
    is projected along with the traffic that paid for it.
    """
    requests = _num(totals, "requests")
    if requests <= 0:
        raise ValueError("the ledger has no requests yet; serve some or pass per-query figures")
    n = queries if queries else requests
    cost, baseline_cost = totals.get("cost_usd"), totals.get("baseline_cost_usd")
    mix = tuple(
        TierShare(
            name=str(row.get("group") or row.get("tier") or "?"),
            share=_num(row, "requests") / requests,
            energy_per_query_j=_num(row, "energy_j") / _num(row, "requests"),
        )
        for row in by_tier
        if _num(row, "requests") > 0
    )
    kw.setdefault("source", f"ledger, {int(n)} queries")
    baseline = _num(totals, "baseline_energy_j") or _num(totals, "energy_j")
    return ProjectionInputs(
        energy_per_query_j=_num(totals, "energy_j") / n,
        baseline_energy_per_query_j=baseline / n,
        energy_basis="facility",
        baseline_energy_basis="facility",
        cost_per_query_usd=None if cost is None else float(cost) / n,
        baseline_cost_per_query_usd=None if baseline_cost is None else float(baseline_cost) / n,
        tier_mix=mix,
        **kw,
    )
