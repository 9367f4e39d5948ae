"""The parameter tensors of each layer kind, and the matmul each one takes part in.

One table, two quantities: parameters (``Shape.params``) and matmul FLOPs (``2 x rows x
fan_in x fan_out`` per copy used, ``tfcli.flops``) both read these shapes, so they cannot
disagree. Shapes follow the transformers modules of each model type (the oracle, DESIGN.md
section 5): ``nn.Linear(fan_in, fan_out, bias)`` is ``fan_in x fan_out (+ fan_out)``
parameters; a vector (norm weight, A_log, attention sinks) has ``fan_in = 1`` and no matmul; a
depthwise ``nn.Conv1d(C, C, K, groups=C)`` is ``rows = "conv"``.

The same table says how transformers stores each shape (``Shape.names`` and ``layout``), so
``tfcli.tensors`` derives the parameter tensors (their count and dim-0 layout, what AdamW's
``step`` scalars and FSDP2's padded dim-0 shards depend on) from it: the shapes of
``model.parameters()`` on the meta device are the oracle (tests/test_tensors_oracle.py).

Only the standard library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfcli.plan import LayerPlan
from tfcli.spec import ModelSpec

ROWS = ("tokens", "encoder", "sequences", "logits", "conv", "global", "global_keys", "relative")
"""Which rows a matmul runs on: every new token; the encoder's tokens (cross-attention k/v);
one per sequence (BERT's pooler); the positions whose logits are taken (LM head); the padded
length ``s + K - 1`` of a causal depthwise convolution; the global tokens (Longformer's
query_global); every token when there are global tokens, else none (Longformer's key_global
and value_global); the ``2k`` relative-position embeddings, once per forward whatever the
batch (DeBERTa's position projections)."""


@dataclass(frozen=True)
class Shape:
    """``copies`` parameter tensors of ``fan_in x fan_out`` (+ ``fan_out`` bias each).

    ``component`` groups parameters in ``tfcli params``; ``flop`` names the matmul component
    in ``tfcli flops`` (None: not a matmul: norms, vectors, embedding lookups). ``used`` copies
    run for each row (MoE: top-k of E experts; None: all). ``tied`` shapes share another's
    storage: FLOPs, no new parameters (a tied LM head).
    """

    component: str
    fan_in: int
    fan_out: int
    bias: bool = False
    copies: int = 1
    used: int | None = None
    flop: str | None = None
    rows: str = "tokens"
    tied: bool = False
    symbols: tuple[str, str] = ("in", "out")
    """Names of ``fan_in`` and ``fan_out`` for ``--explain`` (``h``, ``H·d``, ``f``, ...)."""
    names: tuple[str, ...] = ()
    """Where transformers keeps the tensors, relative to the layer (or to the model for
    embeddings and heads): one module per copy, or one module holding every copy fused by
    rows; shapes naming the same module are fused into it (GPT-2's ``c_attn``, NeoX's
    ``query_key_value``). With ``dims``: one parameter name per tensor."""
    layout: str = "linear"
    """How the copies are stored (``LAYOUTS``)."""
    dims: tuple[tuple[int, ...], ...] = ()
    """The ``explicit`` layout: each named tensor's dims (their elements sum to ``params``)."""
    stacked: int = 0
    """``stacked`` layouts: the experts stored along dim 0 of one tensor."""

    @property
    def params_per_copy(self) -> int:
        return self.fan_in * self.fan_out + (self.fan_out if self.bias else 0)

    @property
    def params(self) -> int:
        return 0 if self.tied else self.copies * self.params_per_copy

    @property
    def active_params(self) -> int:
        """Parameters one token uses: ``used`` copies (routed experts), else all."""
        if self.tied:
            return 0
        return (self.copies if self.used is None else self.used) * self.params_per_copy

    @property
    def copies_run(self) -> int:
        """Copies each row multiplies through (``used`` experts, else all)."""
        return self.copies if self.used is None else self.used


LAYOUTS = ("linear", "linear_t", "table", "conv", "stacked", "stacked_t", "explicit")
"""How a shape's parameters are stored (``fan_out`` rows per copy):

* ``linear``: ``nn.Linear``: weight ``(rows, fan_in)``, bias ``(rows,)``; ``linear_t``:
  GPT-2's ``Conv1D``, weight ``(fan_in, rows)`` (fused along dim 1);
* ``table``: an embedding ``(fan_in, fan_out)`` per name;
* ``conv``: a depthwise ``nn.Conv1d(C, C, K, groups=C)``: weight ``(C, 1, K)``, bias ``(C,)``;
* ``stacked``: transformers 5 fused experts ``(E, m fan_out, fan_in)`` and bias
  ``name_bias (E, m fan_out)`` (m = copies / E: 2 for gate_up); ``stacked_t``: ``(E, fan_in,
  m fan_out)`` (Llama 4, gpt-oss);
* ``explicit``: ``dims`` lists each tensor (norm weights and biases, A_log, sinks)."""


def vector(
    component: str,
    size: int,
    copies: int = 1,
    symbol: str = "size",
    *,
    tensors: dict[str, tuple[int, ...]] | None = None,
) -> Shape:
    """A parameter vector (norm weight, bias-only tensor, sinks, A_log): no matmul.
    ``tensors``: the parameters it is stored as (name -> dims; elements summing to
    ``copies x size``)."""
    tensors = tensors or {}
    return Shape(
        component,
        1,
        size,
        copies=copies,
        symbols=("1", symbol),
        names=tuple(tensors),
        layout="explicit",
        dims=tuple(tensors.values()),
    )


def norm_tensors(
    spec: ModelSpec, name: str, width: int | tuple[int, ...]
) -> dict[str, tuple[int, ...]]:
    """One norm's parameters: ``name.weight`` (+ ``name.bias`` for a LayerNorm with bias);
    none for a non-parametric norm (OLMo)."""
    dims = width if isinstance(width, tuple) else (width,)
    if not spec.norm_affine:
        return {}
    out = {f"{name}.weight": dims}
    if spec.norm_type == "layernorm" and spec.norm_bias:
        out[f"{name}.bias"] = dims
    return out


def linear(
    component: str, fan_in: int, fan_out: int, flop: str, *, bias: bool = False, **kw: object
) -> Shape:
    return Shape(component, fan_in, fan_out, bias=bias, flop=flop, **kw)  # type: ignore[arg-type]


# ---- norms ----------------------------------------------------------------------------------


def norm_width_params(spec: ModelSpec, width: int) -> int:
    """One norm over ``width`` features: LayerNorm ``2 x width`` (weight and bias), LayerNorm
    without bias or RMSNorm ``width`` (weight only), non-parametric LayerNorm 0 (OLMo)."""
    if not spec.norm_affine:
        return 0
    if spec.norm_type == "layernorm" and spec.norm_bias:
        return 2 * width
    return width


def norms_per_layer(spec: ModelSpec, plan: LayerPlan) -> int:
    """Hidden-width norms in one block.

    pre, post or output placement: 2 (attention, MLP); sandwich (Gemma-2/3): 4; parallel
    residual: ``parallel_norms`` (GPT-J, Falcon-7B, Cohere share one; NeoX has 2); a pure
    Mamba block (no MLP): 1; cross-attention adds one; ModernBERT's layer 0 has no attention
    norm (``first_layer_attention_norm``).
    """
    if spec.parallel_residual:
        count = spec.parallel_norms
    elif spec.norm_position == "sandwich":
        count = 4
    elif plan.mlp == "none":
        count = 1
    else:
        count = 2
    if plan.cross:
        count += 1
    if plan.first and not spec.first_layer_attention_norm:
        count -= 1
    return count


def norm_shapes(spec: ModelSpec, plan: LayerPlan) -> list[Shape]:
    """The block's hidden-width norms, stored as ``norm_0`` (before the mixer), ``norm_1``..."""
    count, width = norms_per_layer(spec, plan), norm_width_params(spec, spec.hidden_size)
    if not count * width:
        return []
    label = "2h (weight + bias)" if width == 2 * spec.hidden_size else "h"
    tensors: dict[str, tuple[int, ...]] = {}
    for i in range(count):
        tensors.update(norm_tensors(spec, f"norm_{i}", spec.hidden_size))
    return [
        Shape(
            "norms",
            count,
            width,
            symbols=("norms", label),
            names=tuple(tensors),
            layout="explicit",
            dims=tuple(tensors.values()),
        )
    ]


# ---- token mixers ----------------------------------------------------------------------------

_H_KV = ("h", "KVH·d")
_HD_H = ("H·d", "h")
_H_HD = ("h", "H·d")


def attention_shapes(spec: ModelSpec, plan: LayerPlan) -> list[Shape]:
    """Self-attention of one layer.

    Standard (LlamaAttention, GPT2Attention, BertSelfAttention, ...): q ``h x H d`` (x 2 with
    Qwen3-Next's output gate), k and v ``h x KVH d`` each, with ``attention_qkv_bias``; o
    ``H d x h`` with ``attention_out_bias``; q/k norms ``2 x d`` (shared by heads, Qwen3) or
    ``(H + KVH) x d`` (one per head, OLMo-2, Cohere); gpt-oss sinks: ``H``.
    MLA (DeepseekV3Attention): q_a ``h x r_q`` (+bias), q_a_norm ``r_q``, q_b ``r_q x H d_qk``
    (or q ``h x H d_qk``), kv_a ``h x (r_kv + d_rope)`` (+bias), kv_a_norm ``r_kv``, kv_b
    ``r_kv x H (d_nope + d_v)``, o ``H d_v x h`` (+bias); DeepSeek-V3.2's indexer adds wq_b
    ``r_q x I d_I``, wk ``h x d_I``, a LayerNorm ``2 d_I`` and weights_proj ``h x I``.
    Longformer adds query_global, key_global, value_global (``h x H d`` + bias each).
    DeBERTa without share_att_key adds pos_key_proj / pos_query_proj.
    """
    h, heads, kv = spec.hidden_size, spec.num_heads, spec.kv_heads
    qkv_bias, out_bias = spec.attention_qkv_bias, spec.attention_out_bias
    if plan.mixer == "mla":
        return _mla_shapes(spec)
    d = spec.resolved_head_dim
    q_out = heads * d * (2 if spec.attention_output_gate else 1)
    layout = "linear_t" if spec.family in CONV1D_FAMILIES else "linear"
    fused = "self_attn.qkv_proj" if spec.family in FUSED_QKV_FAMILIES else None
    shapes = [
        linear(
            "attention.q",
            h,
            q_out,
            "attention.q_proj",
            bias=qkv_bias,
            symbols=("h", "2 H·d (query + gate)" if spec.attention_output_gate else "H·d"),
            names=(fused or "self_attn.q_proj",),
            layout=layout,
        ),
        linear(
            "attention.k",
            h,
            kv * d,
            "attention.k_proj",
            bias=qkv_bias,
            symbols=_H_KV,
            names=(fused or "self_attn.k_proj",),
            layout=layout,
        ),
        linear(
            "attention.v",
            h,
            kv * d,
            "attention.v_proj",
            bias=qkv_bias,
            symbols=_H_KV,
            names=(fused or "self_attn.v_proj",),
            layout=layout,
        ),
        linear(
            "attention.o",
            heads * d,
            h,
            "attention.o_proj",
            bias=out_bias,
            symbols=_HD_H,
            names=("self_attn.o_proj",),
            layout=layout,
        ),
    ]
    if spec.qk_norm:
        if spec.qk_norm_weights == "all":
            width = (heads + kv) * d
            # OLMo-2 / OLMoE: RMSNorm(H d) and RMSNorm(KVH d); Cohere: LayerNorm((H, d))
            q_dims = (heads, d) if spec.family == "cohere" else (heads * d,)
            k_dims = (kv, d) if spec.family == "cohere" else (kv * d,)
            tensors = norm_tensors(spec, "self_attn.q_norm", q_dims)
            tensors.update(norm_tensors(spec, "self_attn.k_norm", k_dims))
            shapes.append(
                vector("attention.qk_norm", norm_width_params(spec, 1) * width, tensors=tensors)
            )
        else:
            tensors = norm_tensors(spec, "self_attn.q_norm", d)
            tensors.update(norm_tensors(spec, "self_attn.k_norm", d))
            shapes.append(
                vector("attention.qk_norm", 2 * norm_width_params(spec, d), tensors=tensors)
            )
    if spec.attention_sinks:
        shapes.append(vector("attention.sinks", heads, tensors={"self_attn.sinks": (heads,)}))
    if spec.global_attention_projections:
        shapes += longformer_global_shapes(spec)
    if spec.position_type == "disentangled":
        shapes += disentangled_position_shapes(spec)
    return shapes


CONV1D_FAMILIES = ("gpt2",)
"""transformers families whose linears are ``Conv1D`` (weight ``(fan_in, fan_out)``)."""
FUSED_QKV_FAMILIES = ("gpt2", "gpt_neox", "falcon", "bloom", "mpt", "phi3", "modernbert")
"""transformers families that store q, k and v as one projection (``c_attn``,
``query_key_value``, ``Wqkv``, ``qkv_proj``): one tensor of ``(H + 2 KVH) d`` rows."""
FUSED_GATE_UP_FAMILIES = ("phi3", "modernbert", "granitemoehybrid")
"""transformers families that store the MLP's gate and up projections as one tensor."""
STACKED_T_FAMILIES = ("llama4_text", "llama4", "gpt_oss")
"""transformers families whose fused experts are ``(E, h, 2 f)`` and ``(E, f, h)``."""


def longformer_global_shapes(spec: ModelSpec) -> list[Shape]:
    """LongformerSelfAttention's query_global, key_global, value_global (``h x H d`` + bias
    each, ``_compute_global_attn_output_from_hidden``): query_global runs on the global tokens
    only, key_global and value_global on every token, and none of them runs when no token is
    global (``is_global_attn`` false)."""
    h, width = spec.hidden_size, spec.num_heads * spec.resolved_head_dim
    bias = spec.attention_qkv_bias
    return [
        linear(
            "attention.global_q",
            h,
            width,
            "attention.global_q_proj",
            bias=bias,
            names=("self_attn.query_global",),
            rows="global",
            symbols=_H_HD,
        ),
        linear(
            "attention.global_k",
            h,
            width,
            "attention.global_k_proj",
            bias=bias,
            names=("self_attn.key_global",),
            rows="global_keys",
            symbols=_H_HD,
        ),
        linear(
            "attention.global_v",
            h,
            width,
            "attention.global_v_proj",
            bias=bias,
            names=("self_attn.value_global",),
            rows="global_keys",
            symbols=_H_HD,
        ),
    ]


def disentangled_position_shapes(spec: ModelSpec) -> list[Shape]:
    """DeBERTa-v2's position projections (``DisentangledSelfAttention.disentangled_attention_
    bias``), on the ``2k`` relative embeddings (``rows = "relative"``, once per forward):
    with ``share_att_key`` the content query_proj and key_proj project them (both, whatever
    ``pos_att_type`` says: FLOPs, no new parameters); otherwise pos_key_proj (c2p) and
    pos_query_proj (p2c), ``h x H d`` + bias each."""
    h, width = spec.hidden_size, spec.num_heads * spec.resolved_head_dim
    if spec.share_attention_key:
        return [
            linear(
                "attention.q",
                h,
                width,
                "attention.pos_q_proj",
                rows="relative",
                tied=True,
                symbols=_H_HD,
            ),
            linear(
                "attention.k",
                h,
                width,
                "attention.pos_k_proj",
                rows="relative",
                tied=True,
                symbols=_H_HD,
            ),
        ]
    terms = spec.disentangled_terms or ()
    shapes = []
    if "c2p" in terms:
        shapes.append(
            linear(
                "attention.pos_k",
                h,
                width,
                "attention.pos_k_proj",
                bias=True,
                rows="relative",
                names=("self_attn.pos_key_proj",),
                symbols=_H_HD,
            )
        )
    if "p2c" in terms:
        shapes.append(
            linear(
                "attention.pos_q",
                h,
                width,
                "attention.pos_q_proj",
                bias=True,
                rows="relative",
                names=("self_attn.pos_query_proj",),
                symbols=_H_HD,
            )
        )
    return shapes


def _mla_shapes(spec: ModelSpec) -> list[Shape]:
    h, heads = spec.hidden_size, spec.num_heads
    qkv_bias, out_bias = spec.attention_qkv_bias, spec.attention_out_bias
    rank = int(spec.kv_lora_rank or 0)
    rope = int(spec.qk_rope_head_dim or 0)
    nope = int(spec.qk_nope_head_dim or 0)
    shapes: list[Shape] = []
    r_q = spec.q_lora_rank
    a = "self_attn."
    if r_q:
        shapes += [
            linear(
                "attention.q_a",
                h,
                r_q,
                "attention.q_a_proj",
                bias=qkv_bias,
                names=(a + "q_a_proj",),
            ),
            vector("attention.q_a_norm", r_q, tensors={a + "q_a_layernorm.weight": (r_q,)}),
            linear(
                "attention.q_b",
                r_q,
                heads * spec.qk_head_dim,
                "attention.q_b_proj",
                names=(a + "q_b_proj",),
            ),
        ]
    else:
        shapes.append(
            linear(
                "attention.q",
                h,
                heads * spec.qk_head_dim,
                "attention.q_proj",
                names=(a + "q_proj",),
            )
        )
    shapes += [
        linear(
            "attention.kv_a",
            h,
            rank + rope,
            "attention.kv_a_proj",
            bias=qkv_bias,
            names=(a + "kv_a_proj_with_mqa",),
        ),
        vector("attention.kv_a_norm", rank, tensors={a + "kv_a_layernorm.weight": (rank,)}),
        linear(
            "attention.kv_b",
            rank,
            heads * (nope + spec.value_head_dim),
            "attention.kv_b_proj",
            names=(a + "kv_b_proj",),
        ),
        linear(
            "attention.o",
            heads * spec.value_head_dim,
            h,
            "attention.o_proj",
            bias=out_bias,
            names=(a + "o_proj",),
        ),
    ]
    if spec.index_num_heads and spec.index_head_dim:
        ih, idim = spec.index_num_heads, spec.index_head_dim
        i = a + "indexer."
        shapes += [
            linear(
                "attention.indexer",
                int(r_q or h),
                ih * idim,
                "attention.indexer.q_proj",
                names=(i + "wq_b",),
            ),
            linear("attention.indexer", h, idim, "attention.indexer.k_proj", names=(i + "wk",)),
            vector(
                "attention.indexer",
                2 * idim,
                tensors={i + "k_norm.weight": (idim,), i + "k_norm.bias": (idim,)},
            ),
            linear(
                "attention.indexer",
                h,
                ih,
                "attention.indexer.weights_proj",
                names=(i + "weights_proj",),
            ),
        ]
    return shapes


def cross_attention_shapes(spec: ModelSpec) -> list[Shape]:
    """Cross-attention of one decoder layer (T5, BART): q and o on decoder tokens, k and v on
    the encoder's tokens (``rows = "encoder"``), the shapes of self-attention."""
    h, heads, kv, d = spec.hidden_size, spec.num_heads, spec.kv_heads, spec.resolved_head_dim
    qkv_bias, out_bias = spec.attention_qkv_bias, spec.attention_out_bias
    return [
        linear(
            "cross_attention",
            h,
            heads * d,
            "cross_attention.q_proj",
            bias=qkv_bias,
            names=("cross_attn.q_proj",),
        ),
        linear(
            "cross_attention",
            h,
            kv * d,
            "cross_attention.k_proj",
            bias=qkv_bias,
            rows="encoder",
            names=("cross_attn.k_proj",),
        ),
        linear(
            "cross_attention",
            h,
            kv * d,
            "cross_attention.v_proj",
            bias=qkv_bias,
            rows="encoder",
            names=("cross_attn.v_proj",),
        ),
        linear(
            "cross_attention",
            heads * d,
            h,
            "cross_attention.o_proj",
            bias=out_bias,
            names=("cross_attn.o_proj",),
        ),
    ]


def gated_deltanet_widths(spec: ModelSpec) -> tuple[int, int, int]:
    """(key_dim, value_dim, conv_dim) of a Gated DeltaNet layer: ``Hk dk``, ``Hv dv`` and
    ``2 Hk dk + Hv dv`` (the q, k and v channels the causal convolution runs over)."""
    key_dim = int(spec.linear_num_key_heads or 0) * int(spec.linear_key_head_dim or 0)
    value_dim = int(spec.linear_num_value_heads or 0) * int(spec.linear_value_head_dim or 0)
    return key_dim, value_dim, 2 * key_dim + value_dim


def gated_deltanet_shapes(spec: ModelSpec) -> list[Shape]:
    """Gated DeltaNet (Qwen3NextGatedDeltaNet): in_proj_qkvz ``h x (2 Hk dk + 2 Hv dv)``,
    in_proj_ba ``h x 2 Hv``, depthwise conv1d ``conv_dim x K`` (no bias), dt_bias and A_log
    ``Hv`` each, a gated RMSNorm ``dv``, out_proj ``Hv dv x h``."""
    h = spec.hidden_size
    hv = int(spec.linear_num_value_heads or 0)
    key_dim, value_dim, conv_dim = gated_deltanet_widths(spec)
    k = int(spec.conv_kernel or 0)
    dv = int(spec.linear_value_head_dim or 0)
    return [
        linear(
            "linear_attention.in_proj",
            h,
            2 * key_dim + 2 * value_dim,
            "linear_attention.in_proj_qkvz",
            names=("linear_attn.in_proj_qkvz",),
        ),
        linear(
            "linear_attention.in_proj",
            h,
            2 * hv,
            "linear_attention.in_proj_ba",
            names=("linear_attn.in_proj_ba",),
        ),
        Shape(
            "linear_attention.conv1d",
            k,
            conv_dim,
            flop="linear_attention.conv1d",
            rows="conv",
            names=("linear_attn.conv1d",),
            layout="conv",
        ),
        vector(
            "linear_attention.dt_a",
            2 * hv,
            tensors={"linear_attn.dt_bias": (hv,), "linear_attn.A_log": (hv,)},
        ),
        vector("linear_attention.norm", dv, tensors={"linear_attn.norm.weight": (dv,)}),
        linear(
            "linear_attention.out_proj",
            value_dim,
            h,
            "linear_attention.out_proj",
            names=("linear_attn.out_proj",),
        ),
    ]


def lightning_shapes(spec: ModelSpec) -> list[Shape]:
    """MiniMax lightning attention (MiniMaxLightningAttention): qkv_proj ``h x 3 H d``, an
    RMSNorm ``H d``, out_proj ``H d x h``, output_gate ``h x H d``; no biases."""
    h, inner = spec.hidden_size, spec.num_heads * spec.resolved_head_dim
    return [
        linear(
            "lightning.qkv_proj", h, 3 * inner, "lightning.qkv_proj", names=("self_attn.qkv_proj",)
        ),
        vector("lightning.norm", inner, tensors={"self_attn.norm.weight": (inner,)}),
        linear(
            "lightning.output_gate",
            h,
            inner,
            "lightning.output_gate",
            names=("self_attn.output_gate",),
        ),
        linear("lightning.out_proj", inner, h, "lightning.out_proj", names=("self_attn.out_proj",)),
    ]


def mamba_conv_channels(spec: ModelSpec, mixer: str) -> int:
    """Channels of a Mamba layer's causal convolution: ``d_inner`` (Mamba-1) or ``d_inner +
    2 G N`` (Mamba-2: x, B and C are convolved together)."""
    inner = int(spec.ssm_inner_size or 0)
    if mixer == "mamba":
        return inner
    return inner + 2 * spec.ssm_groups * int(spec.ssm_state_size or 0)


def _out_bias(spec: ModelSpec) -> bool:
    return spec.ssm_proj_bias if spec.ssm_out_proj_bias is None else spec.ssm_out_proj_bias


def mamba_shapes(spec: ModelSpec) -> list[Shape]:
    """Mamba-1 (MambaMixer, JambaMambaMixer): in_proj ``h x 2 d_in`` (+bias with use_bias),
    conv1d ``d_in x K`` (+ ``d_in`` with use_conv_bias), x_proj ``d_in x (R + 2 N)``, dt_proj
    ``R x d_in`` + bias, A_log ``d_in x N``, D ``d_in``, out_proj ``d_in x h``; Jamba adds
    RMSNorms over dt (R), B and C (N each)."""
    h, inner = spec.hidden_size, int(spec.ssm_inner_size or 0)
    n, rank, k = (
        int(spec.ssm_state_size or 0),
        int(spec.ssm_dt_rank or 0),
        int(spec.conv_kernel or 0),
    )
    m = "mamba."
    shapes = [
        linear(
            "mamba.in_proj",
            h,
            2 * inner,
            "mamba.in_proj",
            bias=spec.ssm_proj_bias,
            names=(m + "in_proj",),
        ),
        Shape(
            "mamba.conv1d",
            k,
            inner,
            bias=spec.ssm_conv_bias,
            flop="mamba.conv1d",
            rows="conv",
            names=(m + "conv1d",),
            layout="conv",
        ),
        linear("mamba.x_proj", inner, rank + 2 * n, "mamba.x_proj", names=(m + "x_proj",)),
        linear("mamba.dt_proj", rank, inner, "mamba.dt_proj", bias=True, names=(m + "dt_proj",)),
        vector(
            "mamba.A_D",
            inner * n + inner,
            tensors={m + "A_log": (inner, n), m + "D": (inner,)},
        ),
        linear(
            "mamba.out_proj",
            inner,
            h,
            "mamba.out_proj",
            bias=_out_bias(spec),
            names=(m + "out_proj",),
        ),
    ]
    if spec.ssm_dt_norms:
        shapes.append(
            vector(
                "mamba.dt_norms",
                rank + 2 * n,
                tensors={
                    m + "dt_layernorm.weight": (rank,),
                    m + "b_layernorm.weight": (n,),
                    m + "c_layernorm.weight": (n,),
                },
            )
        )
    return shapes


def mamba2_shapes(spec: ModelSpec) -> list[Shape]:
    """Mamba-2 (Mamba2Mixer, and the Mamba-2 mixers of Falcon-H1 and Granite-4.0-H):
    in_proj ``h x (2 d_in + 2 G N + H_m)`` (+bias), conv1d ``(d_in + 2 G N) x K`` (+bias),
    dt_bias, A_log and D ``H_m`` each, a gated RMSNorm ``d_in`` (``ssm_gated_norm``), out_proj
    ``d_in x h`` (+bias)."""
    h, inner = spec.hidden_size, int(spec.ssm_inner_size or 0)
    n, heads, k = (
        int(spec.ssm_state_size or 0),
        int(spec.ssm_num_heads or 0),
        int(spec.conv_kernel or 0),
    )
    m = "mamba."
    shapes = [
        linear(
            "mamba.in_proj",
            h,
            2 * inner + 2 * spec.ssm_groups * n + heads,
            "mamba.in_proj",
            bias=spec.ssm_proj_bias,
            names=(m + "in_proj",),
        ),
        Shape(
            "mamba.conv1d",
            k,
            mamba_conv_channels(spec, "mamba2"),
            bias=spec.ssm_conv_bias,
            flop="mamba.conv1d",
            rows="conv",
            names=(m + "conv1d",),
            layout="conv",
        ),
        vector(
            "mamba.A_D",
            3 * heads,
            tensors={m + "dt_bias": (heads,), m + "A_log": (heads,), m + "D": (heads,)},
        ),
    ]
    if spec.ssm_gated_norm:
        shapes.append(vector("mamba.norm", inner, tensors={m + "norm.weight": (inner,)}))
    shapes.append(
        linear(
            "mamba.out_proj",
            inner,
            h,
            "mamba.out_proj",
            bias=_out_bias(spec),
            names=(m + "out_proj",),
        )
    )
    return shapes


def rwkv_shapes(spec: ModelSpec) -> list[Shape]:
    """RWKV-4 time mixing (RwkvSelfAttention): time_decay and time_first ``A`` each, three
    time-mix vectors ``h`` each, key/value/receptance ``h x A``, output ``A x h``; no biases."""
    h = spec.hidden_size
    a = spec.rwkv_attention_size or h
    return [
        vector(
            "rwkv.time_mixing",
            2 * a + 3 * h,
            tensors={
                "attention.time_decay": (a,),
                "attention.time_first": (a,),
                "attention.time_mix_key": (1, 1, h),
                "attention.time_mix_value": (1, 1, h),
                "attention.time_mix_receptance": (1, 1, h),
            },
        ),
        linear("rwkv.time_mixing", h, a, "rwkv.key", names=("attention.key",)),
        linear("rwkv.time_mixing", h, a, "rwkv.value", names=("attention.value",)),
        linear("rwkv.time_mixing", h, a, "rwkv.receptance", names=("attention.receptance",)),
        linear("rwkv.time_mixing", a, h, "rwkv.output", names=("attention.output",)),
    ]


def mixer_shapes(spec: ModelSpec, plan: LayerPlan) -> list[Shape]:
    """The token mixer(s) of one layer, dispatched on ``plan.mixer``."""
    if plan.mixer in ("attention", "mla"):
        shapes = attention_shapes(spec, plan)
        if plan.parallel_ssm:
            shapes += mamba2_shapes(spec)
        return shapes
    builders = {
        "gated_deltanet": gated_deltanet_shapes,
        "lightning": lightning_shapes,
        "mamba": mamba_shapes,
        "mamba2": mamba2_shapes,
        "rwkv": rwkv_shapes,
    }
    return builders[plan.mixer](spec)


# ---- MLPs ------------------------------------------------------------------------------------


def mlp_matrices(spec: ModelSpec, component: str, flop: str, width: int, **kw: int) -> list[Shape]:
    """One MLP of ``width`` (``copies`` of it with ``used`` per token for routed experts):
    gated (SwiGLU/GeGLU: gate and up ``h x f``, down ``f x h``) or plain (up, down); biases
    (``mlp_bias``; gpt-oss ``expert_bias``) add ``f`` per input matrix and ``h`` for down."""
    h = spec.hidden_size
    inputs = 2 if spec.mlp_gated else 1
    routed = component == "moe.routed_experts"
    bias = spec.expert_bias if routed else spec.mlp_bias
    copies, used = kw.get("copies", 1), kw.get("used")
    module = "mlp.shared_expert" if component == "moe.shared_experts" else "mlp"
    stacked = copies if routed else 0
    if routed:
        layout = "stacked_t" if spec.family in STACKED_T_FAMILIES else "stacked"
        up_names: tuple[str, ...] = ("mlp.experts.gate_up_proj",)
        down_names = ("mlp.experts.down_proj",)
    else:
        layout = "linear_t" if spec.family in CONV1D_FAMILIES else "linear"
        if inputs == 1:
            up_names = (f"{module}.up_proj",)
        elif spec.family in FUSED_GATE_UP_FAMILIES:
            up_names = (f"{module}.gate_up_proj",)
        else:
            up_names = (f"{module}.gate_proj", f"{module}.up_proj")
        down_names = (f"{module}.down_proj",)
    return [
        Shape(
            component,
            h,
            width,
            bias=bias,
            copies=inputs * copies,
            used=None if used is None else inputs * used,
            flop=flop,
            symbols=("h", "f (gate, up)" if inputs == 2 else "f (up)"),
            names=up_names,
            layout=layout,
            stacked=stacked,
        ),
        Shape(
            component,
            width,
            h,
            bias=bias,
            copies=copies,
            used=used,
            flop=flop,
            symbols=("f", "h"),
            names=down_names,
            layout=layout,
            stacked=stacked,
        ),
    ]


def moe_shapes(spec: ModelSpec) -> list[Shape]:
    """One MoE layer: router ``h x E`` (+E with a bias; + E for ERNIE's correction-bias
    parameter), routed experts ``E x mlp(f_e)`` of which a token uses top-k, shared experts
    ``mlp(f_s)``, Qwen-MoE's shared-expert gate ``h x 1``."""
    h = spec.hidden_size
    experts = int(spec.num_experts or 0)
    top_k = int(spec.num_experts_per_token or 0)
    shapes = [
        linear("moe.router", h, experts, "moe.router", bias=spec.router_bias, names=("mlp.gate",))
    ]
    if spec.router_correction_bias:
        shapes.append(
            vector(
                "moe.router",
                experts,
                tensors={"mlp.moe_statics.e_score_correction_bias": (1, experts)},
            )
        )
    shapes += mlp_matrices(
        spec,
        "moe.routed_experts",
        "moe.routed_experts",
        spec.expert_width,
        copies=experts,
        used=top_k,
    )
    if spec.shared_expert_width:
        shapes += mlp_matrices(
            spec, "moe.shared_experts", "moe.shared_experts", spec.shared_expert_width
        )
    if spec.shared_expert_gate:
        shapes.append(
            linear(
                "moe.shared_expert_gate",
                h,
                1,
                "moe.shared_expert_gate",
                names=("mlp.shared_expert_gate",),
            )
        )
    return shapes


def rwkv_channel_mixing_shapes(spec: ModelSpec) -> list[Shape]:
    """RWKV-4 channel mixing (RwkvFeedForward): two time-mix vectors ``h``, key ``h x f``,
    receptance ``h x h``, value ``f x h``; no biases."""
    h, f = spec.hidden_size, spec.intermediate_size
    return [
        vector(
            "mlp",
            2 * h,
            tensors={
                "feed_forward.time_mix_key": (1, 1, h),
                "feed_forward.time_mix_receptance": (1, 1, h),
            },
        ),
        linear("mlp", h, f, "mlp", names=("feed_forward.key",)),
        linear("mlp", h, h, "mlp", names=("feed_forward.receptance",)),
        linear("mlp", f, h, "mlp", names=("feed_forward.value",)),
    ]


def mlp_shapes(spec: ModelSpec, plan: LayerPlan) -> list[Shape]:
    """The MLP of one layer, dispatched on ``plan.mlp`` (RWKV's channel mixing for RWKV)."""
    if plan.mlp == "none":
        return []
    if plan.mlp == "moe":
        return moe_shapes(spec)
    if plan.mixer == "rwkv":
        return rwkv_channel_mixing_shapes(spec)
    return mlp_matrices(spec, "mlp", "mlp", spec.intermediate_size)


def layer_shapes(spec: ModelSpec, plan: LayerPlan) -> list[Shape]:
    """Every parameter tensor of one layer: mixer(s), cross-attention, MLP, norms."""
    shapes = mixer_shapes(spec, plan)
    if plan.cross:
        shapes += cross_attention_shapes(spec)
    return shapes + mlp_shapes(spec, plan) + norm_shapes(spec, plan)


# ---- embeddings and heads --------------------------------------------------------------------


def _stacks(spec: ModelSpec) -> int:
    return 2 if spec.architecture == "encoder-decoder" else 1


def embedding_shapes(spec: ModelSpec) -> list[Shape]:
    """Embeddings (lookups, no matmul): tokens ``V x h`` (shared by both stacks of an
    encoder-decoder); learned positions ``(max_positions + offset) x h`` per stack (OPT/BART
    keep 2 extra rows; DeBERTa-v3 has none: ``position_biased_input`` false); token types
    ``type_vocab x h``; T5's relative bias ``buckets x heads`` per stack (first layer only);
    DeBERTa's relative embeddings ``2k x h`` (+ a LayerNorm); the embedding norm per stack;
    DeBERTa-v2's ConvLayer ``h x h x K`` + bias + LayerNorm."""
    h = spec.hidden_size
    stacks = _stacks(spec)
    names = _stack_names(spec)
    shapes = [
        Shape(
            "token_embeddings",
            spec.vocab_size,
            h,
            symbols=("V", "h"),
            names=("embed_tokens.weight",),
            layout="table",
        )
    ]
    learned = spec.position_type == "learned" or (
        spec.position_type == "disentangled" and spec.position_biased_input
    )
    if learned:
        rows = int(spec.max_position_embeddings or 0) + spec.position_offset
        shapes.append(
            Shape(
                "position_embeddings",
                rows,
                h,
                copies=stacks,
                symbols=("positions", "h"),
                names=tuple(f"{s}.embed_positions.weight" for s in names),
                layout="table",
            )
        )
    if spec.type_vocab_size:
        shapes.append(
            Shape(
                "token_type_embeddings",
                spec.type_vocab_size,
                h,
                symbols=("types", "h"),
                names=("token_type_embeddings.weight",),
                layout="table",
            )
        )
    if spec.position_type == "relative":
        shapes.append(
            Shape(
                "relative_attention_bias",
                spec.relative_attention_num_buckets,
                spec.num_heads,
                copies=stacks,
                symbols=("buckets", "H"),
                names=tuple(f"{s}.relative_attention_bias.weight" for s in names),
                layout="table",
            )
        )
    if spec.position_type == "disentangled":
        span = int(spec.relative_position_span or 0)
        shapes.append(
            Shape(
                "relative_embeddings",
                2 * span,
                h,
                symbols=("2k", "h"),
                names=("encoder.rel_embeddings.weight",),
                layout="table",
            )
        )
    if spec.relative_embedding_norm:
        # DebertaV2Encoder builds it from norm_rel_ebd even without relative attention
        shapes.append(
            vector(
                "relative_embeddings",
                2 * h,
                symbol="2h (weight + bias)",
                tensors={"encoder.rel_norm.weight": (h,), "encoder.rel_norm.bias": (h,)},
            )
        )
    if spec.embedding_norm:
        tensors: dict[str, tuple[int, ...]] = {}
        for s in names:
            tensors.update(norm_tensors(spec, f"{s}.embedding_norm", h))
        shapes.append(
            vector("embedding_norm", norm_width_params(spec, h), copies=stacks, tensors=tensors)
        )
    if spec.encoder_conv_kernel:
        shapes += encoder_conv_shapes(spec)
    return shapes


def _stack_names(spec: ModelSpec) -> tuple[str, ...]:
    if spec.architecture == "encoder-decoder":
        return ("encoder", "decoder")
    return ("encoder",) if spec.architecture == "encoder" else ("decoder",)


def encoder_conv_shapes(spec: ModelSpec) -> list[Shape]:
    """DeBERTa-v2's ConvLayer after the first layer: ``nn.Conv1d(h, h, K, padding=(K-1)/2)``
    (``h K x h`` + bias, one output per token for odd K: a matmul of ``2 t h K h`` FLOPs) and
    its LayerNorm (``2h``)."""
    h, k = spec.hidden_size, int(spec.encoder_conv_kernel or 0)
    return [
        linear(
            "encoder_conv",
            h * k,
            h,
            "encoder_conv",
            bias=True,
            symbols=("h·K", "h"),
            names=("encoder.conv.conv.weight", "encoder.conv.conv.bias"),
            layout="explicit",
            dims=((h, h, k), (h,)),
        ),
        vector(
            "encoder_conv",
            2 * h,
            symbol="2h (LayerNorm)",
            tensors={"encoder.conv.LayerNorm.weight": (h,), "encoder.conv.LayerNorm.bias": (h,)},
        ),
    ]


def head_shapes(spec: ModelSpec) -> list[Shape]:
    """Final norms (one per stack), the LM head ``h x V`` (+V bias; tied to the token
    embeddings unless ``tie_word_embeddings`` is false: then no new weight) and BERT's pooler
    ``h x h + h`` on the first token of each sequence."""
    h = spec.hidden_size
    shapes: list[Shape] = []
    if spec.final_norm and norm_width_params(spec, h):
        width = norm_width_params(spec, h)
        label = "2h (weight + bias)" if width == 2 * h else "h"
        tensors: dict[str, tuple[int, ...]] = {}
        for s in _stack_names(spec):
            tensors.update(norm_tensors(spec, f"{s}.norm", h))
        shapes.append(
            vector("final_norm", width, copies=_stacks(spec), symbol=label, tensors=tensors)
        )
    if spec.lm_head:
        tied = spec.tie_word_embeddings
        bias = spec.lm_head_bias and not tied
        shapes.append(
            linear(
                "lm_head",
                h,
                spec.vocab_size,
                "lm_head",
                bias=bias,
                rows="logits",
                tied=tied,
                symbols=("h", "V"),
                names=("lm_head",),
            )
        )
        if tied and spec.lm_head_bias:
            shapes.append(
                vector("lm_head", spec.vocab_size, tensors={"lm_head.bias": (spec.vocab_size,)})
            )
    if spec.pooler:
        shapes.append(
            linear("pooler", h, h, "pooler", bias=True, rows="sequences", names=("pooler.dense",))
        )
    return shapes
