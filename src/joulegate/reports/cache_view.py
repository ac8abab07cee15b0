"""The response cache's figures for ``joulegate report`` and the dashboard.

Hits and what they saved come from the ledger: a hit's row has ``energy_source = "cache"``
and its ``baseline_*`` figures are what the cached answer cost when a model made it, so
``baseline - actual`` over those rows is the energy the cache saved. The estimated
false-hit rate is the cache's own (``joulegate cache stats``): the mean estimated error of
the semantic hits it served, over all its hits; the caller passes those stats in, since
this package reads the ledger only.
"""

from __future__ import annotations

from typing import Any

CACHE_SOURCE = "cache"


def cache_summary(
    by_source: list[dict[str, Any]], totals: dict[str, Any], stats: dict[str, Any] | None
) -> dict[str, Any]:
    """Hits, hit rate, energy saved (J and share of what the hits would have cost), and
    the estimated false-hit rate (None where the cache's stats are not at hand)."""
    row = next((g for g in by_source if g.get("group") == CACHE_SOURCE), None)
    hits = int(row["requests"]) if row else 0
    requests = int(totals.get("requests", 0))
    saved = float(row["savings_energy_j"]) if row else 0.0
    would_have = float(row["baseline_energy_j"]) if row else 0.0
    total = (stats or {}).get("total") or {}
    return {
        "hits": hits,
        "requests": requests,
        "hit_rate": hits / requests if requests else 0.0,
        "energy_saved_j": saved,
        "energy_saved_share": saved / would_have if would_have else 0.0,
        "exact_hits": total.get("exact_hits"),
        "semantic_hits": total.get("semantic_hits"),
        "est_false_hit_rate": total.get("est_false_hit_rate") if total else None,
        "entries": total.get("entries"),
    }


def cache_line(summary: dict[str, Any], fmt_energy: Any) -> str:
    """One line for a person: ``Response cache: 31 of 120 requests (25.8%) ...``."""
    s = summary
    line = (
        f"Response cache: {s['hits']:,} of {s['requests']:,} requests served from it "
        f"({s['hit_rate']:.1%}), saving {fmt_energy(s['energy_saved_j'])}"
    )
    if s["est_false_hit_rate"] is not None:
        line += f"; estimated false hits {s['est_false_hit_rate']:.2%} of its hits"
    return line + "."
