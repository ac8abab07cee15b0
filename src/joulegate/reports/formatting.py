"""Numbers as a person reads them in a report, a table cell or a chart label."""

from __future__ import annotations

import math

__all__ = ["fmt_energy", "human", "money", "pct"]


def fmt_energy(joules: float) -> str:
    """Joules with an SI prefix: ``812 J``, ``3.40 kJ``, ``1.25 MJ``."""
    a = abs(joules)
    for div, unit in ((1e6, "MJ"), (1e3, "kJ")):
        if a >= div:
            return f"{joules / div:.2f} {unit}"
    return f"{joules:.3g} J" if a < 100 else f"{joules:.0f} J"


def human(x: float, unit: str = "") -> str:
    """Compact, sign-aware figures: 8.18 M, 1.2 k, 0.352 — what a person reads at a glance."""
    if x is None or math.isnan(x):
        return "—"
    if x == 0:
        return "0" + (f" {unit}" if unit else "")
    a = abs(x)
    for scale, suffix in ((1e12, " T"), (1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if a >= scale:
            return f"{x / scale:,.3g}{suffix}{unit}"
    return f"{x:,.3g}{' ' + unit if unit else ''}"


def money(x: float | None) -> str:
    """``$9.65 M``, ``-$1.2 k``: :func:`human` with a dollar sign (thin space before the scale)."""
    if x is None:
        return "—"
    sign = "-" if x < 0 else ""
    return sign + "$" + human(abs(x)).replace(" ", "\u2009")


def pct(part: float, whole: float) -> str:
    """``42%`` of ``whole``, or ``-`` when there is no whole to be a part of."""
    return f"{100 * part / whole:.0f}%" if whole else "-"
