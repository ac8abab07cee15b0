"""``joulegate tiers``: is each tier up, what does it serve, and what does a token cost?

Probes every tier's health endpoint concurrently (the same probe the circuit breaker
uses), so the table shows what the gateway would see right now from this machine. Profile
fields left unset in the config show the metering default they fall back to, marked
``*``, so the table is the energy and price model actually in force.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from joulegate.backends.breaker import ProbeResult
from joulegate.config import Settings, TierSettings, load_settings
from joulegate.metering import Meter

console = Console()


async def probe_tier(tier: TierSettings) -> ProbeResult | None:
    """One tier's health now; None for the embedded tier, which lives in the gateway."""
    if tier.kind == "embedded":
        return None
    from joulegate.backends.http import HTTPBackend

    backend = HTTPBackend.from_tier(tier)
    await backend.start()
    try:
        return await backend.probe()
    finally:
        await backend.aclose()


async def probe_all(settings: Settings) -> list[ProbeResult | None]:
    return list(await asyncio.gather(*(probe_tier(t) for t in settings.tiers)))


def _num(value: float | None, default: float, fmt: str = "{:g}") -> str:
    return fmt.format(value) if value is not None else f"[dim]{fmt.format(default)}*[/]"


def _row(
    tier: TierSettings, settings: Settings, result: ProbeResult | None, sensed: str | None
) -> list[str]:
    """``sensed``: the sensor's provenance label when it meters this tier, else None."""
    m, p = settings.metering, tier.profile
    if result is None:
        health, latency = "[green]in-process[/]", "-"
    elif result.ok:
        health, latency = f"[green]up[/] [dim]{result.detail}[/]", f"{result.latency_ms:.0f} ms"
    else:
        health, latency = f"[red]down[/] [dim]{result.detail}[/]", "-"
    if sensed is not None:
        # Metered by this machine's sensor; money is electricity plus amortised hardware.
        j_in = j_out = sensed
        usd_in = f"{_num(p.usd_per_kwh, m.usd_per_kwh)} $/kWh"
        usd_out = f"+ {_num(p.hardware_usd_per_hour, m.hardware_usd_per_hour, '{:.3f}')} $/h hw"
        grid = _num(p.grid_gco2_per_kwh, m.grid_gco2_per_kwh)
    else:
        j_in = _num(p.joules_per_input_token, m.remote_joules_per_input_token)
        j_out = _num(p.joules_per_output_token, m.remote_joules_per_output_token)
        usd_in = f"{_num(p.usd_per_mtok_input, m.remote_usd_per_mtok_input)} $/Mtok"
        usd_out = f"{_num(p.usd_per_mtok_output, m.remote_usd_per_mtok_output)} $/Mtok"
        grid = _num(p.grid_gco2_per_kwh, m.remote_grid_gco2_per_kwh)
    endpoint = tier.base_url or "in-process (llama.cpp)"
    return [
        tier.name,
        tier.public_id,
        tier.kind,
        endpoint,
        health,
        latency,
        j_in,
        j_out,
        usd_in,
        usd_out,
        grid,
    ]


def tiers(
    config: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional on 3.11
        typer.Option(
            "--config", "-c", help="TOML config file (else $JOULEGATE_CONFIG).", exists=True
        ),
    ] = None,
) -> None:
    """Show each tier's health, model, and energy/price profile."""
    try:
        settings = load_settings(config)
    except Exception as exc:  # show config errors without a traceback
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    results = asyncio.run(probe_all(settings))
    table = Table(
        "tier",
        "model id",
        "kind",
        "endpoint",
        "health",
        "latency",
        "J/in tok",
        "J/out tok",
        "price in",
        "price out",
        "gCO2e/kWh",
        title="joulegate tiers (cheapest first)",
    )
    # The meter decides which tiers this machine's sensor can measure; ask it, don't guess.
    meter = Meter(settings.metering, settings.tiers)
    for tier, result in zip(settings.tiers, results, strict=True):
        sensed = meter.sensor.source if meter.plan(tier.name).local else None
        table.add_row(*_row(tier, settings, result, sensed))
    console.print(table)
    console.print(f"[dim]energy sensor: {meter.sensor.name} ({meter.sensor.source})[/]")
    meter.close()
    console.print("[dim]* metering default (docs/energy.md); set it in \\[tiers.profile][/]")


__all__ = ["probe_all", "probe_tier", "tiers"]
