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
    """'512,1024,8k' -> (512, 1024, 8192), sorted and unique; k means 1024."""
    values = set()
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        factor = 1024 if item.endswith("k") else 1
        digits = item[:-1] if item.endswith("k") else item
        if not digits.isdigit() or int(digits) < 1:
            raise UsageError(f"{option}: {item!r} is not a positive length (e.g. 512,1024,8k)")
        values.add(int(digits) * factor)
    if not values:
        raise UsageError(f"{option}: no lengths in {text!r}")
    return tuple(sorted(values))
