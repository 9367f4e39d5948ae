"""``tfcli models``: the shipped specs (and any in --specs-dir / TFCLI_SPECS_PATH)."""

from __future__ import annotations

import typer

from tfcli.commands.options import FormatOpt, JsonOpt, SpecsDirOpt, examples, output_format

EPILOG = examples(
    ("The shipped specs", "tfcli models"),
    ("The same as CSV (raw parameter counts)", "tfcli models --format csv"),
    ("With your own spec YAMLs", "tfcli models --specs-dir ./my-specs"),
)


def models(
    specs_dir: SpecsDirOpt = None, fmt: FormatOpt = "table", json_output: JsonOpt = False
) -> None:
    """List the known model specs: name, family, architecture, params, context, attention."""
    from tfcli.errors import TfcliError
    from tfcli.loaders import load_spec_yaml, shipped_specs
    from tfcli.params import count_params
    from tfcli.render.common import print_warning
    from tfcli.render.models import ModelRow, print_models, print_models_csv, print_models_json

    chosen = output_format(fmt, json_output)

    dirs = tuple(specs_dir or ())
    rows = []
    for _name, path in shipped_specs(dirs):
        try:  # one broken spec file is a warning: the good ones are still listed
            spec = load_spec_yaml(path).spec
        except TfcliError as err:
            print_warning(f"skipped a spec that does not load: {err.message}")
            continue
        counts = count_params(spec)
        rows.append(ModelRow(spec=spec, total_params=counts.total, active_params=counts.active))
    if chosen == "json":
        print_models_json(rows)
    elif chosen == "csv":
        print_models_csv(rows)
    else:
        print_models(rows)


def register(app: typer.Typer) -> None:
    app.command("models", epilog=EPILOG)(models)
