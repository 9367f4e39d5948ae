"""``tfcli models``: the shipped specs (and any in --specs-dir / TFCLI_SPECS_PATH)."""

from __future__ import annotations

from typing import Annotated

import typer

from tfcli.commands.options import FormatOpt, JsonOpt, SpecsDirOpt, examples, output_format

EPILOG = examples(
    ("The shipped specs", "tfcli models"),
    ("The same as CSV (raw parameter counts)", "tfcli models --format csv"),
    ("With your own spec YAMLs", "tfcli models --specs-dir ./my-specs"),
    ("The config.json model types tfcli reads", "tfcli models --types"),
)

TypesOpt = Annotated[
    bool,
    typer.Option(
        "--types",
        help="List the config.json model_type values tfcli reads (with their config class and "
        "the layer kinds of the class defaults) instead of the specs.",
    ),
]


def models(
    specs_dir: SpecsDirOpt = None,
    fmt: FormatOpt = "table",
    json_output: JsonOpt = False,
    types: TypesOpt = False,
) -> None:
    """List the known model specs: name, family, architecture, params, context, attention."""
    from tfcli.errors import TfcliError
    from tfcli.loaders import load_spec_yaml, shipped_specs
    from tfcli.params import count_params
    from tfcli.render.common import print_warning
    from tfcli.render.models import ModelRow, print_models, print_models_csv, print_models_json

    chosen = output_format(fmt, json_output)
    if types:
        from tfcli.render.models import print_model_types

        print_model_types(_model_type_rows(), chosen)
        return

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


def _model_type_rows() -> list[dict[str, str]]:
    """One row per model_type: its config class (or the text model it wraps) and the
    architecture and layer kinds of a config that names only the model_type."""
    from tfcli.errors import TfcliError
    from tfcli.hf import RECORDS, SUPPORTED_MODEL_TYPES, WRAPPERS
    from tfcli.loaders import spec_from_hf_config
    from tfcli.render.models import attention_notation

    rows = []
    for model_type in SUPPORTED_MODEL_TYPES:
        wrapper = WRAPPERS.get(model_type)
        config: dict[str, object] = {"model_type": model_type}
        if wrapper is not None:
            reads = f"text_config as {wrapper.text_model_type} (without {wrapper.uncounted})"
            config["text_config"] = {}
        else:
            reads = RECORDS[model_type].config_class
        try:
            spec = spec_from_hf_config(config, name=model_type).spec
            architecture, layers = spec.architecture, attention_notation(spec)
        except TfcliError:  # class defaults that build no model (DeepseekV2Config's top-k)
            architecture, layers = "-", "- (the class defaults leave a required key unset)"
        rows.append(
            {"model_type": model_type, "reads": reads, "architecture": architecture,
             "defaults": layers}
        )  # fmt: skip
    return rows
