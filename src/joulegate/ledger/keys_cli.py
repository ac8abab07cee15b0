"""``joulegate keys create|list|revoke``: manage API keys in the ledger's database.

Mount with ``app.add_typer(keys_app, name="keys")``. The clear key is printed once, at
creation, and is never stored or shown again. Like every ``*_cli.py`` module this is the
CLI layer (``joulegate.cli_support``), not part of the ledger package's API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from joulegate.cli_support import Column, ConfigOpt, load_settings_or_exit, open_ledger, print_table
from joulegate.ledger.budgets import ON_EXCEED, PERIODS
from joulegate.ledger.errors import UnknownKey
from joulegate.ledger.keys import KeyInfo, KeyStore

keys_app = typer.Typer(help="Manage API keys and their budgets.", no_args_is_help=True)

# Names and ids never go; the rest go right to left as the terminal narrows.
_COLUMNS = (
    Column("name"),
    Column("id"),
    Column("created (UTC)", drop=3),
    Column("period", drop=2),
    Column("spend / budget", drop=1, wrap=True),
    Column("resets", drop=3),
    Column("on exceed", drop=2),
    Column("role / rate limits", drop=1),
)


@contextmanager
def _store(config: Path | None) -> Iterator[KeyStore]:
    with open_ledger(load_settings_or_exit(config)) as ledger:
        yield KeyStore(ledger.engine)


def _budget(info: KeyInfo) -> str:
    parts = []
    if info.budget_j is not None:
        parts.append(f"{info.spent_j:.4g} / {info.budget_j:.4g} J")
    if info.budget_usd is not None:
        parts.append(f"${info.spent_usd:.4f} / ${info.budget_usd:.4f}")
    if info.budget_co2e_g is not None:
        parts.append(f"{info.spent_co2e_g:.4g} / {info.budget_co2e_g:.4g} g CO2e")
    return ", ".join(parts) or "unlimited"


def _access(info: KeyInfo) -> str:
    rates = [f"{v} {unit}" for v, unit in ((info.rpm, "rpm"), (info.tpm, "tpm")) if v is not None]
    return ", ".join([info.role, *rates, *([] if info.learn else ["no-learn"])])


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A unique name for the key, e.g. team-a.")],
    budget_j: Annotated[float | None, typer.Option(help="Energy budget in joules.")] = None,
    budget_usd: Annotated[float | None, typer.Option(help="Cost budget in US dollars.")] = None,
    budget_co2e_g: Annotated[
        float | None, typer.Option(help="Emissions budget in grams CO2e.")
    ] = None,
    period: Annotated[str, typer.Option(help=f"Budget window: {', '.join(PERIODS)}.")] = "total",
    on_exceed: Annotated[
        str,
        typer.Option(help="Over budget: reject (HTTP 429) or downgrade to a cheaper tier."),
    ] = "reject",
    admin: Annotated[
        bool, typer.Option("--admin", help="May also read the dashboard, its API and /metrics.")
    ] = False,
    rpm: Annotated[
        int | None,
        typer.Option(min=1, help="Requests per minute (default: [server] default_rpm)."),
    ] = None,
    tpm: Annotated[
        int | None,
        typer.Option(min=1, help="Tokens per minute (default: [server] default_tpm)."),
    ] = None,
    no_learn: Annotated[
        bool,
        typer.Option(
            "--no-learn",
            help="Never shadow-sample this key's requests ([routing.learn]): its prompts "
            "go only to the tier that answers them, and nothing of them reaches the outcomes.",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Create a key. It is printed once and stored only as a salted hash."""
    if period not in PERIODS:
        raise typer.BadParameter(f"choose one of {', '.join(PERIODS)}", param_hint="--period")
    if on_exceed not in ON_EXCEED:
        raise typer.BadParameter(f"choose one of {', '.join(ON_EXCEED)}", param_hint="--on-exceed")
    try:
        with _store(config) as store:
            info, token = store.create(
                name,
                budget_j,
                budget_usd,
                budget_co2e_g,
                period=period,
                on_exceed=on_exceed,
                role="admin" if admin else "user",
                rpm=rpm,
                tpm=tpm,
                learn=not no_learn,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console(stderr=True)
    console.print(
        f"Created key [bold]{info.name}[/] (id {info.key_id}), budget {_budget(info)}"
        f" per {info.period}, on exceed: {info.on_exceed}; {_access(info)}."
    )
    console.print("Store it now; it cannot be shown again:", style="yellow")
    typer.echo(token)  # stdout, alone, so scripts can capture it


@keys_app.command("list")
def list_keys(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """List keys with their budgets and spend in the current period."""
    with _store(config) as store:
        infos = store.list(include_revoked=all_keys)
    if json_out:
        doc = [
            {
                "key_id": i.key_id,
                "name": i.name,
                "created_at": i.created_at.isoformat(),
                "role": i.role,
                "rpm": i.rpm,
                "tpm": i.tpm,
                "learn": i.learn,
                **i.budget_view(),
            }
            for i in infos
        ]
        typer.echo(json.dumps(doc, indent=2))
        return
    if not infos:
        Console().print("No keys. Create one with `joulegate keys create`.")
        return
    rows = [
        [
            i.name + (" (revoked)" if i.revoked else ""),
            i.key_id,
            f"{i.created_at:%Y-%m-%d %H:%M}",
            i.period,
            _budget(i),
            f"{i.resets_at:%Y-%m-%d %H:%M}" if i.resets_at else "never",
            i.on_exceed,
            _access(i),
        ]
        for i in infos
    ]
    print_table(_COLUMNS, rows, title="joulegate keys")


@keys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The key's id or name.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    try:
        with _store(config) as store:
            info = store.revoke(key)
    except UnknownKey as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {info.name} ({info.key_id})")
