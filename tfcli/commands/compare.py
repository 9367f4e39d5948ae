"""``tfcli compare A B ...``: the same figures for several models, one column each."""

from __future__ import annotations

from typing import Annotated

import typer

from tfcli.commands.options import (
    MAX_BATCH,
    MAX_TOKENS,
    JsonOpt,
    SetOpt,
    SpecsDirOpt,
    check_count,
)
from tfcli.errors import UsageError


def compare(
    models: Annotated[list[str], typer.Argument(help="Two or more MODELs.", show_default=False)],
    seq: Annotated[int, typer.Option("--seq", help="Tokens per sequence.")] = 8192,
    batch: Annotated[int, typer.Option("--batch", help="Sequences.")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="Weights and KV-cache dtype.")] = "bf16",
    attention: Annotated[
        str, typer.Option("--attention", help="Pair-counting convention: causal or full.")
    ] = "causal",
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Compare models side by side: params, weights, FLOPs, attention share, KV cache."""
    from tfcli.flops import forward_flops
    from tfcli.loaders import load_model
    from tfcli.memory import kv_cache_bytes, weight_bytes
    from tfcli.params import count_params
    from tfcli.render.compare import ComparedModel, print_compare, print_compare_json
    from tfcli.units import normalize_dtype

    if len(models) < 2:
        raise UsageError("compare needs at least two models")
    check_count("--seq", seq, maximum=MAX_TOKENS)
    check_count("--batch", batch, maximum=MAX_BATCH)
    dtype = normalize_dtype(dtype)
    rows = []
    for ref in models:
        loaded = load_model(ref, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()))
        spec = loaded.spec
        counts = count_params(spec)
        forward = forward_flops(spec, seq, batch=batch, attention=attention)
        has_cache = spec.architecture != "encoder"
        rows.append(
            ComparedModel(
                spec=spec,
                params=counts.total,
                active_params=counts.active,
                weight_bytes=weight_bytes(counts.total, dtype),
                forward_flops=forward.total,
                attention_flops=forward.attention_flops,
                kv_bytes_per_token=(kv_cache_bytes(spec, 1, dtype=dtype) if has_cache else 0),
                kv_bytes_at_seq=kv_cache_bytes(spec, seq, batch=batch, dtype=dtype)
                if has_cache
                else 0,
            )
        )
    if json_output:
        print_compare_json(rows, seq=seq, batch=batch, dtype=dtype, attention=attention)
    else:
        print_compare(rows, seq=seq, batch=batch, dtype=dtype, attention=attention)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
