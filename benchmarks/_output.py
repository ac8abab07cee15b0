"""Where a benchmark's results go and how they are shown.

Each benchmark prints its tables and writes ``benchmarks/results/<name>.json``; the
processes it starts keep their work dirs, logs and ledgers under ``benchmarks/out``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
# Work dirs, logs and ledgers of the processes a benchmark starts (git-ignored).
OUT = HERE / "out"

# Progress lines appear as they happen even when the output goes to a file.
with contextlib.suppress(AttributeError, ValueError):
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
# Wide tables stay readable when the output is a file or a pipe, not a terminal.
console = Console(width=None if sys.stdout.isatty() else 140)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    console.print(f"[dim]wrote {path.relative_to(REPO)}[/]")
    return path


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    console.print(table)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}"
    return str(v)
