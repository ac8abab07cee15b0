"""``joulegate router ...`` commands (mounted by the top-level CLI)."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .data import load_outcomes
from .model import train as train_router

__all__ = ["router_app"]

router_app = typer.Typer(help="Train learned routers.", no_args_is_help=True)


@router_app.callback()
def _router() -> None:
    """Train learned routers (a group, so ``train`` stays a named subcommand)."""


@router_app.command("train")
def train(
    data: list[Path] = typer.Option(
        ..., "--data", help="Outcome data: RouteLLM eval dirs/CSVs or JSONL (repeatable)."
    ),
    out: Path = typer.Option(..., "--out", help="Router file to write (.npz)."),
) -> None:
    """Train a router (one calibrated head per model in the data) and save it."""
    console = Console()
    outcomes = load_outcomes(data)
    console.print(f"{len(outcomes)} prompts, models (weakest first): {outcomes.by_capability()}")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("training heads", total=len(outcomes.models))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            router = train_router(outcomes, on_head=lambda _m: progress.advance(task))
    router.save(out)
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
