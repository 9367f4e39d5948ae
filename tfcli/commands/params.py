"""``tfcli params MODEL``: parameter counts by component, per layer, MoE active, weight bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tfcli.commands.options import (
    AsTypeOpt,
    ExplainOpt,
    FormatOpt,
    JsonOpt,
    ModelArg,
    SetOpt,
    SpecsDirOpt,
    examples,
    output_format,
)
from tfcli.errors import UnsupportedModelTypeError

if TYPE_CHECKING:
    from tfcli.loaders import LoadedModel
    from tfcli.quant import ServedWeights

EXIT_VERIFY_DIFFERS = 1
"""Exit code of ``--verify`` when tfcli's total differs from transformers'."""

UNEXPLAINED = (
    "no known convention explains it: a mapping or formula differs from the transformers "
    "class; compare the components of --json with the model's named_parameters()"
)

EPILOG = examples(
    ("Total, by component, per layer, weight memory", "tfcli params llama-3-8b"),
    ("MoE total vs active, with every formula", "tfcli params mixtral-8x7b --explain"),
    ("A what-if", "tfcli params llama-3-8b --set num_kv_heads=32"),
    ("Transformers' count too (exit 1 if it differs)", "tfcli params ./config.json --verify"),
    ("Components as CSV", "tfcli params deepseek-v3 --format csv"),
)


def params(
    model: ModelArg,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype", help="Add this dtype to the weight-memory table (fp16, bf16, ...)."
        ),
    ] = None,
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    as_type: AsTypeOpt = None,
    per_layer: Annotated[
        bool, typer.Option("--per-layer", help="One row per layer instead of grouped rows.")
    ] = False,
    explain: ExplainOpt = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Also count the transformers model of the same config on the meta device "
            "(needs the hf and bench extras); exit 1 when the totals differ.",
        ),
    ] = False,
    fmt: FormatOpt = "table",
    json_output: JsonOpt = False,
) -> None:
    """Count MODEL's parameters: total, by component, per layer, MoE active, weight memory."""
    from tfcli.loaders import load_model
    from tfcli.params import count_params
    from tfcli.render.common import print_warning
    from tfcli.render.params import (
        ParamsView,
        print_params,
        print_params_csv,
        print_params_json,
    )
    from tfcli.units import WEIGHT_DTYPES, bytes_for, normalize_dtype

    chosen = output_format(fmt, json_output)
    json_output = chosen == "json"

    try:
        loaded = load_model(
            model, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()), as_type=as_type
        )
    except UnsupportedModelTypeError as err:
        if not verify or err.config_path is None:
            raise
        from tfcli.render.params import print_transformers_only
        from tfcli.verify import count_config_file

        model_type, total = count_config_file(err.config_path)
        print_transformers_only(model, model_type, total, json_output=json_output)
        return
    counts = count_params(loaded.spec)
    dtypes = list(WEIGHT_DTYPES)
    if dtype is not None:
        extra = normalize_dtype(dtype)  # not `chosen`: that is the output format
        if extra not in dtypes:
            dtypes.insert(1, extra)
    weight_bytes = {d: bytes_for(counts.total, d) for d in dtypes}
    served = served_or_warn(loaded)
    verified = None
    note = None
    if verify:
        from tfcli.verify import known_difference, transformers_param_count

        verified = transformers_param_count(model, loaded)
        note = known_difference(loaded.spec, counts.total - verified)
    view = ParamsView(
        spec=loaded.spec,
        origin=loaded.origin,
        counts=counts,
        weight_bytes=weight_bytes,
        highlight_dtype=normalize_dtype(dtype) if dtype else loaded.spec.dtype,
        transformers_total=verified,
        verify_note=note,
        served=served,
    )
    if chosen == "json":
        print_params_json(view)
    elif chosen == "csv":
        print_params_csv(view)
    else:
        print_params(view, explain=explain, per_layer=per_layer)
    if verified is not None and verified != counts.total:
        diff = counts.total - verified
        print_warning(
            f"--verify: tfcli counts {counts.total:,} and transformers {verified:,} "
            f"(difference {diff:+,}): {note or UNEXPLAINED}"
        )
        raise typer.Exit(EXIT_VERIFY_DIFFERS)


def served_or_warn(loaded: LoadedModel) -> ServedWeights | None:
    """The served weights of a quantized checkpoint (``tfcli.quant``), or None: no
    ``quantization_config``, or one tfcli does not model (one warning line on stderr; the
    counts then stay unquantized, in the checkpoint dtype)."""
    if loaded.quantization is None:
        return None
    from tfcli.quant import UnknownQuantization, served_weights
    from tfcli.render.common import print_warning

    try:
        return served_weights(loaded.spec, loaded.quantization, where=loaded.origin)
    except UnknownQuantization as err:
        print_warning(
            f"quantization_config: {err} is not modelled by tfcli; the weights are counted "
            "unquantized (every parameter at the weight dtype shown)"
        )
        return None


def register(app: typer.Typer) -> None:
    app.command("params", epilog=EPILOG)(params)
