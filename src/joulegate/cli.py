"""The ``joulegate`` command.

Each concern's package brings its own sub-commands; this file only mounts them, so
adding a command never means editing a giant entry point.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from joulegate.cli_support import Column, ConfigOpt, load_settings_or_exit, print_table

app = typer.Typer(
    name="joulegate",
    help="Efficiency-first LLM gateway: the cheapest tier that answers well, with a receipt.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from config).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Start the OpenAI-compatible server."""
    import uvicorn

    from joulegate.server.app import create_app

    settings = load_settings_or_exit(config)
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    app_ = create_app(settings)
    console.print(
        f"[bold green]joulegate[/] on http://{settings.server.host}:{settings.server.port}/v1 "
        f"— tiers: {', '.join(t.public_id for t in settings.tiers)}"
    )
    uvicorn.run(
        app_,
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.server.log_level,
        timeout_graceful_shutdown=30,
    )


@app.command()
def chat(
    question: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[
        str, typer.Option(help="'auto' or a model id from `joulegate models`.")
    ] = "auto",
    max_tokens: Annotated[int, typer.Option(help="Most tokens to generate.")] = 128,
    config: ConfigOpt = None,
) -> None:
    """Ask one question in the terminal; shows the answering tier, timing and receipt."""
    from joulegate.metering.receipt import FIELDS, format_field
    from joulegate.server.errors import APIError
    from joulegate.server.gateway import Gateway
    from joulegate.server.planning import AUTO, plan_request
    from joulegate.server.protocol import ChatCompletionRequest
    from joulegate.server.serving import ChatService

    settings = load_settings_or_exit(config)
    req = ChatCompletionRequest.model_validate(
        {
            "model": model,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": max_tokens,
        }
    )

    async def run() -> dict[str, object]:
        gw = Gateway.from_settings(settings)
        if req.model != AUTO:
            await plan_request(gw, req)  # an unknown model fails here, before any model loads
        await gw.start()
        try:
            outcome = await ChatService(gw).create(req)
            assert outcome.body is not None
            return outcome.body
        finally:
            await gw.stop()

    t0 = time.perf_counter()
    try:
        body = asyncio.run(run())
    except APIError as exc:
        console.print(f"[red]{exc.status_code} {exc.code}:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    wall = time.perf_counter() - t0
    choice = body["choices"][0]  # type: ignore[index]
    info: dict[str, object] = body["joulegate"]  # type: ignore[assignment]
    console.print(
        Panel(
            str(choice["message"]["content"]).strip() or "[dim](empty answer)[/]",
            title=str(body["model"]),
        )
    )
    table = Table(show_header=False, box=None)
    for name in FIELDS:
        if name in info and name != "model":  # the model is the panel's title
            table.add_row(name, format_field(name, info[name]))
    table.add_row("wall_s (incl. model load)", f"{wall:.2f}")
    console.print(table)


@app.command()
def models(config: ConfigOpt = None) -> None:
    """List the model ids clients can ask for."""
    settings = load_settings_or_exit(config)
    columns = (Column("id"), Column("tier", drop=2), Column("kind", drop=2), Column("endpoint"))
    rows = [["auto", "-", "router", "picks the cheapest tier expected to answer well"]]
    for t in settings.tiers:
        rows.append([t.public_id, t.name, t.kind, t.base_url or "in-process (llama.cpp)"])
    print_table(columns, rows, console=console)


@app.command()
def prepare(config: ConfigOpt = None) -> None:
    """Assemble the embedded model's weights into the cache (done once, offline)."""
    from joulegate.backends.model_files import ensure_embedded_model

    settings = load_settings_or_exit(config)
    path = ensure_embedded_model(settings.embedded.model_path)
    console.print(f"embedded model ready: {path} ({path.stat().st_size / 1e6:.0f} MB)")


def _mount() -> None:
    """Sub-commands owned by their packages."""
    from joulegate.backends.tiers_cli import tiers
    from joulegate.cache.cache_cli import cache_app
    from joulegate.ledger.keys_cli import keys_app
    from joulegate.reports.project_cli import project
    from joulegate.reports.report_cli import report
    from joulegate.routing.bench_cli import cascade as bench_cascade
    from joulegate.routing.bench_cli import route as bench_route
    from joulegate.routing.calibrate_cli import calibrate
    from joulegate.routing.router_cli import router_app

    app.command("report")(report)
    app.command("project")(project)
    app.command("tiers")(tiers)
    app.command("calibrate")(calibrate)
    app.add_typer(router_app, name="router", help="Train and inspect routers.")
    bench_app = typer.Typer(help="Evaluate joulegate's parts on data.", no_args_is_help=True)
    bench_app.command("route")(bench_route)
    bench_app.command("cascade")(bench_cascade)
    app.add_typer(bench_app, name="bench")
    app.add_typer(keys_app, name="keys", help="Create, list and revoke API keys with budgets.")
    app.add_typer(cache_app, name="cache", help="Inspect and clear the response cache.")


_mount()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
