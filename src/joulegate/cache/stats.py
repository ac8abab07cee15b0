"""The cache's counters: what ``joulegate cache stats``, the reports and the dashboard show.

Counted per namespace (an API key, ``shared`` or ``anonymous``) in memory as requests go,
and added to the store's counters in batches (``ResponseCache._flush_counters``), so a
lookup never waits for a counter write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATS = ("lookups", "exact_hits", "semantic_hits", "explored", "explored_disagreed", "stored")
"""Counters per namespace. ``est_false_hits`` (a float) is kept beside them: the sum of each
semantic hit's estimated error, whose share of all hits is the estimated false-hit rate."""


@dataclass
class Counters:
    by_namespace: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, namespace: str, name: str, value: float = 1.0) -> None:
        ns = self.by_namespace.setdefault(namespace, {})
        ns[name] = ns.get(name, 0.0) + value


def summarize(stats: dict[str, dict[str, float]], counts: dict[str, int]) -> dict[str, Any]:
    """Per namespace and in total: entries, lookups, hits by kind, hit rate, and the
    estimated false-hit rate (the semantic hits' summed estimated error over all hits)."""
    evicted = stats.pop("*", {}).get("evicted", 0.0)
    names = sorted(set(stats) | set(counts))
    rows = {ns: _row(stats.get(ns, {}), counts.get(ns, 0)) for ns in names}
    total: dict[str, float] = {}
    for ns in names:
        for k, v in stats.get(ns, {}).items():
            total[k] = total.get(k, 0.0) + v
    out = _row(total, sum(counts.values()))
    out["evicted"] = int(evicted)
    return {"total": out, "namespaces": rows}


def _row(s: dict[str, float], entries: int) -> dict[str, Any]:
    lookups = int(s.get("lookups", 0))
    exact, semantic = int(s.get("exact_hits", 0)), int(s.get("semantic_hits", 0))
    hits = exact + semantic
    explored = int(s.get("explored", 0))
    return {
        "entries": entries,
        "lookups": lookups,
        "exact_hits": exact,
        "semantic_hits": semantic,
        "hit_rate": hits / lookups if lookups else 0.0,
        "est_false_hit_rate": s.get("est_false_hits", 0.0) / hits if hits else 0.0,
        "explored": explored,
        "explored_disagreed": int(s.get("explored_disagreed", 0)),
        "stored": int(s.get("stored", 0)),
    }
