"""Options shared by every command, as ``Annotated`` aliases, and the MODEL loading helper."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from tfcli.errors import UsageError, shorten

MAX_TOKENS = 2**40
"""The longest sequence or context accepted: about 1.1e12 tokens, far past any model."""
MAX_BATCH = 2**30
"""The largest batch accepted."""
MAX_RANKS = 2**20
"""The most devices of one parallel dimension (``--tp``)."""
MAX_LIST = 256
"""The most values one comma-separated option takes."""
MAX_SWEEP = 4096
"""The most rows a sweep (lengths x batches) prints."""

ModelArg = Annotated[
    str,
    typer.Argument(
        help="A shipped spec name (llama-3-8b), a spec YAML, a config.json or its folder, "
        "or a hub id in the local Hugging Face cache.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Same as --format json."),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="table (default), json (one document, raw numbers), csv (raw numbers, one row per "
        "result) or markdown.",
        metavar="FORMAT",
    ),
]
MfuOpt = Annotated[
    float | None,
    typer.Option(
        "--mfu",
        help="Fraction of the peak FLOP/s reached (default 0.5: PaLM trained at 46.2% MFU).",
    ),
]
MbuOpt = Annotated[
    float | None,
    typer.Option(
        "--mbu",
        help="Fraction of the peak bandwidth reached (default 0.6, the order Databricks "
        "reports for batch-1 decode).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a spec field for a what-if (repeatable): --set num_kv_heads=32.",
    ),
]
SpecsDirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--specs-dir",
        help="Extra folder of spec YAMLs (repeatable; also TFCLI_SPECS_PATH, ':'-separated).",
    ),
]
AsTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="TYPE",
        help="Read a config.json whose model_type tfcli does not know with a known type's "
        "mapping (the many Llama clones: --as llama); the output says so.",
    ),
]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Show every formula with the numbers put in.")
]


def examples(*pairs: tuple[str, str]) -> str:
    """A ``--help`` epilog: each example's purpose, then the command on its own line (Typer
    joins the lines of a paragraph, so each line is its own paragraph)."""
    lines = ["Examples:"]
    for purpose, command in pairs:
        lines += [f"{purpose}:", f"  $ {command}"]
    return "\n\n".join(lines)


def output_format(fmt: str, json_output: bool, *, csv: bool = True) -> str:
    """The chosen output format (``--json`` is ``--format json``); sets up the views."""
    from tfcli.render.common import OUTPUT_FORMATS, set_output_format

    fmt = fmt.strip().lower()
    allowed = OUTPUT_FORMATS if csv else tuple(f for f in OUTPUT_FORMATS if f != "csv")
    if fmt not in allowed:
        raise UsageError(f"--format must be one of {', '.join(allowed)}, got {shorten(fmt)}")
    if json_output:
        if fmt not in ("table", "json"):
            raise UsageError(f"--json is --format json; it cannot be combined with --format {fmt}")
        fmt = "json"
    set_output_format(fmt)
    return fmt


def _items(option: str, text: str) -> list[str]:
    items = [item.strip().lower() for item in text.split(",")]
    if len(items) > MAX_LIST:
        raise UsageError(f"{option}: {len(items):,} values given; at most {MAX_LIST:,} are allowed")
    return [item for item in items if item]


def _digits(text: str) -> bool:
    """Plain ASCII digits, few enough for ``int`` (Python refuses more than 4,300)."""
    return text.isascii() and text.isdigit() and len(text) <= 15


def parse_counts(option: str, text: str, *, maximum: int = MAX_BATCH) -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32), sorted and unique; each an integer in [1, maximum]."""
    values = set()
    for item in _items(option, text):
        if not _digits(item) or int(item) < 1:
            raise UsageError(
                f"{option} must be positive integers (e.g. 1,8,32), got {shorten(item)}"
            )
        check_count(option, int(item), maximum=maximum)
        values.add(int(item))
    if not values:
        raise UsageError(f"{option}: no values in {shorten(text)}")
    return tuple(sorted(values))


def parse_lengths(option: str, text: str, *, maximum: int = MAX_TOKENS) -> tuple[int, ...]:
    """'512,1024,8k' -> (512, 1024, 8192), sorted and unique; k means 1024.

    Each length is at least 1 and at most ``maximum``; at most MAX_LIST lengths.
    """
    values = set()
    for item in _items(option, text):
        factor = 1024 if item.endswith("k") else 1
        digits = item[:-1] if item.endswith("k") else item
        if not _digits(digits) or int(digits) < 1:
            raise UsageError(
                f"{option}: {shorten(item)} is not a positive length (e.g. 512,1024,8k)"
            )
        check_count(option, int(digits) * factor, maximum=maximum)
        values.add(int(digits) * factor)
    if not values:
        raise UsageError(f"{option}: no lengths in {shorten(text)}")
    return tuple(sorted(values))


def check_sweep(rows: int) -> None:
    """A sweep of at most MAX_SWEEP combinations (each is a full estimate)."""
    if rows > MAX_SWEEP:
        raise UsageError(
            f"the sweep has {rows:,} combinations of lengths and batches; at most "
            f"{MAX_SWEEP:,} are computed"
        )


def check_count(option: str, value: int | None, *, maximum: int, minimum: int = 1) -> None:
    """An integer option within [minimum, maximum] (None passes: the option was not given)."""
    if value is None:
        return
    if value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UsageError(f"{option} must be {kind}, got {shorten(value)}")
    if value > maximum:
        raise UsageError(f"{option} must be at most {maximum:,}, got {shorten(value)}")


def check_positive_number(
    option: str, value: float | None, *, minimum: float = 1e-6, maximum: float = 1e9
) -> None:
    """A float option that must be finite and in [minimum, maximum] when given
    (``--peak-tflops``, ``--bandwidth``: a millionth to a billion of their unit, so every
    time derived from them stays a finite, nonzero float)."""
    if value is None:
        return
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{option} must be a positive finite number, got {value}")
    if not minimum <= value <= maximum:
        raise UsageError(f"{option} must be between {minimum:g} and {maximum:g}, got {value:g}")


def check_fraction(option: str, value: float | None) -> None:
    """A fraction option (``--mfu``, ``--mbu``) in (0, 1] when given."""
    if value is None:
        return
    if not math.isfinite(value) or not 0 < value <= 1:
        raise UsageError(f"{option} must be a fraction in (0, 1], got {value}")
