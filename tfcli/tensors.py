"""The parameter tensors of a model, by name and shape, as transformers lays them out.

Training memory needs more than a parameter count: PyTorch's AdamW keeps one ``step`` scalar
per parameter tensor, the optimizer step allocates temporaries the size of one tensor, and
FSDP2 (``fully_shard``) shards each tensor along dim 0, padding dim 0 to a multiple of the
world size. So this module lists the tensors: ``nn.Linear(fan_in, fan_out)`` holds a weight of
shape ``(fan_out, fan_in)`` and a bias ``(fan_out,)``; norms hold ``(h,)`` (+ bias); embeddings
``(rows, h)``. transformers 5 stores the routed experts of a MoE layer fused: ``gate_up_proj``
``(E, 2 f_e, h)`` (``(E, f_e, h)`` for a plain MLP) and ``down_proj`` ``(E, h, f_e)``.

The element counts sum exactly to ``tfcli.params.count_params(spec).total`` (a test says so):
both follow the same transformers classes.

Only the standard library is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfcli.errors import UsageError
from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class ParamTensor:
    """One parameter tensor: dotted name (transformers-like) and shape."""

    name: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def shard_numel(self, world: int) -> int:
        """Elements one rank holds when FSDP2 shards dim 0 over ``world`` ranks:
        ``ceil(dim0 / world) x prod(other dims)`` (``torch.chunk`` with padding, as
        ``fully_shard`` allocates its padded sharded parameter)."""
        if world <= 1:
            return self.numel
        rest = math.prod(self.shape[1:])
        return -(-self.shape[0] // world) * rest


def _linear(name: str, fan_in: int, fan_out: int, bias: bool) -> list[ParamTensor]:
    out = [ParamTensor(f"{name}.weight", (fan_out, fan_in))]
    if bias:
        out.append(ParamTensor(f"{name}.bias", (fan_out,)))
    return out


def _norm(spec: ModelSpec, name: str, width: int) -> list[ParamTensor]:
    out = [ParamTensor(f"{name}.weight", (width,))]
    if spec.norm_type == "layernorm" and spec.norm_bias:
        out.append(ParamTensor(f"{name}.bias", (width,)))
    return out


def _mlp(spec: ModelSpec, name: str, width: int) -> list[ParamTensor]:
    h, bias = spec.hidden_size, spec.mlp_bias
    out: list[ParamTensor] = []
    if spec.mlp_gated:
        out += _linear(f"{name}.gate_proj", h, width, bias)
    out += _linear(f"{name}.up_proj", h, width, bias)
    out += _linear(f"{name}.down_proj", width, h, bias)
    return out


def _attention(spec: ModelSpec, name: str, *, qk_norm: bool) -> list[ParamTensor]:
    h, heads = spec.hidden_size, spec.num_heads
    qkv_bias, out_bias = spec.attention_qkv_bias, spec.attention_out_bias
    out: list[ParamTensor] = []
    if spec.is_mla:
        rank = int(spec.kv_lora_rank or 0)
        rope = int(spec.qk_rope_head_dim or 0)
        nope = int(spec.qk_nope_head_dim or 0)
        if spec.q_lora_rank:
            out += _linear(f"{name}.q_a_proj", h, spec.q_lora_rank, qkv_bias)
            out.append(ParamTensor(f"{name}.q_a_layernorm.weight", (spec.q_lora_rank,)))
            out += _linear(f"{name}.q_b_proj", spec.q_lora_rank, heads * spec.qk_head_dim, False)
        else:
            out += _linear(f"{name}.q_proj", h, heads * spec.qk_head_dim, False)
        out += _linear(f"{name}.kv_a_proj_with_mqa", h, rank + rope, qkv_bias)
        out.append(ParamTensor(f"{name}.kv_a_layernorm.weight", (rank,)))
        out += _linear(f"{name}.kv_b_proj", rank, heads * (nope + spec.value_head_dim), False)
        out += _linear(f"{name}.o_proj", heads * spec.value_head_dim, h, out_bias)
        return out
    d = spec.resolved_head_dim
    out += _linear(f"{name}.q_proj", h, heads * d, qkv_bias)
    out += _linear(f"{name}.k_proj", h, spec.kv_heads * d, qkv_bias)
    out += _linear(f"{name}.v_proj", h, spec.kv_heads * d, qkv_bias)
    out += _linear(f"{name}.o_proj", heads * d, h, out_bias)
    if qk_norm and spec.qk_norm:
        out += _norm(spec, f"{name}.q_norm", d)
        out += _norm(spec, f"{name}.k_norm", d)
    return out


def _moe(spec: ModelSpec, name: str) -> list[ParamTensor]:
    h, experts, width = spec.hidden_size, int(spec.num_experts or 0), spec.expert_width
    out = _linear(f"{name}.gate", h, experts, spec.router_bias)
    up_rows = 2 * width if spec.mlp_gated else width
    out.append(ParamTensor(f"{name}.experts.gate_up_proj", (experts, up_rows, h)))
    out.append(ParamTensor(f"{name}.experts.down_proj", (experts, h, width)))
    if spec.mlp_bias:
        out.append(ParamTensor(f"{name}.experts.gate_up_proj_bias", (experts, up_rows)))
        out.append(ParamTensor(f"{name}.experts.down_proj_bias", (experts, h)))
    if spec.shared_expert_width:
        out += _mlp(spec, f"{name}.shared_expert", spec.shared_expert_width)
    if spec.shared_expert_gate:
        out += _linear(f"{name}.shared_expert_gate", h, 1, False)
    return out


def layer_tensors(spec: ModelSpec, stack: str, index: int) -> list[ParamTensor]:
    """The tensors of one block of ``stack`` (``encoder`` or ``decoder``)."""
    prefix = f"{stack}.layers.{index}"
    out = _attention(spec, f"{prefix}.self_attn", qk_norm=True)
    if stack == "decoder" and spec.architecture == "encoder-decoder":
        cross = [
            t
            for t in _attention(spec, f"{prefix}.cross_attn", qk_norm=False)
            if "norm" not in t.name
        ]
        out += cross
    is_moe = stack != "encoder" and spec.moe_layer_flags[index]
    out += (
        _moe(spec, f"{prefix}.mlp")
        if is_moe
        else _mlp(spec, f"{prefix}.mlp", spec.intermediate_size)
    )
    if spec.parallel_residual:
        norms = spec.parallel_norms
    elif spec.norm_position == "sandwich":
        norms = 4
    else:
        norms = 2
    if stack == "decoder" and spec.architecture == "encoder-decoder":
        norms += 1
    for i in range(norms):
        out += _norm(spec, f"{prefix}.norm_{i}", spec.hidden_size)
    return out


def _stacks(spec: ModelSpec) -> list[tuple[str, int]]:
    if spec.architecture == "encoder":
        return [("encoder", spec.num_layers)]
    if spec.architecture == "encoder-decoder":
        return [("encoder", int(spec.num_encoder_layers or 0)), ("decoder", spec.num_layers)]
    return [("decoder", spec.num_layers)]


def embedding_tensors(spec: ModelSpec) -> list[ParamTensor]:
    """Token embeddings (shared by both stacks of an encoder-decoder), learned positions and
    T5 relative bias per stack, token types, embedding norms."""
    h = spec.hidden_size
    stacks = [name for name, _ in _stacks(spec)]
    out = [ParamTensor("embed_tokens.weight", (spec.vocab_size, h))]
    if spec.position_type == "learned":
        rows = int(spec.max_position_embeddings or 0) + spec.position_offset
        out += [ParamTensor(f"{s}.embed_positions.weight", (rows, h)) for s in stacks]
    if spec.type_vocab_size:
        out.append(ParamTensor("token_type_embeddings.weight", (spec.type_vocab_size, h)))
    if spec.position_type == "relative":
        buckets = spec.relative_attention_num_buckets
        out += [
            ParamTensor(f"{s}.relative_attention_bias.weight", (buckets, spec.num_heads))
            for s in stacks
        ]
    if spec.embedding_norm:
        for s in stacks:
            out += _norm(spec, f"{s}.embedding_norm", h)
    return out


def head_tensors(spec: ModelSpec) -> list[ParamTensor]:
    """Final norm per stack, an untied LM head ``(V, h)`` (+ bias), BERT's pooler."""
    h = spec.hidden_size
    out: list[ParamTensor] = []
    if spec.final_norm:
        for s, _ in _stacks(spec):
            out += _norm(spec, f"{s}.norm", h)
    if spec.lm_head and not spec.tie_word_embeddings:
        out += _linear("lm_head", h, spec.vocab_size, spec.lm_head_bias)
    elif spec.lm_head and spec.lm_head_bias:
        out.append(ParamTensor("lm_head.bias", (spec.vocab_size,)))
    if spec.pooler:
        out += _linear("pooler.dense", h, h, True)
    return out


def unmodelled_features(spec: ModelSpec) -> list[str]:
    """Features whose tensor layout this module does not list yet (their parameters are
    counted by ``tfcli.params`` all the same)."""
    kinds = sorted({run.plan.mixer for run in spec.layer_runs} - {"attention", "mla"})
    checks = {
        "sparse encoder attention": spec.sparse_attention != "none",
        "disentangled positions": spec.position_type == "disentangled",
        "attention sinks": spec.attention_sinks,
        "expert biases": spec.expert_bias,
        "per-head q/k norms over all heads": spec.qk_norm and spec.qk_norm_weights == "all",
        "output norms": spec.norm_position == "output",
        "no attention norm in layer 0": not spec.first_layer_attention_norm,
        "a parallel Mamba-2 mixer": spec.parallel_ssm,
        "an attention output gate": spec.attention_output_gate,
        "a routing correction-bias parameter": spec.router_correction_bias,
        "the DeepSeek-V3.2 indexer": spec.index_num_heads is not None,
    }
    return [f"{k} layers" for k in kinds] + [name for name, on in checks.items() if on]


def parameter_tensors(spec: ModelSpec) -> list[ParamTensor]:
    """Every parameter tensor of the model, embeddings first, then each block, then the head.

    ``UsageError`` for a spec with a feature whose tensors are not listed yet
    (``unmodelled_features``)."""
    missing = unmodelled_features(spec)
    if missing:
        raise UsageError(
            f"tfcli train does not lay out the parameter tensors of {', '.join(missing)} yet "
            f"({spec.name}); tfcli params counts them"
        )
    out = embedding_tensors(spec)
    for stack, depth in _stacks(spec):
        for i in range(depth):
            out += layer_tensors(spec, stack, i)
    out += head_tensors(spec)
    return out
