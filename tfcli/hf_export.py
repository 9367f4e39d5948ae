"""ModelSpec -> a Hugging Face config.json dict, for ``--verify`` and the oracle tests.

The inverse of ``tfcli.hf_mappings``: a dict with ``model_type`` that
``transformers.AutoConfig.for_model(model_type, **rest)`` accepts and that describes the same
architecture, so transformers can build the real model and count it.

Two rules keep ``--verify`` honest:

* keys a transformers config class never reads are not emitted (``_UNREAD``: Qwen2 hard-codes
  its q/k/v biases, Mistral/Mixtral/Phi-3 have no bias switches, most Llama-style MLPs have no
  ``mlp_bias``), so nothing looks expressed that transformers would silently drop;
* the export is read back through ``tfcli.hf_mappings`` (what tfcli makes of that config.json)
  and every field that shapes the parameters must come back unchanged; otherwise the spec has
  no transformers counterpart and a ``TfcliError`` says which field, instead of ``--verify``
  reporting a "difference" that is only the export's.

Only the standard library is imported at module level; transformers only inside
``hf_config_from_spec``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfcli.errors import TfcliError
from tfcli.hf.export_modern import EXPORTERS_2025
from tfcli.hf_mappings import MAPPERS, map_hf_config
from tfcli.spec import ModelSpec

HFDict = dict[str, Any]

_HF_ACTIVATION = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "silu": "silu"}


def _hf_activation(name: str) -> str:
    """transformers' ACT2FN name of a spec activation: ``gelu_tanh`` is ``gelu_new``; relu,
    gelu, silu and tanh are spelled alike."""
    return "gelu_new" if name == "gelu_tanh" else name


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
    """Qwen-style switch. Qwen2/Qwen3/Qwen2-MoE configs derive ``layer_types`` from
    ``max_window_layers`` (only layers from there on slide), so the per-layer kinds are given
    explicitly; Qwen3-MoE has no ``layer_types`` and slides every layer."""
    if spec.sliding_window is None:
        return {"sliding_window": None, "use_sliding_window": False}
    out: HFDict = {"sliding_window": spec.sliding_window, "use_sliding_window": True}
    if spec.family in ("qwen2", "qwen3", "qwen2_moe"):
        out.update(_layer_types(spec))
    return out


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
    return _llama_like(spec)  # GemmaConfig reads hidden_act


def _gemma2(spec: ModelSpec) -> HFDict:
    scalar = round(spec.attention_scale**-2) if spec.attention_scale else spec.resolved_head_dim
    out = _llama_like(spec)
    out["hidden_activation"] = out.pop("hidden_act")  # Gemma2Config / Gemma3TextConfig
    return {
        **out,
        "sliding_window": spec.sliding_window,
        **_layer_types(spec),
        "query_pre_attn_scalar": scalar,
        "attn_logit_softcapping": spec.attn_logit_softcap,
        "final_logit_softcapping": spec.final_logit_softcap,
    }


def _gemma3_text(spec: ModelSpec) -> HFDict:
    out = _gemma2(spec)
    full = {"rope_type": "default", **(spec.rope_scaling or {}), "rope_theta": spec.rope_theta}
    out["rope_parameters"] = {  # Gemma3TextConfig scales the full-attention layers only
        "full_attention": full,
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
        "activation_function": _hf_activation(spec.activation),
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
        # bigscience/bloom's config.json carries its training length; BloomConfig ignores it
        "seq_length": spec.max_position_embeddings,
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
        "hidden_act": _hf_activation(spec.activation),
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
        # published T5 config.json files carry n_positions (512); T5Config ignores it
        "n_positions": spec.max_position_embeddings,
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


def _bert_sizes(spec: ModelSpec) -> HFDict:
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "intermediate_size": spec.intermediate_size,
        "type_vocab_size": spec.type_vocab_size,
        "hidden_act": _hf_activation(spec.activation),
        "layer_norm_eps": spec.norm_eps,
    }


def _deberta_v2(spec: ModelSpec) -> HFDict:
    """DebertaV2Config; the relative span is written as ``position_buckets`` (DeBERTa-v3's
    convention: the same 2k table and c2p/p2c widths as an unbucketed span of k)."""
    relative = spec.position_type == "disentangled"
    out = {
        **_bert_sizes(spec),
        "max_position_embeddings": spec.max_position_embeddings,
        "position_biased_input": spec.position_biased_input,
        "relative_attention": relative,
        "norm_rel_ebd": "layer_norm" if spec.relative_embedding_norm else "none",
        "conv_kernel_size": spec.encoder_conv_kernel or 0,
        "conv_act": _hf_activation(spec.encoder_conv_activation),
    }
    if relative:
        bucketed = spec.relative_position_bucketed
        out.update(
            {
                "position_buckets": spec.relative_position_span if bucketed else -1,
                "max_relative_positions": (
                    spec.relative_bucket_max_position or -1
                    if bucketed
                    else spec.relative_position_span
                ),
                "pos_att_type": list(spec.disentangled_terms or ()),
                "share_att_key": spec.share_attention_key,
            }
        )
    elif spec.attention_scale is not None:
        out["pos_att_type"] = _unused_position_terms(spec)
    return out


def _unused_position_terms(spec: ModelSpec) -> list[str]:
    """``pos_att_type`` that gives a DeBERTa without relative attention the content scale
    ``attention_scale`` = 1 / sqrt(D (1 + n)): n = 1 / (scale^2 D) - 1 terms (0, 1 or 2)."""
    assert spec.attention_scale is not None
    terms = round(1.0 / (spec.attention_scale**2 * spec.resolved_head_dim)) - 1
    if terms not in (0, 1, 2):
        raise TfcliError(
            f"attention_scale {spec.attention_scale} is not 1 / sqrt(head_dim x 1, 2 or 3): "
            "DebertaV2Config cannot express it"
        )
    return ["c2p", "p2c"][:terms]


def _modernbert(spec: ModelSpec) -> HFDict:
    kinds = spec.layer_kinds
    local = spec.rope_local_theta or spec.rope_theta
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "hidden_activation": _HF_ACTIVATION[spec.activation],
        "norm_eps": spec.norm_eps,
        "norm_bias": spec.norm_bias,
        "attention_bias": spec.attention_qkv_bias,
        "mlp_bias": spec.mlp_bias,
        "local_attention": spec.sliding_window or 128,
        "layer_types": [f"{k}_attention" for k in kinds],
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": spec.rope_theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": local},
        },
    }


def _longformer(spec: ModelSpec) -> HFDict:
    positions = spec.max_position_embeddings
    return {
        **_bert_sizes(spec),
        "max_position_embeddings": None if positions is None else positions + spec.position_offset,
        "attention_window": spec.sliding_window,
    }


def _big_bird(spec: ModelSpec) -> HFDict:
    sparse = spec.sparse_attention == "bigbird"
    out = {
        **_bert_sizes(spec),
        "max_position_embeddings": spec.max_position_embeddings,
        "use_bias": spec.attention_qkv_bias,
        "attention_type": "block_sparse" if sparse else "original_full",
        "rescale_embeddings": spec.scale_embeddings,
    }
    if sparse:
        out["block_size"] = spec.sparse_block_size
        out["num_random_blocks"] = spec.sparse_random_blocks
    return out


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
    **EXPORTERS_2025,
    "deberta-v2": _deberta_v2,
    "modernbert": _modernbert,
    "longformer": _longformer,
    "big_bird": _big_bird,
}


_UNREAD: dict[str, frozenset[str]] = {
    "mistral": frozenset({"attention_bias", "mlp_bias"}),
    "mixtral": frozenset({"attention_bias", "mlp_bias"}),
    "phi3": frozenset({"attention_bias", "mlp_bias"}),
    "qwen2": frozenset({"attention_bias", "mlp_bias"}),
    "qwen2_moe": frozenset({"attention_bias", "mlp_bias"}),
    "qwen3": frozenset({"mlp_bias"}),
    "qwen3_moe": frozenset({"mlp_bias"}),
    "gemma": frozenset({"mlp_bias"}),
    "gemma2": frozenset({"mlp_bias"}),
    "gemma3_text": frozenset({"mlp_bias"}),
    "deepseek_v3": frozenset({"mlp_bias"}),
}
"""Keys the transformers 5 modeling code of each model_type never reads (its linear layers
hard-code ``bias=``), so exporting them would only pretend to express something."""


def _param_structure(spec: ModelSpec) -> dict[str, Any]:
    """What decides the parameter tensors transformers builds (not RoPE, windows, soft-caps,
    scales, epsilons, routing rules): compared after a round trip through the loader."""
    disentangled = spec.position_type == "disentangled"
    learned = spec.position_type == "learned" or (disentangled and spec.position_biased_input)
    relative = spec.position_type == "relative"
    has_dense = not all(spec.moe_layer_flags)
    return {
        "architecture": spec.architecture,
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_layers": spec.num_layers,
        "num_encoder_layers": spec.num_encoder_layers,
        "num_heads": spec.num_heads,
        "num_kv_heads": spec.kv_heads,
        "head_dim": None if spec.is_mla else spec.resolved_head_dim,
        "intermediate_size": spec.intermediate_size if has_dense else None,
        "attention_qkv_bias": spec.attention_qkv_bias,
        "attention_out_bias": spec.attention_out_bias,
        "qk_norm": spec.qk_norm,
        "q_lora_rank": spec.q_lora_rank,
        "kv_lora_rank": spec.kv_lora_rank,
        "qk_nope_head_dim": spec.qk_nope_head_dim if spec.is_mla else None,
        "qk_rope_head_dim": spec.qk_rope_head_dim if spec.is_mla else None,
        "v_head_dim": spec.v_head_dim if spec.is_mla else None,
        "mlp_gated": spec.mlp_gated,
        "mlp_bias": spec.mlp_bias,
        "num_experts": spec.num_experts,
        "moe_intermediate_size": spec.expert_width if spec.is_moe else None,
        "shared_expert_intermediate_size": spec.shared_expert_width if spec.is_moe else None,
        "shared_expert_gate": spec.shared_expert_gate if spec.is_moe else None,
        "mlp_layer_types": spec.moe_layer_flags,
        "router_bias": spec.router_bias if spec.is_moe else None,
        "norm_type": spec.norm_type,
        "norm_bias": spec.norm_bias if spec.norm_type == "layernorm" else None,
        "norm_position": spec.norm_position,
        "final_norm": spec.final_norm,
        "embedding_norm": spec.embedding_norm,
        "parallel_residual": spec.parallel_residual,
        "parallel_norms": spec.parallel_norms if spec.parallel_residual else None,
        "position_type": (
            spec.position_type if learned or relative or disentangled else "no parameters"
        ),
        "relative_position_span": spec.relative_position_span if disentangled else None,
        "disentangled_terms": tuple(spec.disentangled_terms or ()) if disentangled else None,
        "share_attention_key": spec.share_attention_key if disentangled else None,
        "relative_embedding_norm": spec.relative_embedding_norm,
        "encoder_conv_kernel": spec.encoder_conv_kernel,
        "first_layer_attention_norm": spec.first_layer_attention_norm,
        "global_attention_projections": spec.global_attention_projections,
        "max_position_embeddings": spec.max_position_embeddings if learned else None,
        "position_offset": spec.position_offset if learned else None,
        "relative_attention_num_buckets": spec.relative_attention_num_buckets if relative else None,
        "tie_word_embeddings": spec.tie_word_embeddings if spec.lm_head else None,
        "type_vocab_size": spec.type_vocab_size,
        "pooler": spec.pooler,
        "lm_head": spec.lm_head,
        "lm_head_bias": spec.lm_head_bias,
    }


def _check_expressible(spec: ModelSpec, data: HFDict) -> None:
    """Raise when transformers' config for ``spec.family`` cannot carry ``spec``'s structure."""
    class_name = MAPPERS[spec.family][0]
    prefix = f"spec {spec.name!r} has no transformers {class_name} counterpart"
    try:
        fields, _ = map_hf_config(dict(data), origin=f"{spec.name} exported as {class_name}")
        again = ModelSpec.from_dict({**fields, "name": spec.name})
    except TfcliError as err:
        raise TfcliError(f"{prefix}: {err.message}") from None
    want, got = _param_structure(spec), _param_structure(again)
    diff = [key for key in want if want[key] != got[key]]
    if not diff:
        from tfcli.params import count_params

        ours, theirs = count_params(spec).components, count_params(again).components
        diff = [key for key in {*ours, *theirs} if ours.get(key) != theirs.get(key)]
        want, got = ours, theirs
    if diff:
        shown = ", ".join(
            f"{k}={want.get(k)!r} (it builds {got.get(k)!r})" for k in sorted(diff)[:3]
        )
        raise TfcliError(
            f"{prefix}: {shown}",
            hint="--verify can only compare a spec transformers can build; "
            "drop the --set override or pick a family that has the feature",
        )


def hf_config_dict_from_spec(spec: ModelSpec) -> HFDict:
    """A config.json-style dict (with ``model_type``) describing ``spec`` for transformers.

    Raises ``TfcliError`` (one line) when ``spec.family`` is not a transformers model_type
    tfcli exports, or when that config class cannot express a field that shapes the
    parameters (``--set attention_qkv_bias=true`` on Mistral, a non-4x MLP on BLOOM).
    """
    exporter = EXPORTERS.get(spec.family)
    if exporter is None:
        raise TfcliError(
            f"spec family {spec.family!r} has no transformers counterpart to verify against; "
            f"known: {', '.join(sorted(EXPORTERS))}"
        )
    unread = _UNREAD.get(spec.family, frozenset())
    data = {"model_type": spec.family}
    data.update((k, v) for k, v in exporter(spec).items() if k not in unread)
    _check_expressible(spec, data)
    return data


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
