"""``joulegate bench route``: evaluate the learned router with RouteLLM's metrics.

Without ``--train``: k-fold cross-validation on ``--data`` (fixed seed, every score
out-of-fold). With ``--train``: train on that data, evaluate on ``--data`` (transfer). The table
puts the router next to RouteLLM's random router and the perfect router; the metric code is in
``joulegate.routing.metrics`` and mirrors RouteLLM's evaluation exactly.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from joulegate.routing import metrics as m
from joulegate.routing.data import Outcomes, load_outcomes
from joulegate.routing.evaluation import absolute_score, escalation_score, out_of_fold, transfer
from joulegate.routing.model import TrainConfig

__all__ = ["evaluate", "render", "route"]


def evaluate(
    data: Outcomes,
    train_data: Outcomes | None = None,
    weak: str | None = None,
    strong: str | None = None,
    folds: int = 5,
    seed: int = 0,
    console: Console | None = None,
) -> dict[str, Any]:
    """Score every prompt honestly and return all metrics as a JSON-ready dict."""
    order = data.by_capability()
    weak = weak or order[0]
    strong = strong or order[-1]
    config = TrainConfig(seed=seed)
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=True,
        ) as progress,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)
        if train_data is None:
            task = progress.add_task(f"{folds}-fold cross-validation", total=folds)
            probs = out_of_fold(
                data, weak, strong, folds, config, on_fold=lambda _k: progress.advance(task)
            )
            protocol = f"{folds}-fold CV, seed {seed}, out-of-fold"
        else:
            progress.add_task(f"training on {train_data.source}", total=None)
            probs = transfer(train_data, data, weak, strong, config)
            protocol = f"transfer: trained on {train_data.source}"
    w, s = data.column(weak), data.column(strong)
    rel, absolute = escalation_score(probs), absolute_score(probs)
    reports = [
        m.report("joulegate (relative target)", m.threshold_curve(rel, w, s), w, s),
        m.report("joulegate (absolute target)", m.threshold_curve(absolute, w, s), w, s),
        m.report("random", m.threshold_curve(m.random_scores(len(data), seed), w, s), w, s),
        m.report("perfect", m.optimal_curve(w, s), w, s),
    ]
    return {
        "data": data.source,
        "n": len(data),
        "protocol": protocol,
        "weak": weak,
        "strong": strong,
        "weak_quality": float(w.mean()),
        "strong_quality": float(s.mean()),
        "routers": [
            {
                "name": r.name,
                "apgr": r.apgr,
                "cpt20": r.cpt20,
                "cpt50": r.cpt50,
                "cpt80": r.cpt80,
                "points": [
                    {"strong_share": p.strong_share, "quality": p.quality, "pgr": g}
                    for p, g in zip(r.points, r.pgrs(), strict=True)
                ],
            }
            for r in reports
        ],
    }


_SHORT = {"joulegate (relative target)": "relative", "joulegate (absolute target)": "absolute"}


def render(result: dict[str, Any], console: Console) -> None:
    """Rich tables: the summary metrics, then PGR at each strong-call share."""
    title = f"{result['data']} (n={result['n']}) — {result['protocol']}"
    summary = Table(title=title)
    for col in ("router", "APGR", "CPT(20%)", "CPT(50%)", "CPT(80%)"):
        summary.add_column(col, justify="left" if col == "router" else "right")
    for r in result["routers"]:
        summary.add_row(
            r["name"],
            f"{r['apgr']:.3f}",
            f"{100 * r['cpt20']:.2f}%",
            f"{100 * r['cpt50']:.2f}%",
            f"{100 * r['cpt80']:.2f}%",
        )
    console.print(summary)
    console.print(
        f"weak {result['weak']}: {100 * result['weak_quality']:.1f}%   "
        f"strong {result['strong']}: {100 * result['strong_quality']:.1f}%"
    )
    curve = Table(title="Strong-call share · PGR at each of RouteLLM's operating points")
    curve.add_column("#", justify="right")
    for r in result["routers"]:
        curve.add_column(_SHORT.get(r["name"], r["name"]), justify="right")
    columns = [sorted(r["points"], key=lambda p: p["strong_share"]) for r in result["routers"]]
    for i in range(max(len(c) for c in columns)):
        curve.add_row(
            str(i),
            *(
                f"{100 * c[i]['strong_share']:5.1f}% · {c[i]['pgr']:.2f}" if i < len(c) else ""
                for c in columns
            ),
        )
    console.print(curve)


def plot(result: dict[str, Any], out: Path) -> None:
    """Quality vs share of strong calls, with the single models as reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in result["routers"]:
        pts = sorted(r["points"], key=lambda p: p["strong_share"])
        ax.plot(
            [100 * p["strong_share"] for p in pts],
            [100 * p["quality"] for p in pts],
            marker=".",
            label=f"{r['name']} (APGR {r['apgr']:.3f})",
        )
    ax.axhline(100 * result["weak_quality"], color="grey", ls="--", label=result["weak"])
    ax.axhline(100 * result["strong_quality"], color="red", ls="--", label=result["strong"])
    ax.set_xlabel("strong model calls (%)")
    ax.set_ylabel("quality (% acceptable)")
    ax.set_title(f"{Path(result['data']).name}: {result['protocol']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def route(
    data: list[Path] = typer.Option(..., "--data", help="Outcome data to evaluate on."),
    train: list[Path] | None = typer.Option(
        None, "--train", help="Train on this data instead of cross-validating (transfer)."
    ),
    weak: str | None = typer.Option(None, "--weak", help="Weak model (default: lowest mean)."),
    strong: str | None = typer.Option(None, "--strong", help="Strong model (default: highest)."),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds."),
    seed: int = typer.Option(0, "--seed", help="Seed for folds and the random router."),
    json_out: Path | None = typer.Option(None, "--json", help="Write all metrics as JSON."),
    plot_out: Path | None = typer.Option(None, "--plot", help="Write the quality curve (PNG)."),
) -> None:
    """PGR/APGR/CPT of the learned router vs. random and perfect, RouteLLM-style."""
    console = Console()
    test_data = load_outcomes(data)
    train_data = load_outcomes(train) if train else None
    result = evaluate(test_data, train_data, weak, strong, folds, seed, console)
    render(result, console)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2))
    if plot_out is not None:
        plot(result, plot_out)
