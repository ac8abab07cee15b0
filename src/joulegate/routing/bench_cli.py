"""``joulegate bench route``: evaluate the learned router with RouteLLM's metrics.

Without ``--train``: k-fold cross-validation on ``--data`` (fixed seed, every score
out-of-fold). With ``--train``: train on that data, evaluate on ``--data`` (transfer). The table
puts the router next to RouteLLM's random router and the perfect router; the scoring is
``routing.evaluation.evaluate`` and the metric code ``routing.metrics``, which mirrors
RouteLLM's evaluation exactly. This module only runs it and shows the result.
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

from .cascade_eval import DEFAULT_LARGE_J
from .cascade_eval import evaluate as evaluate_cascade
from .cascade_report import plot as plot_cascade
from .cascade_report import render as render_cascade
from .data import Outcomes, load_outcomes
from .evaluation import evaluate

__all__ = ["cascade", "plot", "render", "route"]

_SHORT = {"joulegate (relative target)": "relative", "joulegate (absolute target)": "absolute"}


def _evaluate_with_progress(
    data: Outcomes,
    train_data: Outcomes | None,
    weak: str | None,
    strong: str | None,
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """``evaluate`` under a progress bar on stderr (folds can take minutes)."""
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)
        if train_data is None:
            task = progress.add_task(f"{folds}-fold cross-validation", total=folds)
        else:
            task = progress.add_task(f"training on {train_data.source}", total=None)
        return evaluate(
            data, train_data, weak, strong, folds, seed, on_fold=lambda _k: progress.advance(task)
        )


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
    result = _evaluate_with_progress(test_data, train_data, weak, strong, folds, seed)
    render(result, console)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2))
    if plot_out is not None:
        plot(result, plot_out)


_RESULTS = Path("benchmarks") / "results"


def cascade(
    probe_outcomes: Path = typer.Option(
        _RESULTS / "embedded_probe_outcomes.jsonl",
        "--probe-outcomes",
        help="The embedded tier's graded probe-set answers (benchmarks/measure_embedded.py).",
    ),
    gsm8k_outcomes: Path | None = typer.Option(
        _RESULTS / "embedded_gsm8k_test_outcomes.jsonl",
        "--gsm8k-outcomes",
        help="The embedded tier's graded GSM8K test answers; a missing file skips set (a).",
    ),
    gsm8k_large: Path = typer.Option(
        Path("..") / "shared" / "data" / "routellm-evals" / "gsm8k" / "gsm8k_responses.csv",
        "--gsm8k-large",
        help="RouteLLM's GSM8K responses: GPT-4's graded answers, the large tier of set (a).",
    ),
    large_j: float = typer.Option(
        DEFAULT_LARGE_J,
        "--large-j",
        min=0.0,
        help="Large tier, J per answer (default: Epoch AI's ~0.3 Wh per GPT-4o query).",
    ),
    embedded_j: float | None = typer.Option(
        None, "--embedded-j", min=0.0, help="Embedded tier, J per answer (default: measured)."
    ),
    target: float | None = typer.Option(
        None, "--target", min=0.0, max=1.0, help="Quality target (default: [routing]'s)."
    ),
    min_route_score: float | None = typer.Option(
        None, "--min-route-score", min=0.0, max=1.0, help="route+cascade's minimum router score."
    ),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds (probe set)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the folds."),
    router_score: bool = typer.Option(
        True,
        "--router-score/--no-router-score",
        help="Fit the confidence model with the router's (out-of-fold) score, as calibrate does.",
    ),
    json_out: Path = typer.Option(
        _RESULTS / "cascade_eval.json", "--json", help="Write every number as JSON."
    ),
    plot_out: Path = typer.Option(
        _RESULTS / "cascade_eval.png", "--plot", help="Write the energy/quality plot (PNG)."
    ),
) -> None:
    """Energy per request vs quality: always-cheapest/largest, route, cascade, route+cascade,
    oracle; every point out of sample (routing/cascade_eval.py says how)."""
    from .settings import RoutingSettings

    defaults = RoutingSettings()
    console = Console()
    gsm = gsm8k_outcomes if gsm8k_outcomes is not None and gsm8k_outcomes.exists() else None
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)  # few rows of a kind in a fold
        task = progress.add_task("loading", total=None)
        result = evaluate_cascade(
            probe_outcomes,
            gsm,
            gsm8k_large if gsm is not None else None,
            large_j=large_j,
            embedded_j=embedded_j,
            target=defaults.quality_target if target is None else target,
            min_route_score=defaults.cascade_min_route_score
            if min_route_score is None
            else min_route_score,
            mode=defaults.mode,
            folds=folds,
            seed=seed,
            router_score=router_score,
            on_step=lambda msg: progress.update(task, description=msg),
        )
    render_cascade(result, console)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {json_out} and {plot_cascade(result, plot_out)}")
