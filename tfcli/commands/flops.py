"""``tfcli flops MODEL``: forward/prefill/decode/train FLOPs, attention share, scaling, roofline."""

from __future__ import annotations

from typing import Annotated

import typer

from tfcli.commands.options import (
    MAX_BATCH,
    MAX_TOKENS,
    ExplainOpt,
    JsonOpt,
    ModelArg,
    SetOpt,
    SpecsDirOpt,
    check_count,
    check_positive_number,
    parse_lengths,
)
from tfcli.errors import UsageError, shorten

MODES = ("prefill", "decode", "train")


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, got {shorten(value)}")
    return value


def flops(
    model: ModelArg,
    seq: Annotated[int, typer.Option("--seq", help="Tokens per sequence (prefill/train).")] = 2048,
    batch: Annotated[int, typer.Option("--batch", help="Sequences per batch.")] = 1,
    attention: Annotated[
        str, typer.Option("--attention", help="Pair-counting convention: causal or full.")
    ] = "causal",
    logits: Annotated[
        str, typer.Option("--logits", help="LM head over all positions or the last only.")
    ] = "all",
    mode: Annotated[str, typer.Option("--mode", help="prefill, decode or train.")] = "prefill",
    context: Annotated[
        int | None, typer.Option("--context", help="Cached tokens before the decoded one.")
    ] = None,
    recompute: Annotated[
        bool, typer.Option("--recompute", help="Training with activation recomputation.")
    ] = False,
    encoder_seq: Annotated[
        int | None, typer.Option("--encoder-seq", help="Encoder tokens (encoder-decoder).")
    ] = None,
    scaling: Annotated[
        str | None,
        typer.Option("--scaling", help="Comma-separated lengths for the scaling table."),
    ] = None,
    hardware: Annotated[
        str | None,
        typer.Option("--hardware", help="Preset: h100, h200, a100, l4, rtx4090, mi300x."),
    ] = None,
    peak_tflops: Annotated[
        float | None, typer.Option("--peak-tflops", help="Custom device peak (TFLOP/s).")
    ] = None,
    bandwidth: Annotated[
        float | None, typer.Option("--bandwidth", help="Custom device bandwidth (GB/s).")
    ] = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="Compute/weights dtype for the roofline.")
    ] = "bf16",
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    explain: ExplainOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """FLOPs of MODEL by component: attention share, scaling with length, prefill/decode/train.

    FLOP = one multiply or one add (a multiply-accumulate is 2); totals are matmul FLOPs.
    """
    from tfcli.flops import (
        ATTENTION_CONVENTIONS,
        DEFAULT_SCALING_SEQS,
        LOGITS_MODES,
        decode_flops,
        forward_flops,
        other_convention,
        scaling_table,
    )
    from tfcli.hardware import resolve_hardware
    from tfcli.loaders import load_model
    from tfcli.params import count_params
    from tfcli.render.common import print_warning
    from tfcli.render.flops import FlopsView, print_flops, print_flops_json
    from tfcli.roofline import decode_roofline, prefill_roofline, training_roofline
    from tfcli.units import normalize_dtype

    _choice("--attention", attention, ATTENTION_CONVENTIONS)
    _choice("--logits", logits, LOGITS_MODES)
    _choice("--mode", mode, MODES)
    dtype = normalize_dtype(dtype)
    check_count("--seq", seq, maximum=MAX_TOKENS)
    check_count("--batch", batch, maximum=MAX_BATCH)
    check_count("--encoder-seq", encoder_seq, maximum=MAX_TOKENS)
    check_count("--context", context, minimum=0, maximum=MAX_TOKENS)
    check_positive_number("--peak-tflops", peak_tflops)
    check_positive_number("--bandwidth", bandwidth)
    if context is not None and mode != "decode":
        raise UsageError("--context is the KV-cache length of a decode step: add --mode decode")
    if recompute and mode != "train":
        raise UsageError("--recompute applies to --mode train")
    scaling_seqs = parse_lengths("--scaling", scaling) if scaling else DEFAULT_SCALING_SEQS
    device = resolve_hardware(
        hardware, peak_tflops=peak_tflops, bandwidth_gb_per_s=bandwidth, dtype=dtype
    )
    loaded = load_model(model, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()))
    spec = loaded.spec
    if encoder_seq is not None and spec.architecture != "encoder-decoder":
        raise UsageError(f"--encoder-seq is for encoder-decoder models; {spec.name} is not one")
    if mode == "decode" and spec.architecture == "encoder":
        raise UsageError(f"{spec.name} is encoder-only: it does not generate tokens (no decode)")
    cached = seq if context is None else context
    longest = cached + 1 if mode == "decode" else seq
    if spec.max_position_embeddings and longest > spec.max_position_embeddings:
        print_warning(
            f"{longest:,} tokens exceeds {spec.name}'s trained context of "
            f"{spec.max_position_embeddings:,} (figures are still computed)"
        )
    counts = count_params(spec)
    forward = forward_flops(
        spec, seq, batch=batch, attention=attention, logits=logits, encoder_seq=encoder_seq
    )
    other = other_convention(attention)
    forward_other = forward_flops(
        spec, seq, batch=batch, attention=other, logits=logits, encoder_seq=encoder_seq
    )
    decode = None
    shown, shown_other = forward, forward_other
    if mode == "decode":
        decode = decode_flops(
            spec, cached, batch=batch, attention=attention, encoder_seq=encoder_seq
        )
        shown = decode.with_cache
        shown_other = decode_flops(
            spec, cached, batch=batch, attention=other, encoder_seq=encoder_seq
        ).with_cache
    rows = scaling_table(
        spec,
        (*scaling_seqs, seq),
        batch=batch,
        attention=attention,
        logits=logits,
        encoder_seq=encoder_seq,
    )
    roofline = None
    if device is not None:
        if decode is not None:
            roofline = decode_roofline(spec, decode, counts, device, dtype=dtype, batch=batch)
        elif mode == "train":
            roofline = training_roofline(forward, counts, device, dtype=dtype, recompute=recompute)
        else:
            roofline = prefill_roofline(forward, counts, device, dtype=dtype, spec=spec)
    view = FlopsView(
        spec=spec,
        origin=loaded.origin,
        mode=mode,
        recompute=recompute,
        params=counts,
        forward=shown,
        other_convention=shown_other,
        prefill=forward,
        prefill_other=forward_other,
        decode=decode,
        scaling=rows,
        roofline=roofline,
    )
    if json_output:
        print_flops_json(view)
    else:
        print_flops(view, explain=explain)


def register(app: typer.Typer) -> None:
    app.command("flops")(flops)
