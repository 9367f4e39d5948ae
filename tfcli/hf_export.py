"""ModelSpec -> a Hugging Face config.json dict, for ``--verify`` and the oracle tests.

The inverse of ``tfcli.hf_mappings``: a dict with ``model_type`` that
``transformers.AutoConfig.for_model(model_type, **rest)`` accepts and that describes the same
architecture, so transformers can build the real model and count it. Only the standard
library is imported here; transformers is used by the callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfcli.errors import TfcliError
from tfcli.spec import ModelSpec

HFDict = dict[str, Any]

_HF_ACTIVATION = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "silu": "silu"}


def _rope(spec: ModelSpec) -> HFDict:
    params: HFDict = {"rope_type": "default", "rope_theta": spec.rope_theta}
    if spec.rope_scaling:
        params = {**spec.rope_scaling, "rope_theta": spec.rope_theta}
        params.setdefault("rope_type", params.pop("type", "default"))
    if spec.rotary_dim is not None:
        params["partial_rotary_factor"] = spec.rotary_dim / spec.resolved_head_dim
    return {"rope_parameters": params}


def _layer_types(spec: ModelSpec) -> HFDict:
    return {"layer_types": [f"{k}_attention" for k in spec.layer_kinds]}


def _llama_like(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.resolved_head_dim,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings or 4096,
        "hidden_act": _HF_ACTIVATION[spec.activation],
        "rms_norm_eps": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
        "attention_bias": spec.attention_qkv_bias,
        "mlp_bias": spec.mlp_bias,
        **_rope(spec),
    }


def _sliding(spec: ModelSpec) -> HFDict:
    if spec.sliding_window is None:
        return {"sliding_window": None, "use_sliding_window": False}
    return {"sliding_window": spec.sliding_window, "use_sliding_window": True}


def _llama(spec: ModelSpec) -> HFDict:
    return _llama_like(spec)


def _mistral(spec: ModelSpec) -> HFDict:
    return {**_llama_like(spec), "sliding_window": spec.sliding_window}


def _mixtral(spec: ModelSpec) -> HFDict:
    return {
        **_llama_like(spec),
        "intermediate_size": spec.expert_width,
        "num_local_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        "sliding_window": spec.sliding_window,
    }


def _qwen2(spec: ModelSpec) -> HFDict:
    return {**_llama_like(spec), **_sliding(spec)}


def _qwen_moe_layers(spec: ModelSpec) -> HFDict:
    flags = spec.moe_layer_flags
    return {
        "decoder_sparse_step": 1,
        "mlp_only_layers": [i for i, moe in enumerate(flags) if not moe],
        "num_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_token,
        "moe_intermediate_size": spec.expert_width,
        "norm_topk_prob": spec.norm_topk_prob,
    }


def _qwen2_moe(spec: ModelSpec) -> HFDict:
    return {
        **_qwen2(spec),
        "qkv_bias": spec.attention_qkv_bias,
        "shared_expert_intermediate_size": spec.shared_expert_width,
        **_qwen_moe_layers(spec),
    }


def _qwen3(spec: ModelSpec) -> HFDict:
    return {**_llama_like(spec), **_sliding(spec)}


def _qwen3_moe(spec: ModelSpec) -> HFDict:
    return {**_qwen3(spec), **_qwen_moe_layers(spec)}


def _gemma(spec: ModelSpec) -> HFDict:
    return {**_llama_like(spec), "hidden_activation": _HF_ACTIVATION[spec.activation]}


def _gemma2(spec: ModelSpec) -> HFDict:
    scalar = round(spec.attention_scale**-2) if spec.attention_scale else spec.resolved_head_dim
    return {
        **_gemma(spec),
        "sliding_window": spec.sliding_window,
        **_layer_types(spec),
        "query_pre_attn_scalar": scalar,
        "attn_logit_softcapping": spec.attn_logit_softcap,
        "final_logit_softcapping": spec.final_logit_softcap,
    }


def _gemma3_text(spec: ModelSpec) -> HFDict:
    out = _gemma2(spec)
    out["rope_parameters"] = {
        "full_attention": {"rope_type": "default", "rope_theta": spec.rope_theta},
        "sliding_attention": {
            "rope_type": "default",
            "rope_theta": spec.rope_local_theta or spec.rope_theta,
        },
    }
    return out


def _deepseek(spec: ModelSpec) -> HFDict:
    out = _llama_like(spec)
    out.pop("head_dim")
    out.update(
        {
            "q_lora_rank": spec.q_lora_rank,
            "kv_lora_rank": spec.kv_lora_rank,
            "qk_nope_head_dim": spec.qk_nope_head_dim,
            "qk_rope_head_dim": spec.qk_rope_head_dim,
            "v_head_dim": spec.v_head_dim,
            "n_routed_experts": spec.num_experts,
            "num_experts_per_tok": spec.num_experts_per_token,
            "moe_intermediate_size": spec.expert_width,
            "n_shared_experts": spec.num_shared_experts,
            "first_k_dense_replace": spec.first_dense_layers,
            "n_group": spec.num_expert_groups,
            "topk_group": spec.topk_groups,
            "routed_scaling_factor": spec.routed_scaling_factor,
            "norm_topk_prob": spec.norm_topk_prob,
        }
    )
    return out


def _gpt2(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "n_embd": spec.hidden_size,
        "n_layer": spec.num_layers,
        "n_head": spec.num_heads,
        "n_inner": spec.intermediate_size,
        "n_positions": spec.max_position_embeddings,
        "activation_function": "gelu_new" if spec.activation == "gelu_tanh" else spec.activation,
        "layer_norm_epsilon": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


def _gpt_neox(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "hidden_act": _HF_ACTIVATION[spec.activation],
        "layer_norm_eps": spec.norm_eps,
        "use_parallel_residual": spec.parallel_residual,
        "attention_bias": spec.attention_qkv_bias,
        "tie_word_embeddings": spec.tie_word_embeddings,
        **_rope(spec),
    }


def _gptj(spec: ModelSpec) -> HFDict:
    return {**_gpt2(spec), "rotary_dim": spec.rotary_dim}


def _falcon(spec: ModelSpec) -> HFDict:
    new_arch = spec.parallel_residual and spec.parallel_norms == 2
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_kv_heads": spec.kv_heads,
        "new_decoder_architecture": new_arch,
        "multi_query": spec.kv_heads == 1,
        "parallel_attn": spec.parallel_residual,
        "bias": spec.attention_qkv_bias,
        "alibi": spec.position_type == "alibi",
        "ffn_hidden_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "tie_word_embeddings": spec.tie_word_embeddings,
        **_rope(spec),
    }


def _bloom(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "n_layer": spec.num_layers,
        "n_head": spec.num_heads,
        "layer_norm_epsilon": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


def _opt(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "word_embed_proj_dim": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "ffn_dim": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "do_layer_norm_before": spec.norm_position == "pre",
        "enable_bias": spec.attention_qkv_bias,
        "activation_function": spec.activation,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


def _bert(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "type_vocab_size": spec.type_vocab_size,
        "hidden_act": "gelu_new" if spec.activation == "gelu_tanh" else spec.activation,
        "layer_norm_eps": spec.norm_eps,
    }


def _t5(spec: ModelSpec) -> HFDict:
    act = "gelu" if spec.activation == "gelu_tanh" else spec.activation
    return {
        "vocab_size": spec.vocab_size,
        "d_model": spec.hidden_size,
        "d_kv": spec.resolved_head_dim,
        "d_ff": spec.intermediate_size,
        "num_layers": spec.num_encoder_layers,
        "num_decoder_layers": spec.num_layers,
        "num_heads": spec.num_heads,
        "relative_attention_num_buckets": spec.relative_attention_num_buckets,
        "relative_attention_max_distance": spec.relative_attention_max_distance,
        "feed_forward_proj": f"gated-{act}" if spec.mlp_gated else act,
        "layer_norm_epsilon": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


def _bart(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "d_model": spec.hidden_size,
        "encoder_layers": spec.num_encoder_layers,
        "decoder_layers": spec.num_layers,
        "encoder_attention_heads": spec.num_heads,
        "decoder_attention_heads": spec.num_heads,
        "encoder_ffn_dim": spec.intermediate_size,
        "decoder_ffn_dim": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "activation_function": spec.activation,
        "scale_embedding": spec.scale_embeddings,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


def _mpt(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "d_model": spec.hidden_size,
        "n_layers": spec.num_layers,
        "n_heads": spec.num_heads,
        "max_seq_len": spec.max_position_embeddings,
        "no_bias": not spec.attention_qkv_bias,
        "layer_norm_epsilon": spec.norm_eps,
        "tie_word_embeddings": spec.tie_word_embeddings,
    }


EXPORTERS: dict[str, Callable[[ModelSpec], HFDict]] = {
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen2_moe": _qwen2_moe,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3_text,
    "phi3": _mistral,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "gptj": _gptj,
    "falcon": _falcon,
    "bloom": _bloom,
    "opt": _opt,
    "bert": _bert,
    "roberta": _bert,
    "t5": _t5,
    "bart": _bart,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "mpt": _mpt,
}


def hf_config_dict_from_spec(spec: ModelSpec) -> HFDict:
    """A config.json-style dict (with ``model_type``) describing ``spec`` for transformers."""
    exporter = EXPORTERS.get(spec.family)
    if exporter is None:
        raise TfcliError(
            f"spec family {spec.family!r} has no transformers counterpart to verify against; "
            f"known: {', '.join(sorted(EXPORTERS))}"
        )
    return {"model_type": spec.family, **exporter(spec)}


def auto_class_kind(spec: ModelSpec) -> str:
    """Which auto class tfcli counts: causal_lm, base (encoders) or seq2seq."""
    return {"decoder": "causal_lm", "encoder": "base", "encoder-decoder": "seq2seq"}[
        spec.architecture
    ]


def hf_config_from_spec(spec: ModelSpec) -> tuple[Any, str]:
    """(transformers config object, auto-class kind) for ``spec``; imports transformers."""
    import transformers

    data = hf_config_dict_from_spec(spec)
    model_type = data.pop("model_type")
    return transformers.AutoConfig.for_model(model_type, **data), auto_class_kind(spec)
