"""The benchmark sweep: time the built-in model's attention against tfcli's estimates.

For each sequence length and backend it measures, on random weights at full width:
attention core (softmax(QK^T)V), attention sublayer (projections + core), whole block;
median and spread over repeats after warm-up, each sample paired with a noise probe. It
predicts the core time from the FLOPs (or bytes) the kernel executes and the device
calibration only (``tfcli.bench.calibrate``: generic matmul / bandwidth probes and kernel
efficiencies measured once on other shapes), never from a timing of the point predicted.
Memory: the peak the allocator holds during one core call beyond what it held before
(``tfcli.bench.allocations``: CUDA ``max_memory_allocated``, CPU the profiler's allocation
events; never the RSS, which reuses freed pages) against the estimate.

Executed work (the convention the kernel really runs, DESIGN.md section 6):

* naive: the full S x S scores are computed, then masked: S^2 pairs whatever the mask;
* SDPA on CPU (``_scaled_dot_product_flash_attention_for_cpu``): queries in blocks of 256
  (64 below 768, 32 below 192), keys in blocks of 512; a causal call skips only whole key
  blocks above the diagonal (``cpu_flash_executed_pairs``);
* SDPA on CUDA (flash kernels): causal pairs s(s+1)/2, tfcli's causal convention (the
  kernels skip tiles of 64-128, so this is exact up to the diagonal tiles; not measured here);
* an explicit mask (sliding window, ALiBi / relative bias) disables block skipping: S^2 pairs;
  SDPA's math fallback (MLA's d_qk != d_v on CPU) and soft-capped models run like naive
  (``executed_kernel``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tfcli.bench.allocations import peak_bytes
from tfcli.bench.calibrate import Calibration, load_average
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
from tfcli.memory import flash_attention_working_bytes, naive_attention_score_bytes, weight_bytes
from tfcli.params import count_params
from tfcli.spec import ModelSpec

NAIVE_IN_PLACE_PASSES = 4
"""Read and write passes of the naive path's in-place steps over the scores: scale, mask."""
NAIVE_LIVE_SCORE_COPIES = 2
"""Score-sized tensors alive at the naive path's peak: the scores and the probabilities."""
FIT_FRACTION = 0.8
"""A point runs only when its estimated footprint is below this fraction of free memory."""
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


# ---- what the kernels execute (DESIGN.md section 6) ---------------------------------------------


def cpu_flash_query_block(seq: int) -> int:
    """Query tile of torch's CPU flash kernel: 256, or 64 below 768, 32 below 192 (DESIGN 6)."""
    if seq < 192:
        return 32
    if seq < 768:
        return 64
    return 256


CPU_FLASH_KEY_BLOCK = 512
"""Key tile of torch's CPU flash kernel (DESIGN.md section 6)."""


def cpu_flash_executed_pairs(seq: int, *, causal: bool) -> int:
    """(query, key) pairs torch's CPU flash kernel computes for one head (DESIGN.md section 6).

    Unmasked: S^2. Causal: the kernel walks query blocks of ``cpu_flash_query_block(S)`` rows
    and, for a block ending at row e, computes every key block of 512 that starts at or before
    e in full (masking inside it), skipping only whole key blocks above the diagonal:

        pairs = sum over query blocks [start, end) of (end - start) x min(S, 512 ceil(end/512))

    The saving S^2 / pairs tends to 2n/(n+2), n = S/256 (1.0 up to 512, 1.6 at 2K, 1.94 at
    16K), not the 2 that "causal = half the pairs" assumes.
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


def executed_kernel(spec: ModelSpec, backend: str, device: torch.device) -> str:
    """The kernel that really runs: "naive", "math" (SDPA's unfused fallback, which
    materialises the scores like the naive path) or "flash" (a fused O(S) kernel).

    Checked with torch.profiler on torch 2.13 CPU: the CPU flash kernel takes boolean and
    additive masks and grouped KV heads, but not d_qk != d_v (MLA), which falls back to
    ``_scaled_dot_product_attention_math``; logit soft-capping (Gemma-2) is not expressible in
    SDPA, so the built-in core runs its naive path whatever the backend.
    """
    if backend == "naive" or spec.attn_logit_softcap is not None:
        return "naive"
    if device.type == "cpu" and spec.qk_head_dim != spec.value_head_dim:
        return "math"
    return "flash"


def explicit_mask(spec: ModelSpec, *, causal: bool) -> bool:
    """True when the core hands SDPA an explicit mask instead of ``is_causal``: a sliding
    window, or an ALiBi or relative-position bias."""
    return _layer_window(spec) is not None or spec.position_type in ("alibi", "relative")


def executed_pairs(
    seq: int, *, kernel: str, causal: bool, masked: bool, device: torch.device
) -> int:
    """Pairs the kernel really computes for one head (see the module docstring): S^2 unless
    a flash kernel gets ``is_causal`` (no explicit mask) and skips blocks."""
    if kernel != "flash" or not causal or masked:
        return seq * seq
    if device.type == "cpu":
        return cpu_flash_executed_pairs(seq, causal=True)
    return attended_pairs(seq, causal=True)


def core_flops(spec: ModelSpec, batch: int, pairs: int) -> int:
    """QK^T + AV FLOPs for ``pairs`` pairs per head: 2 B H pairs (d_qk + d_v)
    (``tfcli.flops.attention_core_flops``)."""
    return sum(attention_core_flops(spec, batch, pairs))


def decode_executed_kv_bytes(spec: ModelSpec, kv_bytes: int, backend: str) -> int:
    """KV bytes a one-token decode step streams from memory, as the kernel executes it.

    SDPA with grouped-query attention (``enable_gqa``) streams each KV head once per query
    head: kv_bytes x H / KVH (DESIGN.md section 6: 12-27% of read bandwidth when counted
    once). The naive path views the queries as (KVH, G) and reads each KV head once; MLA
    expands the latent into per-head keys and values, written and read once each:
    2 x B x H x L x (d_qk + d_v) x bytes on top of the latent itself (``kv_bytes``).
    """
    if spec.is_mla:
        latent_elements = int(spec.kv_lora_rank or 0) + int(spec.qk_rope_head_dim or 0)
        per_token_expanded = spec.num_heads * (spec.qk_head_dim + spec.value_head_dim)
        return kv_bytes + 2 * kv_bytes * per_token_expanded // max(latent_elements, 1)
    if backend == "sdpa":
        return kv_bytes * (spec.num_heads // spec.kv_heads)
    return kv_bytes


# ---- settings and results -----------------------------------------------------------------------


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
    kernel: str = "flash"
    """The kernel that runs (``executed_kernel``): naive, math or flash."""
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


@dataclass
class DecodeResult:
    """One decode step (one token per sequence) after ``context`` cached tokens."""

    context: int
    step: Samples | None = None
    kv_bytes: int = 0
    executed_kv_bytes: int = 0
    weight_bytes: int = 0
    flops: int = 0
    predicted_seconds: float = 0.0
    skipped: str | None = None

    @property
    def error(self) -> float | None:
        """(predicted - measured) / measured of the median step time."""
        if self.step is None:
            return None
        return (self.predicted_seconds - self.step.median) / self.step.median


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


# ---- memory ------------------------------------------------------------------------------------


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


def mask_bytes(spec: ModelSpec, batch: int, seq: int, dtype: str, *, kernel: str) -> int:
    """The explicit mask the built-in core hands SDPA when it cannot use ``is_causal``:
    a per-head additive bias (ALiBi, relative) H x S^2 x bytes(dtype), or a boolean sliding
    window mask S^2 x 1 byte. The naive path adds a bias in place: nothing extra."""
    if kernel == "naive":
        return 0
    if spec.position_type in ("alibi", "relative"):
        return DTYPE_BYTES[dtype] * spec.num_heads * seq * seq
    if _layer_window(spec) is not None:
        return seq * seq
    return 0


def cpu_flash_scratch_bytes(spec: ModelSpec, seq: int, dtype: str, threads: int) -> int:
    """Per-thread tiles torch's CPU flash kernel allocates for one call (torch 2.13,
    aten/src/ATen/native/cpu/FlashAttentionKernel.cpp): in fp32 (the accumulation type)

        threads x (qb x kb  +  2 qb  +  qb x d_v) x 4 bytes

    (scores tile, row max, row sum, output accumulator) with qb = ``cpu_flash_query_block``
    and kb = min(512, S), plus threads x qb x kb x bytes(dtype) for bf16 / fp16 inputs. A
    constant (1.25 MiB on 2 threads at d_v = 128): it matters only at short lengths."""
    qb = min(cpu_flash_query_block(seq), seq)
    kb = min(CPU_FLASH_KEY_BLOCK, seq)
    fp32 = threads * (qb * kb + 2 * qb + qb * spec.value_head_dim) * 4
    reduced = threads * qb * kb * DTYPE_BYTES[dtype] if dtype != "fp32" else 0
    return fp32 + reduced


def estimate_peak_bytes(
    spec: ModelSpec,
    batch: int,
    seq: int,
    backend: str,
    dtype: str,
    *,
    kernel: str | None = None,
    cpu_threads: int | None = None,
) -> int:
    """Core memory beyond q, k, v, as the allocator sees it.

    naive (and SDPA's math fallback) = 2 score-sized tensors (scores, probabilities:
    2 x B H S^2 x bytes, ``tfcli.memory.naive_attention_score_bytes``) + output; flash =
    output + fp32 row statistics (``tfcli.memory.flash_attention_working_bytes``), plus on
    the CPU (``cpu_threads`` given) the kernel's per-thread tiles
    (``cpu_flash_scratch_bytes``); both plus an explicit additive mask where the core builds
    one (``mask_bytes``).
    """
    kernel = kernel or ("naive" if backend == "naive" else "flash")
    output = flash_attention_working_bytes(spec, seq, batch=batch, dtype=dtype)
    mask = mask_bytes(spec, batch, seq, dtype, kernel=kernel)
    if kernel in ("naive", "math"):
        scores = naive_attention_score_bytes(spec, seq, batch=batch, dtype=dtype)
        return NAIVE_LIVE_SCORE_COPIES * scores + output + mask
    scratch = 0 if cpu_threads is None else cpu_flash_scratch_bytes(spec, seq, dtype, cpu_threads)
    return output + mask + scratch


def point_footprint_bytes(
    spec: ModelSpec, batch: int, seq: int, backend: str, dtype: str, *, blocks: bool
) -> int:
    """Upper bound of what one point allocates, for the fit check only: the core peak, its
    inputs q, k, v (B S (H d_qk + KVH (d_qk + d_v)) x bytes) twice (the core's and the
    sublayer's), and with ``blocks`` the block input and the MLP intermediates
    (3 x B S width: gate, up, product)."""
    width = DTYPE_BYTES[dtype]
    kv_heads = spec.num_heads if spec.is_mla else spec.kv_heads
    qkv = batch * seq * (spec.num_heads * spec.qk_head_dim)
    qkv += batch * seq * kv_heads * (spec.qk_head_dim + spec.value_head_dim)
    kernel = "naive" if backend == "naive" else "math"  # the larger of the two
    total = estimate_peak_bytes(spec, batch, seq, backend, dtype, kernel=kernel)
    total += 2 * qkv * width
    if blocks:
        mlp_width = spec.intermediate_size
        if spec.moe_layer_flags[0]:
            mlp_width = spec.expert_width * (spec.num_experts_per_token or 1)
            mlp_width += spec.shared_expert_width
        total += batch * seq * (2 * spec.hidden_size + 3 * mlp_width) * width
    return total


def model_bytes(spec: ModelSpec, layers: int, dtype: str) -> int:
    """Weights of the built model (``layers`` layers at full width, embeddings and head
    included): built in fp32, then converted, so both copies count for a narrower dtype."""
    params = count_params(spec.truncated(layers)).total
    fp32 = weight_bytes(params, "fp32")
    return fp32 if dtype == "fp32" else fp32 + weight_bytes(params, dtype)


# ---- predictions (calibration and estimate only) ---------------------------------------------


NAIVE_SOFTCAP_PASSES = 6
"""Extra read and write passes of soft-capping the scores in place: divide, tanh, multiply."""


def predict_core_seconds(
    spec: ModelSpec,
    batch: int,
    seq: int,
    kernel: str,
    pairs: int,
    cal: Calibration,
    dtype: str,
) -> float:
    """Core time from the executed work and the calibration only.

    flash:        t = executed FLOPs / (matmul peak x SDPA efficiency, the masked one when
                      the core passes an explicit mask) + mask bytes / first-touch bandwidth
    naive / math: t = full FLOPs / matmul peak + fresh score bytes / first-touch bandwidth
                      + P x score bytes / read bandwidth + B H S^2 / softmax rate
    with P = NAIVE_IN_PLACE_PASSES (+ NAIVE_SOFTCAP_PASSES with soft-capping): the in-place
    scale, mask and cap passes; the softmax rate includes its fresh output.
    """
    flops = core_flops(spec, batch, pairs)
    mask = mask_bytes(spec, batch, seq, dtype, kernel=kernel)
    if kernel == "flash":
        efficiency = cal.sdpa_masked_efficiency if mask else cal.sdpa_efficiency
        return flops / (cal.matmul_flops_per_s * efficiency) + mask / cal.first_touch_bytes_per_s
    scores = naive_attention_score_bytes(spec, seq, batch=batch, dtype=dtype)
    elements = batch * spec.num_heads * seq * seq
    passes = NAIVE_IN_PLACE_PASSES
    if spec.attn_logit_softcap is not None:
        passes += NAIVE_SOFTCAP_PASSES
    return (
        flops / cal.matmul_flops_per_s
        + (scores + mask) / cal.first_touch_bytes_per_s
        + passes * scores / cal.read_bytes_per_s
        + elements / cal.softmax_elements_per_s
    )


def _projection_flops(spec: ModelSpec, tokens: int) -> int:
    return sum(attention_projection_flops(spec, tokens).values())


def _block_mlp_flops(spec: ModelSpec, tokens: int) -> int:
    if spec.moe_layer_flags[0]:
        return sum(moe_flops(spec, tokens).values())
    return mlp_flops(spec, tokens, spec.intermediate_size)


def _layer_window(spec: ModelSpec) -> int | None:
    return spec.sliding_window if spec.layer_kinds[0] == "sliding" else None


# ---- the sweep ---------------------------------------------------------------------------------


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


def plan_point(settings: BenchSettings, cal: Calibration, seq: int, backend: str) -> PointResult:
    """Estimates and predictions of one point, and whether it fits, before any allocation."""
    spec, batch = settings.spec, settings.batch
    dtype = DTYPE_NAMES[settings.dtype]
    window = _layer_window(spec)
    causal = settings.causal and spec.is_causal
    kernel = executed_kernel(spec, backend, settings.device)
    result = PointResult(seq=seq, backend=backend, causal=causal, kernel=kernel)
    threads = torch.get_num_threads() if settings.device.type == "cpu" else None
    result.estimated_peak_bytes = estimate_peak_bytes(
        spec, batch, seq, backend, dtype, kernel=kernel, cpu_threads=threads
    )
    result.footprint_bytes = point_footprint_bytes(
        spec, batch, seq, backend, dtype, blocks=settings.time_blocks
    )
    pairs_convention = attended_pairs(seq, causal=causal, window=window)
    pairs = executed_pairs(
        seq,
        kernel=kernel,
        causal=causal,
        masked=explicit_mask(spec, causal=causal),
        device=settings.device,
    )
    result.estimated_core_flops = core_flops(spec, batch, pairs_convention)
    result.executed_core_flops = core_flops(spec, batch, pairs)
    result.predicted_core_seconds = predict_core_seconds(
        spec, batch, seq, kernel, pairs, cal, dtype
    )
    tokens = batch * seq
    projections = _projection_flops(spec, tokens) / cal.matmul_flops_per_s
    result.predicted_sublayer_seconds = result.predicted_core_seconds + projections
    result.predicted_block_seconds = (
        result.predicted_sublayer_seconds + _block_mlp_flops(spec, tokens) / cal.matmul_flops_per_s
    )
    free = available_memory_bytes(settings.device)
    if free is not None and not settings.force and result.footprint_bytes > FIT_FRACTION * free:
        result.skipped = (
            f"needs ~{result.footprint_bytes / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free "
            "(--force to try anyway)"
        )
    return result


def measure_point(
    model: Transformer,
    settings: BenchSettings,
    cal: Calibration,
    seq: int,
    backend: str,
    probe: Probe,
) -> PointResult:
    """Plan the point, then (if it fits) time core, sublayer and block and measure memory.

    The memory measurement is the core's first call, so it counts as one of the warm-up
    calls.
    """
    result = plan_point(settings, cal, seq, backend)
    if result.skipped is not None:
        return result
    spec, device, batch = settings.spec, settings.device, settings.batch
    model.set_backend(backend, settings.sdpa_kernel)
    block = model.block(0)
    attention = block.attention
    q, k, v = _inputs(spec, batch, seq, settings)
    position_bias = getattr(model, "position_bias", None) or model._bias  # renamed upstream
    bias = position_bias(0, seq, seq, 0, device)  # (H, S, S) for ALiBi / relative, else None
    if hasattr(attention, "causal"):
        attention.causal = result.causal

    def core() -> object:
        return attention.core(q, k, v, bias=bias)

    try:
        with torch.no_grad():
            result.measured_peak_bytes = peak_bytes(core, device)
            result.core = time_call(
                core,
                device=device,
                warmup=max(0, settings.warmup - 1),
                repeats=settings.repeats,
                probe=probe,
            )
            if settings.time_blocks:
                x = torch.randn(batch, seq, spec.hidden_size, device=device, dtype=settings.dtype)
                positions = torch.arange(seq, device=device)
                block_repeats = max(1, settings.repeats // 2)
                result.sublayer = time_call(
                    lambda: attention(x, positions, bias=bias),
                    device=device,
                    warmup=0,
                    repeats=block_repeats,
                    probe=probe,
                )
                result.block = time_call(
                    lambda: block(x, positions, bias=bias),
                    device=device,
                    warmup=0,
                    repeats=block_repeats,
                    probe=probe,
                )
    finally:
        if hasattr(attention, "causal"):
            attention.causal = spec.is_causal
    return result


def measure_unmasked_core(
    model: Transformer, settings: BenchSettings, seq: int, probe: Probe
) -> Samples:
    """SDPA core samples at ``seq`` with the causal mask switched off."""
    spec = settings.spec
    model.set_backend("sdpa", settings.sdpa_kernel)
    attention = model.block(0).attention
    q, k, v = _inputs(spec, settings.batch, seq, settings)
    try:
        attention.causal = False
        with torch.no_grad():
            return time_call(
                lambda: attention.core(q, k, v),
                device=settings.device,
                warmup=1,
                repeats=settings.repeats,
                probe=probe,
            )
    finally:
        attention.causal = spec.is_causal


def measure_decode(
    model: Transformer, settings: BenchSettings, cal: Calibration, context: int, probe: Probe
) -> DecodeResult:
    """One-token step of the first block after ``context`` cached (random) tokens.

    Predicted (calibration only):

        t = weight bytes / GEMV bandwidth + executed KV bytes / SDPA-decode bandwidth
            (+ MLA latent expansion FLOPs / matmul peak)

    (``decode_executed_kv_bytes``), or FLOPs / matmul peak when that is longer (large
    batches).
    """
    spec, device, batch = settings.spec, settings.device, settings.batch
    backend = "sdpa" if "sdpa" in settings.backends else settings.backends[0]
    block = model.block(0)
    window = _layer_window(spec)
    held = context if window is None else min(context, window)
    result = DecodeResult(context=context)
    bits = torch.finfo(settings.dtype).bits
    shapes: list[tuple[int, ...]]
    if spec.is_mla:
        shapes = [
            (batch, held, int(spec.kv_lora_rank or 0)),
            (batch, held, int(spec.qk_rope_head_dim or 0)),
        ]
    else:
        shapes = [(batch, spec.kv_heads, held, spec.resolved_head_dim)] * 2
    result.kv_bytes = sum(math.prod(shape) for shape in shapes) * bits // 8
    result.executed_kv_bytes = decode_executed_kv_bytes(spec, result.kv_bytes, backend)
    layer_params = count_params(spec.truncated(1)).layers[0]
    result.weight_bytes = layer_params.active * bits // 8
    # MLA re-expands the cached latent through kv_b at every step: a real matmul over L rows.
    expansion_flops = (
        attention_projection_flops(spec, batch * held)["attention.kv_b_proj"] if spec.is_mla else 0
    )
    step_flops = (
        _projection_flops(spec, batch)
        + expansion_flops
        + core_flops(spec, batch, attended_pairs(1, causal=True, context=held))
        + _block_mlp_flops(spec, batch)
    )
    result.flops = step_flops
    result.predicted_seconds = max(
        result.weight_bytes / cal.gemv_bytes_per_s
        + result.executed_kv_bytes / cal.sdpa_decode_bytes_per_s
        + expansion_flops / cal.matmul_flops_per_s,
        step_flops / cal.matmul_flops_per_s,
    )
    footprint = result.kv_bytes + result.executed_kv_bytes
    free = available_memory_bytes(device)
    if free is not None and not settings.force and footprint > FIT_FRACTION * free:
        result.skipped = (
            f"needs ~{footprint / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free "
            "(--force to try anyway)"
        )
        return result

    first, second = (torch.randn(*shape, device=device, dtype=settings.dtype) for shape in shapes)
    x = torch.randn(batch, 1, spec.hidden_size, device=device, dtype=settings.dtype)
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

    model.set_backend(backend, settings.sdpa_kernel)
    with torch.no_grad():
        result.step = time_call(
            step, device=device, warmup=settings.warmup, repeats=settings.repeats, probe=probe
        )
    return result


def check_model_fits(settings: BenchSettings) -> None:
    """Refuse (BenchError) before building when the weights alone would not fit."""
    need = model_bytes(settings.spec, settings.layers, DTYPE_NAMES[settings.dtype])
    free = available_memory_bytes(settings.device)
    if free is not None and not settings.force and need > FIT_FRACTION * free:
        raise BenchError(
            f"{settings.layers} layer(s) of {settings.spec.name} need ~{need / 2**30:.1f} GiB "
            f"of weights, {free / 2**30:.1f} GiB free on {settings.device}",
            hint="fewer --layers, a narrower --dtype, or --force",
        )


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
    result.load_average_start = load_average()
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
            _causal_saving(model, settings, result, probe, notify)
    except KeyboardInterrupt:
        result.interrupted = True
    result.load_average_end = load_average()
    return result


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
    unmasked = measure_unmasked_core(model, settings, longest.seq, probe)
    result.causal_saving = unmasked.median / longest.core.median
    device = settings.device
    kernel = executed_kernel(spec, "sdpa", device)
    masked = explicit_mask(spec, causal=True)
    full = executed_pairs(longest.seq, kernel=kernel, causal=False, masked=masked, device=device)
    causal = executed_pairs(longest.seq, kernel=kernel, causal=True, masked=masked, device=device)
    result.predicted_causal_saving = full / causal


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
