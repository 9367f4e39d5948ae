"""What the attention kernels execute, what they hold in memory, and the predicted time:
functions of the spec, the layer's window, the kernel and the calibration only.

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

import torch

from tfcli.bench.calibrate import Calibration
from tfcli.bench.settings import DTYPE_BYTES
from tfcli.flops import (
    attended_pairs,
    attention_core_flops,
    attention_projection_flops,
    bigbird_falls_back,
    mlp_flops,
    moe_flops,
)
from tfcli.memory import flash_attention_working_bytes, naive_attention_score_bytes, weight_bytes
from tfcli.params import count_params
from tfcli.spec import ModelSpec

NAIVE_IN_PLACE_PASSES = 4
"""Read and write passes of the naive path's in-place steps over the scores: scale, mask."""


def naive_peak_score_bytes(spec: ModelSpec, batch: int, seq: int, dtype: str) -> int:
    """Score-sized bytes alive at the naive path's peak, the fp32 softmax of the scores:

        fp32:        B H S^2 x (4 + 4)       the scores and the probabilities
        bf16 / fp16: B H S^2 x (2 + 4 + 4)   the scores, their fp32 copy (``softmax(...,
                                             dtype=float32)`` converts its input first) and
                                             the fp32 probabilities (cast back afterwards)

    Measured with the allocator (``tfcli.bench.allocations``) on torch 2.13 CPU: within 2%
    for both at S = 1024."""
    scores = naive_attention_score_bytes(spec, seq, batch=batch, dtype=dtype)
    elements = scores // DTYPE_BYTES[dtype]
    converted = 4 * elements if dtype != "fp32" else 0
    return scores + converted + 4 * elements


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
    SDPA, so the built-in core runs its naive path whatever the backend. Attention sinks
    (gpt-oss) go through SDPA as one extra key (``attention.sdpa_with_sinks``).
    """
    if backend == "naive" or spec.attn_logit_softcap is not None:
        return "naive"
    if device.type == "cpu" and spec.qk_head_dim != spec.value_head_dim:
        return "math"
    return "flash"


def layer_window(spec: ModelSpec, index: int) -> int | None:
    """The sliding window of main-stack layer ``index`` (None: full attention), by the rule
    the built-in ``Block`` applies: a sliding layer's window, causal in a decoder,
    ``|i - j| <= w / 2`` in an encoder (ModernBERT's local layers)."""
    return spec.sliding_window if spec.layer_kinds[index] == "sliding" else None


def layer_chunk(spec: ModelSpec, index: int) -> int | None:
    """The attention chunk of main-stack layer ``index`` (Llama 4's chunked layers), else
    None."""
    if spec.architecture == "encoder":
        return None
    return spec.attention_chunk_size if spec.layer_kinds[index] == "chunked" else None


def layer_reach(spec: ModelSpec, index: int) -> int | None:
    """The most keys a query of layer ``index`` attends, its sliding window or its chunk
    (None: unbounded). Either is an explicit boolean mask to SDPA (S^2 bytes, no block
    skipping), and the built-in cache keeps that many tokens of the layer."""
    window = layer_window(spec, index)
    return window if window is not None else layer_chunk(spec, index)


def sparse_pattern_masks(spec: ModelSpec, seq: int) -> bool:
    """True when a Longformer or BigBird encoder's cores over ``seq`` tokens run with its
    (P, P) pattern as an additive mask (``tfcli.bench.sparse_attention.sparse_pattern``):
    every Longformer length, BigBird unless it falls back to full attention."""
    if spec.sparse_attention == "bigbird":
        return not bigbird_falls_back(spec, seq)
    return spec.sparse_attention == "longformer"


def has_position_bias(spec: ModelSpec) -> bool:
    """True when the core gets a per-head additive bias: ALiBi or T5's relative bias."""
    return spec.position_type in ("alibi", "relative")


def fills_position_bias(spec: ModelSpec, *, window: int | None, causal: bool) -> bool:
    """True when the SDPA core copies its position bias to fill the masked pairs with -inf
    (``attention.sdpa_attention``): a bias under a causal or window mask."""
    return has_position_bias(spec) and (causal or window is not None)


def explicit_mask(spec: ModelSpec, window: int | None) -> bool:
    """True when the core hands SDPA an explicit mask instead of ``is_causal``: a sliding
    window, or an ALiBi or relative-position bias."""
    return window is not None or has_position_bias(spec)


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


# ---- memory ------------------------------------------------------------------------------------


def mask_bytes(
    spec: ModelSpec,
    batch: int,
    seq: int,
    dtype: str,
    *,
    kernel: str,
    window: int | None = None,
    causal: bool = True,
) -> int:
    """The explicit mask the built-in core hands SDPA when it cannot use ``is_causal``:
    a per-head additive bias (ALiBi, relative) H x S^2 x bytes(dtype), or a boolean window
    or chunk mask S^2 x 1 byte, which SDPA converts to an additive mask of the query's
    dtype before any kernel runs (``convert_boolean_attn_mask``: 0 / -inf, S^2 x
    bytes(dtype) more; allocator events: 93.3 MiB at S = 4,096 for ModernBERT's local layer,
    16 MiB bool + 64 MiB fp32 + the kernel's buffers). The mask is built two bool (S, S) at a
    time (``attention_mask``), less than it then holds. A position bias (ALiBi, T5's
    relative bias: built outside the core) is passed as it is when nothing is masked; under
    a causal or window mask the core holds that bool mask (S^2) and the bias with -inf filled
    in, a copy (H S^2 x bytes(dtype)); an fp32 ALiBi bias is also cast to a narrower dtype
    first. The naive path adds a bias in place: nothing extra."""
    if kernel == "naive":
        return 0
    width = DTYPE_BYTES[dtype]
    if has_position_bias(spec):
        copy = spec.num_heads * seq * seq * width
        if fills_position_bias(spec, window=window, causal=causal):
            return seq * seq + copy
        return copy if spec.position_type == "alibi" and dtype != "fp32" else 0
    if window is not None:
        return seq * seq * (1 + width)
    return 0


def mask_transient_bytes(spec: ModelSpec, seq: int, *, window: int | None, causal: bool) -> int:
    """What the core holds only while it fills a position bias with -inf: the inverted bool
    mask, S^2 bytes (``sdpa_attention``'s ``~mask``); 0 without a bias or a mask."""
    return seq * seq if fills_position_bias(spec, window=window, causal=causal) else 0


CPU_FLASH_PACK_MIN_SEQ = 64
"""Shortest sequence whose K and V the CPU flash kernel packs for oneDNN's brgemm (bf16 on
an AMX CPU; allocator events, torch 2.13: no packed copies at S = 63, packed at 64)."""


def cpu_flash_packs(dtype: str, seq: int) -> bool:
    """Whether torch's CPU flash kernel packs K and V for oneDNN's brgemm ukernel: bf16
    weights need packing (oneDNN ``brgemm_pack_B_t::need_pack``: not f32, not f16), and the
    ukernel runs only where the CPU has AMX tiles (``torch.cpu._is_amx_tile_supported``)."""
    if dtype != "bf16" or seq < CPU_FLASH_PACK_MIN_SEQ:
        return False
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(amx()) if amx is not None else False


def cpu_flash_scratch_bytes(
    spec: ModelSpec, seq: int, dtype: str, threads: int, *, batch: int = 1
) -> int:
    """Buffers torch's CPU flash kernel allocates for one call (torch 2.13,
    aten/src/ATen/native/cpu/FlashAttentionKernel.cpp): per thread, in fp32 (the
    accumulation type)

        threads x (qb x kb  +  2 qb  +  qb x d_v) x 4 bytes

    (scores tile, row max, row sum, output accumulator) with qb = ``cpu_flash_query_block``
    and kb = min(512, S), plus threads x qb x kb x bytes(dtype) for bf16 / fp16 inputs. A
    constant (1.25 MiB on 2 threads at d_v = 128): it matters only at short lengths. Where
    the kernel packs for brgemm (``cpu_flash_packs``) it also holds packed copies of the
    whole K and V, B x KVH x S x (d_qk + d_v) x 2 bytes, and per thread one kb x d_qk block,
    threads x kb x d_qk x 2 bytes (allocator events at S 64-4096, B 1-3, d 8-256, 1 and 2
    threads: each of these sizes, exactly)."""
    qb = min(cpu_flash_query_block(seq), seq)
    kb = min(CPU_FLASH_KEY_BLOCK, seq)
    fp32 = threads * (qb * kb + 2 * qb + qb * spec.value_head_dim) * 4
    reduced = threads * qb * kb * DTYPE_BYTES[dtype] if dtype != "fp32" else 0
    packed = 0
    if cpu_flash_packs(dtype, seq):
        width = DTYPE_BYTES[dtype]
        packed = batch * spec.kv_heads * seq * (spec.qk_head_dim + spec.value_head_dim) * width
        packed += threads * kb * spec.qk_head_dim * width
    return fp32 + reduced + packed


def estimate_peak_bytes(
    spec: ModelSpec,
    batch: int,
    seq: int,
    backend: str,
    dtype: str,
    *,
    kernel: str | None = None,
    cpu_threads: int | None = None,
    window: int | None = None,
    causal: bool = True,
) -> int:
    """Core memory beyond q, k, v, as the allocator sees it.

    naive (and SDPA's math fallback) = the score-sized tensors alive at once (scores, fp32
    probabilities and their cast: ``naive_peak_score_bytes``) + output; flash =
    output + fp32 row statistics (``tfcli.memory.flash_attention_working_bytes``), plus on
    the CPU (``cpu_threads`` given) the kernel's per-thread tiles
    (``cpu_flash_scratch_bytes``); both plus an explicit additive mask where the core builds
    one (``mask_bytes``); attention sinks add their wider copies (``sink_copy_bytes``).
    """
    kernel = kernel or ("naive" if backend == "naive" else "flash")
    output = flash_attention_working_bytes(spec, seq, batch=batch, dtype=dtype)
    mask = mask_bytes(spec, batch, seq, dtype, kernel=kernel, window=window, causal=causal)
    if kernel in ("naive", "math"):
        return naive_peak_score_bytes(spec, batch, seq, dtype) + output + mask
    scratch = 0
    if cpu_threads is not None:
        scratch = cpu_flash_scratch_bytes(spec, seq, dtype, cpu_threads, batch=batch)
    kernel_buffers = output + scratch + sink_copy_bytes(spec, batch, seq, dtype)
    transient = mask_transient_bytes(spec, seq, window=window, causal=causal)
    return mask + max(transient, kernel_buffers)


def sink_copy_bytes(spec: ModelSpec, batch: int, seq: int, dtype: str) -> int:
    """What attention sinks add to an SDPA call (``attention.sdpa_with_sinks``): q, k and v
    copied one dim wider, W = max(d_qk, d_v) + 1, with one more row (the sink key; the dummy
    query of a causal call), and the output that wide:

        B (S + 1) W (2 H + 2 KVH) x bytes - the B H S d_v output already counted

    (0 without sinks). Measured with the allocator at S = 2048, H 8, KVH 2, d 64, fp32:
    11.9 MB against 5.4 MB without sinks, as this adds."""
    if not spec.attention_sinks:
        return 0
    width = max(spec.qk_head_dim, spec.value_head_dim) + 1
    rows = batch * (seq + 1) * width * (2 * spec.num_heads + 2 * spec.kv_heads)
    counted = batch * spec.num_heads * seq * spec.value_head_dim
    return (rows - counted) * DTYPE_BYTES[dtype]


def point_footprint_bytes(
    spec: ModelSpec,
    batch: int,
    seq: int,
    backend: str,
    dtype: str,
    *,
    blocks: bool,
    window: int | None = None,
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
    total = estimate_peak_bytes(spec, batch, seq, backend, dtype, kernel=kernel, window=window)
    total += 2 * qkv * width
    if blocks:
        mlp_width = spec.intermediate_size
        if any(spec.moe_layer_flags):
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


def bias_read_bytes(
    spec: ModelSpec, seq: int, dtype: str, *, window: int | None, causal: bool
) -> int:
    """Bytes of a per-head position bias (ALiBi, T5's relative bias: H S^2 x bytes) an SDPA
    core reads: once by the kernel, once more by the -inf fill under a causal or window mask
    (``attention.sdpa_attention``); 0 without such a bias."""
    if not has_position_bias(spec):
        return 0
    once = spec.num_heads * seq * seq * DTYPE_BYTES[dtype]
    return 2 * once if fills_position_bias(spec, window=window, causal=causal) else once


def predict_core_seconds(
    spec: ModelSpec,
    batch: int,
    seq: int,
    kernel: str,
    pairs: int,
    cal: Calibration,
    dtype: str,
    window: int | None = None,
    *,
    masked: bool = False,
    causal: bool = True,
) -> float:
    """Core time of one layer (sliding ``window`` or full) from the executed work and the
    calibration only; ``masked``: the core gets an explicit mask built outside it
    (Longformer's and BigBird's pattern, ``sparse_pattern_masks``).

    flash:        t = executed FLOPs / (matmul peak x SDPA efficiency, the masked one when
                      the core passes an explicit mask) + mask bytes / first-touch bandwidth
                      + per-head bias bytes read / read bandwidth
    naive / math: t = full FLOPs / matmul peak + fresh score bytes / first-touch bandwidth
                      + P x score bytes / read bandwidth + B H S^2 / softmax rate
    with P = NAIVE_IN_PLACE_PASSES (+ NAIVE_SOFTCAP_PASSES with soft-capping): the in-place
    scale, mask and cap passes; the softmax rate includes its fresh output. A per-head
    position bias (ALiBi, T5: H S^2 x bytes) is read by the kernel, and read once more when
    the core fills it with -inf under a causal or window mask (``bias_read_bytes``).
    """
    flops = core_flops(spec, batch, pairs)
    mask = mask_bytes(spec, batch, seq, dtype, kernel=kernel, window=window, causal=causal)
    if kernel == "flash":
        efficiency = cal.sdpa_masked_efficiency if mask or masked else cal.sdpa_efficiency
        reads = bias_read_bytes(spec, seq, dtype, window=window, causal=causal)
        return (
            flops / (cal.matmul_flops_per_s * efficiency)
            + mask / cal.first_touch_bytes_per_s
            + reads / cal.read_bytes_per_s
        )
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


def projection_flops(spec: ModelSpec, tokens: int) -> int:
    """q, k, v and o projections of one layer on ``tokens`` rows (``tfcli.flops``)."""
    return sum(attention_projection_flops(spec, tokens).values())


def block_mlp_flops(spec: ModelSpec, tokens: int, index: int = 0) -> int:
    """The MLP (or MoE: router, top-k experts, shared) of layer ``index`` on ``tokens`` rows."""
    if spec.architecture != "encoder" and spec.moe_layer_flags[index]:
        return sum(moe_flops(spec, tokens).values())
    run = next(r for r in spec.main_stack_runs() if r.start <= index < r.stop)
    if run.plan.mlp == "none":
        return 0
    return mlp_flops(spec, tokens, spec.intermediate_size)
