"""``tfcli bench [MODEL]``: time the built-in model's attention against the estimates.

torch is imported inside the command only, so the estimate commands stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tfcli.commands.options import (
    MAX_BATCH,
    AsTypeOpt,
    JsonOpt,
    SetOpt,
    SpecsDirOpt,
    check_count,
    examples,
    parse_lengths,
)
from tfcli.errors import BenchError, UsageError, shorten

if TYPE_CHECKING:  # torch-side types, imported inside the command only
    from tfcli.bench.mixer_specs import MixerKind
    from tfcli.bench.settings import BenchSettings

DEFAULT_MODEL = "llama-3.2-1b"
"""A small shipped spec: a bare ``tfcli bench`` finishes in about a minute on 2 CPU cores."""
DEFAULT_SEQS = "512,1024,2048,4096"
BENCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
MAX_REPEATS = 1000
MAX_THREADS = 4096


def bench(
    model: Annotated[
        str, typer.Argument(help="MODEL to time (default: a small shipped spec).")
    ] = DEFAULT_MODEL,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "auto",
    dtype: Annotated[
        str, typer.Option("--dtype", help="fp32 (CPU default), bf16 or fp16.")
    ] = "fp32",
    seq: Annotated[str, typer.Option("--seq", help="Sequence lengths, comma-separated.")] = (
        DEFAULT_SEQS
    ),
    batch: Annotated[int, typer.Option("--batch", help="Sequences per batch.")] = 1,
    layers: Annotated[
        str,
        typer.Option(
            "--layers",
            help="Layers built and timed at full width: a count, or 'all' (decode then runs "
            "whole tokens: embedding, every layer, LM head).",
        ),
    ] = "1",
    backend: Annotated[
        str, typer.Option("--backend", help="Attention backends: naive,sdpa.")
    ] = "naive,sdpa",
    sdpa_kernel: Annotated[
        str | None,
        typer.Option("--sdpa-kernel", help="CUDA only: flash, efficient, math or cudnn."),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="prefill or decode.")] = "prefill",
    context: Annotated[
        str, typer.Option("--context", help="Decode: cached tokens, comma-separated.")
    ] = "1024,4096,16384",
    repeats: Annotated[int, typer.Option("--repeats", help="Timed samples per point.")] = 3,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls first.")] = 1,
    causal: Annotated[
        bool, typer.Option("--causal/--no-causal", help="Causal mask (decoders).")
    ] = True,
    blocks: Annotated[
        bool, typer.Option("--blocks/--no-blocks", help="Also time sublayer and block.")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Run points that may not fit in free memory.")
    ] = False,
    recalibrate: Annotated[
        bool,
        typer.Option(
            "--recalibrate", help="Measure the device's peak and bandwidths again (cached)."
        ),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write a log-log plot of measured vs predicted (.png, .svg or .pdf)."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="torch CPU threads (default: torch's).")
    ] = None,
    dist: Annotated[
        str | None,
        typer.Option(
            "--dist",
            help="tp=N or fsdp=N: run sharded under torchrun (gloo on CPU, NCCL on CUDA).",
        ),
    ] = None,
    mixers: Annotated[
        str | None,
        typer.Option(
            "--mixers",
            help="Time one layer's mixer of each kind over the lengths instead: "
            "full,sliding:W,chunked:C,linear (Gated DeltaNet),mamba2,mamba1,lightning "
            "(MiniMax),rwkv.",
        ),
    ] = None,
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    as_type: AsTypeOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Time attention of MODEL's built-in transformer on this machine against the estimates."""
    backends = tuple(b.strip() for b in backend.split(",") if b.strip())
    if not backends or any(b not in ("naive", "sdpa") for b in backends):
        raise UsageError(f"--backend takes naive and/or sdpa, got {shorten(backend)}")
    if mode not in ("prefill", "decode"):
        raise UsageError(f"--mode must be prefill or decode, got {shorten(mode)}")
    if dtype not in BENCH_DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(BENCH_DTYPES)}, got {shorten(dtype)}")
    check_count("--batch", batch, maximum=MAX_BATCH)
    check_count("--repeats", repeats, maximum=MAX_REPEATS)
    check_count("--warmup", warmup, minimum=0, maximum=MAX_REPEATS)
    check_count("--threads", threads, maximum=MAX_THREADS)
    if sdpa_kernel is not None and sdpa_kernel not in ("flash", "efficient", "math", "cudnn"):
        raise UsageError(
            f"--sdpa-kernel must be flash, efficient, math or cudnn, got {shorten(sdpa_kernel)}"
        )
    if device not in ("cpu", "cuda", "auto"):
        raise UsageError(f"--device must be cpu, cuda or auto, got {shorten(device)}")
    seqs = list(parse_lengths("--seq", seq))
    contexts = list(parse_lengths("--context", context))
    plot_format = check_plot_path(plot) if plot is not None else None
    kinds = None
    if mixers is not None:
        from tfcli.bench.mixer_specs import parse_mixers

        kinds = parse_mixers(mixers)
        if dist is not None:
            raise UsageError("--mixers and --dist do not combine: give one of them")
        if mode != "prefill":
            raise UsageError("--mixers times prefill (one pass over each length), not decode")

    from tfcli.loaders import load_model

    spec = load_model(
        model, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()), as_type=as_type
    ).spec
    depth = parse_layers(layers, spec.num_layers)
    capped = layers.strip().lower() != "all" and int(layers) > depth
    from tfcli.bench.support import check_timeable

    if kinds is None:  # --mixers builds its own one-layer mixers of each kind
        check_timeable(spec, depth, "prefill" if dist is not None else mode)
    if dist is not None:
        _bench_dist(spec, dist, seqs, batch, depth, dtype, threads, json_output)
        return
    if mode == "decode" and spec.architecture == "encoder":
        raise UsageError(f"{spec.name} is encoder-only: it does not generate tokens (no decode)")
    try:
        import torch
    except ImportError:
        raise BenchError("tfcli bench needs torch", hint="pip install 'tfcli[bench]'") from None
    from tfcli.bench.calibrate import calibrate_for
    from tfcli.bench.support import check_buildable

    if kinds is None:
        check_buildable(spec)
    from tfcli.bench.run import BenchSettings, run_bench, summarize
    from tfcli.render.bench import (
        bench_progress,
        check_plot_available,
        print_bench,
        print_bench_json,
        write_plot,
    )
    from tfcli.render.common import print_warning

    if plot is not None:
        check_plot_available()
    if threads is not None:
        torch.set_num_threads(threads)
    chosen = device
    if device == "auto":
        chosen = "cuda" if torch.cuda.is_available() else "cpu"
    if chosen == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device is available to torch")
    torch_device = torch.device(chosen)
    torch_dtype = getattr(torch, BENCH_DTYPES[dtype])
    if sdpa_kernel is not None and torch_device.type != "cuda":
        print_warning(
            f"--sdpa-kernel {sdpa_kernel} is ignored on {torch_device.type}: it selects a CUDA "
            "kernel; on the CPU SDPA runs its flash kernel (or its math fallback for MLA)"
        )
        sdpa_kernel = None
    if capped:
        print_warning(
            f"--layers {int(layers)}: {spec.name} has {depth} layers; all {depth} are built "
            "(as with --layers all)"
        )
    settings = BenchSettings(
        spec=spec,
        device=torch_device,
        dtype=torch_dtype,
        seqs=seqs,
        batch=batch,
        layers=depth,
        backends=backends,
        mode=mode,
        contexts=contexts,
        repeats=repeats,
        warmup=warmup,
        causal=causal,
        force=force,
        sdpa_kernel=sdpa_kernel,
        time_blocks=blocks,
    )
    if kinds is not None:
        _bench_mixers(settings, kinds, plot, plot_format, recalibrate, json_output)
        return
    causal_step = int("sdpa" in backends and causal and spec.is_causal)
    steps = len(contexts) if mode == "decode" else len(seqs) * len(backends) + causal_step
    with bench_progress(steps + 1, quiet=json_output) as advance:
        advance("calibrating device")
        calibration, cached = calibrate_for(
            spec, torch_device, torch_dtype, recalibrate=recalibrate, warn=print_warning
        )
        result = run_bench(settings, calibration, cached, on_step=advance)
    if result.calibration.noisy:
        print_warning(
            f"the device was busy during calibration ({result.calibration.noise_reason()}): "
            "predictions are off and the calibration was not cached"
        )
    for note in result.notes:
        print_warning(note)
    summary = summarize(result)
    if json_output:
        print_bench_json(result, summary)
    else:
        print_bench(result, summary)
    if plot is not None and plot_format is not None:  # after the results: loses nothing
        write_plot(result, plot, plot_format)
    if result.interrupted:
        raise typer.Exit(130)


def _bench_mixers(
    settings: BenchSettings,
    kinds: tuple[MixerKind, ...],
    plot: Path | None,
    plot_format: str | None,
    recalibrate: bool,
    json_output: bool,
) -> None:
    """``--mixers``: one layer of each kind over the lengths (``tfcli.bench.mixers``)."""
    from tfcli.bench.calibrate import calibrate_for
    from tfcli.bench.mixers import run_mixers, summarize_mixers
    from tfcli.render.bench import bench_progress
    from tfcli.render.bench_mixers import print_mixers, print_mixers_json, write_mixers_plot
    from tfcli.render.common import print_warning

    steps = len(settings.seqs) * len(kinds)
    with bench_progress(steps + 1, quiet=json_output) as advance:
        advance("calibrating device")
        calibration, cached = calibrate_for(
            settings.spec,
            settings.device,
            settings.dtype,
            recalibrate=recalibrate,
            warn=print_warning,
        )
        result = run_mixers(settings, kinds, calibration, cached, on_step=advance)
    if calibration.noisy:
        print_warning(
            f"the device was busy during calibration ({calibration.noise_reason()}): "
            "predictions are off and the calibration was not cached"
        )
    summary = summarize_mixers(result)
    if json_output:
        print_mixers_json(result, summary)
    else:
        print_mixers(result, summary)
    if plot is not None and plot_format is not None:  # after the results: loses nothing
        write_mixers_plot(result, summary, plot, plot_format)
    if result.interrupted:
        raise typer.Exit(130)


def _bench_dist(
    spec: object,
    text: str,
    seqs: list[int],
    batch: int,
    layers: int,
    dtype: str,
    threads: int | None,
    json_output: bool,
) -> None:
    """``--dist``: one sequence length, the sharded built-in model under torchrun."""
    from tfcli.spec import ModelSpec

    assert isinstance(spec, ModelSpec)
    if len(seqs) != 1:
        raise UsageError("--dist times one sequence length: give --seq N")
    try:
        import torch
    except ImportError:
        raise BenchError("tfcli bench needs torch", hint="pip install 'tfcli[bench]'") from None
    from tfcli.bench.dist import parse_dist, run_dist, shutdown

    mode, world = parse_dist(text)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = run_dist(
            spec,
            mode=mode,
            world=world,
            seq=seqs[0],
            batch=batch,
            layers=layers,
            dtype=getattr(torch, BENCH_DTYPES[dtype]),
        )
    finally:
        shutdown()
    if result is None:
        return
    from tfcli.render.bench_dist import print_dist, print_dist_json

    if json_output:
        print_dist_json(result.to_dict())
    else:
        print_dist(result.to_dict())


def parse_layers(value: str, depth: int) -> int:
    """``--layers``: a positive count (capped at the model's depth) or ``all``."""
    text = value.strip().lower()
    if text == "all":
        return depth
    from tfcli.spec import MAX_LAYERS

    try:
        count = int(text)
    except ValueError:
        raise UsageError(
            f"--layers takes a positive integer or 'all', got {shorten(value)}"
        ) from None
    if not 1 <= count <= MAX_LAYERS:
        raise UsageError(
            f"--layers must be 'all' or an integer from 1 to {MAX_LAYERS:,}, got {shorten(value)}"
        )
    return min(count, depth)


PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def check_plot_path(path: Path) -> str:
    """The plot's format from its extension, checked before any timing: a known extension,
    not a directory, in an existing writable directory. Raises UsageError otherwise."""
    suffix = path.suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise UsageError(
            f"--plot {path}: the file name must end in {', '.join(PLOT_FORMATS)}, "
            f"got {suffix or 'no extension'!r}"
        )
    if path.is_dir():
        raise UsageError(f"--plot {path} is a directory; give a file name such as bench.png")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--plot {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--plot {path}: not writable")
    return PLOT_FORMATS[suffix]


EPILOG = examples(
    ("A small model on this machine, naive and SDPA attention", "tfcli bench"),
    ("Llama-3-8B's layer at four lengths", "tfcli bench llama-3-8b --seq 512,1024,2048,4096"),
    ("Decode steps against the memory-bound prediction", "tfcli bench --mode decode"),
    ("Measured against predicted, as a plot", "tfcli bench --plot bench.png"),
    ("Whole tokens of a small model", "tfcli bench qwen2.5-0.5b --layers all --mode decode"),
    (
        "How each kind of attention scales",
        "tfcli bench qwen2.5-0.5b --mixers full,sliding:1024,linear --seq 1024,2048,4096,8192",
    ),
)


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=EPILOG)(bench)
