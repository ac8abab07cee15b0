"""What every ``joulegate`` sub-command shares: the ``--config`` option, loading settings,
opening the ledger, and printing a table that fits the terminal (or a pipe).

This module and the ``*_cli.py`` modules are the top layer: they may import
``joulegate.config``, which composes every package's settings. Nothing below them (the
modules of ``ledger/``, ``metering/``, ``reports/``, ...) imports a ``*_cli`` module or this
one, so the packages stay usable, and testable, without the whole configuration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from joulegate.config import Settings, load_settings

if TYPE_CHECKING:
    from joulegate.ledger import Ledger

__all__ = [
    "Column",
    "ConfigOpt",
    "load_settings_or_exit",
    "open_ledger",
    "print_table",
]

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (else $JOULEGATE_CONFIG).", exists=True),
]


def load_settings_or_exit(config: Path | None) -> Settings:
    """The settings, or exit 2 with the configuration error on stderr (no traceback)."""
    try:
        return load_settings(config)
    except Exception as exc:
        Console(stderr=True).print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc


@contextmanager
def open_ledger(settings: Settings) -> Iterator[Ledger]:
    """The configured ledger, migrated, for reports and key management; closed on exit.

    No writer thread is started, so this is safe next to a running gateway: SQLite (WAL)
    and PostgreSQL both allow readers, and key changes are transactions of their own.
    """
    from joulegate.ledger import Ledger

    ledger = Ledger.from_settings(settings.ledger, settings.data_dir)
    try:
        ledger.migrate()
        yield ledger
    finally:
        ledger.engine.dispose()


# A wrapping column is given about this many cells before the table drops a column for it.
_WRAP_WIDTH = 20


@dataclass(frozen=True)
class Column:
    """One column of a CLI table.

    ``drop`` says which columns go when the terminal is too narrow for all of them: the
    highest first, and never those at 0 (names and ids, which must be read whole).
    ``wrap`` lets a column of several words (a list, a detail) wrap onto more lines
    before anything is dropped; other cells stay on one line.
    """

    header: str
    justify: JustifyMethod = "left"
    drop: int = 0
    wrap: bool = False


def print_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    footer: Sequence[str] | None = None,
    console: Console | None = None,
) -> None:
    """Print ``rows`` (cells may hold rich markup) for a person or for a program.

    In a terminal: a table of the columns that fit its width, whole words wrapped rather
    than cut to ``…``. Piped or redirected: every column, as plain tab-separated lines with
    a header line first (the footer, if any, last), so ``cut`` and ``awk`` read full ids.
    """
    console = console or Console()
    if not console.is_terminal:
        lines = [[c.header for c in columns], *rows, *([footer] if footer else [])]
        for cells in lines:
            console.file.write("\t".join(_plain(c) for c in cells) + "\n")
        console.file.flush()
        return
    keep = _fit(columns, [*rows, *([footer] if footer else [])], console.width)
    table = Table(title=title, header_style="bold", show_footer=footer is not None)
    for i in keep:
        col = columns[i]
        table.add_column(
            col.header,
            footer=footer[i] if footer else "",
            justify=col.justify,
            no_wrap=not col.wrap,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    console.print(table)


def _plain(cell: str) -> str:
    """A cell without markup, on one line, with no tab to break the row."""
    return " ".join(Text.from_markup(cell).plain.split())


def _lines(cell: str) -> list[str]:
    return Text.from_markup(cell).plain.splitlines() or [""]


def _need(column: Column, cells: Sequence[str]) -> int:
    """The width ``column`` needs: its longest line, or for a wrapping column about
    ``_WRAP_WIDTH``, never less than its longest word."""
    lines = [line for cell in (column.header, *cells) for line in _lines(cell)]
    natural = max(cell_len(line) for line in lines)
    if not column.wrap:
        return natural
    longest_word = max(cell_len(word) for line in lines for word in line.split() or [""])
    return max(longest_word, min(natural, _WRAP_WIDTH))


def _fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Indexes of the columns to show: drop the most droppable (then the rightmost) until
    what the rest need, borders and padding included, fits ``width``."""
    need = [_need(c, [row[i] for row in rows]) for i, c in enumerate(columns)]
    keep = list(range(len(columns)))

    def total() -> int:  # each cell is padded by a space either side, plus one border each
        return sum(need[i] + 3 for i in keep) + 1

    droppable = [i for i, c in enumerate(columns) if c.drop > 0]
    for i in sorted(droppable, key=lambda i: (-columns[i].drop, -i)):
        if total() <= width:
            break
        keep.remove(i)
    return keep
