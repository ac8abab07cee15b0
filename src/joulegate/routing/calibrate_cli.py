"""``joulegate calibrate``: measure the configured tiers on a probe set and fit the router.

Builds the gateway from the settings and sends every probe item to every selected tier
through the real pipeline (``ChatService``, explicit model ids, so nothing is routed):
each answer is metered and written to the ledger with ``purpose="calibration"``, so
``joulegate report --by purpose`` shows what measuring the tiers cost. The grading,
resuming and fitting are ``routing.calibration``'s; this module drives them and prints.

It belongs to the CLI layer (it imports the server), like the other ``*_cli`` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from joulegate.cli_support import Column, ConfigOpt, load_settings_or_exit, print_table
from joulegate.ledger import OutcomeStore
from joulegate.ledger.outcomes import prompt_sha256

from .calibration import (
    CALIBRATION,
    CalibrationConfig,
    CalibrationRun,
    Calibrator,
    FitReport,
    fit_from_outcomes,
    summarize,
)
from .probes import KINDS, ProbeItem, load_probe_set

if TYPE_CHECKING:
    from joulegate.config import Settings
    from joulegate.server.asker import GatewayAsker
    from joulegate.server.gateway import Gateway

__all__ = ["GatewayAsker", "calibrate", "pick_items"]

INTERRUPTED = 130  # the shell's code for "stopped by Ctrl-C"


def __getattr__(name: str) -> Any:
    """``GatewayAsker`` lives in the server (``server/asker.py``, shared with shadow
    sampling); it is imported on first use so that loading the CLI does not load the server."""
    if name == "GatewayAsker":
        from joulegate.server.asker import GatewayAsker

        return GatewayAsker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pick_items(items: Sequence[ProbeItem], limit: int | None, seed: int = 0) -> list[ProbeItem]:
    """``limit`` items taken in turn from each kind (routine, hard, open), in a seeded order,
    so a small run still sees every kind and a rerun with the same limit picks the same."""
    if limit is None or limit >= len(items):
        return list(items)
    rng = random.Random(seed)
    pools = {k: [i for i in items if i.kind == k] for k in (*KINDS, *{i.kind for i in items})}
    for pool in pools.values():
        rng.shuffle(pool)
    picked: list[ProbeItem] = []
    while len(picked) < limit:
        for kind in list(pools):
            if pools[kind] and len(picked) < limit:
                picked.append(pools[kind].pop())
    return picked


def _select_tiers(gw: Gateway, names: str | None) -> list[str]:
    if not names:
        return [t.public_id for t in gw.tiers]
    chosen = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        tier = gw.find_model(name)
        if tier is None:
            known = ", ".join(t.public_id for t in gw.tiers)
            raise typer.BadParameter(f"no tier {name!r}; configured: {known}", param_hint="--tiers")
        chosen.append(tier.public_id)
    order = [t.public_id for t in gw.tiers]
    return sorted(set(chosen), key=order.index)


def _router_path(settings: Settings, out: Path | None) -> Path:
    if out is not None:
        return out
    if settings.routing.router_path is not None:
        return Path(settings.routing.router_path).expanduser()
    return Path(settings.data_dir).expanduser() / "router.npz"


def _fmt(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:.2f}"


def _keeps(data: dict[str, Any], target: float) -> str:
    """What a fitted confidence model keeps at ``target``: the threshold read from its
    out-of-fold precision curve, or that it keeps nothing (the target is out of its reach)."""
    from .confidence import ConfidenceModel

    threshold = ConfidenceModel.from_dict(data).keep_threshold(target)
    if threshold is None:
        return f"fit; keeps none at target {target:g}"
    return f"fit; keeps P >= {threshold:.3f} at target {target:g}"


def _print_summary(
    console: Console,
    summary: dict[str, Any],
    fit: FitReport,
    kinds: Sequence[str],
    target: float,
) -> None:
    tiers: dict[str, dict[str, Any]] = summary["tiers"]
    columns = [
        Column("tier"),
        Column("items", "right"),
        Column("mean score", "right"),
        *(Column(k, "right", drop=1) for k in kinds),
        Column("router", wrap=True, drop=2),
        Column("confidence", wrap=True, drop=3),
    ]
    rows = []
    for tier, s in tiers.items():
        by_kind: dict[str, tuple[int, float]] = s["by_kind"]
        cells = [f"{by_kind[k][1]:.2f} ({by_kind[k][0]})" if k in by_kind else "–" for k in kinds]
        head = "head" if tier in fit.heads else f"no head: {fit.without_head.get(tier, '?')}"
        conf = (
            _keeps(fit.confidence[tier], target)
            if tier in fit.confidence
            else f"none: {fit.without_confidence.get(tier)}"
        )
        rows.append([tier, str(s["items"]), _fmt(float(s["mean_score"])), *cells, head, conf])
    print_table(
        columns, rows, title="calibration outcomes (score: 1 = acceptable)", console=console
    )
    judge = summary.get("judge")
    if isinstance(judge, dict):
        console.print(
            f"judge agreement with gold on {judge['n']} gold-graded answers: "
            f"{judge['agreement']:.1%} (exact {judge['exact']:.1%}, undecided "
            f"{judge['undecided']:.1%})"
        )


async def _run(
    settings: Settings,
    items: list[ProbeItem],
    tiers_opt: str | None,
    out: Path,
    concurrency: int,
    max_tokens: int,
    judge_check: int,
    console: Console,
) -> int:
    from joulegate.server.asker import GatewayAsker
    from joulegate.server.gateway import Gateway
    from joulegate.server.serving import ChatService

    gw = Gateway.from_settings(settings)
    tiers = _select_tiers(gw, tiers_opt)
    judge_tier = gw.tiers[-1].public_id if len(gw.tiers) > 1 else None
    config = CalibrationConfig(
        tiers=tiers,
        judge_tier=judge_tier,
        max_tokens=max_tokens,
        concurrency=concurrency,
        judge_check=judge_check,
    )
    await gw.start()
    service = ChatService(gw)
    store = OutcomeStore(gw.ledger.engine)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    presses = 0
    try:
        progress = Progress(
            TextColumn("[bold]calibrating[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        task = progress.add_task("items", total=None)
        calibrator = Calibrator(
            items,
            GatewayAsker(service, seed=config.seed),
            store,
            config,
            on_item=lambda: progress.advance(task),
        )

        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                console.print(
                    "[yellow]stopping: finishing the items in flight (Ctrl-C again to abort)[/]"
                )
                calibrator.stop()
            elif main is not None:
                main.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        work, _ = await asyncio.to_thread(calibrator.plan)
        progress.update(task, total=len(work))
        console.print(
            f"tiers {tiers}; judge {judge_tier or 'none (one tier: open items are skipped)'}; "
            f"{len(items)} items, {len(work)} with answers still to grade"
        )
        with progress:
            run: CalibrationRun = await calibrator.run()
        await service.drain()
    except asyncio.CancelledError:
        console.print("[red]aborted[/]: the outcomes recorded so far are kept; run again to resume")
        return INTERRUPTED
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        await gw.stop()
    console.print(
        f"{run.done} of {run.items} items done, {run.outcomes} outcomes recorded"
        + (f", {run.failed} answers failed (retried next run)" if run.failed else "")
        + (f", {run.skipped_open} open items skipped (no judge)" if run.skipped_open else "")
    )
    if run.interrupted:
        console.print("stopped before the end: run the same command again to resume")
        return INTERRUPTED
    all_tiers = [t.public_id for t in gw.tiers]
    outcomes = await asyncio.to_thread(lambda: store.load(CALIBRATION, all_tiers))
    prompts = {prompt_sha256(i.prompt): i.prompt for i in items}
    fit = await asyncio.to_thread(fit_from_outcomes, outcomes, all_tiers, prompts)
    kinds = {prompt_sha256(i.prompt): i.kind for i in items}
    summary = summarize(outcomes, all_tiers, kinds)
    _print_summary(
        console,
        summary,
        fit,
        [k for k in KINDS if k in {i.kind for i in items}],
        settings.routing.quality_target,
    )
    fit.router.save(out)
    console.print(f"router written to [bold]{out}[/] (heads: {fit.heads or 'none'})")
    if (
        settings.routing.router_path is None
        or Path(settings.routing.router_path).expanduser() != out
    ):
        console.print(
            f'to use it, set in your config:  \\[routing] router_path = "{out}"', soft_wrap=True
        )
    return 0


def calibrate(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data", help="Probe set JSONL (repeatable; default: the shipped set).", exists=True
        ),
    ] = None,
    tiers: Annotated[
        str | None, typer.Option(help="Comma-separated tiers to measure (default: all).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use only N items, spread over the kinds.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Router file to write (default: [routing] router_path or <data_dir>/router.npz)."
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Requests in flight (the embedded tier serialises).")
    ] = 4,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens per answer.")] = 96,
    judge_check: Annotated[
        int, typer.Option(min=0, help="Gold items the judge grades too, to measure agreement.")
    ] = 50,
    config: ConfigOpt = None,
) -> None:
    """Measure each tier on a probe set, grade the answers, and fit the router to these tiers."""
    console = Console()
    settings = load_settings_or_exit(config)
    items = [i for path in data for i in load_probe_set(path)] if data else load_probe_set()
    items = pick_items(items, limit)
    path = _router_path(settings, out)
    code = asyncio.run(
        _run(settings, items, tiers, path, concurrency, max_tokens, judge_check, console)
    )
    if code:
        raise typer.Exit(code)
