"""``tfcli show MODEL``: the normalised spec, every field, and where each came from."""

from __future__ import annotations

from typing import Annotated

import typer

from tfcli.commands.options import (
    AsTypeOpt,
    FormatOpt,
    JsonOpt,
    ModelArg,
    SetOpt,
    SpecsDirOpt,
    examples,
    output_format,
)

EPILOG = examples(
    ("The fields that differ from the defaults", "tfcli show llama-3-8b"),
    ("Every field, and the config.json key it came from", "tfcli show ./config.json --all"),
    ("Field, value, origin as CSV", "tfcli show llama-3-8b --format csv"),
)


def show(
    model: ModelArg,
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    as_type: AsTypeOpt = None,
    all_fields: Annotated[
        bool, typer.Option("--all", help="Show fields at their default value too.")
    ] = False,
    fmt: FormatOpt = "table",
    json_output: JsonOpt = False,
) -> None:
    """Show the normalised spec of MODEL: every field, its value and its origin."""
    from tfcli.loaders import load_model
    from tfcli.render.models import print_show, print_show_csv, print_show_json

    chosen = output_format(fmt, json_output)

    loaded = load_model(
        model, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()), as_type=as_type
    )
    quantization = dict(loaded.quantization) if loaded.quantization is not None else None
    if chosen == "json":
        print_show_json(loaded.spec, loaded.origin, loaded.field_origins, quantization)
    elif chosen == "csv":
        print_show_csv(loaded.spec, loaded.field_origins)
    else:
        print_show(
            loaded.spec,
            loaded.origin,
            loaded.field_origins,
            all_fields=all_fields,
            quantization=quantization,
        )


def register(app: typer.Typer) -> None:
    app.command("show", epilog=EPILOG)(show)
