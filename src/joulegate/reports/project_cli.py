"""``joulegate project``: the ledger's joules per query, scaled to a fleet-year.

Thin shell over :mod:`joulegate.reports.projection`: gather inputs (ledger or flags), print a
rich table, optionally write JSON and a PNG. Flags given on the command line override what
the ledger measured, so one can ask "what if our mix were this, at that scale?".
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from joulegate.reports.projection import (
    DEFAULT_GRID_G_PER_KWH,
    DEFAULT_KWH_PER_HOME_YEAR,
    DEFAULT_PUE,
    DEFAULT_QUERIES_PER_DAY,
    DEFAULT_USD_PER_KWH,
    Projection,
    ProjectionInputs,
    TierShare,
    inputs_from_ledger,
)
from joulegate.reports.projection import (
    project as run_projection,
)

__all__ = ["baseline_is_local", "human", "parse_tier", "plot_projection", "project", "read_ledger"]


def human(x: float, unit: str = "") -> str:
    """Compact, sign-aware figures: 8.18 M, 1.2 k, 0.352 — what a person reads at a glance."""
    if x is None or math.isnan(x):
        return "—"
    if x == 0:
        return "0" + (f" {unit}" if unit else "")
    a = abs(x)
    for scale, suffix in ((1e12, " T"), (1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if a >= scale:
            return f"{x / scale:,.3g}{suffix}{unit}"
    return f"{x:,.3g}{' ' + unit if unit else ''}"


def _money(x: float | None) -> str:
    if x is None:
        return "—"
    sign = "-" if x < 0 else ""
    return sign + "$" + human(abs(x)).replace(" ", "\u2009")


def parse_tier(spec: str) -> TierShare:
    """``NAME:SHARE:JOULES``, e.g. ``embedded:0.8:25`` (share may be a percent: ``80%``)."""
    try:
        name, share_s, joules_s = spec.split(":")
        share = float(share_s.rstrip("%")) / (100.0 if share_s.endswith("%") else 1.0)
        return TierShare(name=name, share=share, energy_per_query_j=float(joules_s))
    except ValueError as exc:
        raise typer.BadParameter(f"expected NAME:SHARE:JOULES, got {spec!r}") from exc


def read_ledger(config: Path | None) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    """``(totals, summary by tier, settings)`` from the configured ledger.

    Only migrates and reads: no writer thread is started, so this is safe next to a running
    gateway (SQLite WAL allows concurrent readers).
    """
    from joulegate.config import load_settings
    from joulegate.ledger import Ledger

    settings = load_settings(config)
    ledger = Ledger.from_settings(settings.ledger, settings.data_dir)
    try:
        ledger.migrate()
        return ledger.totals(), ledger.summary(by="tier"), settings
    finally:
        asyncio.run(ledger.close())


def baseline_is_local(settings: Any) -> bool:
    """Whether the baseline (last, largest) tier is metered on this machine's devices."""
    try:
        from joulegate.metering.pricing import TierPlan

        return bool(TierPlan.resolve(settings.tiers[-1], settings.metering).local)
    except (ImportError, AttributeError):
        return str(settings.tiers[-1].kind) == "embedded"


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
    t.add_column("saved\n(baseline − routed)", justify="right", style="green")
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
            _money(b.electricity_usd),
            _money(r.electricity_usd),
            _money(s.electricity_usd),
        ),
    ]
    if b.spend_usd is not None and r.spend_usd is not None:
        rows.append(
            (
                "model spend (API prices)",
                _money(b.spend_usd),
                _money(r.spend_usd),
                _money(s.spend_usd),
            )
        )
    for row in rows:
        t.add_row(*row)
    return t


def plot_projection(p: Projection, path: Path) -> Path:
    """Four bar panels (GWh, homes, tCO2e, money): baseline vs routed, labelled with values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    scenarios = [("baseline\n(largest tier)", p.baseline, "#9aa5b1")]
    if p.inputs.rebound_elasticity:
        scenarios.append(("routed,\nno rebound", p.routed_without_rebound, "#7cc4a4"))
    scenarios.append(("routed", p.routed, "#1f9d6b"))
    panels = [
        ("Electricity (GWh/yr)", lambda s: s.gwh_per_year, lambda v: f"{v:,.3g}"),
        ("US homes equivalent", lambda s: s.homes, human),
        ("Emissions (t CO2e/yr)", lambda s: s.tonnes_co2e, human),
        ("Electricity bill (USD/yr)", lambda s: s.electricity_usd, _money),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), dpi=100)
    for ax, (title, get, fmt) in zip(axes, panels, strict=True):
        values = [get(s) for _, s, _ in scenarios]
        bars = ax.bar([n for n, _, _ in scenarios], values, color=[c for _, _, c in scenarios])
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(
                fmt(v),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=9,
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos, fmt=fmt: fmt(v)))
        ax.set_title(title, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="x", labelsize=8)
        ax.margins(y=0.18)
    fig.suptitle(
        f"joulegate projection: {human(p.inputs.queries_per_day)} queries/day for a year — "
        f"{p.energy_saved_fraction:.0%} less electricity when routed",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def project(
    queries_per_day: Annotated[
        float, typer.Option(help="Fleet volume. Default: ~one large assistant (see docs).")
    ] = DEFAULT_QUERIES_PER_DAY,
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
        DEFAULT_GRID_G_PER_KWH
    ),
    usd_per_kwh: Annotated[float, typer.Option(help="Electricity price, USD/kWh.")] = (
        DEFAULT_USD_PER_KWH
    ),
    pue: Annotated[float, typer.Option(help="Facility PUE, applied to device-side energy.")] = (
        DEFAULT_PUE
    ),
    kwh_per_home: Annotated[float, typer.Option(help="kWh per US home per year.")] = (
        DEFAULT_KWH_PER_HOME_YEAR
    ),
    rebound_elasticity: Annotated[
        float, typer.Option(help="Demand elasticity to efficiency; 0 = no rebound.")
    ] = 0.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG chart here.")] = None,
    config: Annotated[Path | None, typer.Option(help="joulegate TOML config.")] = None,
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
    result = run_projection(inputs)
    console.print(_table(result))
    console.print(
        f"Routing saves [bold green]{result.energy_saved_fraction:.1%}[/] of the baseline's "
        f"electricity"
        + (f" after a {result.rebound_fraction:.0%} rebound." if rebound_elasticity else ".")
    )
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        console.print(f"JSON → {json_path}")
    if plot:
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
    totals, by_tier, settings = read_ledger(config)
    figures = {k: v for k, v in common.items() if not k.endswith("energy_basis")}
    inputs = inputs_from_ledger(
        totals,
        by_tier,
        metered_pue=float(settings.metering.pue),
        baseline_is_local=baseline_is_local(settings),
        **figures,
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
