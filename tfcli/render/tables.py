"""Tables that never cut a number: a width planner over Rich tables, a stacked fallback, Markdown.

Every view builds a :class:`Grid` (the same ``add_row`` / ``add_section`` calls as a Rich
``Table``) and prints it with :func:`print_grid`. Columns are of three kinds:

- ``number``: never wrapped nor elided; the column is as wide as its widest cell.
- ``text``: wraps at spaces only, so a word (every number is one word) is never split; the
  column is at least as wide as its longest word.
- ``label``: wraps and, for words without a digit, folds; at least as wide as its longest word
  holding a digit.

When even the narrowest layout is wider than the console, the table is printed stacked: one
block per row, ``header: value`` per cell, each value whole on its line. Markdown output writes
the same cells as a GitHub table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

ColumnKind = Literal["label", "number", "text"]

_LABEL_FLOOR = 12
"""A label column is not squeezed below this width (or its natural width if smaller)."""
_HEADER_WORD_CAP = 12
"""A header word longer than this may fold rather than widen a number column."""


@dataclass(frozen=True)
class GridColumn:
    """One column: its header, kind and alignment."""

    header: str
    kind: ColumnKind = "number"

    @property
    def justify(self) -> Literal["left", "right"]:
        return "right" if self.kind == "number" else "left"


@dataclass
class GridRow:
    cells: tuple[str, ...]
    style: str | None = None
    section_before: bool = False


@dataclass
class Grid:
    """A table description; rendered by :func:`print_grid` (Rich or stacked) or as Markdown."""

    title: str | None
    columns: list[GridColumn]
    rows: list[GridRow] = field(default_factory=list)
    compact: bool = False
    """No vertical rules nor outer edge (the bench tables), instead of a boxed table."""
    _section_pending: bool = False

    def add_row(self, *cells: str, style: str | None = None) -> None:
        """Add a row of display strings (plain text, no markup); missing cells are empty."""
        padded = tuple(cells) + ("",) * (len(self.columns) - len(cells))
        self.rows.append(GridRow(padded, style, self._section_pending))
        self._section_pending = False

    def add_section(self) -> None:
        """A rule before the next row (a blank line when stacked)."""
        self._section_pending = True


def make_grid(
    title: str | None,
    headers: Sequence[str],
    *,
    right_align_from: int = 1,
    text_columns: Sequence[int] = (),
    compact: bool = False,
) -> Grid:
    """Columns before ``right_align_from`` are labels, the rest numbers, except ``text_columns``
    (indices of free-text columns such as formulas or verdicts)."""
    columns = []
    for i, header in enumerate(headers):
        kind: ColumnKind = "number" if i >= right_align_from else "label"
        if i in text_columns:
            kind = "text"
        columns.append(GridColumn(header, kind))
    return Grid(title, columns, compact=compact)


# ---- measuring ---------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")


def _words(text: str) -> list[str]:
    return [w for line in text.splitlines() for w in line.split()]


def _natural(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def _column_minimum(column: GridColumn, cells: list[str]) -> int:
    header_words = [
        len(w) if _DIGIT.search(w) else min(len(w), _HEADER_WORD_CAP) for w in _words(column.header)
    ]
    header = max(header_words, default=1)
    if column.kind == "number":
        return max([header, *(_natural(c) for c in cells)])
    words = [w for c in cells for w in _words(c)]
    digit_words = [len(w) for w in words if _DIGIT.search(w)]
    if column.kind == "text":
        return max([header, *(len(w) for w in words)])
    natural = max([_natural(column.header), *(_natural(c) for c in cells)])
    return max([min(natural, _LABEL_FLOOR), header, *digit_words])


def plan_widths(grid: Grid, width: int) -> list[int] | None:
    """Content width of each column so the table fits ``width``, or None (print it stacked).

    Starts every column at its minimum (see the module docstring) and hands the spare width
    to the columns furthest from their natural width, one character at a time.
    """
    n = len(grid.columns)
    # boxed: one space of padding each side and one border per column, plus an edge;
    # compact: one separator and one (collapsed) padding between columns, no edges
    extra = 2 * n - 2 if grid.compact else 3 * n + 1
    minimum = []
    natural = []
    for i, column in enumerate(grid.columns):
        cells = [row.cells[i] for row in grid.rows]
        low = _column_minimum(column, cells)
        minimum.append(low)
        natural.append(max([low, _natural(column.header), *(_natural(c) for c in cells)]))
    if sum(minimum) + extra > width:
        return None
    widths = list(minimum)
    spare = width - extra - sum(widths)
    # labels and numbers reach their natural width first, free text takes what is left
    for group in ([i for i in range(n) if grid.columns[i].kind != "text"], list(range(n))):
        while spare > 0:
            best = max(group, key=lambda i: natural[i] - widths[i])
            if natural[best] - widths[best] <= 0:
                break
            widths[best] += 1
            spare -= 1
    return widths


# ---- rendering ---------------------------------------------------------------------------------


def to_rich_table(grid: Grid, widths: list[int]) -> Table:
    """The Rich table at the planned widths (fixed, so Rich never shrinks a column)."""
    if grid.compact:
        table = Table(
            title=grid.title,
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
            show_edge=False,
        )
    else:
        table = Table(
            title=grid.title, title_justify="left", header_style="bold", box=box.HEAVY_HEAD
        )
    for column, w in zip(grid.columns, widths, strict=True):
        table.add_column(
            Text(column.header, no_wrap=False, overflow="fold"),
            justify=column.justify,
            width=w,
            no_wrap=column.kind == "number",
            overflow="fold",
        )
    for row in grid.rows:
        if row.section_before:
            table.add_section()
        table.add_row(
            *(
                Text(c, no_wrap=column.kind == "number")
                for c, column in zip(row.cells, grid.columns, strict=True)
            ),
            style=row.style,
        )
    return table


def print_stacked(console: Console, grid: Grid) -> None:
    """One block per row: the first cell on its own line, then ``header: value`` lines."""
    if grid.title:
        console.print(Text(grid.title, style="bold"), soft_wrap=True)
    headers = [c.header or "value" for c in grid.columns]
    for n, row in enumerate(grid.rows):
        if row.section_before and n:
            console.print()
        first, rest = row.cells[0], row.cells[1:]
        if first:
            console.print(Text(first, style=row.style or ""), soft_wrap=True)
        for header, cell in zip(headers[1:], rest, strict=True):
            if cell == "":
                continue
            line = Text(f"  {header}: ", style="dim")
            line.append(cell, style=row.style or "")
            console.print(line, soft_wrap=True)


def print_grid(console: Console, grid: Grid) -> None:
    """Print ``grid`` whole: boxed when it fits the console, else without vertical rules, else
    stacked."""
    widths = plan_widths(grid, console.width)
    if widths is None and not grid.compact:
        grid = replace(grid, compact=True)
        widths = plan_widths(grid, console.width)
    if widths is None:
        print_stacked(console, grid)
    else:
        console.print(to_rich_table(grid, widths))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def grid_markdown(grid: Grid) -> str:
    """A GitHub Markdown table (with its title as a bold line above it)."""
    lines = []
    if grid.title:
        lines += [f"**{_md_cell(grid.title)}**", ""]
    lines.append("| " + " | ".join(_md_cell(c.header) for c in grid.columns) + " |")
    lines.append(
        "|" + "|".join("---:" if c.kind == "number" else ":---" for c in grid.columns) + "|"
    )
    for row in grid.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row.cells) + " |")
    return "\n".join(lines)
