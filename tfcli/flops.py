"""FLOPs of a transformer forward pass, by component and per layer run, with explicit conventions.

Conventions (DESIGN.md section 4; stated in every output):

* A FLOP is one multiply or one add: a multiply-accumulate is 2 FLOPs, so a matmul of
  (m x k) by (k x n) costs ``2 m k n`` (the convention of Kaplan et al. 2020, PaLM and
  ``torch.utils.flop_counter``). Headline FLOPs are matmul FLOPs (and the convolutions and
  einsums ``FlopCounterMode`` counts). Bias adds, softmax, norms, activations, RoPE, scan
  updates and residual adds go to a separate, approximate "elementwise" line.
* Projections: every matmul of ``tfcli.shapes`` (the table the parameter counts use) costs
  ``2 x rows x fan_in x fan_out`` per copy a row runs through (top-k routed experts).
* Attention cost is a count of attended (query, key) pairs, computed only by
  ``attended_pairs``: full ``s*s``; causal ``s(s+1)/2``; sliding window ``w``:
  ``sum_i min(i+1, w)``; chunked ``c``: ``sum_i (i mod c) + 1``; with ``L`` tokens already
  cached, query ``i`` attends ``L+i+1`` keys. QK^T and AV each cost ``2 x heads x head_dim``
  FLOPs per pair.
* Decoders default to the causal count (what FlashAttention-style kernels execute); ``full``
  is what ``torch.utils.flop_counter.FlopCounterMode`` and torchtitan count (an eager
  implementation multiplies the whole s x s and masks afterwards). Encoders attend
  bidirectionally: the default counts their pattern (s x s; ModernBERT's local band;
  Longformer's band plus global tokens; BigBird's blocks), ``full`` what transformers'
  eager code executes (s x s on every eager layer; Longformer padded to its window with
  overlapping chunks; BigBird padded to its blocks, or full on short inputs), so that
  ``full`` equals FlopCounterMode for every model. DeBERTa's c2p / p2c position products
  (``s x 2k`` each) are counted in both.
* Linear-attention and state-space layers count what transformers' reference torch
  implementation executes (chunked scans, chunk sizes stated): what FlopCounterMode sees.
* Backward = 2 x forward for matmuls; a training step = 3 x forward, 4 x with activation
  recomputation (Narayanan et al. 2021; PaLM appendix B).

Only the standard library is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from tfcli.errors import UsageError
from tfcli.plan import LayerPlan, Run, groups_by_value
from tfcli.shapes import (
    Shape,
    attention_shapes,
    cross_attention_shapes,
    embedding_shapes,
    gated_deltanet_widths,
    head_shapes,
    mamba_conv_channels,
    mixer_shapes,
    mlp_matrices,
    mlp_shapes,
    moe_shapes,
)
from tfcli.spec import ModelSpec
from tfcli.terms import Term

ATTENTION_CONVENTIONS = ("causal", "full")
LOGITS_MODES = ("all", "last")

GATED_DELTANET_CHUNK = 64
"""Chunk length of transformers' ``torch_chunk_gated_delta_rule`` (Qwen3-Next)."""
LIGHTNING_BLOCK = 256
"""Block length of MiniMax's lightning attention (MiniMaxConfig.block_size default)."""
MAMBA2_CHUNK = 256
"""Chunk length of Mamba-2's reference chunked scan (Mamba2Config.chunk_size default)."""


# ---- the one pair counter -------------------------------------------------------------------


def _sum_of_min(first: int, last: int, cap: int | None) -> int:
    """sum_{j=first}^{last} min(j, cap) in closed form (0 when last < first)."""
    if last < first:
        return 0
    if cap is None or cap >= last:
        return (first + last) * (last - first + 1) // 2
    if cap <= first:
        return cap * (last - first + 1)
    below = (first + cap) * (cap - first + 1) // 2
    return below + cap * (last - cap)


def _chunk_prefix(n: int, chunk: int) -> int:
    """sum_{p<n} (p mod c + 1): keys attended by the first n positions under chunked attention."""
    full, rest = divmod(n, chunk)
    return full * chunk * (chunk + 1) // 2 + rest * (rest + 1) // 2


def attended_pairs(
    seq: int,
    *,
    causal: bool,
    window: int | None = None,
    context: int = 0,
    keys: int | None = None,
    chunk: int | None = None,
    radius: int | None = None,
    global_tokens: int = 0,
    blocks: tuple[int, int] | None = None,
) -> int:
    """Attended (query, key) pairs for ``seq`` new queries after ``context`` cached tokens.

    * causal: query ``i`` (0-based) sees ``context + i + 1`` keys, at most ``window``:
      ``sum_{i<seq} min(context + i + 1, w)``, in closed form. Without context and window this
      is ``s(s+1)/2``; with a window ``w <= s`` it is ``w(w+1)/2 + (s - w) w``; decode of one
      token with ``L`` cached is ``min(L + 1, w)``. Chunked attention (Llama 4): position
      ``p`` sees the ``p mod c + 1`` keys of its own chunk. What FlashAttention-style kernels
      execute (Dao et al. 2022 skip fully masked blocks; a block-level kernel does a bit more).
    * full (``causal=False``): every query is multiplied with every key present, masks applied
      afterwards (an eager implementation; what ``FlopCounterMode`` and torchtitan count):
      ``seq x (context + seq)``. A sliding window (or chunk) does not shrink the s x s
      product, but it bounds the cache: such a layer keeps ``min(context, w - 1)`` past tokens
      (transformers 5 ``DynamicSlidingWindowLayer``), so keys = ``min(context, w-1) + seq``.
      ``keys`` overrides the key count for cross-attention over ``keys`` encoder tokens
      (and DeBERTa's ``2k`` relative positions).
    * bidirectional patterns (encoders, ``causal=False``, no context): ``radius`` r, query
      ``i`` attends ``|i - j| <= r`` (ModernBERT's local layers, r = local_attention / 2), and
      with ``global_tokens`` g the first g tokens attend and are attended by every token
      (Longformer, r = attention_window / 2): ``_local_global_pairs``; ``blocks`` = (b, r)
      is BigBird's block-sparse pattern (``_block_sparse_pairs``).

    Every attention FLOP in tfcli goes through this function (DESIGN.md section 4).
    """
    if seq < 0 or context < 0:
        raise UsageError(f"sequence lengths must be >= 0, got seq={seq}, context={context}")
    for name, value in (("sliding window", window), ("attention chunk", chunk)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be positive, got {value}")
    if not causal and (radius is not None or blocks is not None):
        if context:
            raise UsageError("a bidirectional pattern has no cached context")
        if blocks is not None:
            return _block_sparse_pairs(seq, *blocks)
        return _local_global_pairs(seq, int(radius or 0), min(global_tokens, seq))
    if not causal:
        if keys is not None:
            return seq * keys
        bound = window if window is not None else chunk
        cached = context if bound is None else min(context, bound - 1)
        return seq * (cached + seq)
    if chunk is not None:
        return _chunk_prefix(context + seq, chunk) - _chunk_prefix(context, chunk)
    return _sum_of_min(context + 1, context + seq, window)


def _band_pairs(seq: int, radius: int) -> int:
    """Pairs of a bidirectional local window: query ``i`` attends ``j`` with ``|i - j| <=
    radius`` inside ``[0, seq)``: ``s + 2 x sum_{d=1}^{r} (s - d)`` for ``r < s``."""
    r = min(radius, seq - 1)
    return seq + 2 * (r * seq - r * (r + 1) // 2)


def _band_rows(seq: int, radius: int, rows: int) -> int:
    """Band keys of the first ``rows`` queries: ``sum_{i<rows} (min(s-1, i+r) - max(0, i-r)
    + 1)``, in closed form."""
    if rows <= 0:
        return 0
    right = _sum_of_min(radius, radius + rows - 1, seq - 1)
    t = max(0, rows - 1 - radius)
    return right - t * (t + 1) // 2 + rows


def _local_global_pairs(seq: int, radius: int, g: int) -> int:
    """Longformer's pattern (Beltagy et al. 2020, section 3.1): a band ``|i - j| <= r`` plus
    g global tokens (the first g, as transformers' examples place them) that attend every key
    and that every query attends. Global rows: ``g s``; each other row ``i``: its band plus
    the global keys left of it, ``max(0, min(g, i - r))``. ``g = 0`` is the plain band
    (ModernBERT's local layers)."""
    band = _band_pairs(seq, radius) - _band_rows(seq, radius, g)
    lo, hi = max(1, g - radius), seq - 1 - radius
    outside = _sum_of_min(lo, hi, g) if g else 0
    return g * seq + band + outside


def _block_sparse_pairs(seq: int, block: int, random_blocks: int) -> int:
    """BigBird's pattern (Zaheer et al. 2020, ITC; transformers' ``bigbird_block_sparse_
    attention``) on n = ceil(s / b) query blocks, the last holding L = s - (n - 1) b tokens:
    blocks 0 and n - 1 are global (every key, s each row); blocks 1 and n - 2 attend 4 + r
    blocks (first three or last three, the other global block, r random: ``3b + L + r b``
    keys); the other n - 4 attend 5 + r (3 sliding, 2 global, r random: ``4b + L + r b``).
    With s a multiple of b this is ``b^2 [2 n + 2 (4 + r) + (n - 4)(5 + r)]``. Up to
    ``(5 + 2 r) b`` tokens transformers (and the paper's code) attend in full: ``s^2``."""
    b, r = block, random_blocks
    if seq <= (5 + 2 * r) * b:
        return seq * seq
    n = -(-seq // b)
    last = seq - (n - 1) * b
    return (b + last) * seq + 2 * b * (3 * b + last + r * b) + (n - 4) * b * (4 * b + last + r * b)


# ---- per-token matmul costs (one function per formula) ---------------------------------------


def linear_flops(tokens: int, fan_in: int, fan_out: int) -> int:
    """A dense layer on ``tokens`` rows: ``2 x tokens x fan_in x fan_out`` (bias add excluded)."""
    return 2 * tokens * fan_in * fan_out


def shape_flops(shape: Shape, rows: int) -> int:
    """``2 x rows x fan_in x fan_out x copies run``; 0 when the shape is not a matmul."""
    if shape.flop is None:
        return 0
    return 2 * rows * shape.fan_in * shape.fan_out * shape.copies_run


def mlp_flops(spec: ModelSpec, tokens: int, width: int) -> int:
    """An MLP of ``width`` on ``tokens`` rows: gated ``3 x 2 t h f``, plain ``2 x 2 t h f``."""
    return sum(shape_flops(s, tokens) for s in mlp_matrices(spec, "mlp", "mlp", width))


def moe_flops(spec: ModelSpec, tokens: int) -> dict[str, int]:
    """One MoE layer on ``tokens`` rows (``tfcli.shapes.moe_shapes``): router ``2 t h E``;
    routed ``k x mlp(expert_width)`` per token (tokens x top-k expert evaluations); shared
    experts ``mlp(shared_width)``; Qwen-MoE's shared gate ``2 t h``."""
    return _by_flop(moe_shapes(spec), {"tokens": tokens})


def _first_attention_plan(spec: ModelSpec) -> LayerPlan:
    for _, plan in spec.layer_groups:
        if plan.mixer in ("attention", "mla"):
            return plan
    return spec.layer_groups[0][1]


def attention_projection_flops(spec: ModelSpec, tokens: int) -> dict[str, int]:
    """Q, K, V and output projections of one self-attention layer on ``tokens`` rows, from
    ``tfcli.shapes.attention_shapes`` (standard, or MLA's low-rank q/kv projections)."""
    return _by_flop(attention_shapes(spec, _first_attention_plan(spec)), {"tokens": tokens})


def attention_core_flops(spec: ModelSpec, batch: int, pairs: int) -> tuple[int, int]:
    """(QK^T, AV) FLOPs for ``pairs`` attended pairs per sequence and head.

    scores ``2 x B x H x pairs x d_qk``; weighted values ``2 x B x H x pairs x d_v``
    (d_qk = nope + rope and d_v = v_head_dim under MLA).
    """
    scores = 2 * batch * spec.num_heads * pairs * spec.qk_head_dim
    values = 2 * batch * spec.num_heads * pairs * spec.value_head_dim
    return scores, values


def _by_flop(shapes: list[Shape], rows: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for shape in shapes:
        if shape.flop is not None:
            out[shape.flop] = out.get(shape.flop, 0) + shape_flops(shape, rows.get(shape.rows, 0))
    return out


# ---- state mixers: what the reference implementations execute ------------------------------


def _chunks(seq: int, chunk: int) -> int:
    return -(-seq // chunk)


Factors = tuple[tuple[str, int], ...]
"""``(symbol, value)`` pairs whose product is a count (``tfcli.terms.Term``)."""


def gated_deltanet_scan_factors(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> Factors:
    """Matmuls of transformers' Gated DeltaNet (Qwen3-Next) per layer, in fp32.

    Prefill, ``torch_chunk_gated_delta_rule`` with chunks of C = 64 (the sequence padded to
    ``n = ceil(s / C)`` chunks), per sequence and value head: ``k_beta k^T`` and ``q k^T``
    within each chunk ``2 x 2 C^2 d_k``, then per chunk ``k_cumdecay S``, ``q S`` and
    ``k^T v_new`` ``3 x 2 C d_k d_v`` and ``attn v_new`` ``2 C^2 d_v``; the triangular solves
    are not matmuls (FlopCounterMode counts none). One cached decode token
    (``torch_recurrent_gated_delta_rule``) is elementwise: 0 here.
    """
    if decode:
        return (("decode (elementwise)", 0),)
    c = spec.linear_chunk_size or GATED_DELTANET_CHUNK
    n = _chunks(seq, c)
    dk, dv = int(spec.linear_key_head_dim or 0), int(spec.linear_value_head_dim or 0)
    heads = int(spec.linear_num_value_heads or 0)
    per_chunk = 4 * c * c * dk + 2 * c * c * dv + 6 * c * dk * dv
    return (
        ("B", batch),
        ("Hv", heads),
        (f"ceil(s / C), C = {c}", n),
        ("(4 C^2 d_k + 2 C^2 d_v + 6 C d_k d_v)", per_chunk),
    )


def lightning_scan_factors(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> Factors:
    """Matmuls of MiniMax lightning attention per layer (MiniMaxLightningAttention).

    Prefill in blocks of b = ``linear_chunk_size`` (MiniMaxConfig.block_size, 256; the last
    block shorter, not padded), per sequence and head:
    ``Q K^T`` and ``(QK) V`` ``2 x 2 b^2 d``, ``Q (K^T V)`` and ``K^T V`` ``2 x 2 b d^2``; with
    a cache (decode) each token runs ``K^T V`` and ``Q S``: ``4 d^2``.
    """
    d = spec.resolved_head_dim
    if decode:
        return (("B", batch), ("H", spec.num_heads), ("s", seq), ("4 d^2", 4 * d * d))
    b = spec.linear_chunk_size or LIGHTNING_BLOCK
    full, rest = divmod(seq, b)
    squares = full * b * b + rest * rest
    return (
        ("B", batch),
        ("H", spec.num_heads),
        (f"(4 d sum(b_i^2) + 4 d^2 s), b = {b}", 4 * d * squares + 4 * d * d * seq),
    )


def mamba_scan_factors(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> Factors:
    """Matmuls of transformers' Mamba-1 selective scan per layer (``mamba_selective_scan``
    sequential path, and ``mamba_selective_state_update`` when decoding): the output
    contraction ``state (d_in x N) @ C (N)`` per token, ``2 x B x s x d_in x N``; the state
    update is elementwise."""
    return (
        ("2", 2),
        ("B", batch),
        ("s", seq),
        ("d_in", int(spec.ssm_inner_size or 0)),
        ("N", int(spec.ssm_state_size or 0)),
    )


def mamba2_scan_factors(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> Factors:
    """Matmuls (einsums) of transformers' Mamba-2 reference chunked scan per layer
    (``mamba2_chunk_scan``): with chunk length L (``ssm_chunk_size``, 256), c = ceil(s / L)
    chunks, H heads of width P, state N, per sequence: ``C B^T`` ``2 c L^2 H N``, ``M x``
    ``2 c L^2 H P``, chunk states ``2 c L H P N``, the inter-chunk recurrence
    ``2 (c + 1)^2 H P N`` and ``C states`` ``2 c L H P N``. A cached decode token
    (``mamba2_selective_state_update``) is one ``state @ C``: ``2 H P N``."""
    heads = int(spec.ssm_num_heads or 0)
    p = int(spec.ssm_inner_size or 0) // max(heads, 1)
    n = int(spec.ssm_state_size or 0)
    if decode:
        return (("B", batch), ("s", seq), ("2 H P N", 2 * heads * p * n))
    chunk = spec.ssm_chunk_size or MAMBA2_CHUNK
    c = _chunks(seq, chunk)
    per_seq = (
        2 * c * chunk * chunk * heads * (n + p)
        + 4 * c * chunk * heads * p * n
        + 2 * (c + 1) ** 2 * heads * p * n
    )
    return (
        ("B", batch),
        (f"(2 c L^2 H (N + P) + 4 c L H P N + 2 (c + 1)^2 H P N), L = {chunk}, c = {c}", per_seq),
    )


def gated_deltanet_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
    """``gated_deltanet_scan_factors`` multiplied out."""
    return math.prod(v for _, v in gated_deltanet_scan_factors(spec, batch, seq, decode=decode))


def lightning_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
    """``lightning_scan_factors`` multiplied out."""
    return math.prod(v for _, v in lightning_scan_factors(spec, batch, seq, decode=decode))


def mamba_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
    """``mamba_scan_factors`` multiplied out."""
    return math.prod(v for _, v in mamba_scan_factors(spec, batch, seq, decode=decode))


def mamba2_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
    """``mamba2_scan_factors`` multiplied out."""
    return math.prod(v for _, v in mamba2_scan_factors(spec, batch, seq, decode=decode))


_SCANS = {
    "gated_deltanet": ("linear_attention.scan", gated_deltanet_scan_factors),
    "lightning": ("lightning.scan", lightning_scan_factors),
    "mamba": ("mamba.scan", mamba_scan_factors),
    "mamba2": ("mamba.scan", mamba2_scan_factors),
}


# ---- attention pattern pairs ----------------------------------------------------------------


def layer_pairs(plan: LayerPlan, spec: ModelSpec, seq: int, context: int, attention: str) -> int:
    """Attended pairs per sequence of one attention layer of ``plan``, in the convention.

    ``causal`` (the default; for an encoder: its pattern) counts the pairs the layer's mask
    lets through: causal, sliding, chunked, and in a bidirectional stack the local band
    (``|i - j| <= w / 2``), Longformer's band plus global tokens, BigBird's blocks. ``full``
    counts what an eager implementation multiplies: ``s x (cached + s)`` whatever the mask;
    Longformer's and BigBird's own kernels are counted by ``sparse_kernel_pairs`` instead.
    """
    causal = plan.causal and attention == "causal"
    pattern = not plan.causal and attention == "causal"
    if plan.pattern == "sliding":
        if pattern:
            return attended_pairs(seq, causal=False, radius=int(plan.window or 0) // 2)
        return attended_pairs(seq, causal=causal, window=plan.window, context=context)
    if plan.pattern == "chunked":
        return attended_pairs(seq, causal=causal, chunk=plan.window, context=context)
    if plan.pattern == "longformer":
        radius = int(spec.sliding_window or 0) // 2
        return attended_pairs(seq, causal=False, radius=radius, global_tokens=spec.global_tokens)
    if plan.pattern == "bigbird":
        return attended_pairs(seq, causal=False, blocks=_bigbird_blocks(spec))
    if plan.mixer == "mla" and spec.index_topk and causal:
        # DeepSeek-V3.2: each query attends the index_topk keys its indexer selects
        return attended_pairs(seq, causal=True, window=spec.index_topk, context=context)
    return attended_pairs(seq, causal=causal, context=context)


def indexer_score_flops(spec: ModelSpec, batch: int, pairs: int) -> int:
    """DeepSeek-V3.2's lightning indexer (transformers ``DeepseekV32Indexer``): scores
    ``q_I k_I^T`` for every (query, key) pair and index head, ``2 x B x pairs x I x d_I``,
    then the per-head weighting ``weights @ scores``, ``2 x B x pairs x I``. Over causal pairs
    by default; an eager run scores all ``s x (cached + s)`` and masks afterwards."""
    heads, dim = int(spec.index_num_heads or 0), int(spec.index_head_dim or 0)
    return 2 * batch * pairs * heads * (dim + 1)


def _bigbird_blocks(spec: ModelSpec) -> tuple[int, int]:
    return int(spec.sparse_block_size or 1), int(spec.sparse_random_blocks or 0)


def bigbird_falls_back(spec: ModelSpec, seq: int) -> bool:
    """transformers' BigBirdModel runs ``original_full`` attention when ``s <= (5 + 2 r) b``
    (its ``max_tokens_to_attend``: too short for the block-sparse layout)."""
    b, r = _bigbird_blocks(spec)
    return seq <= (5 + 2 * r) * b


def executed_length(spec: ModelSpec, seq: int, attention: str) -> int:
    """Rows an encoder's matmuls run on. Under ``full`` (what transformers executes):
    LongformerModel pads the input to a multiple of ``attention_window`` w
    (``_pad_to_window_size``) and BigBirdModel to a multiple of ``block_size`` b when it runs
    block-sparse (``_pad_to_block_size``), so every projection and MLP runs on the padded
    length; otherwise (and in the pattern convention) on ``seq``."""
    if attention != "full" or spec.architecture != "encoder":
        return seq
    if spec.sparse_attention == "longformer":
        w = int(spec.sliding_window or 1)
        return -(-seq // w) * w
    if spec.sparse_attention == "bigbird" and not bigbird_falls_back(spec, seq):
        b = _bigbird_blocks(spec)[0]
        return -(-seq // b) * b
    return seq


def sparse_kernel_pairs(
    spec: ModelSpec, plan: LayerPlan, padded: int, global_tokens: int
) -> tuple[int, int]:
    """(QK^T, AV) dot products per sequence and head that transformers' own sparse kernels
    multiply over the ``padded`` length P (``executed_length``), counted as FlopCounterMode
    counts their einsums and bmms.

    Longformer (``LongformerSelfAttention``, one-sided window W = w / 2):
    ``_sliding_chunks_query_key_matmul`` multiplies P / W - 1 overlapping chunks of 2W queries
    by their 2W keys, ``(P / W - 1) (2W)^2``; ``_sliding_chunks_matmul_attn_probs_value``
    multiplies P / W chunks of W rows by 3W values, ``3 W P``. With g > 0 global tokens, both
    add ``2 g P``: every query against the g global keys (and their values), and the g global
    queries against all P keys (and values). The mask's own chunked product has width 1 and
    is not a matmul to FlopCounterMode.

    BigBird (``bigbird_block_sparse_attention``): the block pattern on P, both for QK^T and
    AV (``_block_sparse_pairs``); on inputs short enough to fall back (``bigbird_falls_back``)
    full ``s^2``. The band and random masks are outer products (elementwise).
    """
    if plan.pattern == "longformer":
        half = int(spec.sliding_window or 0) // 2
        qk = (padded // half - 1) * (2 * half) ** 2
        av = 3 * half * padded
        if global_tokens:
            qk += 2 * global_tokens * padded
            av += 2 * global_tokens * padded
        return qk, av
    pairs = _block_sparse_pairs(padded, *_bigbird_blocks(spec))
    return pairs, pairs


def disentangled_pairs(spec: ModelSpec, seq: int) -> dict[str, int]:
    """DeBERTa's position terms per sequence and head (He et al. 2021, eq. 4;
    ``DisentangledSelfAttention.disentangled_attention_bias``): c2p multiplies every query by
    the ``2k`` projected relative positions and p2c every key, then gathers the pair's entry,
    ``s x 2k`` each (``attended_pairs(s, causal=False, keys=2k)``), in both conventions: the
    gather is the pattern, the product is what runs."""
    if spec.position_type != "disentangled":
        return {}
    keys = 2 * int(spec.relative_position_span or 0)
    pairs = attended_pairs(seq, causal=False, keys=keys)
    return {term: pairs for term in spec.disentangled_terms or ()}


# ---- whole forward pass -----------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFlops:
    """Matmul FLOPs of one layer (or of each of ``count`` identical layers from ``index``);
    ``total`` = projections + attention (QK^T, AV, indexer) + scan + cross + mlp."""

    index: int
    stack: str
    kind: str
    pairs: int
    projections: int
    attention: int
    cross_attention: int
    mlp: int
    moe: bool = False
    """True when the layer's MLP is a routed mixture of experts."""
    count: int = 1
    scan: int = 0
    """A state mixer's recurrence matmuls (Gated DeltaNet, Mamba, lightning scans)."""
    stride: int | None = 1
    """Spacing of the ``count`` layers from ``index`` (1: consecutive; None: irregular)."""
    spans: tuple[tuple[int, int], ...] = ()
    more_spans: bool = False

    @property
    def total(self) -> int:
        return self.projections + self.attention + self.scan + self.cross_attention + self.mlp

    def value_key(self) -> tuple[object, ...]:
        """What makes two layers the same row: every figure and the kind, not the position."""
        return (
            self.stack,
            self.kind,
            self.pairs,
            self.projections,
            self.attention,
            self.scan,
            self.cross_attention,
            self.mlp,
            self.moe,
        )


@dataclass(frozen=True)
class FlopCount:
    """Forward matmul FLOPs by component (summing to ``total``) and by layer group."""

    seq: int
    batch: int
    context: int
    encoder_seq: int
    attention_convention: str
    logits: str
    components: dict[str, int]
    groups: tuple[LayerFlops, ...]
    """One entry per distinct layer (count and positions), in order of first appearance."""
    elementwise: int
    terms: tuple[Term, ...] = ()
    spec: ModelSpec | None = field(default=None, repr=False, compare=False)
    """The spec counted: ``runs`` and ``layers`` read its layer plan only when asked."""
    per_plan: dict[LayerPlan, LayerFlops] = field(default_factory=dict, repr=False, compare=False)

    @property
    def total(self) -> int:
        return sum(self.components.values())

    @property
    def runs(self) -> tuple[LayerFlops, ...]:
        """Runs of identical consecutive layers (O(runs); views use ``groups``)."""
        out: list[LayerFlops] = []
        for run in self.spec.layer_runs if self.spec is not None else ():
            layer = self.per_plan.get(run.plan)
            if layer is None:
                continue
            if out and out[-1].value_key() == layer.value_key():
                out[-1] = replace(out[-1], count=out[-1].count + run.count)
            else:
                out.append(replace(layer, index=run.start, count=run.count, spans=()))
        return tuple(out)

    @property
    def layers(self) -> tuple[LayerFlops, ...]:
        """One entry per layer (O(layers): the runs expanded)."""
        return tuple(_expand(self.runs))

    @property
    def attention_flops(self) -> int:
        """The pair-dependent part: QK^T and AV of self- and cross-attention."""
        return sum(v for k, v in self.components.items() if k.endswith((".scores", ".av")))

    @property
    def attention_share(self) -> float:
        return self.attention_flops / self.total if self.total else 0.0


def _expand(runs: tuple[LayerFlops, ...]) -> Iterator[LayerFlops]:
    for run in runs:
        for i in range(run.index, run.index + run.count):
            yield replace(run, index=i, count=1)


def _check(seq: int, batch: int, attention: str, logits: str) -> None:
    if seq < 1:
        raise UsageError(f"sequence length must be a positive integer, got {seq}")
    if batch < 1:
        raise UsageError(f"batch must be a positive integer, got {batch}")
    if attention not in ATTENTION_CONVENTIONS:
        raise UsageError(f"attention convention must be causal or full, got {attention!r}")
    if logits not in LOGITS_MODES:
        raise UsageError(f"logits must be all or last, got {logits!r}")


def _add(components: dict[str, int], parts: Mapping[str, int], times: int = 1) -> None:
    for name, value in parts.items():
        components[name] = components.get(name, 0) + times * value


def other_convention(attention: str) -> str:
    """The convention not in force: ``causal`` <-> ``full`` (shown beside it as a ratio)."""
    return "full" if attention == "causal" else "causal"


def encoder_has_pattern(spec: ModelSpec) -> bool:
    """An encoder whose layers do not all attend every pair (local layers, Longformer,
    BigBird): for it the two conventions differ (the pattern vs what transformers executes)."""
    return not spec.is_causal and (spec.sparse_attention != "none" or "sliding" in spec.kind_counts)


def convention_name(spec: ModelSpec, attention: str) -> str:
    """A short name of the convention for headings: ``causal`` / ``full``, or for an encoder
    with a sparse or local pattern ``pattern`` / ``as executed`` (its ``causal`` and
    ``full``)."""
    if encoder_has_pattern(spec):
        return "pattern" if attention == "causal" else "as executed"
    return attention


def convention_label(spec: ModelSpec, attention: str) -> str:
    """Human description of the pair-counting convention in force.

    Encoders: ``causal`` (the default) counts the pattern, ``full`` what transformers' eager
    code executes; they differ for local layers (eager: s x s, masked), Longformer (padded
    to w, overlapping chunks) and BigBird (padded to b, gathered blocks)."""
    if not spec.is_causal:
        return _encoder_label(spec, attention)
    if attention == "full":
        text = "full s x s (as FlopCounterMode / torchtitan count; masks ignored)"
    else:
        kinds = spec.kind_counts
        parts = []
        if "sliding" in kinds:
            parts.append(f"sum_i min(i+1, {spec.sliding_window}) on sliding layers")
        if "chunked" in kinds:
            parts.append(f"sum_i (i mod {spec.attention_chunk_size}) + 1 on chunked layers")
        if parts:
            text = "causal, " + "; ".join(parts) + "; s(s+1)/2 on full layers"
        else:
            text = "causal s(s+1)/2 (as FlashAttention-style kernels execute)"
    if spec.architecture == "encoder-decoder":
        text += "; encoder bidirectional s x s; cross-attention seq x encoder_seq"
    return text


def _encoder_label(spec: ModelSpec, attention: str) -> str:
    w = int(spec.sliding_window or 0)
    b, r = _bigbird_blocks(spec)
    executed = attention == "full"
    if spec.sparse_attention == "longformer":
        g = spec.global_tokens
        if executed:
            text = (
                f"Longformer as transformers executes it: input padded to a multiple of {w}, "
                f"overlapping chunks of {w} queries x {w} keys and {3 * w // 2} values per "
                f"query" + (f", 2 x {g} x padded length for the global tokens" if g else "")
            )
        else:
            text = f"Longformer pattern: |i-j| <= {w // 2}" + (
                f" plus {g} global token(s) attending and attended by all" if g else ""
            )
    elif spec.sparse_attention == "bigbird":
        if executed:
            text = (
                f"BigBird as transformers executes it: padded to blocks of {b}, gathered "
                f"block matmuls; full s x s up to {(5 + 2 * r) * b} tokens (its fallback)"
            )
        else:
            text = (
                f"BigBird pattern: blocks of {b}, 3 sliding + 2 global + {r} random per "
                f"query block, the first and last global; full s x s up to "
                f"{(5 + 2 * r) * b} tokens"
            )
    elif "sliding" in spec.kind_counts and not executed:
        text = f"bidirectional; local layers attend |i-j| <= {w // 2}, global layers s x s"
    elif "sliding" in spec.kind_counts:
        text = "bidirectional full s x s on every layer (eager: local masks applied after QK^T)"
    else:
        text = "bidirectional (full s x s, encoder)"
    if spec.position_type == "disentangled" and spec.disentangled_terms:
        span = int(spec.relative_position_span or 0)
        terms = " and ".join(spec.disentangled_terms)
        text += f"; {terms}: s x {2 * span} relative positions each"
    return text


@dataclass(frozen=True)
class _Pass:
    """The rows of one forward pass over one stack."""

    batch: int
    seq: int
    context: int
    encoder_seq: int
    cross_kv_cached: bool
    global_tokens: int
    relative: int = 0
    """DeBERTa's relative embeddings (2k rows, projected once per forward)."""

    def rows(self, shape: Shape) -> int:
        if shape.rows == "tokens":
            return self.batch * self.seq
        if shape.rows == "encoder":
            return 0 if self.cross_kv_cached else self.batch * self.encoder_seq
        if shape.rows == "sequences":
            return self.batch
        if shape.rows == "global":
            return self.batch * self.global_tokens
        if shape.rows == "global_keys":
            return self.batch * self.seq if self.global_tokens else 0
        if shape.rows == "relative":
            return self.relative
        if shape.rows == "conv":
            # F.conv1d with padding K - 1 returns s + K - 1 outputs (FlopCounterMode counts all
            # of them); a cached decode step (context > 0) updates one column per token.
            pad = shape.fan_in - 1 if self.context == 0 else 0
            return self.batch * (self.seq + pad)
        raise AssertionError(shape.rows)


def _layer_flops(
    spec: ModelSpec, run: Run, step: _Pass, attention: str
) -> tuple[LayerFlops, dict[str, int], int, list[Term]]:
    """One layer of ``run``: (its LayerFlops, components, elementwise estimate, terms)."""
    plan = run.plan
    components: dict[str, int] = {}
    terms: list[Term] = []
    tokens = step.batch * step.seq
    projections = 0
    for shape in mixer_shapes(spec, plan):
        value = shape_flops(shape, step.rows(shape))
        if value and shape.flop is not None:
            components[shape.flop] = components.get(shape.flop, 0) + value
            projections += value
            terms.append(_shape_term(shape, step.rows(shape), run.count))
    pairs = 0
    core = scan_total = 0
    if plan.mixer in ("attention", "mla"):
        if attention == "full" and plan.pattern in ("longformer", "bigbird"):
            pairs, value_pairs = sparse_kernel_pairs(spec, plan, step.seq, step.global_tokens)
        else:
            pairs = value_pairs = layer_pairs(plan, spec, step.seq, step.context, attention)
        scores = attention_core_flops(spec, step.batch, pairs)[0]
        values = attention_core_flops(spec, step.batch, value_pairs)[1]
        components["attention.scores"] = scores
        components["attention.av"] = values
        core += scores + values
        if plan.mixer == "mla" and spec.index_num_heads:
            index_pairs = attended_pairs(
                step.seq, causal=plan.causal and attention == "causal", context=step.context
            )
            index = indexer_score_flops(spec, step.batch, index_pairs)
            components["attention.indexer.scores"] = index
            core += index
        heads, b = spec.num_heads, step.batch
        terms.append(
            Term(
                "attention.scores",
                (
                    *_layers(run.count),
                    ("2", 2),
                    ("B", b),
                    ("H", heads),
                    ("pairs", pairs),
                    ("d_qk", spec.qk_head_dim),
                ),
            )
        )
        terms.append(
            Term(
                "attention.av",
                (
                    *_layers(run.count),
                    ("2", 2),
                    ("B", b),
                    ("H", heads),
                    ("pairs", value_pairs),
                    ("d_v", spec.value_head_dim),
                ),
            )
        )
        for term, term_pairs in disentangled_pairs(spec, step.seq).items():
            name = f"attention.{term}.scores"
            value = attention_core_flops(spec, step.batch, term_pairs)[0]
            components[name] = value
            core += value
            terms.append(
                Term(
                    name,
                    (
                        *_layers(run.count),
                        ("2", 2),
                        ("B", b),
                        ("H", heads),
                        ("s·2k", term_pairs),
                        ("d", spec.qk_head_dim),
                    ),
                )
            )
    scan_mixers = [plan.mixer] + (["mamba2"] if plan.parallel_ssm else [])
    for mixer in scan_mixers:
        if mixer in _SCANS:
            name, scan = _SCANS[mixer]
            factors = scan(spec, step.batch, step.seq, decode=step.context > 0)
            value = math.prod(v for _, v in factors)
            if value:
                components[name] = components.get(name, 0) + value
                scan_total += value
                terms.append(Term(name, (*_layers(run.count), *factors)))
    cross = 0
    if plan.cross:
        for shape in cross_attention_shapes(spec):
            value = shape_flops(shape, step.rows(shape))
            if value and shape.flop is not None:
                components[shape.flop] = components.get(shape.flop, 0) + value
                cross += value
                terms.append(_shape_term(shape, step.rows(shape), run.count))
        cross_pairs = attended_pairs(step.seq, causal=False, keys=step.encoder_seq)
        scores, values = attention_core_flops(spec, step.batch, cross_pairs)
        components["cross_attention.scores"] = scores
        components["cross_attention.av"] = values
        cross += scores + values
    mlp = 0
    dense_experts = attention == "full" and spec.moe_dense_reference
    for shape in mlp_shapes(spec, plan):
        if dense_experts and shape.used is not None:
            shape = replace(shape, used=None)  # every expert runs on every token (Llama 4)
        value = shape_flops(shape, tokens)
        if value and shape.flop is not None:
            components[shape.flop] = components.get(shape.flop, 0) + value
            mlp += value
            terms.append(_shape_term(shape, tokens, run.count))
    layer = LayerFlops(
        index=run.start,
        stack=plan.stack,
        kind=plan.kind,
        pairs=pairs,
        projections=projections,
        attention=core,
        cross_attention=cross,
        mlp=mlp,
        moe=plan.mlp == "moe",
        count=run.count,
        scan=scan_total,
    )
    elementwise = elementwise_layer_flops(spec, plan, tokens, step.batch * pairs)
    if plan.cross:
        elementwise += cross_elementwise_flops(
            spec, tokens, step.batch * step.seq * step.encoder_seq
        )
    return layer, components, elementwise, terms


def _layers(count: int) -> tuple[tuple[str, int], ...]:
    return (("layers", count),) if count != 1 else ()


def _shape_term(shape: Shape, rows: int, layers: int) -> Term:
    """``layers x 2 x rows x fan_in x fan_out x copies``: one matmul's FLOPs as a term."""
    factors = (*_layers(layers), ("2", 2), (_ROW_SYMBOL[shape.rows], rows))
    factors += ((shape.symbols[0], shape.fan_in), (shape.symbols[1], shape.fan_out))
    if shape.copies_run != 1:
        factors += (("experts used" if shape.used is not None else "copies", shape.copies_run),)
    return Term(str(shape.flop), factors)


_ROW_SYMBOL = {
    "tokens": "t",
    "encoder": "t_enc",
    "sequences": "B",
    "logits": "rows",
    "conv": "B (s + K - 1)",
    "global": "B g",
    "global_keys": "t",
    "relative": "2k",
}


def forward_flops(
    spec: ModelSpec,
    seq: int,
    *,
    batch: int = 1,
    attention: str = "causal",
    logits: str = "all",
    context: int = 0,
    encoder_seq: int | None = None,
    include_encoder: bool = True,
    cross_kv_cached: bool = False,
) -> FlopCount:
    """Matmul FLOPs of one forward pass over ``seq`` new tokens per sequence, ``batch`` sequences.

    For every run of the layer plan: the matmuls of ``tfcli.shapes`` (mixer projections, MLP
    or MoE, cross-attention) at ``2 x rows x fan_in x fan_out``; the attention core (QK^T and
    AV over ``layer_pairs``) or the state mixer's scan; then the LM head and BERT's pooler.

    Encoders under ``attention="full"`` run every matmul on ``executed_length`` rows (the
    padding Longformer and BigBird add). ``context`` tokens are already in the KV cache
    (decode). For encoder-decoder models the
    encoder runs on ``encoder_seq`` tokens (default ``seq``) when ``include_encoder``; decoder
    layers add cross-attention (``seq x encoder_seq`` pairs), whose encoder K/V projections are
    skipped when ``cross_kv_cached`` (decode with a cache: projected once, in the prefill).
    LM head over every position (``logits="all"``: training, and what FlopCounterMode sees on a
    transformers forward) or only the last (``"last"``: generation).
    """
    _check(seq, batch, attention, logits)
    enc_seq = seq if encoder_seq is None else encoder_seq
    if enc_seq < 1:
        raise UsageError(f"encoder sequence length must be a positive integer, got {enc_seq}")
    components: dict[str, int] = {}
    terms: list[Term] = []
    elementwise = 0
    two_stacks = spec.architecture == "encoder-decoder"
    skip_encoder = two_stacks and not include_encoder
    plan_groups = [
        (g, p) for g, p in spec.layer_groups if not (skip_encoder and p.stack == "encoder")
    ]
    layers_of = {plan: group.count for group, plan in plan_groups}
    per_plan: dict[LayerPlan, LayerFlops] = {}
    for plan, count in layers_of.items():
        encoder_of_two = two_stacks and plan.stack == "encoder"
        step = _Pass(
            batch=batch,
            seq=enc_seq if encoder_of_two else executed_length(spec, seq, attention),
            context=0 if plan.stack == "encoder" else context,
            encoder_seq=enc_seq,
            cross_kv_cached=cross_kv_cached,
            global_tokens=min(spec.global_tokens, seq),
            relative=2 * int(spec.relative_position_span or 0),
        )
        layer, parts, element, layer_terms = _layer_flops(
            spec, Run(plan, 0, count), step, attention
        )
        per_plan[plan] = replace(layer, count=1)
        _add(components, parts, count)
        elementwise += count * element
        terms += layer_terms
    by_value = groups_by_value(plan_groups, lambda plan: per_plan[plan].value_key())
    representative = {layer.value_key(): layer for layer in per_plan.values()}
    groups = tuple(
        replace(
            representative[key],
            index=g.first,
            count=g.count,
            stride=g.stride,
            spans=g.spans,
            more_spans=g.more_spans,
        )
        for g, key in by_value
    )
    rows = {
        "logits": batch * (seq if logits == "all" else 1),
        "sequences": batch,
        "tokens": batch * executed_length(spec, seq, attention),
    }
    for shape in embedding_shapes(spec) + head_shapes(spec):
        value = shape_flops(shape, rows.get(shape.rows, 0))
        if value and shape.flop is not None:
            components[shape.flop] = components.get(shape.flop, 0) + value
            terms.append(_shape_term(shape, rows[shape.rows], 1))
    return FlopCount(
        seq=seq,
        batch=batch,
        context=context,
        encoder_seq=enc_seq if two_stacks else 0,
        attention_convention=attention if spec.is_causal or encoder_has_pattern(spec) else "full",
        logits=logits,
        components={k: v for k, v in components.items() if v},
        groups=groups,
        elementwise=elementwise,
        terms=tuple(terms),
        spec=spec,
        per_plan=per_plan,
    )


def cross_attention_flops(
    spec: ModelSpec, batch: int, seq: int, encoder_seq: int, *, project_kv: bool
) -> dict[str, int]:
    """Cross-attention of one decoder layer (T5, BART): q and o on the ``seq`` decoder tokens,
    k and v on the ``encoder_seq`` encoder outputs (``tfcli.shapes.cross_attention_shapes``),
    ``seq x encoder_seq`` pairs (``attended_pairs(seq, causal=False, keys=encoder_seq)``).
    With a cache (decode) the encoder's K/V were projected once in the prefill."""
    rows = {"tokens": batch * seq, "encoder": batch * encoder_seq if project_kv else 0}
    out = _by_flop(cross_attention_shapes(spec), rows)
    scores, values = attention_core_flops(
        spec, batch, attended_pairs(seq, causal=False, keys=encoder_seq)
    )
    out["cross_attention.scores"] = scores
    out["cross_attention.av"] = values
    return out


def elementwise_layer_flops(
    spec: ModelSpec, plan: LayerPlan, tokens: int, scored_pairs: int
) -> int:
    """Approximate non-matmul FLOPs of one layer (not part of the matmul total).

    softmax ~5 per score and head (max, subtract, exp, sum, divide); each norm ~5 per element
    (LayerNorm) or ~4 (RMSNorm); two residual adds per element; activation ~8 per MLP element
    (GELU/SiLU, plus 1 for the gate multiply); a state mixer's recurrence ~6 per state element
    and token. A rough guide, as in Kaplan et al. 2020, who neglect these terms.
    """
    h = spec.hidden_size
    norm = 5 if spec.norm_type == "layernorm" else 4
    softmax = 5 * spec.num_heads * scored_pairs if plan.mixer in ("attention", "mla") else 0
    if plan.mlp == "moe":
        width = int(spec.num_experts_per_token or 0) * spec.expert_width + spec.shared_expert_width
    elif plan.mlp == "none":
        width = 0
    else:
        width = spec.intermediate_size
    activation = tokens * width * (9 if spec.mlp_gated else 8)
    return (
        softmax
        + 2 * norm * tokens * h
        + 2 * tokens * h
        + activation
        + 6 * tokens * _state(spec, plan)
    )


def _state(spec: ModelSpec, plan: LayerPlan) -> int:
    """State elements a recurrent mixer updates per token (for the elementwise estimate)."""
    n = int(spec.ssm_state_size or 0)
    if plan.mixer == "mamba":
        return int(spec.ssm_inner_size or 0) * n
    if plan.mixer == "mamba2" or plan.parallel_ssm:
        return int(spec.ssm_inner_size or 0) * n
    if plan.mixer == "gated_deltanet":
        heads = int(spec.linear_num_value_heads or 0)
        return heads * int(spec.linear_key_head_dim or 0) * int(spec.linear_value_head_dim or 0)
    if plan.mixer == "rwkv":
        return 4 * (spec.rwkv_attention_size or spec.hidden_size)
    if plan.mixer == "lightning":
        return spec.num_heads * spec.resolved_head_dim**2
    return 0


def cross_elementwise_flops(spec: ModelSpec, tokens: int, scored_pairs: int) -> int:
    """Approximate non-matmul FLOPs of one cross-attention sublayer: softmax ~5 per score and
    head, its norm (~5 LayerNorm, ~4 RMSNorm per element) and residual add (1 per element)."""
    norm = 5 if spec.norm_type == "layernorm" else 4
    return 5 * spec.num_heads * scored_pairs + (norm + 1) * tokens * spec.hidden_size


# ---- modes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodeCost:
    """One new token per sequence with ``context`` cached tokens, and the same without a cache."""

    with_cache: FlopCount
    without_cache: FlopCount

    @property
    def saving(self) -> float:
        """How many times more a token costs without a KV cache."""
        return self.without_cache.total / self.with_cache.total


def decode_flops(
    spec: ModelSpec,
    context: int,
    *,
    batch: int = 1,
    attention: str = "causal",
    encoder_seq: int | None = None,
) -> DecodeCost:
    """FLOPs of generating one token after ``context`` tokens, with and without a KV cache.

    With a cache the new token is one row through every matmul and attends ``context + 1``
    keys (``attended_pairs(1, causal=True, context=L)``, capped by a sliding window); the
    encoder of an encoder-decoder ran in the prefill and its cross-attention K/V are cached;
    state mixers take one recurrent step. Without a cache the whole prefix of ``context + 1``
    tokens runs again (cross K/V projected again; the encoder output is kept, as
    ``generate(use_cache=False)`` does). Both take the logits of the last position only.
    The ratio is what caching saves (``DecodeCost.saving``).
    """
    if spec.architecture == "encoder":
        raise UsageError(f"{spec.name} is encoder-only: it does not generate tokens (no decode)")
    if context < 0:
        raise UsageError(f"context must be >= 0, got {context}")
    with_cache = forward_flops(
        spec,
        1,
        batch=batch,
        attention=attention,
        logits="last",
        context=context,
        encoder_seq=encoder_seq,
        include_encoder=False,
        cross_kv_cached=True,
    )
    without = forward_flops(
        spec,
        context + 1,
        batch=batch,
        attention=attention,
        logits="last",
        encoder_seq=encoder_seq,
        include_encoder=False,
    )
    return DecodeCost(with_cache, without)


def training_flops(forward: FlopCount, *, recompute: bool = False) -> int:
    """Training-step matmul FLOPs: forward + backward (2 x forward) = 3 x forward; activation
    recomputation runs the forward once more: 4 x forward (Narayanan et al. 2021, section 5)."""
    return (4 if recompute else 3) * forward.total


# ---- published cross-checks -------------------------------------------------------------------


EMBEDDING_PARAM_COMPONENTS = (
    "token_embeddings",
    "position_embeddings",
    "token_type_embeddings",
    "relative_attention_bias",
    "relative_embeddings",
)
"""Parameter components that are lookups, not matmuls: Kaplan's "embedding" parameters."""


def non_embedding_params(param_components: Mapping[str, int]) -> int:
    """N of Kaplan et al. 2020 (section 2.1) and PaLM: every parameter but the token, position,
    token-type and relative-position embedding tables, from ``count_params(spec).components``.

    An untied LM head is in N (its matmul is 2 x h x V per token); a tied one is not (it shares
    the token embedding table), which is why 2N misses the tied head's FLOPs.
    """
    return sum(v for k, v in param_components.items() if k not in EMBEDDING_PARAM_COMPONENTS)


def _attention_layers(spec: ModelSpec) -> int:
    return sum(g.count for g, plan in spec.layer_groups if plan.mixer in ("attention", "mla"))


def kaplan_forward_flops_per_token(non_embedding_params: int, spec: ModelSpec, n_ctx: int) -> int:
    """Kaplan et al. 2020 ("Scaling Laws for Neural Language Models"), Table 1 and eq. 2.2:
    C_forward ~= 2N + 2 n_layer n_ctx d_attn FLOPs per token, d_attn = heads x head_dim.

    2N: every non-embedding weight is one multiply-accumulate per token. The context term is
    QK^T + AV of a causal model on average: a token at position i attends ~i keys, each pair
    costing 2 d_attn (QK^T) + 2 d_attn (AV), so the mean over n_ctx positions is
    2 n_ctx d_attn per layer (attention layers only). tfcli's causal count gives
    2 d_attn (s + 1) per token and layer.
    """
    d_attn = spec.num_heads * spec.qk_head_dim
    return 2 * non_embedding_params + 2 * _attention_layers(spec) * n_ctx * d_attn


def palm_training_flops_per_token(non_embedding_params: int, spec: ModelSpec, seq: int) -> int:
    """PaLM (Chowdhery et al. 2022), appendix B (model FLOPs utilisation): 6N + 12 L H Q T
    training FLOPs per token, L (attention) layers, H heads, Q head dim, T sequence length.

    6N = 3 x 2N (forward + backward); 12 L H Q T = 3 x (2 + 2) x L x H x Q x T: QK^T and AV
    over all T keys per query, i.e. the full (non-causal) pair count. torchtitan's
    ``get_num_flop_per_token`` uses the same formula with N excluding the token embeddings.
    """
    d_attn = spec.num_heads * spec.qk_head_dim
    return 6 * non_embedding_params + 12 * _attention_layers(spec) * d_attn * seq


def megatron_mamba_layer_flops(spec: ModelSpec, tokens: int) -> int:
    """Megatron-LM's forward FLOPs of one Mamba(-2) layer (megatron/training/training.py,
    ``num_floating_point_operations`` -> ``hybrid_flops`` -> ``mamba_layer_flops``):
    ``2 t h (2 d_in + 2 G N + H)`` (in_proj) ``+ 7 t d_in N`` (scan) ``+ 2 t d_in h``
    (out_proj), with Megatron's fixed ``d_in = 2 h``, G groups, state N, H heads; no conv1d.
    (``hybrid_flops`` multiplies the forward by 3 for a training step.)"""
    h = spec.hidden_size
    d_in = 2 * h
    n, heads = int(spec.ssm_state_size or 0), int(spec.ssm_num_heads or 0)
    in_proj = 2 * tokens * h * (2 * d_in + 2 * spec.ssm_groups * n + heads)
    return in_proj + 7 * tokens * d_in * n + 2 * tokens * d_in * h


def megatron_gdn_layer_flops(spec: ModelSpec, tokens: int) -> int:
    """Megatron-LM's forward FLOPs of one Gated DeltaNet layer (megatron/training/training.py,
    ``gdn_layer_flops``): ``2 t (h (2 Dqk + 2 Dv + 2 Hv) + K (2 Dqk + Dv) + 4 Hv dv^2 + h Dv)``
    with ``Dqk = Hk dk`` and ``Dv = Hv dv``: in_proj, conv1d, a recurrence of ``4 dv^2`` per
    head and token, out_proj. Chunking and the sequence length do not enter."""
    h = spec.hidden_size
    hv = int(spec.linear_num_value_heads or 0)
    dv = int(spec.linear_value_head_dim or 0)
    qk = int(spec.linear_num_key_heads or 0) * int(spec.linear_key_head_dim or 0)
    v = hv * dv
    k = int(spec.conv_kernel or 0)
    per_token = h * (2 * qk + 2 * v + 2 * hv) + k * (2 * qk + v) + 4 * hv * dv * dv + h * v
    return 2 * tokens * per_token


MEGATRON_STATE_LAYERS = {
    "mamba2": ("Mamba-2", megatron_mamba_layer_flops),
    "gated_deltanet": ("Gated DeltaNet", megatron_gdn_layer_flops),
}
"""State mixers Megatron-LM's FLOP formula names, with its per-layer function."""


# ---- scaling ------------------------------------------------------------------------------------

DEFAULT_SCALING_SEQS = (2048, 8192, 32768, 131072)


@dataclass(frozen=True)
class ScalingRow:
    """Forward matmul FLOPs and their attention part (QK^T + AV) at one sequence length."""

    seq: int
    total: int
    attention: int

    @property
    def attention_share(self) -> float:
        return self.attention / self.total if self.total else 0.0


def scaling_table(
    spec: ModelSpec,
    seqs: tuple[int, ...] = DEFAULT_SCALING_SEQS,
    *,
    batch: int = 1,
    attention: str = "causal",
    logits: str = "all",
    encoder_seq: int | None = None,
) -> list[ScalingRow]:
    """``forward_flops`` at each sequence length (sorted, unique): projections and MLP grow
    linearly in s, attention pairs quadratically, so the attention share rises with s."""
    rows = []
    for s in sorted(set(seqs)):
        count = forward_flops(
            spec, s, batch=batch, attention=attention, logits=logits, encoder_seq=encoder_seq
        )
        rows.append(ScalingRow(s, count.total, count.attention_flops))
    return rows


__all__ = [
    "ATTENTION_CONVENTIONS",
    "DEFAULT_SCALING_SEQS",
    "LOGITS_MODES",
    "DecodeCost",
    "FlopCount",
    "LayerFlops",
    "ScalingRow",
    "attended_pairs",
    "attention_core_flops",
    "attention_projection_flops",
    "convention_label",
    "convention_name",
    "cross_attention_flops",
    "decode_flops",
    "forward_flops",
    "gated_deltanet_widths",
    "kaplan_forward_flops_per_token",
    "linear_flops",
    "mamba_conv_channels",
    "mlp_flops",
    "moe_flops",
    "non_embedding_params",
    "other_convention",
    "palm_training_flops_per_token",
    "scaling_table",
    "training_flops",
]
