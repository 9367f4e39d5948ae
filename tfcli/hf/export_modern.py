"""Spec -> config.json for the 2024-26 decoders and state-space models (``--verify``).

Each function writes the keys its record in ``tfcli.hf.modern`` / ``tfcli.hf.ssm`` reads, so a
spec read from a config.json comes back through the export unchanged (tfcli.hf_export checks
every round trip before transformers sees the dict). The names of the config keys are those
of the transformers 5.x config classes.

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfcli.spec import ModelSpec

HFDict = dict[str, Any]

HF_ACTIVATION = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "silu": "silu"}
HF_LAYER_TYPE = {
    "full": "full_attention",
    "sliding": "sliding_attention",
    "chunked": "chunked_attention",
    "gated_deltanet": "linear_attention",
    "lightning": "linear_attention",
    "mamba": "mamba",
    "mamba2": "mamba",
}


def rope(spec: ModelSpec) -> HFDict:
    """``rope_parameters`` (transformers 5): theta, scaling, partial rotary factor."""
    params: HFDict = {"rope_type": "default", "rope_theta": spec.rope_theta}
    if spec.rope_scaling:
        params = {**spec.rope_scaling, "rope_theta": spec.rope_theta}
        params.setdefault("rope_type", params.pop("type", "default"))
    if spec.rotary_dim is not None:
        params["partial_rotary_factor"] = spec.rotary_dim / spec.resolved_head_dim
    return {"rope_parameters": params}


def kinds(spec: ModelSpec, attention: str = "full_attention") -> list[str]:
    """transformers ``layer_types`` names of the main stack's layers."""
    names = {**HF_LAYER_TYPE, "full": attention}
    return [names[k.split("+")[0]] for k in spec.layer_kinds]


def llama_keys(spec: ModelSpec, *, eps_key: str = "rms_norm_eps") -> HFDict:
    """The keys ``tfcli.hf.records.llama_keys`` reads."""
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.resolved_head_dim,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings or 4096,
        "hidden_act": HF_ACTIVATION[spec.activation],
        eps_key: spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
        "attention_bias": spec.attention_qkv_bias,
        **rope(spec),
    }


def _sliding(spec: ModelSpec) -> HFDict:
    return {"sliding_window": spec.sliding_window, "layer_types": kinds(spec)}


def _positions(spec: ModelSpec) -> list[int]:
    """Llama 4 / SmolLM3 ``no_rope_layers``: 1 = RoPE, 0 = NoPE."""
    positions = spec.layer_positions or ("rope",) * spec.num_layers
    return [int(p == "rope") for p in positions]


def gpt_oss(spec: ModelSpec) -> HFDict:
    return {
        **llama_keys(spec),
        "intermediate_size": spec.expert_width,
        "num_local_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        **_sliding(spec),
    }


def llama4_text(spec: ModelSpec) -> HFDict:
    moe = [i for i, flag in enumerate(spec.moe_layer_flags) if flag]
    return {
        **llama_keys(spec),
        "intermediate_size": spec.expert_width,
        "intermediate_size_mlp": spec.intermediate_size,
        "num_local_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        "moe_layers": moe,
        "no_rope_layers": _positions(spec),
        "attention_chunk_size": spec.attention_chunk_size,
        "use_qk_norm": spec.qk_l2_norm,
        "attn_temperature_tuning": spec.attn_temperature_tuning,
        "layer_types": kinds(spec),
    }


def qwen3_next(spec: ModelSpec) -> HFDict:
    flags = spec.moe_layer_flags
    return {
        **llama_keys(spec),
        "num_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        "moe_intermediate_size": spec.expert_width,
        "shared_expert_intermediate_size": spec.shared_expert_width,
        "norm_topk_prob": spec.norm_topk_prob,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [i for i, moe in enumerate(flags) if not moe],
        "linear_num_key_heads": spec.linear_num_key_heads,
        "linear_num_value_heads": spec.linear_num_value_heads,
        "linear_key_head_dim": spec.linear_key_head_dim,
        "linear_value_head_dim": spec.linear_value_head_dim,
        "linear_conv_kernel_dim": spec.conv_kernel,
        "layer_types": kinds(spec),
    }


def glm4_moe(spec: ModelSpec) -> HFDict:
    return {
        **llama_keys(spec),
        "use_qk_norm": spec.qk_norm,
        "n_routed_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        "moe_intermediate_size": spec.expert_width,
        "n_shared_experts": spec.num_shared_experts,
        "first_k_dense_replace": spec.first_dense_layers,
        "routed_scaling_factor": spec.routed_scaling_factor,
        "norm_topk_prob": spec.norm_topk_prob,
        "n_group": spec.num_expert_groups,
        "topk_group": spec.topk_groups,
    }


def phimoe(spec: ModelSpec) -> HFDict:
    out = llama_keys(spec)
    out.pop("head_dim")
    return {
        **out,
        "num_local_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        "lm_head_bias": spec.lm_head_bias,
        "sliding_window": spec.sliding_window,
    }


def olmo2(spec: ModelSpec) -> HFDict:
    out = llama_keys(spec)
    out.pop("head_dim")
    return out


def smollm3(spec: ModelSpec) -> HFDict:
    out = llama_keys(spec)
    out.pop("head_dim")
    return {
        **out,
        "no_rope_layers": _positions(spec),
        "use_sliding_window": spec.sliding_window is not None,
        "sliding_window": spec.sliding_window,
    }


def jamba(spec: ModelSpec) -> HFDict:
    out = llama_keys(spec)
    for key in ("head_dim", "rope_parameters", "attention_bias"):
        out.pop(key)
    layer_kinds = spec.layer_kinds
    attention = [i for i, k in enumerate(layer_kinds) if k == "full"]
    experts = [i for i, moe in enumerate(spec.moe_layer_flags) if moe]
    return {
        **out,
        "num_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        **_period("attn", attention, spec.num_layers),
        **_period("expert", experts, spec.num_layers),
        "mamba_d_state": spec.ssm_state_size,
        "mamba_d_conv": spec.conv_kernel,
        "mamba_expand": (spec.ssm_inner_size or 0) // spec.hidden_size,
        "mamba_dt_rank": spec.ssm_dt_rank,
        "mamba_conv_bias": spec.ssm_conv_bias,
        "mamba_proj_bias": spec.ssm_proj_bias,
    }


def _period(prefix: str, layers: list[int], depth: int) -> HFDict:
    """Jamba's (period, offset) for layers ``offset, offset + period, ...``; ValueError-free:
    a layout with no such form keeps period = depth (the export check then refuses it)."""
    period = layers[1] - layers[0] if len(layers) >= 2 else depth
    offset = layers[0] if layers else depth
    return {f"{prefix}_layer_period": period, f"{prefix}_layer_offset": offset}


def _mamba2_keys(spec: ModelSpec) -> HFDict:
    heads = int(spec.ssm_num_heads or 1)
    return {
        "mamba_n_heads": heads,
        "mamba_d_head": (spec.ssm_inner_size or 0) // heads,
        "mamba_n_groups": spec.ssm_groups,
        "mamba_d_state": spec.ssm_state_size,
        "mamba_d_conv": spec.conv_kernel,
        "mamba_chunk_size": spec.ssm_chunk_size,
        "mamba_conv_bias": spec.ssm_conv_bias,
        "mamba_proj_bias": spec.ssm_proj_bias,
    }


def falcon_h1(spec: ModelSpec) -> HFDict:
    out_bias = spec.ssm_proj_bias if spec.ssm_out_proj_bias is None else spec.ssm_out_proj_bias
    return {
        **llama_keys(spec),
        "mlp_bias": spec.mlp_bias,
        **_mamba2_keys(spec),
        "mamba_d_ssm": spec.ssm_inner_size,
        "mamba_rms_norm": spec.ssm_gated_norm,
        "projectors_bias": out_bias,
    }


def granitemoehybrid(spec: ModelSpec) -> HFDict:
    out = llama_keys(spec)
    out.pop("head_dim")
    experts = spec.num_experts or 0
    return {
        **out,
        "intermediate_size": spec.expert_width if experts else spec.intermediate_size,
        "num_local_experts": experts,
        "num_experts_per_tok": spec.num_experts_per_token or 1,
        "shared_intermediate_size": (
            spec.shared_expert_width if experts else spec.intermediate_size
        ),
        **_mamba2_keys(spec),
        "mamba_expand": (spec.ssm_inner_size or 0) // spec.hidden_size,
        "layer_types": ["attention" if k == "full" else "mamba" for k in spec.layer_kinds],
        "position_embedding_type": "rope" if spec.position_type == "rope" else None,
    }


def mamba(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "state_size": spec.ssm_state_size,
        "expand": (spec.ssm_inner_size or 0) // spec.hidden_size,
        "conv_kernel": spec.conv_kernel,
        "time_step_rank": spec.ssm_dt_rank,
        "use_bias": spec.ssm_proj_bias,
        "use_conv_bias": spec.ssm_conv_bias,
        "layer_norm_epsilon": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


def mamba2(spec: ModelSpec) -> HFDict:
    heads = int(spec.ssm_num_heads or 1)
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_heads": heads,
        "head_dim": (spec.ssm_inner_size or 0) // heads,
        "state_size": spec.ssm_state_size,
        "expand": (spec.ssm_inner_size or 0) // spec.hidden_size,
        "conv_kernel": spec.conv_kernel,
        "n_groups": spec.ssm_groups,
        "use_bias": spec.ssm_proj_bias,
        "use_conv_bias": spec.ssm_conv_bias,
        "chunk_size": spec.ssm_chunk_size,
        "layer_norm_epsilon": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


def rwkv(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "attention_hidden_size": spec.rwkv_attention_size or spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "context_length": spec.max_position_embeddings,
        "layer_norm_epsilon": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


EXPORTERS_2025: dict[str, Callable[[ModelSpec], HFDict]] = {
    "gpt_oss": gpt_oss,
    "llama4_text": llama4_text,
    "qwen3_next": qwen3_next,
    "glm4_moe": glm4_moe,
    "phimoe": phimoe,
    "olmo2": olmo2,
    "smollm3": smollm3,
    "jamba": jamba,
    "falcon_h1": falcon_h1,
    "granitemoehybrid": granitemoehybrid,
    "mamba": mamba,
    "mamba2": mamba2,
    "rwkv": rwkv,
}
"""Exporters of the new decoders, by model_type (merged into ``tfcli.hf_export.EXPORTERS``)."""
