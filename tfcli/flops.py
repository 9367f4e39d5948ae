"""FLOPs of a transformer forward pass, by component and per layer, with explicit conventions.

Conventions (DESIGN.md section 4; stated in every output):

* A FLOP is one multiply or one add: a multiply-accumulate is 2 FLOPs, so a matmul of
  (m x k) by (k x n) costs ``2 m k n`` (the convention of Kaplan et al. 2020, PaLM and
  ``torch.utils.flop_counter``). Headline FLOPs are matmul FLOPs. Bias adds, softmax, norms,
  activations, RoPE and residual adds go to a separate, approximate "elementwise" line.
* Attention cost is a count of attended (query, key) pairs, computed only by
  ``attended_pairs``: full ``s*s``; causal ``s(s+1)/2``; sliding window ``w``:
  ``sum_i min(i+1, w)``; with ``L`` tokens already cached, query ``i`` attends ``L+i+1`` keys.
  QK^T and AV each cost ``2 x heads x head_dim`` FLOPs per pair.
* Decoders default to the causal count (what FlashAttention-style kernels execute); ``full``
  is what ``torch.utils.flop_counter.FlopCounterMode`` and torchtitan count (an eager
  implementation multiplies the whole s x s and masks afterwards). Encoders attend
  bidirectionally (full).
* Backward = 2 x forward for matmuls; a training step = 3 x forward, 4 x with activation
  recomputation (Narayanan et al. 2021; PaLM appendix B).

Only the standard library is imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from tfcli.errors import UsageError
from tfcli.spec import ModelSpec

ATTENTION_CONVENTIONS = ("causal", "full")
LOGITS_MODES = ("all", "last")


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


def attended_pairs(
    seq: int,
    *,
    causal: bool,
    window: int | None = None,
    context: int = 0,
    keys: int | None = None,
) -> int:
    """Attended (query, key) pairs for ``seq`` new queries after ``context`` cached tokens.

    * causal: query ``i`` (0-based) sees ``context + i + 1`` keys, at most ``window``:
      ``sum_{i<seq} min(context + i + 1, w)``, in closed form. Without context and window this
      is ``s(s+1)/2``; with a window ``w <= s`` it is ``w(w+1)/2 + (s - w) w``; decode of one
      token with ``L`` cached is ``min(L + 1, w)``. What FlashAttention-style kernels execute
      (Dao et al. 2022 skip fully masked blocks; a block-level kernel does a little more).
    * full (``causal=False``): every query is multiplied with every key present, masks applied
      afterwards (an eager implementation; what ``FlopCounterMode`` and torchtitan count):
      ``seq x (context + seq)``. A sliding window does not shrink the s x s product, but it
      bounds the cache: a sliding layer keeps ``min(context, w - 1)`` past tokens
      (transformers 5 ``DynamicSlidingWindowLayer``), so keys = ``min(context, w-1) + seq``.
      ``keys`` overrides the key count for cross-attention over ``keys`` encoder tokens.

    Every attention FLOP in tfcli goes through this function (DESIGN.md section 4).
    """
    if seq < 0 or context < 0:
        raise UsageError(f"sequence lengths must be >= 0, got seq={seq}, context={context}")
    if window is not None and window < 1:
        raise UsageError(f"sliding window must be positive, got {window}")
    if not causal:
        if keys is not None:
            return seq * keys
        cached = context if window is None else min(context, window - 1)
        return seq * (cached + seq)
    return _sum_of_min(context + 1, context + seq, window)


# ---- per-token matmul costs (one function per formula) ---------------------------------------


def linear_flops(tokens: int, fan_in: int, fan_out: int) -> int:
    """A dense layer on ``tokens`` rows: ``2 x tokens x fan_in x fan_out`` (bias add excluded)."""
    return 2 * tokens * fan_in * fan_out


def mlp_flops(spec: ModelSpec, tokens: int, width: int) -> int:
    """An MLP of ``width``: gated (SwiGLU/GeGLU) ``3 x 2 t h f``; plain ``2 x 2 t h f``."""
    matrices = 3 if spec.mlp_gated else 2
    return matrices * linear_flops(tokens, spec.hidden_size, width)


def attention_core_flops(spec: ModelSpec, batch: int, pairs: int) -> tuple[int, int]:
    """(QK^T, AV) FLOPs for ``pairs`` attended pairs per sequence and head.

    scores ``2 x B x H x pairs x d_qk``; weighted values ``2 x B x H x pairs x d_v``
    (d_qk = nope + rope and d_v = v_head_dim under MLA).
    """
    scores = 2 * batch * spec.num_heads * pairs * spec.qk_head_dim
    values = 2 * batch * spec.num_heads * pairs * spec.value_head_dim
    return scores, values


def attention_projection_flops(spec: ModelSpec, tokens: int) -> dict[str, int]:
    """Q, K, V and output projections for ``tokens`` rows of one self-attention layer.

    Standard: q ``2 t h (H d)``, k and v ``2 t h (KVH d)`` each, o ``2 t (H d) h``.
    MLA (DeepSeek-V2/V3, transformers ``DeepseekV3Attention``): q_a ``2 t h r_q``, q_b
    ``2 t r_q H d_qk`` (or q ``2 t h H d_qk`` without q_lora_rank), kv_a ``2 t h (r_kv + d_rope)``,
    kv_b ``2 t r_kv H (d_nope + d_v)``, o ``2 t (H d_v) h``.
    """
    h, heads = spec.hidden_size, spec.num_heads
    if spec.is_mla:
        parts: dict[str, int] = {}
        q_out = heads * spec.qk_head_dim
        if spec.q_lora_rank:
            parts["attention.q_a_proj"] = linear_flops(tokens, h, spec.q_lora_rank)
            parts["attention.q_b_proj"] = linear_flops(tokens, spec.q_lora_rank, q_out)
        else:
            parts["attention.q_proj"] = linear_flops(tokens, h, q_out)
        kv_rank = int(spec.kv_lora_rank or 0)
        rope = int(spec.qk_rope_head_dim or 0)
        nope = int(spec.qk_nope_head_dim or 0)
        parts["attention.kv_a_proj"] = linear_flops(tokens, h, kv_rank + rope)
        parts["attention.kv_b_proj"] = linear_flops(
            tokens, kv_rank, heads * (nope + spec.value_head_dim)
        )
        parts["attention.o_proj"] = linear_flops(tokens, heads * spec.value_head_dim, h)
        return parts
    d = spec.resolved_head_dim
    return {
        "attention.q_proj": linear_flops(tokens, h, heads * d),
        "attention.k_proj": linear_flops(tokens, h, spec.kv_heads * d),
        "attention.v_proj": linear_flops(tokens, h, spec.kv_heads * d),
        "attention.o_proj": linear_flops(tokens, heads * d, h),
    }


def moe_flops(spec: ModelSpec, tokens: int) -> dict[str, int]:
    """One MoE layer on ``tokens`` rows: router, the top-k experts each token uses, shared.

    router ``2 t h E``; routed ``k x mlp(expert_width)`` per token (only the experts actually
    used: tokens x top-k expert evaluations); shared experts ``mlp(shared_width)``; Qwen2-MoE's
    shared gate ``2 t h``.
    """
    experts = int(spec.num_experts or 0)
    top_k = int(spec.num_experts_per_token or 0)
    parts = {
        "moe.router": linear_flops(tokens, spec.hidden_size, experts),
        "moe.routed_experts": top_k * mlp_flops(spec, tokens, spec.expert_width),
    }
    if spec.shared_expert_width:
        parts["moe.shared_experts"] = mlp_flops(spec, tokens, spec.shared_expert_width)
    if spec.shared_expert_gate:
        parts["moe.shared_expert_gate"] = linear_flops(tokens, spec.hidden_size, 1)
    return parts


# ---- whole forward pass -----------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFlops:
    """Matmul FLOPs of one layer; ``total`` = projections + attention + cross + mlp."""

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

    @property
    def total(self) -> int:
        return self.projections + self.attention + self.cross_attention + self.mlp


@dataclass(frozen=True)
class FlopCount:
    """Forward matmul FLOPs by component (summing to ``total``) and per layer."""

    seq: int
    batch: int
    context: int
    encoder_seq: int
    attention_convention: str
    logits: str
    components: dict[str, int]
    layers: tuple[LayerFlops, ...]
    elementwise: int
    formulas: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.components.values())

    @property
    def attention_flops(self) -> int:
        """The pair-dependent part: QK^T and AV of self- and cross-attention."""
        return sum(v for k, v in self.components.items() if k.endswith((".scores", ".av")))

    @property
    def attention_share(self) -> float:
        return self.attention_flops / self.total if self.total else 0.0


def _check(seq: int, batch: int, attention: str, logits: str) -> None:
    if seq < 1:
        raise UsageError(f"--seq must be a positive integer, got {seq}")
    if batch < 1:
        raise UsageError(f"--batch must be a positive integer, got {batch}")
    if attention not in ATTENTION_CONVENTIONS:
        raise UsageError(f"--attention must be causal or full, got {attention!r}")
    if logits not in LOGITS_MODES:
        raise UsageError(f"--logits must be all or last, got {logits!r}")


def _add(components: dict[str, int], parts: dict[str, int]) -> None:
    for name, value in parts.items():
        components[name] = components.get(name, 0) + value


def other_convention(attention: str) -> str:
    """The convention not in force: ``causal`` <-> ``full`` (shown beside it as a ratio)."""
    return "full" if attention == "causal" else "causal"


def convention_label(spec: ModelSpec, attention: str) -> str:
    """Human description of the pair-counting convention in force."""
    if not spec.is_causal:
        return "bidirectional (full s x s, encoder)"
    if attention == "full":
        text = "full s x s (as FlopCounterMode / torchtitan count; masks ignored)"
    elif "sliding" in spec.layer_kinds:
        kinds = "every layer" if set(spec.layer_kinds) == {"sliding"} else "sliding layers"
        text = (
            f"causal, sum_i min(i+1, {spec.sliding_window}) on {kinds} (sliding window), "
            "s(s+1)/2 elsewhere"
            if kinds != "every layer"
            else f"causal, sum_i min(i+1, {spec.sliding_window}) (sliding window)"
        )
    else:
        text = "causal s(s+1)/2 (as FlashAttention-style kernels execute)"
    if spec.architecture == "encoder-decoder":
        text += "; encoder bidirectional s x s; cross-attention seq x encoder_seq"
    return text


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

    Per layer: q/k/v/o projections (``attention_projection_flops``), QK^T and AV over the pairs
    of ``attended_pairs`` (``attention_core_flops``), cross-attention in encoder-decoder decoder
    layers (``cross_attention_flops``), a dense MLP (``mlp_flops``) or a MoE layer
    (``moe_flops``); then the LM head and BERT's pooler. 2 FLOPs per multiply-accumulate.

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
        raise UsageError(f"--encoder-seq must be a positive integer, got {enc_seq}")
    components: dict[str, int] = {}
    layers: list[LayerFlops] = []
    elementwise = 0

    def run_stack(stack: str, n_layers: int, tokens_seq: int, causal: bool, ctx: int) -> None:
        nonlocal elementwise
        tokens = batch * tokens_seq
        for i in range(n_layers):
            kind = spec.layer_kinds[i] if stack != "encoder" else "full"
            window = spec.sliding_window if kind == "sliding" else None
            use_causal = causal and attention == "causal"
            pairs = attended_pairs(tokens_seq, causal=use_causal, window=window, context=ctx)
            proj = attention_projection_flops(spec, tokens)
            scores, values = attention_core_flops(spec, batch, pairs)
            _add(components, proj)
            _add(components, {"attention.scores": scores, "attention.av": values})
            cross = 0
            if stack == "decoder" and spec.architecture == "encoder-decoder":
                cross_parts = cross_attention_flops(
                    spec, batch, tokens_seq, enc_seq, project_kv=not cross_kv_cached
                )
                _add(components, cross_parts)
                cross = sum(cross_parts.values())
                elementwise += cross_elementwise_flops(spec, tokens, batch * tokens_seq * enc_seq)
            moe_layer = stack != "encoder" and spec.moe_layer_flags[i]
            mlp = (
                moe_flops(spec, tokens)
                if moe_layer
                else {"mlp": mlp_flops(spec, tokens, spec.intermediate_size)}
            )
            _add(components, mlp)
            layers.append(
                LayerFlops(
                    index=i,
                    stack=stack,
                    kind=kind,
                    pairs=pairs,
                    projections=sum(proj.values()),
                    attention=scores + values,
                    cross_attention=cross,
                    mlp=sum(mlp.values()),
                    moe=moe_layer,
                )
            )
            elementwise += elementwise_layer_flops(spec, tokens, batch * pairs, moe_layer)

    if spec.architecture == "encoder":
        run_stack("encoder", spec.num_layers, seq, False, 0)
    else:
        if spec.architecture == "encoder-decoder" and include_encoder:
            run_stack("encoder", int(spec.num_encoder_layers or 0), enc_seq, False, 0)
        run_stack("decoder", spec.num_layers, seq, True, context)
    if spec.lm_head:
        rows = batch * (seq if logits == "all" else 1)
        components["lm_head"] = linear_flops(rows, spec.hidden_size, spec.vocab_size)
    if spec.pooler:
        components["pooler"] = linear_flops(batch, spec.hidden_size, spec.hidden_size)
    components = {k: v for k, v in components.items() if v}
    result = FlopCount(
        seq=seq,
        batch=batch,
        context=context,
        encoder_seq=enc_seq if spec.architecture == "encoder-decoder" else 0,
        attention_convention=attention if spec.is_causal else "full",
        logits=logits,
        components=components,
        layers=tuple(layers),
        elementwise=elementwise,
    )
    return dataclasses.replace(result, formulas=flop_formulas(spec, result))


def cross_attention_flops(
    spec: ModelSpec, batch: int, seq: int, encoder_seq: int, *, project_kv: bool
) -> dict[str, int]:
    """Cross-attention of one decoder layer (T5, BART): q and o on the ``seq`` decoder tokens,
    k and v on the ``encoder_seq`` encoder outputs, ``seq x encoder_seq`` pairs (every decoder
    query sees every encoder key: ``attended_pairs(seq, causal=False, keys=encoder_seq)``).

    q ``2 t_dec h (H d)``, k and v ``2 t_enc h (KVH d)`` each, o ``2 t_dec (H d) h``. With a
    cache (decode) the encoder's K/V were projected once in the prefill: ``project_kv=False``.
    """
    h, d = spec.hidden_size, spec.resolved_head_dim
    dec_tokens, enc_tokens = batch * seq, batch * encoder_seq
    kv = linear_flops(enc_tokens, h, spec.kv_heads * d) if project_kv else 0
    scores, values = attention_core_flops(
        spec, batch, attended_pairs(seq, causal=False, keys=encoder_seq)
    )
    return {
        "cross_attention.q_proj": linear_flops(dec_tokens, h, spec.num_heads * d),
        "cross_attention.k_proj": kv,
        "cross_attention.v_proj": kv,
        "cross_attention.scores": scores,
        "cross_attention.av": values,
        "cross_attention.o_proj": linear_flops(dec_tokens, spec.num_heads * d, h),
    }


def elementwise_layer_flops(spec: ModelSpec, tokens: int, scored_pairs: int, moe: bool) -> int:
    """Approximate non-matmul FLOPs of one layer (not part of the matmul total).

    softmax ~5 per score and head (max, subtract, exp, sum, divide); each norm ~5 per element
    (LayerNorm) or ~4 (RMSNorm); two residual adds per element; activation ~8 per MLP element
    (GELU/SiLU, plus 1 for the gate multiply). A rough guide, as in Kaplan et al. 2020, who
    neglect these terms.
    """
    h = spec.hidden_size
    norm = 5 if spec.norm_type == "layernorm" else 4
    softmax = 5 * spec.num_heads * scored_pairs
    width = (
        int(spec.num_experts_per_token or 0) * spec.expert_width + spec.shared_expert_width
        if moe
        else spec.intermediate_size
    )
    activation = tokens * width * (9 if spec.mlp_gated else 8)
    return softmax + 2 * norm * tokens * h + 2 * tokens * h + activation


def cross_elementwise_flops(spec: ModelSpec, tokens: int, scored_pairs: int) -> int:
    """Approximate non-matmul FLOPs of one cross-attention sublayer: softmax ~5 per score and
    head, its norm (~5 LayerNorm, ~4 RMSNorm per element) and residual add (1 per element)."""
    norm = 5 if spec.norm_type == "layernorm" else 4
    return 5 * spec.num_heads * scored_pairs + (norm + 1) * tokens * spec.hidden_size


def flop_formulas(spec: ModelSpec, count: FlopCount) -> dict[str, str]:
    """Each component's formula with the numbers put in (``--explain``), per layer of its kind.

    t = tokens in the pass (batch x seq), h hidden, H heads, KVH KV heads, d head dim, f MLP
    width, V vocabulary; a matmul (m x k) @ (k x n) is 2 m k n FLOPs.
    """
    t = count.batch * count.seq
    h, heads = spec.hidden_size, spec.num_heads
    first = next((layer for layer in count.layers if layer.stack != "encoder"), None)
    first = first or (count.layers[0] if count.layers else None)
    pairs = first.pairs if first else 0
    ctx = f" after {count.context:,} cached" if count.context else ""
    out = {
        "tokens": f"t = batch x seq = {count.batch} x {count.seq:,} = {t:,}{ctx}",
        "pairs (first layer)": f"{convention_label(spec, count.attention_convention)}: "
        f"{pairs:,} per sequence",
        "attention.scores": f"2 x B x H x pairs x d_qk = 2 x {count.batch} x {heads} x "
        f"{pairs:,} x {spec.qk_head_dim} (first layer; summed over layers)",
        "attention.av": f"2 x B x H x pairs x d_v = 2 x {count.batch} x {heads} x "
        f"{pairs:,} x {spec.value_head_dim} (first layer; summed over layers)",
    }
    if spec.is_mla:
        r_q, r_kv = spec.q_lora_rank, int(spec.kv_lora_rank or 0)
        rope, nope = int(spec.qk_rope_head_dim or 0), int(spec.qk_nope_head_dim or 0)
        d_qk, d_v = spec.qk_head_dim, spec.value_head_dim
        if r_q:
            out["attention.q_a_proj"] = f"2 x t x h x r_q = 2 x {t:,} x {h} x {r_q} per layer"
            out["attention.q_b_proj"] = (
                f"2 x t x r_q x H x d_qk = 2 x {t:,} x {r_q} x {heads} x {d_qk} per layer"
            )
        else:
            out["attention.q_proj"] = (
                f"2 x t x h x H x d_qk = 2 x {t:,} x {h} x {heads} x {d_qk} per layer"
            )
        out["attention.kv_a_proj"] = (
            f"2 x t x h x (r_kv + d_rope) = 2 x {t:,} x {h} x ({r_kv} + {rope}) per layer"
        )
        out["attention.kv_b_proj"] = (
            f"2 x t x r_kv x H x (d_nope + d_v) = 2 x {t:,} x {r_kv} x {heads} x "
            f"({nope} + {d_v}) per layer"
        )
        out["attention.o_proj"] = (
            f"2 x t x H x d_v x h = 2 x {t:,} x {heads} x {d_v} x {h} per layer"
        )
    else:
        d = spec.resolved_head_dim
        out["attention.q_proj"] = f"2 x t x h x H x d = 2 x {t:,} x {h} x {heads} x {d} per layer"
        out["attention.k_proj"] = (
            f"2 x t x h x KVH x d = 2 x {t:,} x {h} x {spec.kv_heads} x {d} per layer (v alike)"
        )
        out["attention.o_proj"] = f"2 x t x H x d x h = 2 x {t:,} x {heads} x {d} x {h} per layer"
    if count.encoder_seq:
        out["cross_attention"] = (
            f"q, o: 2 x t x h x H x d; k, v: 2 x (B x {count.encoder_seq:,}) x h x KVH x d "
            f"(not in a cached decode step); pairs = seq x encoder_seq = {count.seq:,} x "
            f"{count.encoder_seq:,}"
        )
    matrices = 3 if spec.mlp_gated else 2
    out["mlp"] = (
        f"{matrices} x 2 x t x h x f = {matrices} x 2 x {t:,} x {h} x {spec.intermediate_size} "
        "per dense layer"
    )
    if spec.is_moe:
        out["moe.router"] = f"2 x t x h x E = 2 x {t:,} x {h} x {spec.num_experts} per MoE layer"
        out["moe.routed_experts"] = (
            f"top-k x {matrices} x 2 x t x h x f_e = {spec.num_experts_per_token} x {matrices}"
            f" x 2 x {t:,} x {h} x {spec.expert_width} per MoE layer (experts each token uses)"
        )
        if spec.shared_expert_width:
            out["moe.shared_experts"] = (
                f"{matrices} x 2 x t x h x f_shared = {matrices} x 2 x {t:,} x {h} x "
                f"{spec.shared_expert_width} per MoE layer"
            )
    if spec.lm_head:
        rows = count.batch * (count.seq if count.logits == "all" else 1)
        which = "every position" if count.logits == "all" else "last position"
        out["lm_head"] = f"2 x rows x h x V = 2 x {rows:,} x {h} x {spec.vocab_size} ({which})"
    out["elementwise (approx.)"] = (
        "softmax ~5 per score and head, norms ~4-5 and residual adds 1 per element, "
        "activation ~8-9 per MLP element; not in the matmul total"
    )
    return out


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
    encoder of an encoder-decoder ran in the prefill and its cross-attention K/V are cached.
    Without a cache the whole prefix of ``context + 1`` tokens runs again (causal pairs of
    ``context + 1`` tokens, cross K/V projected again; the encoder output is kept, as
    ``generate(use_cache=False)`` does). Both take the logits of the last position only.
    The ratio is what caching saves (``DecodeCost.saving``).
    """
    if spec.architecture == "encoder":
        raise UsageError(f"{spec.name} is encoder-only: it does not generate tokens (no decode)")
    if context < 0:
        raise UsageError(f"--context must be >= 0, got {context}")
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
)
"""Parameter components that are lookups, not matmuls: Kaplan's "embedding" parameters."""


def non_embedding_params(param_components: Mapping[str, int]) -> int:
    """N of Kaplan et al. 2020 (section 2.1) and PaLM: every parameter but the token, position,
    token-type and relative-position embedding tables, from ``count_params(spec).components``.

    An untied LM head is in N (its matmul is 2 x h x V per token); a tied one is not (it shares
    the token embedding table), which is why 2N misses the tied head's FLOPs.
    """
    return sum(v for k, v in param_components.items() if k not in EMBEDDING_PARAM_COMPONENTS)


def kaplan_forward_flops_per_token(non_embedding_params: int, spec: ModelSpec, n_ctx: int) -> int:
    """Kaplan et al. 2020 ("Scaling Laws for Neural Language Models"), Table 1 and eq. 2.2:
    C_forward ~= 2N + 2 n_layer n_ctx d_attn FLOPs per token, d_attn = heads x head_dim.

    2N: every non-embedding weight is one multiply-accumulate per token. The context term is
    QK^T + AV of a causal model on average: a token at position i attends ~i keys, each pair
    costing 2 d_attn (QK^T) + 2 d_attn (AV), so the mean over n_ctx positions is
    2 n_ctx d_attn per layer. tfcli's causal count gives 2 d_attn (s + 1) per token and layer.
    """
    d_attn = spec.num_heads * spec.qk_head_dim
    return 2 * non_embedding_params + 2 * spec.total_layers * n_ctx * d_attn


def palm_training_flops_per_token(non_embedding_params: int, spec: ModelSpec, seq: int) -> int:
    """PaLM (Chowdhery et al. 2022), appendix B (model FLOPs utilisation): 6N + 12 L H Q T
    training FLOPs per token, L layers, H heads, Q head dim, T sequence length.

    6N = 3 x 2N (forward + backward); 12 L H Q T = 3 x (2 + 2) x L x H x Q x T: QK^T and AV
    over all T keys per query, i.e. the full (non-causal) pair count. torchtitan's
    ``get_num_flop_per_token`` uses the same formula with N excluding the token embeddings.
    """
    d_attn = spec.num_heads * spec.qk_head_dim
    return 6 * non_embedding_params + 12 * spec.total_layers * d_attn * seq


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
