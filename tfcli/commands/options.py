"""Options shared by every command, as ``Annotated`` aliases, and the MODEL loading helper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tfcli.errors import UsageError

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
        raise UsageError(f"--format must be one of {', '.join(allowed)}, got {fmt!r}")
    if json_output:
        if fmt not in ("table", "json"):
            raise UsageError(f"--json is --format json; it cannot be combined with --format {fmt}")
        fmt = "json"
    set_output_format(fmt)
    return fmt


def parse_counts(option: str, text: str) -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32), sorted and unique; each a positive integer."""
    values = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not (item.isascii() and item.isdigit()) or int(item) < 1:
            raise UsageError(f"{option} must be positive integers (e.g. 1,8,32), got {item!r}")
        values.add(int(item))
    if not values:
        raise UsageError(f"{option}: no values in {text!r}")
    return tuple(sorted(values))


def parse_lengths(option: str, text: str) -> tuple[int, ...]:
    """'512,1024,8k' -> (512, 1024, 8192), sorted and unique; k means 1024."""
    values = set()
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        factor = 1024 if item.endswith("k") else 1
        digits = item[:-1] if item.endswith("k") else item
        if not (digits.isascii() and digits.isdigit()) or int(digits) < 1:
            raise UsageError(f"{option}: {item!r} is not a positive length (e.g. 512,1024,8k)")
        values.add(int(digits) * factor)
    if not values:
        raise UsageError(f"{option}: no lengths in {text!r}")
    return tuple(sorted(values))
