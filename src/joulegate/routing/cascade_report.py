"""What ``joulegate bench cascade`` concludes and shows: the bars, the tables, the plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["bars", "fmt_pct", "plot", "render"]


def bars(result: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """The issue's bars, each with its number and whether it is met, at the default mode."""
    out: list[dict[str, Any]] = []
    sets = result["sets"]
    gsm = sets.get("gsm8k")
    if gsm is not None:
        row, large = gsm["table"][mode], gsm["table"]["always-largest"]
        diff = row["quality"] - large["quality"]
        oracle = gsm["table"]["oracle"]
        out.append(
            {
                "bar": "GSM8K test: accuracy within 1 point of always-large",
                "value": f"{100 * row['quality']:.1f}% vs {100 * large['quality']:.1f}% "
                f"({100 * diff:+.1f} pts; n={gsm['n']}, {mode})",
                "met": bool(diff >= -0.01),
            }
        )
        out.append(
            {
                "bar": "GSM8K test: ... and energy still saved",
                "value": f"{100 * row['energy_saved']:.1f}% saved, {100 * row['kept_cheap']:.1f}% "
                f"kept on the embedded tier (the oracle: {100 * oracle['energy_saved']:.1f}%)",
                "met": bool(row["energy_saved"] > 0),
            }
        )
    kept_n = kept_ok = 0
    for name in ("probes", "gsm8k"):
        if name in sets:
            t = sets[name]["table_all_graded" if name == "probes" else "table"][mode]
            kept_n += t["kept_n"]
            kept_ok += round((t["kept_acceptable"] or 0.0) * t["kept_n"])
    share = kept_ok / kept_n if kept_n else float("nan")
    out.append(
        {
            "bar": "answers the embedded tier keeps: >= 95% acceptable by gold, held-back items",
            "value": f"{100 * share:.1f}% ({kept_ok} of {kept_n} kept, probe set k-fold + "
            f"GSM8K test, {mode})"
            if kept_n
            else "no answers kept",
            "met": bool(kept_n and share >= 0.95),
        }
    )
    routine = sets["probes"]["table"]
    row = routine[mode]
    loss = routine["always-largest"]["quality"] - row["quality"]
    thresholds = ", ".join(
        "none" if t is None else f"{t:.3f}" for t in sets["probes"]["keep_thresholds"]
    )
    out.append(
        {
            "bar": "routine items: share kept on the embedded tier at <= 1 point quality loss",
            "value": f"{100 * row['kept_cheap']:.1f}% kept, loss {100 * loss:.2f} pts, energy "
            f"saved {100 * row['energy_saved']:.1f}% ({mode}; keep thresholds per fold: "
            f"{thresholds})",
            "met": bool(loss <= 0.01 and row["kept_cheap"] > 0),
        }
    )
    dt = result["decision_time"]
    out.append(
        {
            "bar": "cascade overhead: confidence decision <= 1 ms p50",
            "value": f"p50 {dt['p50_ms'] * 1000:.0f} µs, p99 {dt['p99_ms'] * 1000:.0f} µs "
            f"({dt['n']} decisions)",
            "met": bool(dt["p50_ms"] <= 1.0),
        }
    )
    return out


def fmt_pct(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.{digits}f}%"


# -- output ---------------------------------------------------------------------------------


def render(result: dict[str, Any], console: Any) -> None:
    """Rich tables: each data set at the default settings, the min-route-score sweep, bars."""
    from rich.table import Table

    st = result["settings"]
    console.print(
        f"quality_target {st['quality_target']}, mode {st['mode']}, cascade_min_route_score "
        f"{st['cascade_min_route_score']}; large tier {st['large_j_per_answer']:g} J/answer "
        f"({st['large_j_source']}); embedded: {st['embedded_j']}"
    )
    for key in ("gsm8k", "probes"):
        data = result["sets"].get(key)
        if data is None:
            continue
        t = Table(title=f"{data['name']}, n={data['n']}: at the default settings")
        for col in (
            "policy",
            "quality",
            "vs largest",
            "J/request",
            "energy saved",
            "tried cheap",
            "kept cheap",
            "kept right",
        ):
            t.add_column(col, justify="left" if col == "policy" else "right")
        large = data["table"]["always-largest"]["quality"]
        for policy, row in data["table"].items():
            t.add_row(
                policy,
                fmt_pct(row["quality"]),
                f"{100 * (row['quality'] - large):+.1f} pts",
                f"{row['energy_j']:.1f}",
                fmt_pct(row["energy_saved"]),
                fmt_pct(row["tried_cheap"]),
                fmt_pct(row["kept_cheap"]),
                f"{fmt_pct(row['kept_acceptable'])} ({row['kept_n']})",
            )
        console.print(t)
        for note in data["notes"]:
            console.print(f"  [dim]{note}[/]")
        values = ", ".join(
            "none (no cheap try)" if v is None else f"{v:.3f}" for v in data["keep_thresholds"]
        )
        console.print(
            f"  [dim]keep threshold for target {st['quality_target']} (from each model's own "
            f"out-of-fold curve): {values}[/]"
        )
    sweep = result["sets"]["probes"].get("min_route_sweep")
    if sweep:
        t = Table(title="route+cascade on the routine items, by cascade_min_route_score")
        for col in ("min score", "tried cheap", "kept cheap", "quality", "energy saved"):
            t.add_column(col, justify="right")
        for row in sweep:
            t.add_row(
                f"{row['min_route_score']:.2f}",
                fmt_pct(row["tried_cheap"]),
                fmt_pct(row["kept_cheap"]),
                fmt_pct(row["quality"]),
                fmt_pct(row["energy_saved"]),
            )
        console.print(t)
    t = Table(title="The issue's bars")
    for col in ("bar", "result", "met"):
        t.add_column(col)
    for b in result["bars"]:
        t.add_row(b["bar"], b["value"], "[green]met[/]" if b["met"] else "[red]not met[/]")
    console.print(t)


_STYLE = {
    "always-cheapest": ("o", "tab:grey"),
    "always-largest": ("s", "tab:red"),
    "route": ("^", "tab:blue"),
    "cascade": ("v", "tab:orange"),
    "route+cascade": ("D", "tab:green"),
    "oracle": ("*", "black"),
}


def plot(result: dict[str, Any], out: Path) -> Path:
    """Energy per request against quality, one panel per data set: the three
    policies with a threshold as curves over the quality target, their default point
    marked, the fixed policies as single points. The defaults sit near always-largest, so
    each panel has an inset that zooms in on that corner."""
    from matplotlib.figure import Figure

    sets = [result["sets"][k] for k in ("gsm8k", "probes") if k in result["sets"]]
    fig = Figure(figsize=(6.2 * len(sets), 4.8), layout="constrained")
    axes = fig.subplots(1, len(sets), squeeze=False)[0]
    target = result["settings"]["quality_target"]
    for ax, data in zip(axes, sets, strict=True):
        inset = ax.inset_axes((0.52, 0.08, 0.44, 0.38))  # below the curves, which rise
        for policy, points in data["curves"].items():
            marker, color = _STYLE[policy]
            xs = [p["energy_j"] for p in points]
            ys = [100 * p["quality"] for p in points]
            at = data["table"][policy]
            if len(points) > 1:
                for a in (ax, inset):
                    a.plot(xs, ys, color=color, alpha=0.6, linewidth=1.2)
                label = f"{policy} (target {target})"
                size = 8
            else:
                label, size = policy, 9
            ax.plot(
                at["energy_j"],
                100 * at["quality"],
                marker,
                color=color,
                markersize=size,
                label=label,
            )
            inset.plot(at["energy_j"], 100 * at["quality"], marker, color=color, markersize=6)
        large = data["table"]["always-largest"]
        corner = [
            data["table"][p]
            for p in ("always-largest", "route", "cascade", "route+cascade", "oracle")
        ]
        qualities = [100 * r["quality"] for r in corner]
        inset.set_xlim(0.85 * large["energy_j"], 1.01 * large["energy_j"])
        inset.set_ylim(min(qualities) - 4.0, min(100.5, max(qualities) + 1.5))
        inset.tick_params(labelsize=7)
        inset.grid(True, alpha=0.3)
        inset.set_title("zoom: near always-largest", fontsize=7)
        ax.indicate_inset_zoom(inset, edgecolor="grey")
        ax.set_xlabel("energy per request (J)")
        ax.set_ylabel("quality (% acceptable)")
        ax.set_title(f"{data['name']}, n={data['n']}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Energy vs quality: embedded tier + large tier, every point out of sample")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out
