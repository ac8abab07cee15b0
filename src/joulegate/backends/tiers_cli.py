"""``joulegate tiers``: is each tier up, what does it serve, and what does a token cost?

Probes every tier's health endpoint concurrently (the same probe the circuit breaker
uses), so the table shows what the gateway would see right now from this machine. Profile
fields left unset in the config show the metering default they fall back to, marked
``*``, so the table is the energy and price model actually in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console

from joulegate.backends.breaker import ProbeResult
from joulegate.backends.settings import CAPABILITIES, TierSettings
from joulegate.cli_support import Column, ConfigOpt, load_settings_or_exit, print_table
from joulegate.metering import Meter, MeteringSettings, select_sensor

# The tier and its model id never go; the energy and price model goes before health.
_COLUMNS = (
    Column("tier"),
    Column("model id"),
    Column("kind", drop=3),
    Column("endpoint", drop=2),
    Column("health", drop=1, wrap=True),
    Column("latency", drop=2),
    Column("J/in tok", drop=4),
    Column("J/out tok", drop=4),
    Column("price in", drop=4),
    Column("price out", drop=4),
    Column("gCO2e/kWh", drop=4),
)


async def probe_tier(tier: TierSettings) -> ProbeResult | None:
    """One tier's health now; None for the embedded tier, which lives in the gateway."""
    if tier.kind == "embedded":
        return None
    from joulegate.backends.http import HTTPBackend

    backend = HTTPBackend(tier)
    await backend.start()
    try:
        return await backend.probe()
    finally:
        await backend.aclose()


async def probe_all(tiers: Sequence[TierSettings]) -> list[ProbeResult | None]:
    return list(await asyncio.gather(*(probe_tier(t) for t in tiers)))


def _num(value: float | None, default: float, fmt: str = "{:g}") -> str:
    return fmt.format(value) if value is not None else f"[dim]{fmt.format(default)}*[/]"


def _row(
    tier: TierSettings,
    m: MeteringSettings,
    result: ProbeResult | None,
    sensed: str | None,
    electricity: bool = False,
) -> list[str]:
    """``sensed``: the sensor's provenance label when it meters this tier, else None.
    ``electricity``: an estimated tier on this machine, priced at its electricity."""
    p = tier.profile
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
        if electricity:  # on this machine, not measurable: its estimate at local prices
            usd_in, usd_out = f"{_num(p.usd_per_kwh, m.usd_per_kwh)} $/kWh", "-"
            grid = _num(p.grid_gco2_per_kwh, m.grid_gco2_per_kwh)
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


_CAPABILITY_COLUMNS = (
    Column("tier"),
    Column("capability"),
    Column("declared"),
    Column("probed"),
    Column("detail", drop=1, wrap=True),
)


def _mark(value: bool | None) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]", None: "[yellow]?[/]"}[value]


def print_capabilities(settings_tiers: Sequence[TierSettings], console: Console) -> None:
    """Probe each upstream's capabilities and show them beside what its config declares;
    then the ``[tiers.capabilities]`` lines that would make the config match."""
    from joulegate.backends.capability_probe import probe_context_length, run

    rows: list[list[str]] = []
    fixes: dict[str, list[str]] = {}
    windows: list[str] = []
    for tier in settings_tiers:
        declared = tier.supported
        probed = {o.capability: o for o in run(tier)} if tier.kind == "openai" else {}
        for name in CAPABILITIES:
            outcome = probed.get(name)
            said = name in declared
            got = outcome.ok if outcome is not None else None
            detail = outcome.detail if outcome is not None else "in-process: as measured"
            rows.append([tier.name, name, _mark(said), _mark(got), detail])
            if got is not None and got != said:
                fixes.setdefault(tier.name, []).append(f"{name} = {str(got).lower()}")
        if tier.kind == "openai":
            window, where = asyncio.run(probe_context_length(tier))
            rows.append(
                [
                    tier.name,
                    "context_length",
                    str(tier.context_length or "-"),
                    str(window or "?"),
                    where,
                ]
            )
            if window is not None and window != tier.context_length:
                windows.append(f"tier {tier.name}: set context_length = {window} ({where})")
    print_table(_CAPABILITY_COLUMNS, rows, title="capabilities", console=console)
    for line in windows:
        console.print(line, highlight=False, soft_wrap=True)
    for tier_name, lines in fixes.items():
        console.print(
            f"tier {tier_name}: to match the probe, set in its \\[tiers.capabilities]: "
            + ", ".join(lines),
            highlight=False,
            soft_wrap=True,
        )


def tiers(
    config: ConfigOpt = None,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Also probe each upstream's capabilities (tools, JSON, logprobs, ...) with "
            "one tiny request each, and compare them with the config.",
        ),
    ] = False,
) -> None:
    """Show each tier's health, model, and energy/price profile."""
    settings = load_settings_or_exit(config)
    results = asyncio.run(probe_all(settings.tiers))
    # The meter decides which tiers this machine's sensor can measure; ask it, don't guess.
    meter = Meter(settings.metering, settings.tiers, select_sensor(settings.metering))
    rows = []
    for tier, result in zip(settings.tiers, results, strict=True):
        pricing = meter.pricing(tier.name)
        sensed = meter.sensor.source if pricing.local else None
        electricity = pricing.on_machine and not pricing.per_token_price
        rows.append(_row(tier, settings.metering, result, sensed, electricity))
    console = Console()
    print_table(_COLUMNS, rows, title="joulegate tiers (cheapest first)", console=console)
    if console.is_terminal:  # a pipe gets the rows alone
        console.print(f"[dim]energy sensor: {meter.sensor.name} ({meter.sensor.source})[/]")
        console.print("[dim]* metering default (docs/energy.md); set it in \\[tiers.profile][/]")
    meter.close()
    if probe:
        print_capabilities(settings.tiers, console)


__all__ = ["print_capabilities", "probe_all", "probe_tier", "tiers"]
