"""Quality retained beside the savings: the lines ``joulegate report`` adds about learning.

A saving is only believable next to the quality it kept, so the report sets them side by
side: quality retained over the shadowed sample (95% Wilson interval and n, or "sample too
small"), energy and cost saved (net of learning overhead: learning requests have a zero
baseline, ``ledger/learning.py``), the learning overhead itself, and any day on which
shadow sampling stopped at one of its daily caps. The figures come from
``joulegate.ledger.learning``; this module only gathers and words them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from joulegate.ledger.learning import (
    MIN_SAMPLE,
    QUALITY_BY,
    learning_spend,
    quality_retained,
    shadow_spend_by_day,
)

__all__ = ["learning_lines", "learning_summary"]


def learning_summary(
    engine: Engine,
    since: datetime | None,
    by: str,
    caps: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Quality retained (split ``by`` tier or day when asked), learning overhead by purpose,
    and the days whose shadow spend reached ``caps`` (energy J, cost USD per day)."""
    rows = quality_retained(engine, since, by if by in QUALITY_BY else None)
    capped = []
    if caps is not None:
        max_j, max_usd = caps
        for day, (energy, cost) in sorted(shadow_spend_by_day(engine, since).items()):
            if energy >= max_j or cost >= max_usd:
                capped.append(
                    {
                        "day": day.isoformat(),
                        "energy_j": energy,
                        "cost_usd": cost,
                        "cap": "energy" if energy >= max_j else "cost",
                        "max_energy_j_per_day": max_j,
                        "max_cost_usd_per_day": max_usd,
                    }
                )
    return {
        "quality": rows[-1].as_dict(),
        "quality_by": [r.as_dict() for r in rows[:-1]] if by in QUALITY_BY else [],
        "split_by": by if by in QUALITY_BY else None,
        "overhead": learning_spend(engine, since),
        "capped_days": capped,
    }


def _quality(q: Mapping[str, Any]) -> str:
    if not q["n"]:
        return "not measured (no shadowed answers: see [routing.learn])"
    if q["too_small"]:
        return f"sample too small (n = {q['n']} judged answers; {MIN_SAMPLE} needed)"
    return (
        f"{100 * q['rate']:.1f}% (95% CI {100 * q['low']:.1f}–{100 * q['high']:.1f}%, "
        f"n = {q['n']} judged answers)"
    )


def _saved(value: float, baseline: float, fmt: Callable[[float], str]) -> str:
    share = f" ({100 * abs(value) / baseline:.0f}%)" if baseline else ""
    return f"{fmt(value)}{share} saved" if value >= 0 else f"{fmt(-value)}{share} MORE (a cost)"


def learning_lines(
    summary: Mapping[str, Any], totals: Mapping[str, Any], fmt_energy: Callable[[float], str]
) -> list[str]:
    """The report's lines: quality retained next to energy saved, cost saved and the
    learning overhead; then any split, and any day shadowing stopped at a cap."""
    over = summary["overhead"]
    over_j = sum(v["energy_j"] for v in over.values())
    over_usd = sum(v["cost_usd"] for v in over.values())
    parts = ", ".join(
        f"{purpose} {int(v['requests'])} requests" for purpose, v in over.items() if v["requests"]
    )
    energy = _saved(totals["savings_energy_j"], totals["baseline_energy_j"], fmt_energy)
    cost = _saved(totals["savings_cost_usd"], totals["baseline_cost_usd"], lambda v: f"${v:.4f}")
    overhead = f"learning overhead {fmt_energy(over_j)}, ${over_usd:.4f}"
    lines = [
        f"quality retained: {_quality(summary['quality'])}",
        f"  next to: energy {energy}, cost {cost} (net of learning overhead); "
        + overhead
        + (f" ({parts})" if parts else ""),
    ]
    for q in summary["quality_by"]:
        lines.append(f"  {summary['split_by']} {q['group']}: {_quality(q)}")
    for day in summary["capped_days"]:
        if day["cap"] == "energy":
            cap = f"daily energy cap of {day['max_energy_j_per_day']:g} J"
            spent = fmt_energy(day["energy_j"])
        else:
            cap = f"daily cost cap of ${day['max_cost_usd_per_day']:g}"
            spent = f"${day['cost_usd']:.4f}"
        cap += f" ({spent} spent)"
        lines.append(f"shadow sampling stopped on {day['day']}: it reached its {cap}")
    return lines
