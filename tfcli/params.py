"""Parameter counts: named components summing to the total, per layer, and MoE active counts.

What is counted is what ``sum(p.numel() for p in model.parameters())`` counts for the
transformers model of the same config (DESIGN.md section 5, oracle 1): decoders as
``AutoModelForCausalLM``, encoder-only models as ``AutoModel`` (with the pooler, without an
MLM head), encoder-decoders as ``AutoModelForSeq2SeqLM``. Tied weights count once; buffers
(RoPE frequencies, ALiBi slopes, DeepSeek's ``e_score_correction_bias``) are not parameters.

Each formula is one function; a linear layer ``fan_in -> fan_out`` has
``fan_in x fan_out (+ fan_out with a bias)`` parameters.

Only the standard library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class LayerParams:
    """Parameters of one transformer layer (block)."""

    index: int
    stack: str
    attention: int
    cross_attention: int
    mlp: int
    mlp_active: int
    norms: int

    @property
    def total(self) -> int:
        return self.attention + self.cross_attention + self.mlp + self.norms

    @property
    def active(self) -> int:
        return self.attention + self.cross_attention + self.mlp_active + self.norms


@dataclass(frozen=True)
class ParamCount:
    """Total and active parameters, by named component (summing exactly) and per layer."""

    total: int
    active: int
    components: dict[str, int]
    active_components: dict[str, int]
    layers: tuple[LayerParams, ...]
    formulas: dict[str, str]


def linear_params(fan_in: int, fan_out: int, *, bias: bool) -> int:
    """nn.Linear(fan_in, fan_out): ``fan_in x fan_out`` weights ``+ fan_out`` bias."""
    return fan_in * fan_out + (fan_out if bias else 0)


def norm_params(spec: ModelSpec, width: int) -> int:
    """One norm over ``width`` features: LayerNorm ``2 x width`` (weight and bias) or ``width``
    without bias; RMSNorm ``width`` (weight only; T5LayerNorm, LlamaRMSNorm)."""
    if spec.norm_type == "layernorm" and spec.norm_bias:
        return 2 * width
    return width


def norms_per_layer(spec: ModelSpec, stack: str) -> int:
    """Norms in one block: pre or post = 2 (attention, MLP); sandwich (Gemma-2/3) = 4;
    parallel residual = ``parallel_norms`` (GPT-J and Falcon-7B share one; NeoX has 2);
    decoder blocks of an encoder-decoder add one for cross-attention."""
    if spec.parallel_residual:
        count = spec.parallel_norms
    elif spec.norm_position == "sandwich":
        count = 4
    else:
        count = 2
    if stack == "decoder" and spec.architecture == "encoder-decoder":
        count += 1
    return count


def attention_parts(spec: ModelSpec) -> dict[str, int]:
    """Self-attention of one layer by projection.

    Standard (LlamaAttention, GPT2Attention, BertSelfAttention, ...): q ``h x H d``, k and v
    ``h x KVH d`` each, with ``attention_qkv_bias``; o ``H d x h`` with ``attention_out_bias``;
    q/k norms (Qwen3, Gemma-3) ``2 x d`` (RMSNorm over each head's dims).
    MLA (DeepseekV3Attention): q_a ``h x r_q`` (+bias), q_a_norm ``r_q``, q_b ``r_q x H d_qk``
    (or q ``h x H d_qk``), kv_a ``h x (r_kv + d_rope)`` (+bias), kv_a_norm ``r_kv``,
    kv_b ``r_kv x H (d_nope + d_v)``, o ``H d_v x h`` (+bias); biases follow attention_bias
    (``attention_qkv_bias`` for q_a/kv_a, ``attention_out_bias`` for o).
    """
    h, heads = spec.hidden_size, spec.num_heads
    qkv_bias, out_bias = spec.attention_qkv_bias, spec.attention_out_bias
    if spec.is_mla:
        rank = int(spec.kv_lora_rank or 0)
        rope = int(spec.qk_rope_head_dim or 0)
        nope = int(spec.qk_nope_head_dim or 0)
        parts: dict[str, int] = {}
        if spec.q_lora_rank:
            parts["attention.q_a"] = linear_params(h, spec.q_lora_rank, bias=qkv_bias)
            parts["attention.q_a_norm"] = spec.q_lora_rank
            parts["attention.q_b"] = linear_params(
                spec.q_lora_rank, heads * spec.qk_head_dim, bias=False
            )
        else:
            parts["attention.q"] = linear_params(h, heads * spec.qk_head_dim, bias=False)
        parts["attention.kv_a"] = linear_params(h, rank + rope, bias=qkv_bias)
        parts["attention.kv_a_norm"] = rank
        parts["attention.kv_b"] = linear_params(
            rank, heads * (nope + spec.value_head_dim), bias=False
        )
        parts["attention.o"] = linear_params(heads * spec.value_head_dim, h, bias=out_bias)
        return parts
    d = spec.resolved_head_dim
    parts = {
        "attention.q": linear_params(h, heads * d, bias=qkv_bias),
        "attention.k": linear_params(h, spec.kv_heads * d, bias=qkv_bias),
        "attention.v": linear_params(h, spec.kv_heads * d, bias=qkv_bias),
        "attention.o": linear_params(heads * d, h, bias=out_bias),
    }
    if spec.qk_norm:
        parts["attention.qk_norm"] = 2 * norm_params(spec, d)
    return parts


def cross_attention_params(spec: ModelSpec) -> int:
    """Cross-attention of one decoder layer (T5, BART): the same q, k, v, o shapes as
    self-attention, keys and values projected from the encoder output."""
    return sum(v for k, v in attention_parts(spec).items() if k != "attention.qk_norm")


def mlp_params(spec: ModelSpec, width: int) -> int:
    """One MLP of ``width``: gated (SwiGLU/GeGLU: gate, up, down) ``3 x h x f``; plain (up,
    down) ``2 x h x f``; biases add ``f`` per input matrix and ``h`` for the output one."""
    h = spec.hidden_size
    inputs = 2 if spec.mlp_gated else 1
    return inputs * linear_params(h, width, bias=spec.mlp_bias) + linear_params(
        width, h, bias=spec.mlp_bias
    )


def moe_parts(spec: ModelSpec) -> dict[str, int]:
    """One MoE layer: routed experts ``E x mlp(f_e)``, shared experts ``mlp(f_s)``,
    Qwen2-MoE's shared gate ``h x 1``, router ``h x E`` (+E with a bias)."""
    experts = int(spec.num_experts or 0)
    parts = {"moe.routed_experts": experts * mlp_params(spec, spec.expert_width)}
    if spec.shared_expert_width:
        parts["moe.shared_experts"] = mlp_params(spec, spec.shared_expert_width)
    if spec.shared_expert_gate:
        parts["moe.shared_expert_gate"] = linear_params(spec.hidden_size, 1, bias=False)
    parts["moe.router"] = linear_params(spec.hidden_size, experts, bias=spec.router_bias)
    return parts


def moe_active_parts(spec: ModelSpec) -> dict[str, int]:
    """What one token uses of a MoE layer: top-k routed experts, the shared ones, the router."""
    parts = moe_parts(spec)
    top_k = int(spec.num_experts_per_token or 0)
    parts["moe.routed_experts"] = top_k * mlp_params(spec, spec.expert_width)
    return parts


def embedding_parts(spec: ModelSpec) -> dict[str, int]:
    """Embeddings: tokens ``V x h`` (shared by both stacks of an encoder-decoder); learned
    positions ``(max_positions + offset) x h`` per stack (OPT/BART keep 2 extra rows);
    token types ``type_vocab x h``; T5 relative bias ``buckets x heads`` per stack (first
    layer only); embedding norm per stack."""
    h = spec.hidden_size
    stacks = 2 if spec.architecture == "encoder-decoder" else 1
    parts = {"token_embeddings": spec.vocab_size * h}
    if spec.position_type == "learned":
        rows = int(spec.max_position_embeddings or 0) + spec.position_offset
        parts["position_embeddings"] = stacks * rows * h
    if spec.type_vocab_size:
        parts["token_type_embeddings"] = spec.type_vocab_size * h
    if spec.position_type == "relative":
        parts["relative_attention_bias"] = (
            stacks * spec.relative_attention_num_buckets * spec.num_heads
        )
    if spec.embedding_norm:
        parts["embedding_norm"] = stacks * norm_params(spec, h)
    return parts


def head_parts(spec: ModelSpec) -> dict[str, int]:
    """Final norms (one per stack), the LM head ``h x V`` (+V bias) unless tied to the token
    embeddings, and BERT's pooler ``h x h + h``."""
    h = spec.hidden_size
    stacks = 2 if spec.architecture == "encoder-decoder" else 1
    parts: dict[str, int] = {}
    if spec.final_norm:
        parts["final_norm"] = stacks * norm_params(spec, h)
    if spec.lm_head and not spec.tie_word_embeddings:
        parts["lm_head"] = linear_params(h, spec.vocab_size, bias=spec.lm_head_bias)
    elif spec.lm_head and spec.lm_head_bias:
        parts["lm_head"] = spec.vocab_size
    if spec.pooler:
        parts["pooler"] = linear_params(h, h, bias=True)
    return parts


def layer_params(
    spec: ModelSpec, index: int, stack: str
) -> tuple[LayerParams, dict[str, int], dict[str, int]]:
    """One layer's counts, and its parts (all and active) by component name."""
    parts = dict(attention_parts(spec))
    attention = sum(parts.values())
    cross = (
        cross_attention_params(spec)
        if (stack == "decoder" and spec.architecture == "encoder-decoder")
        else 0
    )
    if cross:
        parts["cross_attention"] = cross
    is_moe = stack != "encoder" and spec.moe_layer_flags[index]
    if is_moe:
        mlp_parts, active_mlp_parts = moe_parts(spec), moe_active_parts(spec)
    else:
        mlp_parts = {"mlp": mlp_params(spec, spec.intermediate_size)}
        active_mlp_parts = mlp_parts
    norms = norms_per_layer(spec, stack) * norm_params(spec, spec.hidden_size)
    active_parts = {**parts, **active_mlp_parts, "norms": norms}
    parts.update(mlp_parts)
    parts["norms"] = norms
    layer = LayerParams(
        index=index,
        stack=stack,
        attention=attention,
        cross_attention=cross,
        mlp=sum(mlp_parts.values()),
        mlp_active=sum(active_mlp_parts.values()),
        norms=norms,
    )
    return layer, parts, active_parts


def _stacks(spec: ModelSpec) -> list[tuple[str, int]]:
    if spec.architecture == "encoder":
        return [("encoder", spec.num_layers)]
    if spec.architecture == "encoder-decoder":
        return [("encoder", int(spec.num_encoder_layers or 0)), ("decoder", spec.num_layers)]
    return [("decoder", spec.num_layers)]


def count_params(spec: ModelSpec) -> ParamCount:
    """Every parameter of ``spec``: total, active per token, components, layers, formulas."""
    components: dict[str, int] = {}
    active: dict[str, int] = {}
    layers: list[LayerParams] = []

    def add(target: dict[str, int], parts: dict[str, int]) -> None:
        for name, value in parts.items():
            target[name] = target.get(name, 0) + value

    embeddings = embedding_parts(spec)
    add(components, embeddings)
    add(active, embeddings)
    for stack, depth in _stacks(spec):
        for i in range(depth):
            layer, parts, active_parts = layer_params(spec, i, stack)
            layers.append(layer)
            add(components, parts)
            add(active, active_parts)
    heads = head_parts(spec)
    add(components, heads)
    add(active, heads)
    components = {k: v for k, v in components.items() if v}
    active = {k: v for k, v in active.items() if v}
    return ParamCount(
        total=sum(components.values()),
        active=sum(active.values()),
        components=components,
        active_components=active,
        layers=tuple(layers),
        formulas=param_formulas(spec),
    )


def param_formulas(spec: ModelSpec) -> dict[str, str]:
    """The main formulas with the numbers put in (``tfcli params --explain``)."""
    h, v = spec.hidden_size, spec.vocab_size
    out = {"token_embeddings": f"vocab x hidden = {v} x {h} = {v * h:,}"}
    if spec.position_type == "learned":
        rows = int(spec.max_position_embeddings or 0) + spec.position_offset
        out["position_embeddings"] = f"(max_positions + offset) x hidden = {rows} x {h} per stack"
    if not spec.is_mla:
        d = spec.resolved_head_dim
        out["attention.q"] = (
            f"hidden x heads x head_dim = {h} x {spec.num_heads} x {d} per layer"
            + (" + bias" if spec.attention_qkv_bias else "")
        )
        out["attention.k / .v"] = (
            f"hidden x kv_heads x head_dim = {h} x {spec.kv_heads} x {d} each, per layer"
        )
        out["attention.o"] = f"heads x head_dim x hidden = {spec.num_heads} x {d} x {h} per layer"
    matrices = 3 if spec.mlp_gated else 2
    out["mlp"] = (
        f"{matrices} x hidden x intermediate = {matrices} x {h} x {spec.intermediate_size} "
        "per dense layer" + (" + biases" if spec.mlp_bias else "")
    )
    if spec.is_moe:
        out["moe.routed_experts"] = (
            f"experts x {matrices} x hidden x expert_width = {spec.num_experts} x {matrices} x {h}"
            f" x {spec.expert_width} per MoE layer ({spec.num_moe_layers} layers)"
        )
        out["moe.router"] = f"hidden x experts = {h} x {spec.num_experts} per MoE layer"
    kind = (
        "LayerNorm (weight + bias)"
        if spec.norm_type == "layernorm" and spec.norm_bias
        else spec.norm_type
    )
    out["norms"] = f"{kind} of {h} x norms per layer ({norms_per_layer(spec, 'decoder')})"
    if spec.lm_head:
        out["lm_head"] = (
            "tied to token_embeddings (0 new parameters)"
            if spec.tie_word_embeddings
            else f"hidden x vocab = {h} x {v} = {h * v:,}"
        )
    return out
