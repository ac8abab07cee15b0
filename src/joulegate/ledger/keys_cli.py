"""``joulegate keys create|list|revoke``: manage API keys in the ledger's database.

Mount with ``app.add_typer(keys_app, name="keys")``. The clear key is printed once, at
creation, and is never stored or shown again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from joulegate.ledger.budgets import ON_EXCEED, PERIODS
from joulegate.ledger.errors import UnknownKey
from joulegate.ledger.keys import KeyInfo, KeyStore

keys_app = typer.Typer(help="Manage API keys and their budgets.", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="joulegate TOML config file.")
]


def _store(config: Path | None) -> KeyStore:
    from joulegate.config import load_settings
    from joulegate.ledger.store import Ledger

    settings = load_settings(config)
    ledger = Ledger.from_settings(settings.ledger, settings.data_dir)
    ledger.migrate()
    return KeyStore(ledger.engine)


def _budget(info: KeyInfo) -> str:
    parts = []
    if info.budget_j is not None:
        parts.append(f"{info.spent_j:.4g} / {info.budget_j:.4g} J")
    if info.budget_usd is not None:
        parts.append(f"${info.spent_usd:.4f} / ${info.budget_usd:.4f}")
    if info.budget_co2e_g is not None:
        parts.append(f"{info.spent_co2e_g:.4g} / {info.budget_co2e_g:.4g} g CO2e")
    return ", ".join(parts) or "unlimited"


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
    config: ConfigOpt = None,
) -> None:
    """Create a key. It is printed once and stored only as a salted hash."""
    if period not in PERIODS:
        raise typer.BadParameter(f"choose one of {', '.join(PERIODS)}", param_hint="--period")
    if on_exceed not in ON_EXCEED:
        raise typer.BadParameter(f"choose one of {', '.join(ON_EXCEED)}", param_hint="--on-exceed")
    try:
        info, token = _store(config).create(
            name, budget_j, budget_usd, budget_co2e_g, period=period, on_exceed=on_exceed
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console(stderr=True)
    console.print(
        f"Created key [bold]{info.name}[/] (id {info.key_id}), budget {_budget(info)}"
        f" per {info.period}, on exceed: {info.on_exceed}."
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
    infos = _store(config).list(include_revoked=all_keys)
    if json_out:
        doc = [
            {
                "key_id": i.key_id,
                "name": i.name,
                "created_at": i.created_at.isoformat(),
                **i.budget_view(),
            }
            for i in infos
        ]
        typer.echo(json.dumps(doc, indent=2))
        return
    table = Table(title="joulegate keys", header_style="bold")
    for col in ("name", "id", "created (UTC)", "period", "spend / budget", "resets", "on exceed"):
        table.add_column(col)
    for i in infos:
        reset = i.resets_at
        table.add_row(
            i.name + (" (revoked)" if i.revoked else ""),
            i.key_id,
            f"{i.created_at:%Y-%m-%d %H:%M}",
            i.period,
            _budget(i),
            f"{reset:%Y-%m-%d %H:%M}" if reset else "never",
            i.on_exceed,
        )
    Console().print(table if infos else "No keys. Create one with `joulegate keys create`.")


@keys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The key's id or name.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    try:
        info = _store(config).revoke(key)
    except UnknownKey as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {info.name} ({info.key_id})")
