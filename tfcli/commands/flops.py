"""``tfcli flops MODEL``: forward/prefill/decode/train FLOPs, attention share, scaling, roofline."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tfcli.commands.options import (
    MAX_LIST,
    MAX_TOKENS,
    AsTypeOpt,
    ExplainOpt,
    FormatOpt,
    JsonOpt,
    MbuOpt,
    MfuOpt,
    ModelArg,
    SetOpt,
    SpecsDirOpt,
    check_count,
    check_fraction,
    check_positive_number,
    check_sweep,
    examples,
    output_format,
    parse_counts,
    parse_lengths,
)
from tfcli.errors import UsageError, shorten

MODES = ("prefill", "decode", "train")


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, got {shorten(value)}")
    return value


EPILOG = examples(
    ("Attention share at 128K tokens", "tfcli flops llama-3-8b --seq 131072"),
    ("A sweep as CSV", "tfcli flops llama-3-8b --seq 1024,8192,131072 --batch 1,8 --format csv"),
    ("TTFT, TPOT and tokens/s", "tfcli flops llama-3-8b --seq 4096 --batch 8 --hardware h100"),
    ("One decode step", "tfcli flops llama-3-8b --mode decode --context 8191 --hardware h100"),
    ("Training step with formulas", "tfcli flops gpt2 --mode train --recompute --explain"),
)


def flops(
    model: ModelArg,
    seq: Annotated[
        str,
        typer.Option(
            "--seq", help="Tokens per sequence; a list sweeps (1024,8192,128k; k = 1024)."
        ),
    ] = "2048",
    batch: Annotated[
        str, typer.Option("--batch", help="Sequences per batch; a list sweeps (1,8,32).")
    ] = "1",
    attention: Annotated[
        str, typer.Option("--attention", help="Pair-counting convention: causal or full.")
    ] = "causal",
    logits: Annotated[
        str, typer.Option("--logits", help="LM head over all positions or the last only.")
    ] = "all",
    mode: Annotated[str, typer.Option("--mode", help="prefill, decode or train.")] = "prefill",
    context: Annotated[
        str | None,
        typer.Option("--context", help="Cached tokens before the decoded one (a list sweeps)."),
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
        typer.Option(
            "--hardware",
            help="A preset (h100, b200, mi300x, tpu-v5e, ...): roofline and TTFT/TPOT.",
        ),
    ] = None,
    peak_tflops: Annotated[
        float | None, typer.Option("--peak-tflops", help="Custom device peak (TFLOP/s).")
    ] = None,
    bandwidth: Annotated[
        float | None, typer.Option("--bandwidth", help="Custom device bandwidth (GB/s).")
    ] = None,
    mfu: MfuOpt = None,
    mbu: MbuOpt = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="Compute/weights dtype for the roofline.")
    ] = "bf16",
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    as_type: AsTypeOpt = None,
    explain: ExplainOpt = False,
    fmt: FormatOpt = "table",
    json_output: JsonOpt = False,
) -> None:
    """FLOPs of MODEL by component: attention share, scaling with length, prefill/decode/train.

    FLOP = one multiply or one add (a multiply-accumulate is 2); totals are matmul FLOPs.
    With --hardware: roofline times, TTFT, TPOT and tokens/s at the stated MFU/MBU.
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
    from tfcli.render.flops import (
        FlopsPoint,
        FlopsSweepView,
        FlopsView,
        print_flops,
        print_flops_csv,
        print_flops_json,
        print_flops_sweep,
        print_flops_sweep_json,
    )
    from tfcli.roofline import (
        DEFAULT_MBU,
        DEFAULT_MFU,
        decode_roofline,
        prefill_roofline,
        serving_time,
        training_roofline,
    )
    from tfcli.units import normalize_dtype

    chosen_format = output_format(fmt, json_output)
    _choice("--attention", attention, ATTENTION_CONVENTIONS)
    _choice("--logits", logits, LOGITS_MODES)
    _choice("--mode", mode, MODES)
    dtype = normalize_dtype(dtype)
    seqs = parse_lengths("--seq", seq)
    batches = parse_counts("--batch", batch)
    check_count("--encoder-seq", encoder_seq, maximum=MAX_TOKENS)
    check_positive_number("--peak-tflops", peak_tflops)
    check_positive_number("--bandwidth", bandwidth)
    if context is not None and mode != "decode":
        raise UsageError("--context is the KV-cache length of a decode step: add --mode decode")
    contexts = _contexts(context) if context is not None else None
    check_sweep(len(contexts or seqs) * len(batches))
    if recompute and mode != "train":
        raise UsageError("--recompute applies to --mode train")
    scaling_seqs = parse_lengths("--scaling", scaling) if scaling else DEFAULT_SCALING_SEQS
    mfu_value = DEFAULT_MFU if mfu is None else mfu
    mbu_value = DEFAULT_MBU if mbu is None else mbu
    _check_fraction("--mfu", mfu_value)
    _check_fraction("--mbu", mbu_value)
    device = resolve_hardware(
        hardware, peak_tflops=peak_tflops, bandwidth_gb_per_s=bandwidth, dtype=dtype
    )
    if device is not None:
        device.peak_for(dtype)  # an unknown dtype for this device is bad input, before loading
    loaded = load_model(
        model, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()), as_type=as_type
    )
    spec = loaded.spec
    if encoder_seq is not None and spec.architecture != "encoder-decoder":
        raise UsageError(f"--encoder-seq is for encoder-decoder models; {spec.name} is not one")
    if mode == "decode" and spec.architecture == "encoder":
        raise UsageError(f"{spec.name} is encoder-only: it does not generate tokens (no decode)")
    lengths = contexts if (mode == "decode" and contexts is not None) else seqs
    longest = max(lengths) + (1 if mode == "decode" else 0)
    if spec.max_position_embeddings and longest > spec.max_position_embeddings:
        print_warning(
            f"{longest:,} tokens exceeds {spec.name}'s trained context of "
            f"{spec.max_position_embeddings:,} (figures are still computed)"
        )
    counts = count_params(spec)
    serve = device is not None and spec.architecture != "encoder" and mode != "train"
    efficiency: dict[str, Any] = {"mfu": mfu_value, "mbu": mbu_value}
    if device is not None and mode != "train":
        from tfcli.commands.params import served_or_warn
        from tfcli.render.common import print_note, stderr_console

        served = served_or_warn(loaded)
        if served is not None:  # a quantized checkpoint reads its served bytes
            efficiency["served_bytes"] = served.total_bytes
            note = (
                f"weights read as served: {served.label}, {served.total_bytes:,} B "
                "(packed weights, scales and zeros, the unquantized rest; tfcli.quant)"
            )
            (print_note if chosen_format == "table" else stderr_console.print)(note)

    points = []
    for length in lengths:
        for b in batches:
            if mode == "decode":
                shown = decode_flops(
                    spec, length, batch=b, attention=attention, encoder_seq=encoder_seq
                ).with_cache
            else:
                shown = forward_flops(
                    spec,
                    length,
                    batch=b,
                    attention=attention,
                    logits=logits,
                    encoder_seq=encoder_seq,
                )
            points.append(
                FlopsPoint(
                    count=shown,
                    mode=mode,
                    recompute=recompute,
                    serving=serving_time(
                        spec,
                        counts,
                        device,
                        seq=length,
                        batch=b,
                        dtype=dtype,
                        attention=attention,
                        encoder_seq=encoder_seq,
                        **efficiency,
                    )
                    if serve and device is not None
                    else None,
                )
            )
    if len(points) > 1:
        sweep = FlopsSweepView(
            spec=spec,
            origin=loaded.origin,
            mode=mode,
            attention=attention,
            points=points,
            hardware=device,
            dtype=dtype,
            mfu=mfu_value,
            mbu=mbu_value,
        )
        if chosen_format == "json":
            print_flops_sweep_json(sweep)
        elif chosen_format == "csv":
            print_flops_csv(sweep)
        else:
            print_flops_sweep(sweep)
        return

    length, b = lengths[0], batches[0]
    seq_value = seqs[0] if mode == "decode" else length
    forward = forward_flops(
        spec, seq_value, batch=b, attention=attention, logits=logits, encoder_seq=encoder_seq
    )
    other = other_convention(attention)
    forward_other = forward_flops(
        spec, seq_value, batch=b, attention=other, logits=logits, encoder_seq=encoder_seq
    )
    decode = None
    shown, shown_other = forward, forward_other
    if mode == "decode":
        decode = decode_flops(spec, length, batch=b, attention=attention, encoder_seq=encoder_seq)
        shown = decode.with_cache
        shown_other = decode_flops(
            spec, length, batch=b, attention=other, encoder_seq=encoder_seq
        ).with_cache
    rows = scaling_table(
        spec,
        (*scaling_seqs, seq_value),
        batch=b,
        attention=attention,
        logits=logits,
        encoder_seq=encoder_seq,
    )
    roofline = None
    if device is not None:
        if decode is not None:
            roofline = decode_roofline(
                spec, decode, counts, device, dtype=dtype, batch=b, **efficiency
            )
        elif mode == "train":
            roofline = training_roofline(
                forward, counts, device, dtype=dtype, recompute=recompute, **efficiency
            )
        else:
            roofline = prefill_roofline(
                forward, counts, device, dtype=dtype, spec=spec, **efficiency
            )
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
        point=points[0],
        hardware=device,
        dtype=dtype,
    )
    if chosen_format == "json":
        print_flops_json(view)
    elif chosen_format == "csv":
        print_flops_csv(
            FlopsSweepView(
                spec=spec,
                origin=loaded.origin,
                mode=mode,
                attention=attention,
                points=points,
                hardware=device,
                dtype=dtype,
                mfu=mfu_value,
                mbu=mbu_value,
            )
        )
    else:
        print_flops(view, explain=explain)


def _contexts(text: str) -> tuple[int, ...]:
    """``--context``: cached tokens, 0 allowed (the first generated token)."""
    values = set()
    items = [item.strip() for item in text.split(",")]
    if len(items) > MAX_LIST:
        raise UsageError(f"--context: {len(items):,} values given; at most {MAX_LIST:,}")
    for item in items:
        if not item:
            continue
        if item == "0":
            values.add(0)
            continue
        values.update(parse_lengths("--context", item))
    if not values:
        raise UsageError(f"--context: no lengths in {shorten(text)}")
    return tuple(sorted(values))


def _check_fraction(option: str, value: float) -> None:
    check_fraction(option, value)


def register(app: typer.Typer) -> None:
    app.command("flops", epilog=EPILOG)(flops)
