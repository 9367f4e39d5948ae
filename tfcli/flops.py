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
  bidirectionally (full, or their sparse pattern).
* Linear-attention and state-space layers count what transformers' reference torch
  implementation executes (chunked scans, chunk sizes stated): what FlopCounterMode sees.
* Backward = 2 x forward for matmuls; a training step = 3 x forward, 4 x with activation
  recomputation (Narayanan et al. 2021; PaLM appendix B).

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from tfcli.errors import UsageError
from tfcli.plan import LayerPlan, Run
from tfcli.shapes import (
    Shape,
    attention_shapes,
    cross_attention_shapes,
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
      ``keys`` overrides the key count for cross-attention over ``keys`` encoder tokens.

    Every attention FLOP in tfcli goes through this function (DESIGN.md section 4).
    """
    if seq < 0 or context < 0:
        raise UsageError(f"sequence lengths must be >= 0, got seq={seq}, context={context}")
    for name, value in (("sliding window", window), ("attention chunk", chunk)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be positive, got {value}")
    if not causal:
        if keys is not None:
            return seq * keys
        bound = window if window is not None else chunk
        cached = context if bound is None else min(context, bound - 1)
        return seq * (cached + seq)
    if chunk is not None:
        return _chunk_prefix(context + seq, chunk) - _chunk_prefix(context, chunk)
    return _sum_of_min(context + 1, context + seq, window)


def bidirectional_window_pairs(seq: int, radius: int) -> int:
    """Pairs of a bidirectional local window: query ``i`` attends ``j`` with ``|i - j| <=
    radius`` inside ``[0, seq)`` (ModernBERT local layers, Longformer's local part):
    ``s + 2 x sum_{d=1}^{r} (s - d)`` for ``r < s``."""
    r = min(radius, seq - 1)
    return seq + 2 * (r * seq - r * (r + 1) // 2)


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
    for run in spec.layer_runs:
        if run.plan.mixer in ("attention", "mla"):
            return run.plan
    return spec.layer_runs[0].plan


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


def gated_deltanet_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
    """Matmuls of transformers' Gated DeltaNet (Qwen3-Next) per layer, in fp32.

    Prefill, ``torch_chunk_gated_delta_rule`` with chunks of C = 64 (the sequence padded to
    ``n = ceil(s / C)`` chunks), per sequence and value head: ``k_beta k^T`` and ``q k^T``
    within each chunk ``2 x 2 C^2 d_k``, then per chunk ``k_cumdecay S``, ``q S`` and
    ``k^T v_new`` ``3 x 2 C d_k d_v`` and ``attn v_new`` ``2 C^2 d_v``; the triangular solves
    are not matmuls (FlopCounterMode counts none). One cached decode token
    (``torch_recurrent_gated_delta_rule``) is elementwise: 0 here.
    """
    if decode:
        return 0
    c = GATED_DELTANET_CHUNK
    n = _chunks(seq, c)
    dk, dv = int(spec.linear_key_head_dim or 0), int(spec.linear_value_head_dim or 0)
    heads = int(spec.linear_num_value_heads or 0)
    per_chunk = 4 * c * c * dk + 2 * c * c * dv + 6 * c * dk * dv
    return batch * heads * n * per_chunk


def lightning_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
    """Matmuls of MiniMax lightning attention per layer (MiniMaxLightningAttention).

    Prefill in blocks of b = 256 (the last block shorter, not padded), per sequence and head:
    ``Q K^T`` and ``(QK) V`` ``2 x 2 b^2 d``, ``Q (K^T V)`` and ``K^T V`` ``2 x 2 b d^2``; with
    a cache (decode) each token runs ``K^T V`` and ``Q S``: ``4 d^2``.
    """
    d = spec.resolved_head_dim
    if decode:
        return batch * spec.num_heads * seq * 4 * d * d
    b = LIGHTNING_BLOCK
    full, rest = divmod(seq, b)
    squares = full * b * b + rest * rest
    return batch * spec.num_heads * (4 * d * squares + 4 * d * d * seq)


def mamba_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
    """Matmuls of transformers' Mamba-1 selective scan per layer (``mamba_selective_scan``
    sequential path, and ``mamba_selective_state_update`` when decoding): the output
    contraction ``state (d_in x N) @ C (N)`` per token, ``2 x B x s x d_in x N``; the state
    update is elementwise."""
    return 2 * batch * seq * int(spec.ssm_inner_size or 0) * int(spec.ssm_state_size or 0)


def mamba2_scan_flops(spec: ModelSpec, batch: int, seq: int, *, decode: bool) -> int:
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
        return batch * seq * 2 * heads * p * n
    chunk = spec.ssm_chunk_size or MAMBA2_CHUNK
    c = _chunks(seq, chunk)
    per_seq = (
        2 * c * chunk * chunk * heads * (n + p)
        + 4 * c * chunk * heads * p * n
        + 2 * (c + 1) ** 2 * heads * p * n
    )
    return batch * per_seq


_SCANS = {
    "gated_deltanet": ("linear_attention.scan", gated_deltanet_scan_flops),
    "lightning": ("lightning.scan", lightning_scan_flops),
    "mamba": ("mamba.scan", mamba_scan_flops),
    "mamba2": ("mamba.scan", mamba2_scan_flops),
}


# ---- attention pattern pairs ----------------------------------------------------------------


def layer_pairs(plan: LayerPlan, spec: ModelSpec, seq: int, context: int, attention: str) -> int:
    """Attended pairs per sequence of one attention layer of ``plan``, in the convention."""
    causal = plan.causal and attention == "causal"
    if plan.pattern == "sliding":
        if not plan.causal and attention == "causal":
            return bidirectional_window_pairs(seq, int(plan.window or 0) // 2)
        return attended_pairs(seq, causal=causal, window=plan.window, context=context)
    if plan.pattern == "chunked":
        return attended_pairs(seq, causal=causal, chunk=plan.window, context=context)
    if plan.pattern == "longformer":
        return longformer_pairs(spec, seq, executed=attention == "full")
    if plan.pattern == "bigbird":
        return bigbird_pairs(spec, seq, executed=attention == "full")
    return attended_pairs(seq, causal=causal, context=context)


def longformer_pairs(spec: ModelSpec, seq: int, *, executed: bool) -> int:
    """Longformer (Beltagy et al. 2020) local window ``w`` (``w / 2`` each side) plus
    ``global_tokens`` g attending and attended by every token.

    Pattern: local pairs plus, for the g global queries, all s keys, and for every other
    query the global keys outside its window. ``executed``: what transformers'
    ``LongformerSelfAttention`` multiplies: the sequence padded to a multiple of w, then
    ``_sliding_chunks_query_key_matmul`` over overlapping chunks of w (2w/w... ``(n - 1)``
    chunk pairs of ``w x w`` ... ) — ``s_pad x (w + 1) + ...``; see the oracle test.
    """
    w = int(spec.sliding_window or 0)
    radius = w // 2
    g = min(spec.global_tokens, seq)
    if executed:
        padded = -(-seq // w) * w
        chunks = padded // radius - 1
        # every overlapping chunk of w queries is multiplied with its w keys
        return chunks * w * w + 2 * g * padded
    local = bidirectional_window_pairs(seq, radius)
    extra = g * seq - sum(min(seq, i + radius + 1) - max(0, i - radius) for i in range(g))
    outside = _sum_of_min(1, seq - 1 - g - radius, g) if seq - 1 - g - radius >= 1 else 0
    return local + extra + outside


def bigbird_pairs(spec: ModelSpec, seq: int, *, executed: bool) -> int:
    """BigBird (Zaheer et al. 2020) block-sparse attention with blocks of b tokens, r random
    blocks: the first and last query blocks attend everything (global), the second and
    second-to-last ``4 + r`` key blocks, the others ``5 + r`` (3 sliding, 2 global, r
    random): ``b^2 [2 n + 2 (4 + r) + (n - 4)(5 + r)]`` with ``n = s / b`` blocks.
    transformers runs full attention when ``s <= (5 + 2 r) b`` (its fallback), so there the
    count is ``s^2`` either way."""
    b = int(spec.sparse_block_size or 0)
    r = int(spec.sparse_random_blocks or 0)
    padded = -(-seq // b) * b
    if padded <= (5 + 2 * r) * b:
        return seq * seq
    n = padded // b
    return b * b * (2 * n + 2 * (4 + r) + (n - 4) * (5 + r))


# ---- whole forward pass -----------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFlops:
    """Matmul FLOPs of one layer (or of each of ``count`` identical layers from ``index``);
    ``total`` = projections + attention + cross + mlp."""

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

    @property
    def total(self) -> int:
        return self.projections + self.attention + self.cross_attention + self.mlp


@dataclass(frozen=True)
class FlopCount:
    """Forward matmul FLOPs by component (summing to ``total``) and per layer run."""

    seq: int
    batch: int
    context: int
    encoder_seq: int
    attention_convention: str
    logits: str
    components: dict[str, int]
    runs: tuple[LayerFlops, ...]
    elementwise: int
    terms: tuple[Term, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.components.values())

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


def convention_label(spec: ModelSpec, attention: str) -> str:
    """Human description of the pair-counting convention in force."""
    if not spec.is_causal:
        if spec.sparse_attention != "none":
            how = "as transformers executes it" if attention == "full" else "the sparse pattern"
            return f"bidirectional {spec.sparse_attention} attention ({how})"
        if "sliding" in spec.kind_counts and attention == "causal":
            return (
                f"bidirectional; local layers attend |i-j| <= {int(spec.sliding_window or 0) // 2}"
            )
        return "bidirectional (full s x s, encoder)"
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


@dataclass(frozen=True)
class _Pass:
    """The rows of one forward pass over one stack."""

    batch: int
    seq: int
    context: int
    encoder_seq: int
    cross_kv_cached: bool
    global_tokens: int

    def rows(self, shape: Shape) -> int:
        if shape.rows == "tokens":
            return self.batch * self.seq
        if shape.rows == "encoder":
            return 0 if self.cross_kv_cached else self.batch * self.encoder_seq
        if shape.rows == "sequences":
            return self.batch
        if shape.rows == "global":
            return self.batch * self.global_tokens
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
    core = 0
    if plan.mixer in ("attention", "mla"):
        pairs = layer_pairs(plan, spec, step.seq, step.context, attention)
        scores, values = attention_core_flops(spec, step.batch, pairs)
        components["attention.scores"] = scores
        components["attention.av"] = values
        core += scores + values
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
                    ("pairs", pairs),
                    ("d_v", spec.value_head_dim),
                ),
            )
        )
    scan_mixers = [plan.mixer] + (["mamba2"] if plan.parallel_ssm else [])
    for mixer in scan_mixers:
        if mixer in _SCANS:
            name, scan = _SCANS[mixer]
            value = scan(spec, step.batch, step.seq, decode=step.context > 0)
            if value:
                components[name] = components.get(name, 0) + value
                core += value
                terms.append(Term(name, (*_layers(run.count), ("scan", value))))
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
    for shape in mlp_shapes(spec, plan):
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

    ``context`` tokens are already in the KV cache (decode). For encoder-decoder models the
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
    runs: list[LayerFlops] = []
    terms: list[Term] = []
    elementwise = 0
    two_stacks = spec.architecture == "encoder-decoder"
    for run in spec.layer_runs:
        encoder_of_two = two_stacks and run.stack == "encoder"
        if encoder_of_two and not include_encoder:
            continue
        step = _Pass(
            batch=batch,
            seq=enc_seq if encoder_of_two else seq,
            context=0 if run.stack == "encoder" else context,
            encoder_seq=enc_seq,
            cross_kv_cached=cross_kv_cached,
            global_tokens=min(spec.global_tokens, seq),
        )
        layer, parts, element, layer_terms = _layer_flops(spec, run, step, attention)
        _add(components, parts, run.count)
        elementwise += run.count * element
        runs.append(layer)
        terms += layer_terms
    rows = {"logits": batch * (seq if logits == "all" else 1), "sequences": batch}
    for shape in head_shapes(spec):
        value = shape_flops(shape, rows.get(shape.rows, 0))
        if value and shape.flop is not None:
            components[shape.flop] = components.get(shape.flop, 0) + value
            terms.append(_shape_term(shape, rows[shape.rows], 1))
    return FlopCount(
        seq=seq,
        batch=batch,
        context=context,
        encoder_seq=enc_seq if two_stacks else 0,
        attention_convention=attention if spec.is_causal else "full",
        logits=logits,
        components={k: v for k, v in components.items() if v},
        runs=tuple(runs),
        elementwise=elementwise,
        terms=tuple(terms),
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
    return sum(run.count for run in spec.layer_runs if run.plan.mixer in ("attention", "mla"))


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
