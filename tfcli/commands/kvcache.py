"""``tfcli kvcache MODEL``: KV-cache bytes per token, per layer and in total; what fits."""

from __future__ import annotations

from typing import Annotated

import typer

from tfcli.commands.options import (
    MAX_RANKS,
    MAX_TOKENS,
    AsTypeOpt,
    FormatOpt,
    JsonOpt,
    MbuOpt,
    MfuOpt,
    ModelArg,
    SetOpt,
    SpecsDirOpt,
    check_count,
    check_fraction,
    check_sweep,
    examples,
    output_format,
    parse_counts,
    parse_lengths,
)
from tfcli.errors import UsageError, shorten

SERVING_WEIGHTS_DTYPE = "bf16"
"""Weights dtype of a fit when neither --weights-dtype nor a quantization_config says otherwise:
models are served in bf16 even when their config.json records fp32 (gemma-2-9b). With a
quantization_config (and no --weights-dtype) a fit takes the checkpoint's served bytes
(``tfcli.quant.served_weights``: packed weights, scales and zeros, the unquantized rest); the
serving roofline (TTFT/TPOT) still reads the weights at this dtype."""

EPILOG = examples(
    ("KV bytes per token and in total", "tfcli kvcache llama-2-70b --seq 131072"),
    ("A sweep as CSV", "tfcli kvcache llama-3-8b --seq 8192,32768 --batch 1,8,32 --format csv"),
    ("Longest context and largest batch", "tfcli kvcache llama-3-8b --hardware h100"),
    ("Fit, TTFT and TPOT", "tfcli kvcache llama-3-8b --seq 8192 --batch 8 --hardware h100"),
    ("vLLM's paged cache", "tfcli kvcache gemma-2-9b --seq 8193 --convention vllm"),
    ("A hybrid's state and KV", "tfcli kvcache qwen3-next-80b-a3b --seq 262144"),
)


def parse_reserve(text: str, budget: int) -> tuple[int, str]:
    """``--reserve``: ``10%`` or ``0.1`` (a fraction of the budget) or a size such as ``4GiB``.

    Returns the reserve in bytes and how it was chosen, for the output. A plain number must
    be a fraction in [0, 1); anything else needs a memory unit.
    """
    from tfcli.memory import reserve_bytes_for
    from tfcli.units import parse_bytes

    value = text.strip()
    number = value[:-1] if value.endswith("%") else value
    try:
        fraction = float(number) / (100 if value.endswith("%") else 1)
    except ValueError:
        if value.endswith("%"):
            raise UsageError(f"--reserve: cannot read {shorten(text)} as a percentage") from None
        return parse_bytes(value), f"--reserve {value}"
    if not 0 <= fraction < 1:
        raise UsageError(
            f"--reserve must be a fraction in [0, 1) (0.1 or 10%) or a size with a unit "
            f"(4GiB), got {shorten(text)}"
        )
    return reserve_bytes_for(budget, fraction=fraction), f"{fraction:.0%} of the budget"


def kvcache(
    model: ModelArg,
    seq: Annotated[
        str | None,
        typer.Option(
            "--seq", help="Tokens per sequence (default: the trained context); a list sweeps."
        ),
    ] = None,
    batch: Annotated[str, typer.Option("--batch", help="Sequences; a list sweeps.")] = "1",
    dtype: Annotated[
        str, typer.Option("--dtype", help="Cache dtype: bf16, fp16, fp8, int8, int4, fp32.")
    ] = "bf16",
    encoder_seq: Annotated[
        int | None, typer.Option("--encoder-seq", help="Encoder tokens (encoder-decoder).")
    ] = None,
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel ranks (per-device cache).")] = 1,
    block_size: Annotated[
        int | None, typer.Option("--block-size", help="Paged allocation: tokens per block.")
    ] = None,
    convention: Annotated[
        str,
        typer.Option(
            "--convention",
            help="Cache convention: transformers (the oracle: sliding/chunked layers keep "
            "w - 1 tokens, fp32 recurrent states, K conv columns) or vllm (paged blocks, "
            "w - 1 + batched tokens + 1 block, states in the cache dtype, K - 1 conv columns).",
        ),
    ] = "transformers",
    batched_tokens: Annotated[
        int,
        typer.Option(
            "--batched-tokens",
            help="vllm convention: tokens scheduled per step (max_num_batched_tokens), the "
            "headroom a sliding or chunked layer holds.",
        ),
    ] = 2048,
    budget: Annotated[
        str | None, typer.Option("--budget", help="Memory budget per device, e.g. 80GiB.")
    ] = None,
    hardware: Annotated[
        str | None, typer.Option("--hardware", help="Budget from a preset's memory (h100...).")
    ] = None,
    weights_dtype: Annotated[
        str | None,
        typer.Option(
            "--weights-dtype",
            help="dtype of the weights in a fit (default: bf16, the serving dtype, or the "
            "checkpoint's quantization).",
        ),
    ] = None,
    reserve: Annotated[
        str,
        typer.Option(
            "--reserve",
            help="Kept back from the budget for activations and the runtime: a fraction "
            "(10%, 0.1) or a size (4GiB).",
        ),
    ] = "10%",
    mfu: MfuOpt = None,
    mbu: MbuOpt = None,
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    as_type: AsTypeOpt = None,
    fmt: FormatOpt = "table",
    json_output: JsonOpt = False,
) -> None:
    """KV-cache memory of MODEL (MHA, GQA, MQA, MLA, sliding window) and what fits a budget.

    With --hardware: the fit in the device's memory, and TTFT, TPOT and tokens/s.
    """
    from tfcli.commands.params import served_or_warn
    from tfcli.hardware import lookup_hardware
    from tfcli.loaders import load_model
    from tfcli.memory import (
        CONVENTIONS,
        CacheLayout,
        attention_variants,
        kv_cache,
        solve_fit,
        weight_bytes_per_device,
    )
    from tfcli.params import count_params
    from tfcli.render.common import print_warning
    from tfcli.render.kvcache import (
        KVCachePoint,
        KVCacheView,
        print_kvcache,
        print_kvcache_csv,
        print_kvcache_json,
        print_kvcache_sweep,
        print_kvcache_sweep_json,
    )
    from tfcli.roofline import DEFAULT_MBU, DEFAULT_MFU, check_efficiency, serving_time
    from tfcli.units import normalize_dtype, parse_bytes

    # Every option is checked before the model loads, so bad input gives one line only.
    chosen_format = output_format(fmt, json_output)
    seqs = parse_lengths("--seq", seq) if seq is not None else None
    batches = parse_counts("--batch", batch)
    mfu_value = DEFAULT_MFU if mfu is None else mfu
    mbu_value = DEFAULT_MBU if mbu is None else mbu
    check_fraction("--mfu", mfu_value)
    check_fraction("--mbu", mbu_value)
    check_efficiency(mfu_value, mbu_value)
    dtype = normalize_dtype(dtype)
    weights_dt = normalize_dtype(weights_dtype) if weights_dtype else None
    if convention not in CONVENTIONS:
        raise UsageError(
            f"--convention must be one of {', '.join(CONVENTIONS)}, got {shorten(convention)}"
        )
    check_count("--batched-tokens", batched_tokens, maximum=MAX_TOKENS)
    if block_size is not None and convention != "vllm":
        raise UsageError(
            "--block-size models vLLM's paged cache; add --convention vllm (transformers keeps "
            "no blocks)"
        )
    if budget is not None and hardware is not None:
        raise UsageError("give --budget or --hardware, not both")
    budget_bytes = None
    budget_label = None
    device = None
    if hardware is not None:
        device = lookup_hardware(hardware)
        budget_bytes, budget_label = device.memory_bytes, f"{device.name} memory"
    elif budget is not None:
        budget_bytes, budget_label = parse_bytes(budget), f"--budget {budget}"
    # parsed even without a budget: a bad --reserve is never silently ignored
    reserve_bytes, chosen_reserve = parse_reserve(reserve, budget_bytes or 0)
    reserve_label = chosen_reserve if budget_bytes is not None else None
    layout = CacheLayout(
        batch=batches[0],
        dtype=dtype,
        encoder_seq=encoder_seq,
        tp=tp,
        block_size=(block_size or 16) if convention == "vllm" else None,
        rule=convention,
        batched_tokens=batched_tokens,
    )
    check_count("--encoder-seq", encoder_seq, maximum=MAX_TOKENS)
    check_count("--tp", tp, maximum=MAX_RANKS)
    check_count("--block-size", block_size, maximum=MAX_TOKENS)
    check_sweep(len(seqs or (1,)) * len(batches))

    loaded = load_model(
        model, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()), as_type=as_type
    )
    spec = loaded.spec
    lengths = seqs if seqs is not None else (spec.max_position_embeddings or 4096,)
    counts = count_params(spec)
    served = served_or_warn(loaded) if weights_dt is None else None
    weights_dt = weights_dt or SERVING_WEIGHTS_DTYPE
    weights = weight_bytes_per_device(counts.total, weights_dt, tp)
    if served is not None:  # the quantized checkpoint's own bytes, split evenly over --tp
        weights = -(-served.total_bytes // tp)
    serve = device is not None and spec.architecture != "encoder"

    points = []
    for length in lengths:
        for b in batches:
            kwargs = {**layout.kwargs(), "batch": b}
            cache = kv_cache(spec, length, **kwargs)
            fit = None
            if budget_bytes is not None:
                fit = solve_fit(
                    spec,
                    budget_bytes=budget_bytes,
                    weights_bytes_=weights,
                    reserve_bytes=reserve_bytes,
                    seq=length,
                    **kwargs,
                )
            serving = None
            if serve and device is not None:
                serving = serving_time(
                    spec,
                    counts,
                    device,
                    seq=length,
                    batch=b,
                    dtype=weights_dt,
                    mfu=mfu_value,
                    mbu=mbu_value,
                    encoder_seq=encoder_seq,
                    served_bytes=served.total_bytes if served is not None else None,
                )
            points.append(KVCachePoint(cache=cache, fit=fit, serving=serving))
    trained = spec.max_position_embeddings
    if trained and max(lengths) > trained:
        print_warning(
            f"{max(lengths):,} tokens exceeds {spec.name}'s trained context of "
            f"{trained:,} (figures are still computed)"
        )
    view = KVCacheView(
        spec=spec,
        origin=loaded.origin,
        budget_label=budget_label,
        weights_dtype=weights_dt,
        weights_dtype_is_default=weights_dtype is None,
        served_weights=served,
        reserve_label=reserve_label,
        points=points,
        hardware=device,
        variants=(
            attention_variants(spec, lengths[0], layout)
            if len(points) == 1 and points[0].cache.self_attention_bytes
            else []
        ),
    )
    if chosen_format == "csv":
        print_kvcache_csv(view)
    elif len(points) > 1:
        (print_kvcache_sweep_json if chosen_format == "json" else print_kvcache_sweep)(view)
    elif chosen_format == "json":
        print_kvcache_json(view)
    else:
        print_kvcache(view)


def register(app: typer.Typer) -> None:
    app.command("kvcache", epilog=EPILOG)(kvcache)
