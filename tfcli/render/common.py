"""Consoles, number formatters and JSON output shared by every command's view.

Conventions stated in output (DESIGN.md section 4): counts and FLOPs in SI units
(B = 1e9, T = 1e12), memory in IEC units (GiB = 2**30 bytes).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO, cast

from rich.console import Console
from rich.text import Text

from tfcli.errors import OutputError
from tfcli.render.tables import Grid, grid_markdown, make_grid, print_grid
from tfcli.terms import Term


class _Stream:
    """A file-like proxy for ``sys.stdout`` / ``sys.stderr`` that resolves the stream per call.

    It falls back to ASCII when the stream cannot encode Unicode (``LC_ALL=C``,
    ``PYTHONIOENCODING=ascii``): known symbols get ASCII spellings, anything else a ``?``.
    A closed or failing stream (``>&-``, ``/dev/full``) raises :class:`OutputError` instead of a
    traceback.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def _target(self) -> TextIO:
        stream = getattr(sys, self.name)
        if stream is None:
            raise OutputError(f"standard {self.name[3:]}put is closed")
        return cast(TextIO, stream)

    @property
    def encoding(self) -> str:
        stream = getattr(sys, self.name)
        return getattr(stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        stream = getattr(sys, self.name)
        try:
            return bool(stream is not None and stream.isatty())
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._target().fileno()

    def write(self, text: str) -> int:
        stream = self._target()
        if not _can_encode(self.encoding):
            text = to_ascii(text)
        try:
            return stream.write(text)
        except (OSError, ValueError) as err:
            raise OutputError.from_os_error(self.name, err) from None

    def flush(self) -> None:
        stream = getattr(sys, self.name)
        if stream is None:
            return
        try:
            stream.flush()
        except (OSError, ValueError) as err:
            raise OutputError.from_os_error(self.name, err) from None


_ASCII = {
    "·": "-",
    "µ": "u",
    "×": "x",
    "≈": "~",
    "≤": "<=",
    "≥": ">=",
    "—": "-",
    "–": "-",
    "…": "...",
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "→": "->",
    "²": "^2",
}
_ASCII_TABLE = str.maketrans(_ASCII)


def _can_encode(encoding: str) -> bool:
    try:
        "·µ…".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def to_ascii(text: str) -> str:
    """ASCII spellings of the symbols tfcli prints; other non-ASCII characters become ``?``."""
    return text.translate(_ASCII_TABLE).encode("ascii", "replace").decode("ascii")


def _console_width() -> int | None:
    """A pipe or file without ``COLUMNS`` gets wide lines (whole rows for grep); else Rich's."""
    if os.environ.get("COLUMNS"):
        return None
    stream = sys.stdout
    try:
        interactive = stream is not None and stream.isatty()
    except (OSError, ValueError):
        interactive = False
    return None if interactive else PIPE_WIDTH


PIPE_WIDTH = 160
"""Width of tables written to a pipe or a file when ``COLUMNS`` is not set."""

stdout_console = Console(
    file=cast(TextIO, _Stream("stdout")), highlight=False, width=_console_width()
)
stderr_console = Console(file=cast(TextIO, _Stream("stderr")), highlight=False, stderr=True)

OUTPUT_FORMATS = ("table", "json", "csv", "markdown")
_FORMAT = {"value": "table"}


def set_output_format(fmt: str) -> None:
    """Choose how views print: ``table`` (Rich) or ``markdown`` (JSON and CSV have their own
    printers)."""
    _FORMAT["value"] = fmt
    if fmt == "markdown":
        stdout_console.width = 10_000
        stdout_console.no_color = True


def output_format() -> str:
    return _FORMAT["value"]


def print_table(grid: Grid) -> None:
    """Print one table of a view, whole: Rich table, stacked blocks or Markdown."""
    if output_format() == "markdown":
        stdout_console.print(Text(grid_markdown(grid) + "\n"), soft_wrap=True)
    else:
        print_grid(stdout_console, grid)


_SI = ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
_SI_FLOPS = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))
_IEC = ((2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def print_error(message: str, *, hint: str | None = None) -> None:
    """One red line on stderr (plus the hint on the same line), never a traceback."""
    text = f"error: {message}"
    if hint:
        text += f" (hint: {hint})"
    stderr_console.print(text, style="red", markup=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """One yellow line on stderr."""
    stderr_console.print(f"warning: {message}", style="yellow", markup=False, soft_wrap=True)


_INTERRUPT = {"reported": False}


def print_interrupted(message: str) -> None:
    """The warning a view prints after Ctrl-C stopped its work (the CLI then adds nothing)."""
    _INTERRUPT["reported"] = True
    print_warning(message)


def interrupt_reported() -> bool:
    """Whether a view already told the user about a Ctrl-C."""
    return _INTERRUPT["reported"]


_STDOUT = _Stream("stdout")


def print_json(document: Any) -> None:
    """Write one strict JSON document to stdout and nothing else (raw integers stay integers;
    NaN and infinities are refused rather than written as invalid JSON)."""
    try:
        text = json.dumps(document, indent=2, default=_json_default, allow_nan=False)
    except ValueError as err:
        raise OutputError(f"a non-finite number reached the JSON output ({err})") from None
    _STDOUT.write(text + "\n")
    _STDOUT.flush()


def print_csv(records: Sequence[Mapping[str, Any]]) -> None:
    """Rows of raw values as CSV with a header line (integers unformatted, None empty)."""
    if not records:
        return
    fields: list[str] = []
    for record in records:
        fields.extend(k for k in record if k not in fields)
    writer = csv.DictWriter(_STDOUT, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _csv_value(v) for k, v in record.items()})
    _STDOUT.flush()


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise OutputError(f"a non-finite number reached the CSV output ({value})")
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def format_int(value: int) -> str:
    """12,345,678 with thousands separators."""
    return f"{value:,}"


def _scaled(value: float, units: tuple[tuple[float, str], ...], base_unit: str) -> str:
    for factor, unit in units:
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}{base_unit}".rstrip()
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f} {base_unit}".rstrip()
    return f"{int(value)} {base_unit}".rstrip()


def format_count(value: float) -> str:
    """A parameter count in SI units: 8.03 B (1 B = 1e9)."""
    return _scaled(value, _SI, "")


def format_flops(value: float) -> str:
    """FLOPs in SI units: 1.23 TFLOP (1 T = 1e12; a multiply-accumulate is 2 FLOPs)."""
    return _scaled(value, _SI_FLOPS, "FLOP")


def format_flops_per_second(value: float) -> str:
    """FLOP/s in SI units: 175.00 GFLOP/s."""
    return _scaled(value, _SI_FLOPS, "FLOP") + "/s"


def format_bytes(value: float) -> str:
    """Bytes in IEC units: 16.00 GiB (1 GiB = 2**30 bytes)."""
    for factor, unit in _IEC:
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{int(value)} B"


def format_percent(fraction: float, digits: int = 1) -> str:
    """0.1234 -> '12.3%'."""
    if math.isnan(fraction):
        return "n/a"
    return f"{100 * fraction:.{digits}f}%"


def format_seconds(value: float) -> str:
    """A duration with a readable unit: 12.3 ms, 4.56 s, 3.2 h."""
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    if value < 600:
        return f"{value:.2f} s"
    if value < 36000:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def make_table(
    title: str | None,
    columns: list[str],
    *,
    right_align_from: int = 1,
    text_columns: Sequence[int] = (),
) -> Grid:
    """A table whose columns from ``right_align_from`` on are numbers (never cut), the ones
    before labels, and ``text_columns`` free text wrapped at spaces (see ``render.tables``).
    Print it with :func:`print_table`."""
    return make_grid(title, columns, right_align_from=right_align_from, text_columns=text_columns)


def layer_positions(
    stack: str,
    first: int,
    count: int,
    stride: int | None,
    spans: tuple[tuple[int, int], ...],
    more: bool,
) -> str:
    """Where a group of identical layers sits: ``decoder 0-41 (42x)``, ``decoder 1, 3, ...,
    41 (21x)`` (every other layer), ``decoder 0-2, 4-6, ... (n x)`` (irregular)."""
    if count == 1:
        return f"{stack} {first}"
    if stride == 1:
        return f"{stack} {first}-{first + count - 1} ({count}x)"
    if stride is not None:
        last = first + stride * (count - 1)
        second = first + stride
        middle = f"{second}, ..., " if count > 2 else ""
        return f"{stack} {first}, {middle}{last} ({count}x)"
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans]
    return f"{stack} {', '.join(parts)}{', ...' if more else ''} ({count}x)"


def format_term(term: Term) -> str:
    """``2 x t x h x H·d = 2 x 8,192 x 4,096 x 4,096 = 274,877,906,944``: symbols, then the
    numbers put in, then the value (their product)."""
    symbols = " x ".join(symbol for symbol, _ in term.factors)
    numbers = " x ".join(format_int(value) for _, value in term.factors)
    text = f"{symbols} = {numbers} = {format_int(term.value)}"
    return text + (f" ({term.note})" if term.note else "")


def term_document(term: Term) -> dict[str, Any]:
    """A term in JSON: its component, factors as [symbol, value] pairs, and their product."""
    return {
        "component": term.component,
        "factors": [[symbol, value] for symbol, value in term.factors],
        "value": term.value,
    }


def print_note(text: str) -> None:
    """A dim line under a table, for conventions and sources (stdout, human view only)."""
    stdout_console.print(text, style="dim", markup=False, soft_wrap=True)
