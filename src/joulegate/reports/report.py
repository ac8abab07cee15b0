"""``joulegate report``: what the gateway spent, and saved, from the ledger.

Mount with ``app.command("report")(report)``. The table always shows where each energy
figure came from, because a joule read from a sensor and a joule inferred from token counts
are not the same claim.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from joulegate.ledger.queries import GROUP_BY

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400}

# What the metering layer's energy_source values mean (``kind:detail``, e.g. measured:rapl),
# for the table's legend. Keyed by kind so a new sensor needs no change here.
SOURCE_LEGEND = {
    "measured": "read from a hardware energy counter around the request (nvml: GPU, rapl: CPU)",
    "modeled": "computed from a power model of this machine and the request's device time",
    "estimated": "from the tier's joules-per-token profile; no meter saw this request",
    "cache": "answered from the response cache; only the lookup's energy",
}


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``24h``, ``30m``, ``7d``, ``2w`` (relative to now) or an ISO date/datetime (UTC if naive)."""
    if value is None or not value.strip():
        return None
    now = now or datetime.now(UTC)
    if m := _RELATIVE.match(value):
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"cannot read --since {value!r}: use e.g. 24h, 7d, 2025-01-31 or 2025-01-31T12:00"
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def fmt_energy(joules: float) -> str:
    """Joules with an SI prefix: ``812 J``, ``3.40 kJ``, ``1.25 MJ``."""
    a = abs(joules)
    for div, unit in ((1e6, "MJ"), (1e3, "kJ")):
        if a >= div:
            return f"{joules / div:.2f} {unit}"
    return f"{joules:.3g} J" if a < 100 else f"{joules:.0f} J"


def _pct(saved: float, baseline: float) -> str:
    return f"{100 * saved / baseline:.0f}%" if baseline else "-"


def _sources(g: dict[str, Any]) -> str:
    by_src: dict[str, float] = g.get("energy_by_source", {})
    reqs: dict[str, int] = g.get("requests_by_source", {})
    if len(by_src) <= 1:
        return next(iter(by_src), "-")
    total = sum(by_src.values())
    if total <= 0:  # shares of zero energy: fall back to request counts
        n = sum(reqs.values()) or 1
        return " · ".join(f"{s} {100 * reqs.get(s, 0) / n:.0f}%" for s in sorted(by_src))
    return " · ".join(f"{s} {100 * j / total:.0f}%" for s, j in sorted(by_src.items()))


def _budget_cell(g: dict[str, Any]) -> str:
    """``spent / budget`` for every budget a key has, in the key's current period."""
    budget = g.get("budget")
    if not budget:
        return "-"
    parts = []
    for name, unit, fmt in (("j", "", fmt_energy), ("usd", "$", None), ("co2e_g", "g", None)):
        limit = budget.get(f"limit_{name}")
        if limit is None:
            continue
        spent = budget.get(f"spent_{name}", 0.0)
        if fmt:
            parts.append(f"{fmt(spent)} / {fmt(limit)}")
        elif unit == "$":
            parts.append(f"${spent:.4f} / ${limit:.4f}")
        else:
            parts.append(f"{spent:.2f} / {limit:.2f} {unit}")
    period = budget.get("period", "total")
    return f"{', '.join(parts)} ({period})" if parts else "-"


def build_table(groups: list[dict[str, Any]], totals: dict[str, Any], by: str, title: str) -> Table:
    """The rich table: one row per group, a totals row, savings against the baseline."""
    table = Table(title=title, show_footer=True, header_style="bold")
    with_budget = by == "key"
    label = {"key": "key", "day": "day (UTC)", "source": "energy source"}.get(by, by)
    table.add_column(label, footer="total")
    cols: list[tuple[str, str, Any]] = [
        ("requests", "requests", lambda g: f"{g['requests']:,}"),
        ("tokens in/out", "", lambda g: f"{g['prompt_tokens']:,} / {g['completion_tokens']:,}"),
        ("energy", "", lambda g: fmt_energy(g["energy_j"])),
        ("J/request", "", lambda g: fmt_energy(g["energy_j_per_request"])),
        ("energy source", "", _sources),
        ("cost", "", lambda g: f"${g['cost_usd']:.4f}"),
        ("CO2e", "", lambda g: f"{g['co2e_g']:.2f} g"),
        (
            "energy saved",
            "",
            lambda g: (
                f"{fmt_energy(g['savings_energy_j'])} "
                f"({_pct(g['savings_energy_j'], g['baseline_energy_j'])})"
            ),
        ),
        ("cost saved", "", lambda g: f"${g['savings_cost_usd']:.4f}"),
        ("CO2e saved", "", lambda g: f"{g['savings_co2e_g']:.2f} g"),
    ]
    for header, _, render in cols:
        if header == "energy source":
            table.add_column(header, footer=render(totals), justify="left")
        else:
            table.add_column(header, footer=render(totals), justify="right")
    if with_budget:
        table.add_column("spend / budget", footer="", justify="right")
    for g in groups:
        name = g["group"] if g["group"] is not None else "(none)"
        if with_budget and g.get("key_name"):
            name = f"{g['key_name']} ({g['group']})"
        cells = [str(name), *(render(g) for _, _, render in cols)]
        if with_budget:
            cells.append(_budget_cell(g))
        table.add_row(*cells)
    return table


def _legend(groups: list[dict[str, Any]], totals: dict[str, Any]) -> list[str]:
    seen = sorted(totals.get("energy_by_source", {}))
    lines = ["Energy source: where each energy figure came from."]
    for src in seen:
        kind = src.split(":", 1)[0]
        lines.append(f"  {src}: {SOURCE_LEGEND.get(kind, 'as reported by the metering layer')}")
    lines.append("Savings are the baseline tier's figures for the same requests minus the actual.")
    return lines


def _key_budgets(ledger: Any, groups: list[dict[str, Any]]) -> None:
    """Attach each key's name and current-period spend vs. budget (the ``--by key`` view)."""
    try:
        from joulegate.ledger.keys import KeyStore
    except ImportError:  # key storage not available in this build
        return
    infos = {k.key_id: k for k in KeyStore(ledger.engine).list(include_revoked=True)}
    for g in groups:
        info = infos.get(g["group"])
        if info is None:
            continue
        g["key_name"] = info.name
        g["budget"] = info.budget_view()


def report(
    since: Annotated[
        str | None, typer.Option(help="Only requests since: 24h, 7d, 2w, or an ISO date/time.")
    ] = None,
    by: Annotated[str, typer.Option(help=f"Group by: {', '.join(GROUP_BY)}.")] = "tier",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also write plots (energy per request by tier, cumulative savings)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="joulegate TOML config file.")
    ] = None,
) -> None:
    """Totals and savings against the baseline, from the ledger."""
    from joulegate.config import load_settings
    from joulegate.ledger import Ledger

    if by not in GROUP_BY:
        raise typer.BadParameter(f"choose one of {', '.join(GROUP_BY)}", param_hint="--by")
    try:
        since_ts = parse_since(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None

    settings = load_settings(config)
    ledger = Ledger.from_settings(settings.ledger, settings.data_dir)
    try:
        ledger.migrate()
        groups = ledger.summary(since_ts, by)
        totals = ledger.totals(since_ts)
        if by == "key":
            _key_budgets(ledger, groups)
        if plot is not None:
            from joulegate.reports.plots import pick_bucket_s, render_report_plots

            first = datetime.fromisoformat(totals["first_ts"]) if totals["first_ts"] else None
            last = datetime.fromisoformat(totals["last_ts"]) if totals["last_ts"] else None
            by_tier = groups if by == "tier" else ledger.summary(since_ts, "tier")
            series = ledger.timeseries(pick_bucket_s(first, last), since_ts)
            render_report_plots(by_tier, series, plot)
    finally:
        ledger.engine.dispose()

    if json_out:
        doc = {
            "since": since_ts.isoformat() if since_ts else None,
            "by": by,
            "groups": groups,
            "totals": totals,
            "plot": str(plot) if plot else None,
        }
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    console = Console()
    title = f"joulegate report, by {by}"
    if since_ts:
        title += f", since {since_ts:%Y-%m-%d %H:%M} UTC"
    if not totals["requests"]:
        console.print(f"{title}: no requests recorded in the ledger ({ledger!r}).")
    else:
        console.print(build_table(groups, totals, by, title))
        for line in _legend(groups, totals):
            console.print(line, style="dim", highlight=False)
    if plot is not None:
        console.print(f"plots written to {plot}")
