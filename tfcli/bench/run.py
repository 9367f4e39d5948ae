"""The benchmark sweep: time the built-in model's attention against tfcli's estimates.

For each sequence length and backend it measures, on random weights at full width:
attention core (softmax(QK^T)V), attention sublayer (projections + core), whole block;
median and spread over repeats after warm-up, with a noise probe. It predicts the core time
from the FLOPs the kernel executes and the device calibration only (``tfcli.bench.calibrate``)
and compares. Memory: the peak growth during one core call (CUDA ``max_memory_allocated``;
CPU peak RSS, reset through /proc/self/clear_refs) against the estimate.

Executed work (the convention the kernel really runs, DESIGN.md section 6):

* naive: the full S x S scores are computed, then masked: S^2 pairs whatever the mask;
* SDPA on CPU (``_scaled_dot_product_flash_attention_for_cpu``): queries in blocks of 256
  (64 below 768, 32 below 192), keys in blocks of 512; a causal call skips only whole key
  blocks above the diagonal (``cpu_flash_executed_pairs``);
* SDPA on CUDA (flash kernels): causal pairs s(s+1)/2 (fine-grained block skipping).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tfcli.bench.calibrate import Calibration
from tfcli.bench.model import LatentAttention, Transformer, build_model
from tfcli.bench.timing import Probe, Samples, time_call
from tfcli.errors import BenchError
from tfcli.flops import (
    attended_pairs,
    attention_core_flops,
    attention_projection_flops,
    mlp_flops,
    moe_flops,
)
from tfcli.memory import flash_attention_working_bytes, naive_attention_score_bytes
from tfcli.params import count_params
from tfcli.spec import ModelSpec

NAIVE_IN_PLACE_PASSES = 4
"""Read and write passes of the naive path's in-place steps over the scores: scale, mask."""
NAIVE_LIVE_SCORE_COPIES = 2
"""Score-sized tensors alive at the naive path's peak: the scores and the probabilities."""


def cpu_flash_query_block(seq: int) -> int:
    """Query tile of torch's CPU flash kernel: 256, or 64 below 768, 32 below 192 (DESIGN 6)."""
    if seq < 192:
        return 32
    if seq < 768:
        return 64
    return 256


CPU_FLASH_KEY_BLOCK = 512


def cpu_flash_executed_pairs(seq: int, *, causal: bool) -> int:
    """(query, key) pairs torch's CPU flash kernel computes for one head.

    Unmasked: S^2. Causal: for each query block ending at row e, every key block starting at
    or before e is computed in full: sum over blocks of rows x min(S, 512 x ceil(e / 512)).
    The saving over S^2 tends to 2n/(n+2), n = S/256 (1.0 up to 512, 1.6 at 2K, 1.94 at 16K).
    """
    if not causal:
        return seq * seq
    block = cpu_flash_query_block(seq)
    pairs = 0
    for start in range(0, seq, block):
        end = min(seq, start + block)
        keys = min(seq, CPU_FLASH_KEY_BLOCK * math.ceil(end / CPU_FLASH_KEY_BLOCK))
        pairs += (end - start) * keys
    return pairs


def executed_pairs(
    seq: int, *, backend: str, causal: bool, window: int | None, device: torch.device
) -> int:
    """Pairs the chosen kernel really computes for one head (see the module docstring)."""
    if backend == "naive" or not causal:
        return seq * seq
    if window is not None:
        return seq * seq  # a sliding mask goes to SDPA as an explicit mask: no skipping
    if device.type == "cpu":
        return cpu_flash_executed_pairs(seq, causal=True)
    return attended_pairs(seq, causal=True)


def core_flops(spec: ModelSpec, batch: int, pairs: int) -> int:
    """QK^T + AV FLOPs for ``pairs`` pairs per head: 2 B H pairs (d_qk + d_v)."""
    return sum(attention_core_flops(spec, batch, pairs))


@dataclass
class BenchSettings:
    """What to run (the CLI's options, validated)."""

    spec: ModelSpec
    device: torch.device
    dtype: torch.dtype
    seqs: list[int]
    batch: int = 1
    layers: int = 1
    backends: tuple[str, ...] = ("naive", "sdpa")
    mode: str = "prefill"
    contexts: list[int] = field(default_factory=list)
    repeats: int = 3
    warmup: int = 1
    causal: bool = True
    force: bool = False
    sdpa_kernel: str | None = None
    time_blocks: bool = True


@dataclass
class PointResult:
    """One (sequence length, backend) measurement with its estimates."""

    seq: int
    backend: str
    causal: bool
    core: Samples | None = None
    sublayer: Samples | None = None
    block: Samples | None = None
    estimated_core_flops: int = 0
    """Attention-core FLOPs under tfcli's convention (causal pairs for a causal decoder)."""
    executed_core_flops: int = 0
    predicted_core_seconds: float = 0.0
    predicted_sublayer_seconds: float = 0.0
    predicted_block_seconds: float = 0.0
    measured_peak_bytes: int | None = None
    estimated_peak_bytes: int = 0
    skipped: str | None = None

    @property
    def core_error(self) -> float | None:
        """(predicted - measured) / measured of the core time."""
        if self.core is None:
            return None
        return (self.predicted_core_seconds - self.core.median) / self.core.median


@dataclass
class DecodeResult:
    """One decode step (one token per sequence) after ``context`` cached tokens."""

    context: int
    step: Samples | None = None
    kv_bytes: int = 0
    weight_bytes: int = 0
    flops: int = 0
    predicted_seconds: float = 0.0
    skipped: str | None = None


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


# ---- memory ------------------------------------------------------------------------------------


def _proc_status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory: CUDA free bytes, or MemAvailable from /proc/meminfo."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def measure_peak_growth(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak memory growth during ``fn()``: CUDA allocator peak, or the CPU peak RSS (VmHWM)
    after resetting it through /proc/self/clear_refs. None where neither is available."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    try:
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")
    except OSError:
        return None
    rss = _proc_status_kib("VmRSS")
    fn()
    peak = _proc_status_kib("VmHWM")
    if rss is None or peak is None:
        return None
    return max(0, (peak - rss) * 1024)


# ---- the sweep ---------------------------------------------------------------------------------


def _inputs(
    spec: ModelSpec, batch: int, seq: int, settings: BenchSettings
) -> tuple[torch.Tensor, ...]:
    """Random q (B, H, S, d_qk), k (B, KVH, S, d_qk), v (B, KVH, S, d_v) for the core."""
    kv_heads = spec.num_heads if spec.is_mla else spec.kv_heads
    make = lambda heads, dim: torch.randn(  # noqa: E731
        batch, heads, seq, dim, device=settings.device, dtype=settings.dtype
    )
    return (
        make(spec.num_heads, spec.qk_head_dim),
        make(kv_heads, spec.qk_head_dim),
        make(kv_heads, spec.value_head_dim),
    )


def _layer_window(spec: ModelSpec) -> int | None:
    return spec.sliding_window if spec.layer_kinds[0] == "sliding" else None


def estimate_peak_bytes(spec: ModelSpec, batch: int, seq: int, backend: str, dtype: str) -> int:
    """Core memory beyond q, k, v: naive = 2 score-sized tensors (scores, probabilities) +
    output; SDPA = output + fp32 row statistics (``flash_attention_working_bytes``)."""
    if backend == "naive":
        scores = naive_attention_score_bytes(spec, seq, batch=batch, dtype=dtype)
        output = flash_attention_working_bytes(spec, seq, batch=batch, dtype=dtype)
        return NAIVE_LIVE_SCORE_COPIES * scores + output
    return flash_attention_working_bytes(spec, seq, batch=batch, dtype=dtype)


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def predict_core_seconds(
    spec: ModelSpec, batch: int, seq: int, backend: str, pairs: int, cal: Calibration, dtype: str
) -> float:
    """Core time from the calibration only.

    SDPA: executed FLOPs / (matmul peak x SDPA efficiency).
    naive: full FLOPs / matmul peak + the fresh score tensor written at first-touch bandwidth
    + the in-place scale and mask passes at read bandwidth + the softmax (B H S^2 elements at
    the calibrated softmax rate, its fresh output included).
    """
    flops = core_flops(spec, batch, pairs)
    if backend == "sdpa":
        return flops / (cal.matmul_flops_per_s * cal.sdpa_efficiency)
    scores = naive_attention_score_bytes(spec, seq, batch=batch, dtype=dtype)
    elements = batch * spec.num_heads * seq * seq
    return (
        flops / cal.matmul_flops_per_s
        + scores / cal.first_touch_bytes_per_s
        + NAIVE_IN_PLACE_PASSES * scores / cal.read_bytes_per_s
        + elements / cal.softmax_elements_per_s
    )


def _projection_flops(spec: ModelSpec, tokens: int) -> int:
    return sum(attention_projection_flops(spec, tokens).values())


def _block_mlp_flops(spec: ModelSpec, tokens: int) -> int:
    if spec.moe_layer_flags[0]:
        return sum(moe_flops(spec, tokens).values())
    return mlp_flops(spec, tokens, spec.intermediate_size)


def measure_point(
    model: Transformer,
    settings: BenchSettings,
    cal: Calibration,
    seq: int,
    backend: str,
    probe: Probe,
) -> PointResult:
    spec, device, batch = settings.spec, settings.device, settings.batch
    dtype = _dtype_name(settings.dtype)
    window = _layer_window(spec)
    causal = settings.causal and spec.is_causal
    result = PointResult(seq=seq, backend=backend, causal=causal)
    result.estimated_peak_bytes = estimate_peak_bytes(spec, batch, seq, backend, dtype)
    free = available_memory_bytes(device)
    if free is not None and not settings.force and result.estimated_peak_bytes > 0.8 * free:
        result.skipped = (
            f"needs ~{result.estimated_peak_bytes / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free "
            "(--force to try anyway)"
        )
        return result
    pairs_convention = attended_pairs(seq, causal=causal, window=window)
    pairs = executed_pairs(seq, backend=backend, causal=causal, window=window, device=device)
    result.estimated_core_flops = core_flops(spec, batch, pairs_convention)
    result.executed_core_flops = core_flops(spec, batch, pairs)
    result.predicted_core_seconds = predict_core_seconds(
        spec, batch, seq, backend, pairs, cal, dtype
    )
    tokens = batch * seq
    projections = _projection_flops(spec, tokens) / cal.matmul_flops_per_s
    result.predicted_sublayer_seconds = result.predicted_core_seconds + projections
    result.predicted_block_seconds = (
        result.predicted_sublayer_seconds + _block_mlp_flops(spec, tokens) / cal.matmul_flops_per_s
    )

    model.set_backend(backend, settings.sdpa_kernel)
    block = model.block(0)
    attention = block.attention
    q, k, v = _inputs(spec, batch, seq, settings)
    bias = (
        model._bias(0, seq, seq, 0, device) if spec.position_type in ("alibi", "relative") else None
    )
    if not causal and hasattr(attention, "causal"):
        attention.causal = False

    def core() -> object:
        return attention.core(q, k, v, bias=bias)

    with torch.no_grad():
        result.measured_peak_bytes = measure_peak_growth(core, device)
        result.core = time_call(
            core, device=device, warmup=settings.warmup, repeats=settings.repeats, probe=probe
        )
        if settings.time_blocks:
            x = torch.randn(batch, seq, spec.hidden_size, device=device, dtype=settings.dtype)
            positions = torch.arange(seq, device=device)
            result.sublayer = time_call(
                lambda: attention(x, positions, bias=bias),
                device=device,
                warmup=0,
                repeats=max(1, settings.repeats // 2),
                probe=probe,
            )
            result.block = time_call(
                lambda: block(x, positions, bias=bias),
                device=device,
                warmup=0,
                repeats=max(1, settings.repeats // 2),
                probe=probe,
            )
    if hasattr(attention, "causal"):
        attention.causal = spec.is_causal
    return result


def measure_causal_saving(
    model: Transformer, settings: BenchSettings, seq: int, probe: Probe
) -> float:
    """SDPA core time without the causal mask over the time with it, at ``seq``."""
    spec = settings.spec
    model.set_backend("sdpa", settings.sdpa_kernel)
    attention = model.block(0).attention
    q, k, v = _inputs(spec, settings.batch, seq, settings)
    times = {}
    with torch.no_grad():
        for causal in (True, False):
            attention.causal = causal
            samples = time_call(
                lambda: attention.core(q, k, v),
                device=settings.device,
                warmup=1,
                repeats=settings.repeats,
                probe=probe,
            )
            times[causal] = samples.median
    attention.causal = spec.is_causal
    return times[False] / times[True]


def measure_decode(
    model: Transformer, settings: BenchSettings, cal: Calibration, context: int, probe: Probe
) -> DecodeResult:
    """One-token step of the first block after ``context`` cached (random) tokens."""
    spec, device, batch = settings.spec, settings.device, settings.batch
    block = model.block(0)
    window = _layer_window(spec)
    held = context if window is None else min(context, window)
    result = DecodeResult(context=context)
    make = lambda *shape: torch.randn(*shape, device=device, dtype=settings.dtype)  # noqa: E731
    if spec.is_mla:
        first = make(batch, held, int(spec.kv_lora_rank or 0))
        second = make(batch, held, int(spec.qk_rope_head_dim or 0))
    else:
        first = make(batch, spec.kv_heads, held, spec.resolved_head_dim)
        second = make(batch, spec.kv_heads, held, spec.resolved_head_dim)
    layer_params = count_params(spec.truncated(1)).layers[0]
    bits = torch.finfo(settings.dtype).bits
    result.weight_bytes = layer_params.active * bits // 8
    result.kv_bytes = (first.numel() + second.numel()) * bits // 8
    step_flops = (
        _projection_flops(spec, batch)
        + core_flops(spec, batch, held + 1)
        + _block_mlp_flops(spec, batch)
    )
    result.flops = step_flops
    result.predicted_seconds = max(
        (result.weight_bytes + result.kv_bytes) / cal.read_bytes_per_s,
        step_flops / cal.matmul_flops_per_s,
    )
    x = make(batch, 1, spec.hidden_size)
    positions = torch.tensor([context], device=device)
    attention, mlp = block.attention, block.mlp

    def step() -> object:
        """The new token's projections, attention over the cached keys (read, not copied:
        a serving engine writes one slot in place), output projection and MLP."""
        h = block.norm1(x)
        if isinstance(attention, LatentAttention):
            q, _c, _k_rot = attention.latent(h, positions)
            k, v = attention.expand(first, second.unsqueeze(1))
        else:
            q, _k, _v = attention.project_qkv(h, positions)
            k, v = first, second
        o = attention.project_out(attention.core(q, k, v, q_offset=held, key_offset=0))
        return mlp(o)

    model.set_backend(
        "sdpa" if "sdpa" in settings.backends else settings.backends[0], settings.sdpa_kernel
    )
    with torch.no_grad():
        result.step = time_call(
            step, device=device, warmup=settings.warmup, repeats=settings.repeats, probe=probe
        )
    return result


def run_bench(
    settings: BenchSettings,
    calibration: Calibration,
    calibration_cached: bool,
    *,
    on_step: Callable[[str], None] | None = None,
) -> BenchResult:
    """Build one (or ``layers``) full-width layer(s) and sweep; Ctrl-C keeps what was measured."""
    spec = settings.spec
    torch.manual_seed(0)
    try:
        model = build_model(
            spec, layers=settings.layers, device=settings.device, dtype=settings.dtype
        )
    except RuntimeError as err:  # e.g. out of memory
        raise BenchError(
            f"cannot build {spec.name} on {settings.device}: {err}".splitlines()[0]
        ) from None
    model.eval()
    probe = Probe(settings.device)
    result = BenchResult(settings, calibration, calibration_cached)
    notify = on_step or (lambda _label: None)
    try:
        if settings.mode == "decode":
            for context in settings.contexts:
                notify(f"decode after {context:,} tokens")
                result.decode.append(measure_decode(model, settings, calibration, context, probe))
        else:
            for seq in settings.seqs:
                for backend in settings.backends:
                    notify(f"{backend} seq {seq:,}")
                    result.points.append(
                        measure_point(model, settings, calibration, seq, backend, probe)
                    )
            if "sdpa" in settings.backends and spec.is_causal and settings.causal:
                longest = max(settings.seqs)
                notify(f"causal saving at {longest:,}")
                result.causal_saving = measure_causal_saving(model, settings, longest, probe)
                window = _layer_window(spec)
                full = executed_pairs(
                    longest, backend="sdpa", causal=False, window=None, device=settings.device
                )
                causal = executed_pairs(
                    longest, backend="sdpa", causal=True, window=window, device=settings.device
                )
                result.predicted_causal_saving = full / causal
    except KeyboardInterrupt:
        result.interrupted = True
    return result


# ---- summary -----------------------------------------------------------------------------------


def fit_exponent(lengths: list[int], seconds: list[float]) -> float | None:
    """Least-squares slope of log(seconds) against log(length) (None with < 2 points)."""
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
    projection_exponent: float | None
    median_abs_error: dict[str, float | None]
    naive_sdpa_time_ratio: float | None
    naive_sdpa_memory_ratio: float | None
    naive_memory_error: float | None
    fit_from_seq: int
    fit_all_lengths: bool
    """True when fewer than two lengths reach ``fit_from_seq`` and every length was used."""


def summarize(result: BenchResult, *, fit_from: int = 1024) -> Summary:
    """Scaling exponents (over lengths >= ``fit_from`` when there are two such), prediction
    errors, and the naive / SDPA ratios at the longest common length."""
    done = [p for p in result.points if p.core is not None]
    exponents: dict[str, float | None] = {}
    errors: dict[str, float | None] = {}
    for backend in result.settings.backends:
        points = [p for p in done if p.backend == backend]
        long = [p for p in points if p.seq >= fit_from]
        chosen = long if len(long) >= 2 else points
        exponents[backend] = fit_exponent([p.seq for p in chosen], [p.core.median for p in chosen])  # type: ignore[union-attr]
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
    time_ratio = memory_ratio = naive_error = None
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
    naive_points = [p for p in done if p.backend == "naive" and p.measured_peak_bytes]
    if naive_points:
        longest = max(naive_points, key=lambda p: p.seq)
        assert longest.measured_peak_bytes is not None
        naive_error = (
            longest.measured_peak_bytes - longest.estimated_peak_bytes
        ) / longest.estimated_peak_bytes
    long_seqs = {p.seq for p in done if p.seq >= fit_from}
    return Summary(
        exponents,
        projection_exponent,
        errors,
        time_ratio,
        memory_ratio,
        naive_error,
        fit_from,
        len(long_seqs) < 2,
    )
