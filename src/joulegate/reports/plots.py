"""The reports' pictures, drawn on matplotlib ``Figure`` objects (no display, no pyplot,
so no global figure state and nothing to close).

``joulegate report --plot``: energy per request by tier, next to what the baseline tier
would have used for the same requests, and cumulative savings over time, the number the
gateway exists for. ``joulegate project --plot``: a fleet-year, baseline against routed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from joulegate.reports.formatting import human, money
from joulegate.reports.projection import Projection


def pick_bucket_s(first: datetime | None, last: datetime | None, points: int = 120) -> int:
    """A round bucket width that gives about ``points`` buckets over the ledger's span."""
    if first is None or last is None:
        return 60
    span = max((last - first).total_seconds(), 1.0)
    for width in (1, 10, 60, 300, 900, 3_600, 6 * 3_600, 86_400, 7 * 86_400):
        if span / width <= points:
            return width
    return 30 * 86_400


def cumulative_savings(series: Sequence[dict[str, Any]]) -> tuple[list[datetime], list[float]]:
    """Running total of ``baseline_energy_j - energy_j`` across tiers, per bucket."""
    per_bucket: dict[int, float] = {}
    for row in series:
        saved = float(row["baseline_energy_j"]) - float(row["energy_j"])
        per_bucket[int(row["bucket"])] = per_bucket.get(int(row["bucket"]), 0.0) + saved
    times, totals, running = [], [], 0.0
    for bucket in sorted(per_bucket):
        running += per_bucket[bucket]
        times.append(datetime.fromtimestamp(bucket, UTC))
        totals.append(running)
    return times, totals


def render_report_plots(
    by_tier: Sequence[dict[str, Any]], series: Sequence[dict[str, Any]], out: Path
) -> Path:
    """Write the two-panel PNG (or any format matplotlib knows from the suffix) to ``out``."""
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax_tier, ax_cum = fig.subplots(1, 2)

    tiers = [str(g["group"]) for g in by_tier]
    actual = [float(g["energy_j_per_request"]) for g in by_tier]
    baseline = [float(g["baseline_energy_j_per_request"]) for g in by_tier]
    xs = range(len(tiers))
    width = 0.4
    ax_tier.bar([x - width / 2 for x in xs], actual, width, label="actual")
    ax_tier.bar([x + width / 2 for x in xs], baseline, width, label="baseline", alpha=0.6)
    ax_tier.set_xticks(list(xs), tiers)
    ax_tier.set_ylabel("energy per request (J)")
    ax_tier.set_title("Energy per request by tier")
    ax_tier.legend()
    if not tiers:
        ax_tier.text(0.5, 0.5, "no requests", ha="center", va="center", transform=ax_tier.transAxes)

    times, saved = cumulative_savings(series)
    if times:
        ax_cum.step(times, saved, where="post")
        ax_cum.fill_between(times, saved, step="post", alpha=0.25)
    else:
        ax_cum.text(0.5, 0.5, "no requests", ha="center", va="center", transform=ax_cum.transAxes)
    ax_cum.axhline(0, color="grey", linewidth=0.8)
    ax_cum.set_ylabel("energy saved vs. baseline (J)")
    ax_cum.set_xlabel("time (UTC)")
    ax_cum.set_title("Cumulative savings")
    ax_cum.tick_params(axis="x", labelrotation=30)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def plot_projection(p: Projection, path: Path) -> Path:
    """Four bar panels (GWh, homes, tCO2e, money): baseline vs routed, labelled with values."""
    scenarios = [("baseline\n(largest tier)", p.baseline, "#9aa5b1")]
    if p.inputs.rebound_elasticity:
        scenarios.append(("routed,\nno rebound", p.routed_without_rebound, "#7cc4a4"))
    scenarios.append(("routed", p.routed, "#1f9d6b"))
    panels = [
        ("Electricity (GWh/yr)", lambda s: s.gwh_per_year, lambda v: f"{v:,.3g}"),
        ("US homes equivalent", lambda s: s.homes, human),
        ("Emissions (t CO2e/yr)", lambda s: s.tonnes_co2e, human),
        ("Electricity bill (USD/yr)", lambda s: s.electricity_usd, money),
    ]
    fig = Figure(figsize=(13, 3.6), dpi=100)
    axes = fig.subplots(1, 4)
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
    return path
