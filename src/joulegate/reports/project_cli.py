"""``joulegate project``: the ledger's joules per query, scaled to a fleet-year.

Thin shell over :mod:`joulegate.reports.projection`: gather inputs (ledger or flags), print a
rich table, optionally write JSON and a PNG. Flags given on the command line override what
the ledger measured, so one can ask "what if our mix were this, at that scale?".
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from joulegate.cli_support import ConfigOpt, load_settings_or_exit, open_ledger
from joulegate.reports import projection
from joulegate.reports.dashboard import served
from joulegate.reports.formatting import human, money
from joulegate.reports.projection import Projection, ProjectionInputs, TierShare

__all__ = ["parse_tier", "project"]


def parse_tier(spec: str) -> TierShare:
    """``NAME:SHARE:JOULES``, e.g. ``embedded:0.8:25`` (share may be a percent: ``80%``)."""
    try:
        name, share_s, joules_s = spec.split(":")
        share = float(share_s.rstrip("%")) / (100.0 if share_s.endswith("%") else 1.0)
        return TierShare(name=name, share=share, energy_per_query_j=float(joules_s))
    except ValueError as exc:
        raise typer.BadParameter(f"expected NAME:SHARE:JOULES, got {spec!r}") from exc


def _table(p: Projection) -> Table:
    i = p.inputs
    bases = {i.energy_basis, i.baseline_energy_basis}
    basis = (
        f"device J × PUE {i.pue:g}"
        if bases == {"device"}
        else "facility J (PUE already included)"
        if bases == {"facility"}
        else f"routed {i.energy_basis} J, baseline {i.baseline_energy_basis} J, PUE {i.pue:g}"
    )
    t = Table(
        title=f"Fleet-year projection — {human(i.queries_per_day)} queries/day",
        caption=(
            f"inputs: {i.source}; {basis}; grid {i.grid_g_per_kwh:g} gCO2e/kWh; "
            f"${i.usd_per_kwh:g}/kWh; home = {i.kwh_per_home_year:,.0f} kWh/yr; "
            f"rebound elasticity {i.rebound_elasticity:g}"
        ),
        title_style="bold",
    )
    t.add_column("per year", style="bold")
    t.add_column("baseline\n(all largest tier)", justify="right")
    t.add_column("routed", justify="right", style="cyan")
    # A saving is green; a negative one is a cost, red (never styled as a win).
    style = "green" if p.savings.kwh_per_year >= 0 else "red"
    t.add_column("saved\n(baseline − routed)", justify="right", style=style)
    b, r, s = p.baseline, p.routed, p.savings
    rows: list[tuple[str, str, str, str]] = [
        (
            "queries/day",
            human(b.queries_per_day),
            human(r.queries_per_day),
            f"+{human(-s.queries_per_day)} by rebound" if s.queries_per_day else "—",
        ),
        (
            "energy per query (facility)",
            human(b.energy_per_query_j, "J"),
            human(r.energy_per_query_j, "J"),
            human(s.energy_per_query_j, "J"),
        ),
        (
            "electricity (GWh)",
            f"{b.gwh_per_year:,.3g}",
            f"{r.gwh_per_year:,.3g}",
            f"{s.gwh_per_year:,.3g}",
        ),
        (
            "continuous load (MW)",
            f"{b.average_mw:,.3g}",
            f"{r.average_mw:,.3g}",
            f"{s.average_mw:,.3g}",
        ),
        ("US homes' electricity", human(b.homes), human(r.homes), human(s.homes)),
        ("tonnes CO2e", human(b.tonnes_co2e), human(r.tonnes_co2e), human(s.tonnes_co2e)),
        (
            "electricity bill",
            money(b.electricity_usd),
            money(r.electricity_usd),
            money(s.electricity_usd),
        ),
    ]
    if b.spend_usd is not None and r.spend_usd is not None:
        rows.append(
            (
                "model spend (API prices)",
                money(b.spend_usd),
                money(r.spend_usd),
                money(s.spend_usd),
            )
        )
    for row in rows:
        t.add_row(*row)
    return t


def project(
    queries_per_day: Annotated[
        float, typer.Option(help="Fleet volume. Default: ~one large assistant (see docs).")
    ] = projection.DEFAULT_QUERIES_PER_DAY,
    from_ledger: Annotated[
        bool, typer.Option(help="Measure per-query energy and tier mix from the ledger.")
    ] = True,
    energy_per_query_j: Annotated[
        float | None, typer.Option(help="Routed energy per query (J); overrides the ledger.")
    ] = None,
    baseline_energy_per_query_j: Annotated[
        float | None, typer.Option(help="Largest-tier energy per query (J).")
    ] = None,
    tier: Annotated[
        list[str] | None,
        typer.Option(help="Tier mix NAME:SHARE:JOULES (repeat); overrides the ledger mix."),
    ] = None,
    energy_basis: Annotated[
        str, typer.Option(help="'device' (PUE applied) or 'facility' (full-stack, PUE included).")
    ] = "device",
    baseline_energy_basis: Annotated[
        str | None, typer.Option(help="Basis of the baseline figure; default: --energy-basis.")
    ] = None,
    grid_g_per_kwh: Annotated[float, typer.Option(help="Grid intensity, gCO2e/kWh.")] = (
        projection.DEFAULT_GRID_G_PER_KWH
    ),
    usd_per_kwh: Annotated[float, typer.Option(help="Electricity price, USD/kWh.")] = (
        projection.DEFAULT_USD_PER_KWH
    ),
    pue: Annotated[float, typer.Option(help="Facility PUE, applied to device-side energy.")] = (
        projection.DEFAULT_PUE
    ),
    kwh_per_home: Annotated[float, typer.Option(help="kWh per US home per year.")] = (
        projection.DEFAULT_KWH_PER_HOME_YEAR
    ),
    rebound_elasticity: Annotated[
        float, typer.Option(help="Demand elasticity to efficiency; 0 = no rebound.")
    ] = 0.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG chart here.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Project energy, homes, CO2e and money for a year of traffic: baseline vs routed."""
    console = Console()
    common: dict[str, Any] = dict(
        queries_per_day=queries_per_day,
        energy_basis=energy_basis,
        baseline_energy_basis=baseline_energy_basis or energy_basis,
        pue=pue,
        grid_g_per_kwh=grid_g_per_kwh,
        usd_per_kwh=usd_per_kwh,
        kwh_per_home_year=kwh_per_home,
        rebound_elasticity=rebound_elasticity,
    )
    try:
        inputs = _gather(
            from_ledger,
            energy_per_query_j,
            baseline_energy_per_query_j,
            [parse_tier(s) for s in tier or []],
            config,
            common,
        )
    except ValueError as exc:
        console.print(f"[red]cannot project:[/] {exc}")
        raise typer.Exit(2) from exc
    result = projection.project(inputs)
    console.print(_table(result))
    saved = result.energy_saved_fraction
    verdict = (
        f"Routing saves [bold green]{saved:.1%}[/] of the baseline's electricity"
        if saved >= 0
        else f"Routing [bold red]costs {-saved:.1%} more[/] electricity than the baseline"
    )
    rebound = f" after a {result.rebound_fraction:.0%} rebound" if rebound_elasticity else ""
    console.print(verdict + rebound + ".")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        console.print(f"JSON → {json_path}")
    if plot:
        from joulegate.reports.plots import plot_projection

        console.print(f"plot → {plot_projection(result, plot)}")


def _gather(
    from_ledger: bool,
    energy_j: float | None,
    baseline_j: float | None,
    mix: list[TierShare],
    config: Path | None,
    common: dict[str, Any],
) -> ProjectionInputs:
    """Flags beat the ledger; the ledger fills whatever the flags leave open."""
    if mix:
        inputs = ProjectionInputs.from_tier_mix(mix, baseline_j, source="tier mix", **common)
        return inputs if energy_j is None else replace(inputs, energy_per_query_j=energy_j)
    if energy_j is not None and baseline_j is not None:
        return ProjectionInputs(energy_j, baseline_j, source="command line", **common)
    if not from_ledger:
        raise ValueError(
            "without the ledger, give --energy-per-query-j and --baseline-energy-per-query-j "
            "or a --tier mix"
        )
    settings = load_settings_or_exit(config)
    with open_ledger(settings) as ledger:
        totals, by_tier = ledger.totals(), ledger.summary(by="tier")
        by_purpose = ledger.summary(by="purpose")
    # The receipts' joules carry each tier's facility overhead already: as metered.
    figures = {k: v for k, v in common.items() if not k.endswith("energy_basis") and k != "pue"}
    inputs = projection.inputs_from_ledger(
        totals, by_tier, queries=served(by_purpose), pue=float(settings.metering.pue), **figures
    )
    # A figure given on the command line is on the command line's basis.
    if energy_j is not None:
        inputs = replace(
            inputs, energy_per_query_j=energy_j, energy_basis=common["energy_basis"], tier_mix=()
        )
    if baseline_j is not None:
        inputs = replace(
            inputs,
            baseline_energy_per_query_j=baseline_j,
            baseline_energy_basis=common["baseline_energy_basis"],
        )
    return inputs
