"""``tfcli compare A B ...``: the same figures for several models, one column each.

A MODEL may carry its own what-if: ``llama-3-8b:num_kv_heads=32`` (``:key=value`` repeated,
``llama-3-8b:num_kv_heads=32:num_layers=16``), so a baseline and its variant sit side by side;
``--set`` applies to every column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tfcli.commands.options import (
    MAX_BATCH,
    MAX_TOKENS,
    FormatOpt,
    JsonOpt,
    SetOpt,
    SpecsDirOpt,
    check_count,
    examples,
    output_format,
)
from tfcli.errors import UsageError

EPILOG = examples(
    ("Side by side at 8,192 tokens", "tfcli compare llama-3-8b mistral-7b deepseek-v3"),
    ("GQA against its MHA what-if", "tfcli compare llama-3-8b llama-3-8b:num_kv_heads=32"),
    ("One CSV row per model", "tfcli compare llama-3-8b qwen3-8b --seq 131072 --format csv"),
)


def split_model_overrides(ref: str) -> tuple[str, tuple[str, ...]]:
    """``name:key=value:key=value`` -> (``name``, (``key=value``, ...)); a path that exists
    (even with ``:`` in it) is taken whole."""
    if Path(ref).expanduser().exists() or ":" not in ref:
        return ref, ()
    name, *items = ref.split(":")
    if not name or not items or not all("=" in item for item in items):
        raise UsageError(
            f"compare: cannot read {ref!r}; write MODEL or MODEL:key=value[:key=value] "
            "(e.g. llama-3-8b:num_kv_heads=32)"
        )
    return name, tuple(items)


def compare(
    models: Annotated[
        list[str],
        typer.Argument(
            help="Two or more MODELs, each optionally with what-ifs: MODEL:key=value[:key=value].",
            show_default=False,
        ),
    ],
    seq: Annotated[int, typer.Option("--seq", help="Tokens per sequence.")] = 8192,
    batch: Annotated[int, typer.Option("--batch", help="Sequences.")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="Weights and KV-cache dtype.")] = "bf16",
    attention: Annotated[
        str, typer.Option("--attention", help="Pair-counting convention: causal or full.")
    ] = "causal",
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    fmt: FormatOpt = "table",
    json_output: JsonOpt = False,
) -> None:
    """Compare models side by side: params, weights, FLOPs, attention share, KV cache.

    The first column is the baseline: the ratio rows compare every other column with it.
    """
    from tfcli.flops import forward_flops
    from tfcli.loaders import load_model
    from tfcli.memory import kv_cache, weight_bytes
    from tfcli.params import count_params
    from tfcli.render.compare import (
        ComparedModel,
        print_compare,
        print_compare_csv,
        print_compare_json,
    )
    from tfcli.units import normalize_dtype

    chosen = output_format(fmt, json_output)
    if len(models) < 2:
        raise UsageError("compare needs at least two models")
    check_count("--seq", seq, maximum=MAX_TOKENS)
    check_count("--batch", batch, maximum=MAX_BATCH)
    dtype = normalize_dtype(dtype)
    refs = [split_model_overrides(ref) for ref in models]
    rows = []
    for (ref, own), label in zip(refs, models, strict=True):
        loaded = load_model(ref, specs_dirs=tuple(specs_dir or ()), overrides=(*(set_ or ()), *own))
        spec = loaded.spec
        counts = count_params(spec)
        forward = forward_flops(spec, seq, batch=batch, attention=attention)
        rows.append(
            ComparedModel(
                label=label if own else spec.name,
                spec=spec,
                overrides=own,
                params=counts,
                weight_bytes=weight_bytes(counts.total, dtype),
                forward=forward,
                kv_cache=kv_cache(spec, seq, batch=batch, dtype=dtype)
                if spec.architecture != "encoder"
                else None,
            )
        )
    printer = {"json": print_compare_json, "csv": print_compare_csv}.get(chosen, print_compare)
    printer(rows, seq=seq, batch=batch, dtype=dtype, attention=attention)


def register(app: typer.Typer) -> None:
    app.command("compare", epilog=EPILOG)(compare)
