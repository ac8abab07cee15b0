"""``joulegate cache stats|clear``: what the response cache holds and serves, and emptying it.

Mounted by ``joulegate.cli`` as a sub-app. It reads the store directly (the SQLite file or
the Redis server of ``[cache]``), so it works next to a running gateway: a cleared entry is
gone for the gateway at its next lookup.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from joulegate.cache.service import SHARED, build_store
from joulegate.cache.stats import summarize
from joulegate.cli_support import Column, ConfigOpt, load_settings_or_exit, open_ledger, print_table

cache_app = typer.Typer(help="Inspect and clear the response cache.", no_args_is_help=True)

KeyOpt = Annotated[
    str | None,
    typer.Option("--key", help="A key's name or id (or 'anonymous'): only its namespace."),
]


def _names(settings: Any) -> dict[str, str]:
    """Key id -> key name, for the table (empty when the ledger cannot be read)."""
    try:
        from joulegate.ledger import KeyStore

        with open_ledger(settings) as ledger:
            return {k.key_id: k.name for k in KeyStore(ledger.engine).list(include_revoked=True)}
    except Exception:
        return {}


def _namespace(key: str, names: dict[str, str], shared: bool) -> str:
    if shared:
        return SHARED
    for key_id, name in names.items():
        if key in (key_id, name):
            return key_id
    return key


@cache_app.command()
def stats(
    key: KeyOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Entries, lookups, hits (exact, semantic), hit rate and estimated false-hit rate."""
    settings = load_settings_or_exit(config)
    store = build_store(settings.cache, settings.data_dir)
    try:
        doc = summarize(store.stats(), store.counts())
    finally:
        store.close()
    names = _names(settings)
    if key is not None:
        ns = _namespace(key, names, settings.cache.shared)
        doc = {"total": doc["namespaces"].get(ns, summarize({}, {})["total"]), "namespaces": {}}
    doc["store"] = settings.cache.store
    doc["mode"] = settings.cache.mode
    if json_out:
        typer.echo(json.dumps(doc, indent=2))
        return
    columns = [
        Column("namespace"),
        Column("entries", "right"),
        Column("lookups", "right"),
        Column("exact hits", "right", drop=2),
        Column("semantic hits", "right", drop=2),
        Column("hit rate", "right"),
        Column("est. false hits", "right", drop=1),
        Column("explored (disagreed)", "right", drop=3),
    ]

    def row(label: str, r: dict[str, Any]) -> list[str]:
        return [
            label,
            f"{r['entries']:,}",
            f"{r['lookups']:,}",
            f"{r['exact_hits']:,}",
            f"{r['semantic_hits']:,}",
            f"{r['hit_rate']:.1%}",
            f"{r['est_false_hit_rate']:.2%}",
            f"{r['explored']:,} ({r['explored_disagreed']:,})",
        ]

    rows = [row(names.get(ns, ns), r) for ns, r in doc["namespaces"].items()]
    print_table(
        columns,
        rows,
        title=f"response cache ({settings.cache.store}, mode {settings.cache.mode})",
        footer=row("total", doc["total"]),
    )


@cache_app.command()
def clear(key: KeyOpt = None, config: ConfigOpt = None) -> None:
    """Delete every entry, or one key's (``--key``), and their counters."""
    settings = load_settings_or_exit(config)
    ns = None if key is None else _namespace(key, _names(settings), settings.cache.shared)
    store = build_store(settings.cache, settings.data_dir)
    try:
        n = store.clear(ns)
    finally:
        store.close()
    where = "the whole cache" if ns is None else f"namespace {ns}"
    Console().print(f"removed {n:,} entries from {where}", highlight=False)
