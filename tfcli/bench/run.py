"""The benchmark sweep: time the built-in model's attention against tfcli's estimates.

For each sequence length and backend it measures, on random weights at full width, over the
``--layers N`` built layers (each with its own kind: full or sliding): attention cores
(softmax(QK^T)V), attention sublayers (projections + core), the stack of blocks; median and
spread over repeats after warm-up, each sample paired with a noise probe. It
predicts the core time from the FLOPs (or bytes) the kernel executes and the device
calibration only (``tfcli.bench.calibrate``: generic matmul / bandwidth probes and kernel
efficiencies measured once on other shapes), never from a timing of the point predicted.
Memory: the peak the allocator holds during one core call beyond what it held before
(``tfcli.bench.allocations``: CUDA ``max_memory_allocated``, CPU the profiler's allocation
events; never the RSS, which reuses freed pages) against the estimate.

What the kernels execute and the predictions are in ``tfcli.bench.work``; decode steps in
``tfcli.bench.decode``. A point whose achieved FLOP/s exceeds the calibrated matmul peak
means the calibration ran slow (a busy machine): the device is probed again once, the
predictions are redone with the new figures, and the result says so (``BenchResult.notes``).
An allocation failure at one point (with ``--force``) is recorded as that point's
``skipped`` reason and the sweep goes on; Ctrl-C keeps every point measured so far.
"""

from __future__ import annotations

import gc
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import torch

from tfcli.bench.allocations import peak_bytes
from tfcli.bench.calibrate import Calibration, calibrate_for, load_average
from tfcli.bench.decode import (
    DecodeResult,
    decode_executed_kv_bytes,
    measure_decode,
    predict_decode_seconds,
)
from tfcli.bench.model import Block, SelfAttention, Transformer, build_model, main_plan
from tfcli.bench.settings import DTYPE_NAMES, BenchSettings, available_memory_bytes, fit_problem
from tfcli.bench.timing import Probe, Samples, time_call
from tfcli.bench.work import (
    block_mlp_flops,
    core_flops,
    cpu_flash_executed_pairs,
    estimate_peak_bytes,
    executed_kernel,
    executed_pairs,
    explicit_mask,
    layer_reach,
    model_bytes,
    point_footprint_bytes,
    predict_core_seconds,
    projection_flops,
    sparse_pattern_masks,
)
from tfcli.errors import BenchError
from tfcli.flops import executed_length, layer_pairs
from tfcli.spec import ModelSpec

__all__ = [  # the names tests and scripts import from here
    "BenchResult",
    "BenchSettings",
    "DecodeResult",
    "PointResult",
    "Summary",
    "check_model_fits",
    "cpu_flash_executed_pairs",
    "decode_executed_kv_bytes",
    "estimate_peak_bytes",
    "executed_kernel",
    "executed_pairs",
    "fit_exponent",
    "plan_point",
    "run_bench",
    "summarize",
]

ALLOCATION_ERRORS = (RuntimeError, MemoryError)
"""What a failed allocation raises: torch's ``OutOfMemoryError`` (a RuntimeError) on CUDA,
RuntimeError "DefaultCPUAllocator: can't allocate memory" or MemoryError on the CPU."""

# ---- results ---------------------------------------------------------------------------------


@dataclass
class PointResult:
    """One (sequence length, backend) measurement over the built layers, with its estimates.

    Times, FLOPs and predictions are sums over the ``layers`` layers (one per layer kind
    they hold); memory is the peak of one layer's core at a time (they run in turn)."""

    seq: int
    backend: str
    causal: bool
    kernel: str = "flash"
    """The kernel that runs (``executed_kernel``): naive, math or flash."""
    layers: int = 1
    core: Samples | None = None
    sublayer: Samples | None = None
    block: Samples | None = None
    estimated_core_flops: int = 0
    """Attention-core FLOPs under tfcli's convention (causal pairs for a causal decoder)."""
    executed_core_flops: int = 0
    """Attention-core FLOPs the kernel executes (``executed_pairs``): what the time follows."""
    predicted_core_seconds: float = 0.0
    predicted_sublayer_seconds: float = 0.0
    predicted_block_seconds: float = 0.0
    measured_peak_bytes: int | None = None
    estimated_peak_bytes: int = 0
    footprint_bytes: int = 0
    """Conservative footprint of the whole point (core peak + inputs + block activations),
    checked against free memory before anything is allocated."""
    skipped: str | None = None

    @property
    def core_error(self) -> float | None:
        """(predicted - measured) / measured of the median core time."""
        if self.core is None:
            return None
        return (self.predicted_core_seconds - self.core.median) / self.core.median

    @property
    def achieved_flops_per_s(self) -> float | None:
        """Executed core FLOPs over the median core time."""
        return None if self.core is None else self.executed_core_flops / self.core.median


@dataclass
class BenchResult:
    settings: BenchSettings
    calibration: Calibration
    calibration_cached: bool
    points: list[PointResult] = field(default_factory=list)
    decode: list[DecodeResult] = field(default_factory=list)
    causal_saving: float | None = None
    """Measured SDPA time without / with the causal mask at the longest length."""
    predicted_causal_saving: float | None = None
    interrupted: bool = False
    load_average_start: float | None = None
    load_average_end: float | None = None
    notes: list[str] = field(default_factory=list)
    """What happened during the run that the reader must know (a re-probe of the device)."""
    reprobed: bool = False
    gemv_rates: dict[int, float] = field(default_factory=dict)
    """GEMV bytes/s by contracted dimension, probed once per run for the decode steps."""

    def probe_rates(self) -> list[float]:
        """Every probe rate (FLOP/s) taken during the run."""
        rates: list[float] = []
        for p in self.points:
            for samples in (p.core, p.sublayer, p.block):
                if samples is not None:
                    rates.extend(samples.probe_flops_per_s)
        for d in self.decode:
            if d.step is not None:
                rates.extend(d.step.probe_flops_per_s)
        return rates


# ---- planning (estimates and predictions, before any allocation) --------------------------------


def _inputs(
    spec: ModelSpec, batch: int, seq: int, settings: BenchSettings
) -> tuple[torch.Tensor, ...]:
    """Random q (B, H, S, d_qk), k (B, KVH, S, d_qk), v (B, KVH, S, d_v) for the core."""
    kv_heads = spec.num_heads if spec.is_mla else spec.kv_heads

    def make(heads: int, dim: int) -> torch.Tensor:
        return torch.randn(batch, heads, seq, dim, device=settings.device, dtype=settings.dtype)

    return (
        make(spec.num_heads, spec.qk_head_dim),
        make(kv_heads, spec.qk_head_dim),
        make(kv_heads, spec.value_head_dim),
    )


def core_bias(
    model: Transformer, settings: BenchSettings, seq: int
) -> tuple[int, torch.Tensor | None]:
    """(rows, bias) the attention cores of ``seq`` tokens run with: a Longformer or BigBird
    encoder pads to its window or blocks and masks with its pattern (``sparse_pattern``, as
    the layers do); otherwise ``seq`` rows and the (1, H, S, S) ALiBi / relative bias, or
    None."""
    spec, device = settings.spec, settings.device
    if spec.sparse_attention != "none":
        from tfcli.bench.sparse_attention import sparse_pattern

        return sparse_pattern(spec, seq, device=device, dtype=settings.dtype)
    # a bias that is 3-D, a strided view (T5's permuted embedding) or requires grad sends the
    # CPU SDPA to its math fallback (``attention.sdpa_attention``): the timed cores get it
    # as the flash kernel takes it, (1, H, S, S), contiguous, without a graph
    with torch.no_grad():
        bias = model.position_bias(0, seq, seq, 0, device)
    return seq, None if bias is None else bias.contiguous().unsqueeze(0)


def built_layers(settings: BenchSettings) -> int:
    """Layers of the main stack the run builds and times."""
    return min(settings.layers, settings.spec.num_layers)


def plan_point(settings: BenchSettings, cal: Calibration, seq: int, backend: str) -> PointResult:
    """Estimates and predictions of one point (summed over the built layers, each with its
    own window), and whether it fits, before any allocation."""
    spec, batch = settings.spec, settings.batch
    dtype = DTYPE_NAMES[settings.dtype]
    causal = settings.causal and spec.is_causal
    kernel = executed_kernel(spec, backend, settings.device)
    layers = built_layers(settings)
    result = PointResult(seq=seq, backend=backend, causal=causal, kernel=kernel, layers=layers)
    threads = torch.get_num_threads() if settings.device.type == "cpu" else None
    tokens = batch * seq
    rows = executed_length(spec, seq, "full")  # Longformer / BigBird pad (sparse_pattern)
    pattern = sparse_pattern_masks(spec, seq)
    # the convention tfcli flops counts: the causal flag for a decoder, the pattern (band,
    # globals, blocks) for an encoder
    convention = "causal" if causal or not spec.is_causal else "full"
    for index in range(layers):
        window = layer_reach(spec, index)  # a chunk's mask costs what a window's does
        peak = estimate_peak_bytes(
            spec,
            batch,
            rows,
            backend,
            dtype,
            kernel=kernel,
            cpu_threads=threads,
            window=window,
            causal=causal,
        )
        result.estimated_peak_bytes = max(result.estimated_peak_bytes, peak)
        footprint = point_footprint_bytes(
            spec, batch, rows, backend, dtype, blocks=settings.time_blocks, window=window
        )
        result.footprint_bytes = max(result.footprint_bytes, footprint)
        pairs_convention = layer_pairs(main_plan(spec, index), spec, seq, 0, convention)
        masked = explicit_mask(spec, window) or pattern
        pairs = executed_pairs(
            rows, kernel=kernel, causal=causal, masked=masked, device=settings.device
        )
        result.estimated_core_flops += core_flops(spec, batch, pairs_convention)
        result.executed_core_flops += core_flops(spec, batch, pairs)
        predicted = predict_core_seconds(
            spec, batch, rows, kernel, pairs, cal, dtype, window, masked=masked, causal=causal
        )
        projections = projection_flops(spec, tokens) / cal.matmul_flops_per_s
        mlp = block_mlp_flops(spec, tokens, index) / cal.matmul_flops_per_s
        result.predicted_core_seconds += predicted
        result.predicted_sublayer_seconds += predicted + projections
        result.predicted_block_seconds += predicted + projections + mlp
    result.skipped = fit_problem(result.footprint_bytes, settings)
    return result


# ---- measuring ---------------------------------------------------------------------------------


def _release(device: torch.device) -> None:
    """Return what a failed point left behind to the allocator."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def allocation_failure(err: BaseException) -> str:
    """The ``skipped`` text of a point whose allocation failed: the error's first line."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return f"allocation failed: {first[:160]}"


def measure_point(
    model: Transformer,
    settings: BenchSettings,
    cal: Calibration,
    seq: int,
    backend: str,
    probe: Probe,
) -> PointResult:
    """Plan the point, then (if it fits) time the cores, sublayers and blocks of the built
    layers and measure the core memory. An allocation failure (run with ``--force``) becomes
    the point's ``skipped`` reason; what was measured before it is kept.

    The memory measurement is the cores' first call, so it counts as one of the warm-up
    calls.
    """
    result = plan_point(settings, cal, seq, backend)
    if result.skipped is not None:
        return result
    spec, device = settings.spec, settings.device
    model.set_backend(backend, settings.sdpa_kernel)
    blocks = [model.block(i) for i in range(result.layers)]
    try:
        _time_point(model, blocks, settings, result, probe)
    except ALLOCATION_ERRORS as err:
        result.core = result.sublayer = result.block = None
        result.measured_peak_bytes = None
        result.skipped = allocation_failure(err)
        _release(device)
    finally:
        for block in blocks:
            block.attention.causal = spec.is_causal
    return result


def _time_point(
    model: Transformer,
    blocks: list[Block],
    settings: BenchSettings,
    result: PointResult,
    probe: Probe,
) -> None:
    spec, device, batch = settings.spec, settings.device, settings.batch
    seq, bias = core_bias(model, settings, result.seq)
    q, k, v = _inputs(spec, batch, seq, settings)
    for block in blocks:
        block.attention.causal = result.causal

    def cores() -> object:
        for block in blocks:
            block.attention.core(q, k, v, bias=bias)
        return None

    with torch.no_grad():
        result.measured_peak_bytes = peak_bytes(cores, device)
        result.core = time_call(
            cores,
            device=device,
            warmup=max(0, settings.warmup - 1),
            repeats=settings.repeats,
            probe=probe,
        )
        if not settings.time_blocks:
            return
        x = torch.randn(batch, seq, spec.hidden_size, device=device, dtype=settings.dtype)
        positions = torch.arange(seq, device=device)
        block_repeats = max(1, settings.repeats // 2)
        # DeBERTa: the c2p / p2c terms are computed in the sublayer (the core above has no bias)
        relative = model.relative_inputs(seq, device)

        def sublayers() -> object:
            for block in blocks:
                if relative is None:
                    block.attention(x, positions, bias=bias)
                else:
                    cast(SelfAttention, block.attention)(x, positions, bias=bias, relative=relative)
            return None

        def stack() -> object:
            h = x
            for block in blocks:
                h = block(h, positions, bias=bias, relative=relative)
            return h

        result.sublayer = time_call(
            sublayers, device=device, warmup=0, repeats=block_repeats, probe=probe
        )
        result.block = time_call(stack, device=device, warmup=0, repeats=block_repeats, probe=probe)


def measure_unmasked_core(
    model: Transformer, settings: BenchSettings, seq: int, probe: Probe
) -> Samples:
    """SDPA core samples at ``seq`` over the built layers with the causal mask switched off
    (every attention kind honours the flag, DeepSeek's latent attention included)."""
    spec = settings.spec
    model.set_backend("sdpa", settings.sdpa_kernel)
    blocks = [model.block(i) for i in range(built_layers(settings))]
    seq, bias = core_bias(model, settings, seq)
    q, k, v = _inputs(spec, settings.batch, seq, settings)

    def cores() -> object:
        for block in blocks:
            block.attention.core(q, k, v, bias=bias)
        return None

    try:
        for block in blocks:
            block.attention.causal = False
        with torch.no_grad():
            return time_call(
                cores, device=settings.device, warmup=1, repeats=settings.repeats, probe=probe
            )
    finally:
        for block in blocks:
            block.attention.causal = spec.is_causal


def check_model_fits(settings: BenchSettings) -> None:
    """Refuse (BenchError) before building when the weights alone would not fit."""
    layers = built_layers(settings)
    need = model_bytes(settings.spec, layers, DTYPE_NAMES[settings.dtype])
    if fit_problem(need, settings) is None:
        return
    free = available_memory_bytes(settings.device) or 0
    raise BenchError(
        f"{layers} layer(s) of {settings.spec.name} need ~{need / 2**30:.1f} GiB of weights, "
        f"{free / 2**30:.1f} GiB free on {settings.device}",
        hint="fewer --layers, a narrower --dtype, or --force",
    )


# ---- re-probing when a point beats the calibration ----------------------------------------------


def _reprobe_if_beaten(
    result: BenchResult, point: PointResult, notify: Callable[[str], None]
) -> None:
    """When ``point`` ran faster than the calibrated matmul peak allows (achieved FLOP/s above
    100% of it), the calibration was taken on a busy machine: re-probe (``_reprobe``)."""
    achieved = point.achieved_flops_per_s
    if achieved is not None and achieved > result.calibration.matmul_flops_per_s:
        what = f"{point.backend} at seq {point.seq:,}"
        _reprobe(result, what, achieved, "matmul peak", _matmul_peak, 1e9, "GFLOP/s", notify)


def _decode_bandwidth(cal: Calibration) -> float:
    """The fastest bandwidth a decode prediction assumes (GEMV or decode attention)."""
    return max(cal.fastest_gemv, cal.decode_kv_bytes_per_s)


def _matmul_peak(cal: Calibration) -> float:
    return cal.matmul_flops_per_s


def _reprobe_decode_if_beaten(
    result: BenchResult, step: DecodeResult, notify: Callable[[str], None]
) -> None:
    """When a decode step streamed its bytes (weights + KV read) faster than any calibrated
    bandwidth, the calibration was taken on a busy machine: re-probe (``_reprobe``)."""
    if step.step is None:
        return
    achieved = (step.weight_bytes + step.executed_kv_bytes) / step.step.median
    if achieved > _decode_bandwidth(result.calibration):
        what = f"decode after {step.context:,} tokens"
        _reprobe(result, what, achieved, "bandwidth", _decode_bandwidth, 1e9, "GB/s", notify)


def _reprobe(
    result: BenchResult,
    what: str,
    achieved: float,
    name: str,
    figure: Callable[[Calibration], float],
    scale: float,
    unit: str,
    notify: Callable[[str], None],
) -> None:
    """Probe the device again (once per run), keep the new calibration if its ``figure`` is
    higher, redo every prediction with it, and say so in ``result.notes``."""
    if result.reprobed:
        return
    result.reprobed = True
    settings, old = result.settings, result.calibration
    notify("re-probing the device")
    new, _cached = calibrate_for(settings.spec, settings.device, settings.dtype, recalibrate=True)
    note = (
        f"{what} ran at {100 * achieved / figure(old):.0f}% of the calibrated {name} "
        f"({figure(old) / scale:.1f} {unit}): re-probed the device, now "
        f"{figure(new) / scale:.1f} {unit}"
    )
    if figure(new) <= figure(old):
        result.notes.append(note + "; kept the first calibration")
        return
    result.calibration = new
    result.calibration_cached = False
    for done in result.points:
        redo = plan_point(settings, new, done.seq, done.backend)
        done.predicted_core_seconds = redo.predicted_core_seconds
        done.predicted_sublayer_seconds = redo.predicted_sublayer_seconds
        done.predicted_block_seconds = redo.predicted_block_seconds
    for step in result.decode:
        step.predicted_seconds = predict_decode_seconds(step, new, device_type=settings.device.type)
    still = achieved / figure(new)
    tail = f"; it is still at {100 * still:.0f}% of it" if still > 1 else ""
    result.notes.append(note + "; every prediction uses the new figures" + tail)


# ---- the sweep ---------------------------------------------------------------------------------


def run_bench(
    settings: BenchSettings,
    calibration: Calibration,
    calibration_cached: bool,
    *,
    on_step: Callable[[str], None] | None = None,
) -> BenchResult:
    """Build ``layers`` full-width layer(s) and sweep; Ctrl-C keeps what was measured."""
    spec = settings.spec
    torch.manual_seed(0)
    check_model_fits(settings)
    result = BenchResult(settings, calibration, calibration_cached)
    notify = on_step or (lambda _label: None)
    try:
        model = build_model(
            spec, layers=built_layers(settings), device=settings.device, dtype=settings.dtype
        )
    except ALLOCATION_ERRORS as err:  # e.g. out of memory
        raise BenchError(
            f"cannot build {spec.name} on {settings.device}: {err}".splitlines()[0]
        ) from None
    model.eval()
    probe = Probe(settings.device)
    result.load_average_start = load_average()
    try:
        if settings.mode == "decode":
            for context in settings.contexts:
                notify(f"decode after {context:,} tokens")
                step = _decode_point(model, settings, result, context, probe)
                result.decode.append(step)
                _reprobe_decode_if_beaten(result, step, notify)
        else:
            for seq in settings.seqs:
                for backend in settings.backends:
                    notify(f"{backend} seq {seq:,}")
                    point = measure_point(model, settings, result.calibration, seq, backend, probe)
                    result.points.append(point)
                    _reprobe_if_beaten(result, point, notify)
            _causal_saving(model, settings, result, probe, notify)
    except KeyboardInterrupt:
        result.interrupted = True
    result.load_average_end = load_average()
    return result


def _decode_point(
    model: Transformer, settings: BenchSettings, result: BenchResult, context: int, probe: Probe
) -> DecodeResult:
    """One decode measurement; an allocation failure becomes its ``skipped`` reason."""
    try:
        return measure_decode(
            model, settings, result.calibration, context, probe, result.gemv_rates
        )
    except ALLOCATION_ERRORS as err:
        _release(settings.device)
        return DecodeResult(
            context=context, layers=built_layers(settings), skipped=allocation_failure(err)
        )


def _causal_saving(
    model: Transformer,
    settings: BenchSettings,
    result: BenchResult,
    probe: Probe,
    notify: Callable[[str], None],
) -> None:
    """Measured and predicted SDPA causal saving (unmasked / causal time) at the longest
    length that ran; reuses that point's causal samples and times only the unmasked call."""
    spec = settings.spec
    if "sdpa" not in settings.backends or not (spec.is_causal and settings.causal):
        return
    done = [p for p in result.points if p.backend == "sdpa" and p.core is not None]
    if not done:
        return
    longest = max(done, key=lambda p: p.seq)
    assert longest.core is not None
    notify(f"causal saving at {longest.seq:,}")
    try:
        unmasked = measure_unmasked_core(model, settings, longest.seq, probe)
    except ALLOCATION_ERRORS:
        _release(settings.device)
        return
    result.causal_saving = unmasked.median / longest.core.median
    device = settings.device
    kernel = executed_kernel(spec, "sdpa", device)
    masks = [explicit_mask(spec, layer_reach(spec, i)) for i in range(longest.layers)]

    def pairs(causal: bool) -> int:
        return sum(
            executed_pairs(longest.seq, kernel=kernel, causal=causal, masked=m, device=device)
            for m in masks
        )

    result.predicted_causal_saving = pairs(False) / pairs(True)


# ---- summary -----------------------------------------------------------------------------------


def fit_exponent(lengths: list[int], seconds: list[float]) -> float | None:
    """Least-squares slope k of log(seconds) = k log(length) + c (None with < 2 lengths)."""
    if len(lengths) < 2:
        return None
    xs = [math.log(x) for x in lengths]
    ys = [math.log(y) for y in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


@dataclass(frozen=True)
class Summary:
    attention_exponent: dict[str, float | None]
    """Measured: slope of log(median core time) vs log(seq), per backend."""
    predicted_exponent: dict[str, float | None]
    """The same slope of the predicted times: what the executed-work model expects over the
    same lengths (below 2 for causal CPU SDPA, whose saving grows with S)."""
    projection_exponent: float | None
    median_abs_error: dict[str, float | None]
    naive_sdpa_time_ratio: float | None
    naive_sdpa_memory_ratio: float | None
    naive_sdpa_memory_ratio_estimated: float | None
    naive_memory_error: float | None
    fit_from_seq: int
    fit_all_lengths: bool
    """True when fewer than two lengths reach ``fit_from_seq`` and every length was used."""
    probe_median_fraction: float | None
    """Median probe rate during the run over the probe's calibrated rate (1 = as quiet)."""
    probe_min_fraction: float | None
    max_core_spread: float | None
    """Largest IQR / median of the core samples over the points."""


def summarize(result: BenchResult, *, fit_from: int = 1024) -> Summary:
    """Scaling exponents (over lengths >= ``fit_from`` when there are two such), prediction
    errors over the same lengths, the naive / SDPA ratios at the longest common length, and
    the noise figures."""
    done = [p for p in result.points if p.core is not None]
    exponents: dict[str, float | None] = {}
    predicted: dict[str, float | None] = {}
    errors: dict[str, float | None] = {}
    for backend in result.settings.backends:
        points = [p for p in done if p.backend == backend]
        long = [p for p in points if p.seq >= fit_from]
        chosen = long if len(long) >= 2 else points
        seqs = [p.seq for p in chosen]
        exponents[backend] = fit_exponent(seqs, [p.core.median for p in chosen])  # type: ignore[union-attr]
        predicted[backend] = fit_exponent(seqs, [p.predicted_core_seconds for p in chosen])
        errs = [abs(p.core_error) for p in long or points if p.core_error is not None]
        errors[backend] = statistics.median(errs) if errs else None
    projection = [
        (p.seq, p.sublayer.median - p.core.median)
        for p in done
        if p.backend == "sdpa"
        and p.sublayer is not None
        and p.core is not None
        and p.sublayer.median > p.core.median
    ]
    projection_exponent = fit_exponent([s for s, _ in projection], [t for _, t in projection])
    time_ratio = memory_ratio = memory_ratio_estimated = naive_error = None
    by_key = {(p.seq, p.backend): p for p in done}
    common = [
        s for s in sorted({p.seq for p in done}) if (s, "naive") in by_key and (s, "sdpa") in by_key
    ]
    if common:
        naive, sdpa = by_key[(common[-1], "naive")], by_key[(common[-1], "sdpa")]
        assert naive.core is not None and sdpa.core is not None
        time_ratio = naive.core.median / sdpa.core.median
        if naive.measured_peak_bytes and sdpa.measured_peak_bytes:
            memory_ratio = naive.measured_peak_bytes / sdpa.measured_peak_bytes
        memory_ratio_estimated = naive.estimated_peak_bytes / sdpa.estimated_peak_bytes
    naive_points = [p for p in done if p.backend == "naive" and p.measured_peak_bytes]
    if naive_points:
        longest = max(naive_points, key=lambda p: p.seq)
        assert longest.measured_peak_bytes is not None
        naive_error = (
            longest.measured_peak_bytes - longest.estimated_peak_bytes
        ) / longest.estimated_peak_bytes
    long_seqs = {p.seq for p in done if p.seq >= fit_from}
    rates = result.probe_rates()
    calibrated = result.calibration.probe_flops_per_s
    spreads = [p.core.spread for p in done if p.core is not None and len(p.core.seconds) > 1]
    return Summary(
        attention_exponent=exponents,
        predicted_exponent=predicted,
        projection_exponent=projection_exponent,
        median_abs_error=errors,
        naive_sdpa_time_ratio=time_ratio,
        naive_sdpa_memory_ratio=memory_ratio,
        naive_sdpa_memory_ratio_estimated=memory_ratio_estimated,
        naive_memory_error=naive_error,
        fit_from_seq=fit_from,
        fit_all_lengths=len(long_seqs) < 2,
        probe_median_fraction=statistics.median(rates) / calibrated if rates else None,
        probe_min_fraction=min(rates) / calibrated if rates else None,
        max_core_spread=max(spreads) if spreads else None,
    )
