"""``joulegate report``: what the gateway spent, and saved, from the ledger.

Mount with ``app.command("report")(report)``. The table always says where each energy
figure came from, because a joule read from a sensor and a joule inferred from token counts
are not the same claim.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from joulegate.cli_support import Column, ConfigOpt, load_settings_or_exit, open_ledger, print_table
from joulegate.ledger import KeyStore, Ledger
from joulegate.ledger.budgets import AMOUNT_OF
from joulegate.ledger.queries import GROUP_BY
from joulegate.metering.receipt import AMOUNTS, baseline_of
from joulegate.reports.cache_view import cache_line, cache_summary
from joulegate.reports.formatting import fmt_energy, pct
from joulegate.reports.learning_view import learning_lines, learning_summary

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

# Each priced amount (metering.receipt.AMOUNTS): its column name and how a figure is written.
_AMOUNT_CELL: dict[str, tuple[str, Callable[[float], str]]] = {
    "energy_j": ("energy", fmt_energy),
    "cost_usd": ("cost", lambda v: f"${v:.4f}"),
    "co2e_g": ("CO2e", lambda v: f"{v:.2f} g"),
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
    for dim, amount in AMOUNT_OF.items():
        limit = budget.get(f"limit_{dim}")
        if limit is not None:
            fmt = _AMOUNT_CELL[amount][1]
            parts.append(f"{fmt(budget.get(f'spent_{dim}', 0.0))} / {fmt(limit)}")
    period = budget.get("period", "total")
    return f"{', '.join(parts)} ({period})" if parts else "-"


_Cell = Callable[[dict[str, Any]], str]


def _amount_column(amount: str, drop: int) -> tuple[Column, _Cell]:
    name, fmt = _AMOUNT_CELL[amount]
    return Column(name, "right", drop=drop), lambda g: fmt(g[amount])


def _saved_column(amount: str, drop: int) -> tuple[Column, _Cell]:
    """``baseline - actual`` (the query's ``savings_*``); energy also as a share."""
    name, fmt = _AMOUNT_CELL[amount]
    saved = f"savings_{amount}"

    def cell(g: dict[str, Any]) -> str:
        text = fmt(g[saved])
        return f"{text} ({pct(g[saved], g[baseline_of(amount)])})" if amount == "energy_j" else text

    return Column(f"{name} saved", "right", drop=drop), cell


def _reasoning_cell(g: dict[str, Any]) -> str:
    """A reasoning model's thinking: its energy, that energy's share, and its tokens."""
    j = g.get("reasoning_energy_j", 0.0)
    return f"{fmt_energy(j)} ({pct(j, g['energy_j'])}), {g.get('reasoning_tokens', 0):,} tok"


def _columns(by: str, reasoning: bool = False) -> list[tuple[Column, _Cell]]:
    """The figure columns after the group's name, each with its cell; ``drop`` ranks which
    go first on a narrow terminal (requests, energy and its source stay longest).

    ``reasoning``: add the reasoning column (only when a reasoning tier served anything)."""
    cols: list[tuple[Column, _Cell]] = [
        (Column("requests", "right", drop=1), lambda g: f"{g['requests']:,}"),
        (
            Column("tokens in/out", "right", drop=5),
            lambda g: f"{g['prompt_tokens']:,} / {g['completion_tokens']:,}",
        ),
        _amount_column("energy_j", drop=1),
        (Column("J/request", "right", drop=4), lambda g: fmt_energy(g["energy_j_per_request"])),
        (Column("energy source", drop=2, wrap=True), _sources),
        *([(Column("of which reasoning", "right", drop=3), _reasoning_cell)] if reasoning else []),
        _amount_column("cost_usd", drop=3),
        _amount_column("co2e_g", drop=4),
        *(_saved_column(a, drop=2 if a == "energy_j" else 5) for a in AMOUNTS),
    ]
    if by == "key":
        cols.append((Column("spend / budget", "right", drop=1, wrap=True), _budget_cell))
    return cols


def _group_name(g: dict[str, Any], by: str) -> str:
    name = str(g["group"]) if g["group"] is not None else "(none)"
    if by == "key" and g.get("key_name"):
        # Two lines in a terminal, one ("team-a (6ce19dbff323)") when piped; never cut.
        return f"{g['key_name']}\n({g['group']})"
    return name


def print_report(
    groups: list[dict[str, Any]], totals: dict[str, Any], by: str, title: str, console: Console
) -> None:
    """One row per group, a totals row, savings against the baseline; see ``print_table``."""
    label = {"key": "key", "day": "day (UTC)", "source": "energy source"}.get(by, by)
    cols = _columns(by, reasoning=totals.get("reasoning_energy_j", 0.0) > 0)
    rows = [[_group_name(g, by), *(cell(g) for _, cell in cols)] for g in groups]
    footer = ["total", *(cell(totals) for _, cell in cols)]
    if by == "key":
        footer[-1] = ""
    columns = [Column(label), *(c for c, _ in cols)]
    print_table(columns, rows, title=title, footer=footer, console=console)


def _legend(totals: dict[str, Any]) -> list[str]:
    seen = sorted(totals.get("energy_by_source", {}))
    lines = ["Energy source: where each energy figure came from."]
    for src in seen:
        kind = src.split(":", 1)[0]
        lines.append(f"  {src}: {SOURCE_LEGEND.get(kind, 'as reported by the metering layer')}")
    if totals.get("reasoning_energy_j", 0.0) > 0:
        lines.append(
            "Of which reasoning: the energy of reasoning models' thinking tokens, part of the "
            "energy column (docs/energy.md, Reasoning tiers)."
        )
    lines.append("Savings are the baseline tier's figures for the same requests minus the actual.")
    return lines


def _key_budgets(ledger: Ledger, groups: list[dict[str, Any]]) -> None:
    """Attach each key's name and current-period spend vs. budget (the ``--by key`` view)."""
    infos = {k.key_id: k for k in KeyStore(ledger.engine).list(include_revoked=True)}
    for g in groups:
        info = infos.get(g["group"])
        if info is None:
            continue
        g["key_name"] = info.name
        g["budget"] = info.budget_view()


def _cache_stats(settings: Any) -> dict[str, Any] | None:
    """The response cache's own counters (all time), or None where it cannot be read."""
    from joulegate.cache.service import build_store
    from joulegate.cache.stats import summarize

    try:
        store = build_store(settings.cache, settings.data_dir)
        try:
            stats = summarize(store.stats(), store.counts())
        finally:
            store.close()
    except Exception:  # no cache file, Redis down: the ledger's figures still stand
        return None
    return stats if stats["total"]["lookups"] else None


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
    config: ConfigOpt = None,
) -> None:
    """Totals and savings against the baseline, from the ledger."""
    if by not in GROUP_BY:
        raise typer.BadParameter(f"choose one of {', '.join(GROUP_BY)}", param_hint="--by")
    try:
        since_ts = parse_since(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None

    settings = load_settings_or_exit(config)
    with open_ledger(settings) as ledger:
        groups = ledger.summary(since_ts, by)
        totals = ledger.totals(since_ts)
        by_source = groups if by == "source" else ledger.summary(since_ts, "source")
        cache = cache_summary(by_source, totals, _cache_stats(settings))
        learn = settings.routing.learn
        caps = (learn.max_energy_j_per_day, learn.max_cost_usd_per_day)
        learning = learning_summary(ledger.engine, since_ts, by, caps)
        if by == "key":
            _key_budgets(ledger, groups)
        if plot is not None:
            from joulegate.reports.plots import pick_bucket_s, render_report_plots

            first = datetime.fromisoformat(totals["first_ts"]) if totals["first_ts"] else None
            last = datetime.fromisoformat(totals["last_ts"]) if totals["last_ts"] else None
            by_tier = groups if by == "tier" else ledger.summary(since_ts, "tier")
            series = ledger.timeseries(pick_bucket_s(first, last), since_ts)
            render_report_plots(by_tier, series, plot)

    if json_out:
        doc = {
            "since": since_ts.isoformat() if since_ts else None,
            "by": by,
            "groups": groups,
            "totals": totals,
            "plot": str(plot) if plot else None,
            "cache": cache,
            "learning": learning,
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
        print_report(groups, totals, by, title, console)
        if console.is_terminal:  # a pipe gets the rows alone
            for line in _legend(totals):
                console.print(line, style="dim", highlight=False)
        if cache["hits"] or cache["est_false_hit_rate"] is not None:
            console.print(cache_line(cache, fmt_energy), highlight=False)
        if console.is_terminal or learn.enabled or learning["quality"]["n"]:
            for line in learning_lines(learning, totals, fmt_energy):
                console.print(line, highlight=False)
    if plot is not None:
        Console(stderr=True).print(f"plots written to {plot}", highlight=False)
