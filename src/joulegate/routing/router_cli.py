"""``joulegate router ...`` commands (mounted by the top-level CLI)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
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
    data: list[Path] | None = typer.Option(
        None, "--data", help="Outcome data: RouteLLM eval dirs/CSVs or JSONL (repeatable)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Router file to write (.npz). With --from-ledger, default: [routing] router_path "
        "or <data_dir>/router.npz (the previous file is kept as <name>.prev.npz).",
    ),
    from_ledger: bool = typer.Option(
        False,
        "--from-ledger",
        help="Fit the configured tiers' router and cascade models on the ledger's "
        "calibration and shadow outcomes.",
    ),
    since: str | None = typer.Option(
        None, "--since", help="With --from-ledger: only outcomes this recent (30d, 12h, 2w)."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML config file (else $JOULEGATE_CONFIG).", exists=True
    ),
) -> None:
    """Train a router and save it: from outcome data files (one head per model in the data),
    or with --from-ledger from this gateway's own calibration and shadow outcomes."""
    console = Console()
    if from_ledger == bool(data):
        raise typer.BadParameter("give --data FILE... or --from-ledger (one of them)")
    if from_ledger:
        _from_ledger(out, since, config, console)
        return
    if since is not None:
        raise typer.BadParameter("--since goes with --from-ledger", param_hint="--since")
    if out is None:
        raise typer.BadParameter("--out is required with --data", param_hint="--out")
    outcomes = load_outcomes(data or [])
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


def _from_ledger(
    out: Path | None, since: str | None, config: Path | None, console: Console
) -> None:
    """``--from-ledger``: refit on calibration + shadow outcomes, compare with the router in
    use at the quality target (routing/learning.py's swap rule), write the new file."""
    from joulegate.cli_support import load_settings_or_exit, open_ledger
    from joulegate.ledger import OutcomeStore
    from joulegate.ledger.learning import LEARNING_PURPOSES

    from .learning import refit, save_keeping_previous
    from .router import Router
    from .settings import parse_duration

    settings = load_settings_or_exit(config)
    tiers = [t.public_id for t in settings.tiers]
    if len(tiers) < 2:
        raise typer.BadParameter("one tier needs no router: configure two or more tiers")
    try:
        start = datetime.now(UTC) - timedelta(seconds=parse_duration(since)) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    with open_ledger(settings) as ledger:
        store = OutcomeStore(ledger.engine)
        outcomes = [
            o
            for purpose in LEARNING_PURPOSES
            for o in store.load(purpose, tiers)
            if start is None or o.ts >= start
        ]
    if not outcomes:
        console.print(
            "[red]no calibration or shadow outcomes for these tiers in the ledger[/]"
            + (f" since {since}" if since else "")
            + ": run `joulegate calibrate`, or enable [routing.learn]"
        )
        raise typer.Exit(1)
    target = settings.routing.quality_target
    current = Router.load(settings.routing.router_path, target, tiers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        decision = refit(outcomes, tiers, current.model, target)
    fit = decision.fit
    console.print(
        f"{decision.outcomes} outcomes {decision.by_purpose}; heads: {fit.heads or 'none'}"
        + "".join(f"; {t}: no head ({why})" for t, why in fit.without_head.items())
        + f"; cascade models: {sorted(fit.confidence) or 'none'}"
    )
    console.print(
        f"at quality target {target:g}: new router (cross-validated) {decision.new.describe()}"
    )
    console.print(f"the router in use ({current.source}) {decision.current.describe()}")
    if not decision.swap:
        console.print(
            "[yellow]the new router keeps worse answers on the cheaper tiers than the one in "
            "use: a server's periodic refit would keep the current one[/]"
        )
    path = out
    if path is None:
        configured = settings.routing.router_path
        path = Path(configured).expanduser() if configured else settings.data_dir / "router.npz"
    previous = save_keeping_previous(fit.router, path)
    console.print(
        f"router written to [bold]{path}[/]"
        + (f" (previous kept as {previous})" if previous else "")
    )
    if (
        settings.routing.router_path is None
        or Path(settings.routing.router_path).expanduser() != path
    ):
        console.print(
            f'to use it, set in your config:  \\[routing] router_path = "{path}"', soft_wrap=True
        )
