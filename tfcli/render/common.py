"""Consoles, number formatters and JSON output shared by every command's view.

Conventions stated in output (DESIGN.md section 4): counts and FLOPs in SI units
(B = 1e9, T = 1e12), memory in IEC units (GiB = 2**30 bytes).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from tfcli.terms import Term

stdout_console = Console(highlight=False)
stderr_console = Console(stderr=True, highlight=False)

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


def print_json(document: Any) -> None:
    """Write one JSON document to stdout and nothing else (raw integers stay integers)."""
    sys.stdout.write(json.dumps(document, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


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


def make_table(title: str | None, columns: list[str], *, right_align_from: int = 1) -> Table:
    """A Rich table whose columns from ``right_align_from`` on are right-aligned numbers."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(
            column, justify="right" if i >= right_align_from else "left", no_wrap=i == 0
        )
    return table


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
