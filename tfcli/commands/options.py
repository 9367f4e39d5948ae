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
    typer.Option("--json", help="Print one JSON document on stdout (raw numbers), nothing else."),
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


def parse_lengths(option: str, text: str) -> tuple[int, ...]:
    """'512,1024,8k' -> (512, 1024, 8192), sorted and unique; k means 1024.

    Each length is at least 1 and at most MAX_TOKENS; at most 1,000 lengths.
    """
    values = set()
    items = text.split(",")
    if len(items) > 1000:
        raise UsageError(f"{option}: {len(items):,} lengths given; at most 1,000 are allowed")
    for raw in items:
        item = raw.strip().lower()
        if not item:
            continue
        factor = 1024 if item.endswith("k") else 1
        digits = item[:-1] if item.endswith("k") else item
        if not digits.isascii() or not digits.isdigit() or len(digits) > 15 or int(digits) < 1:
            raise UsageError(
                f"{option}: {shorten(item)} is not a positive length (e.g. 512,1024,8k)"
            )
        check_count(option, int(digits) * factor, maximum=MAX_TOKENS)
        values.add(int(digits) * factor)
    if not values:
        raise UsageError(f"{option}: no lengths in {shorten(text)}")
    return tuple(sorted(values))


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
