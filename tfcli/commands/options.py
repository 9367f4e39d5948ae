"""Options shared by every command, as ``Annotated`` aliases, and the MODEL loading helper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
