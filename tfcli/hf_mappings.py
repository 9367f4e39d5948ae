"""Hugging Face config.json -> ModelSpec fields, per ``model_type``, without transformers.

A key missing from a config.json means the transformers config class default (that is what
``from_pretrained`` builds), so each mapping carries those defaults, read from transformers
5.x ``configuration_*.py``; the structure (which projections have biases, how many norms a
block has) from its ``modeling_*.py``. Every field records where its value came from.

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfcli.errors import LoadError, UnsupportedModelTypeError

Fields = dict[str, Any]


class ConfigReader:
    """Reads config keys with the class defaults and records each spec field's origin."""

    def __init__(self, data: dict[str, Any], class_name: str, origin: str) -> None:
        self.data = data
        self.class_name = class_name
        self.origin = origin
        self.fields: Fields = {}
        self.origins: dict[str, str] = {}

    def value(self, key: str, default: Any = None) -> Any:
        """The config value of ``key``, or the class default when absent."""
        return self.data.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.data

    def put(self, field: str, value: Any, *keys: str) -> None:
        """Set spec ``field`` to ``value``, derived from config ``keys``."""
        self.fields[field] = value
        present = [k for k in keys if k in self.data]
        if present:
            self.origins[field] = "config.json: " + ", ".join(present)
        elif keys:
            self.origins[field] = f"{self.class_name} default ({', '.join(keys)})"
        else:
            self.origins[field] = f"{self.class_name} structure"

    def take(self, field: str, key: str, default: Any = None) -> Any:
        """Copy config ``key`` (or its default) into spec ``field``; return the value."""
        value = self.value(key, default)
        self.put(field, value, key)
        return value

    def fail(self, message: str) -> LoadError:
        return LoadError(f"{self.origin}: {message}")


def _activation(name: str, reader: ConfigReader) -> str:
    """transformers ACT2FN names -> tfcli's four activations."""
    table = {
        "relu": "relu",
        "gelu": "gelu",
        "gelu_new": "gelu_tanh",
        "gelu_fast": "gelu_tanh",
        "gelu_pytorch_tanh": "gelu_tanh",
        "gelu_tanh": "gelu_tanh",
        "silu": "silu",
        "swish": "silu",
    }
    if name not in table:
        raise reader.fail(f"activation {name!r} is not supported (relu, gelu, gelu_new, silu)")
    return table[name]


def _rope(reader: ConfigReader, default_theta: float, *, partial_default: float = 1.0) -> None:
    """RoPE theta, scaling and partial rotary factor, from transformers 5 ``rope_parameters``
    or the older top-level ``rope_theta`` / ``rope_scaling`` / ``partial_rotary_factor``."""
    params = reader.value("rope_parameters")
    if isinstance(params, dict) and "full_attention" in params:
        full = params.get("full_attention") or {}
        local = params.get("sliding_attention") or {}
        reader.put("rope_theta", float(full.get("rope_theta", default_theta)), "rope_parameters")
        if "rope_theta" in local:
            reader.put("rope_local_theta", float(local["rope_theta"]), "rope_parameters")
        scaling = full if full.get("rope_type", "default") != "default" else None
        reader.put("rope_scaling", scaling, "rope_parameters")
        return
    if isinstance(params, dict):
        theta = float(params.get("rope_theta", reader.value("rope_theta", default_theta)))
        reader.put("rope_theta", theta, "rope_parameters")
        rope_type = params.get("rope_type", params.get("type", "default"))
        scaling = (
            {k: v for k, v in params.items() if k != "rope_theta"}
            if rope_type != "default"
            else None
        )
        reader.put("rope_scaling", scaling, "rope_parameters")
        partial = params.get(
            "partial_rotary_factor", reader.value("partial_rotary_factor", partial_default)
        )
    else:
        reader.put("rope_theta", float(reader.value("rope_theta", default_theta)), "rope_theta")
        scaling = reader.value("rope_scaling")
        if isinstance(scaling, dict) and scaling.get("rope_type", scaling.get("type")) == "default":
            scaling = None
        reader.put("rope_scaling", scaling, "rope_scaling")
        partial = reader.value("partial_rotary_factor", partial_default)
    if partial != 1.0:
        head_dim = (
            reader.fields.get("head_dim")
            or reader.fields["hidden_size"] // reader.fields["num_heads"]
        )
        reader.put("rotary_dim", int(head_dim * partial), "partial_rotary_factor")


def _layer_types(reader: ConfigReader, layers: int) -> None:
    """``layer_types`` (full_attention / sliding_attention) -> full / sliding."""
    raw = reader.value("layer_types")
    if raw is None:
        return
    kinds = tuple("sliding" if str(k).startswith("sliding") else "full" for k in raw)
    if len(kinds) != layers:
        raise reader.fail(f"layer_types has {len(kinds)} entries for {layers} layers")
    if "sliding" not in kinds:
        return
    reader.put("layer_types", kinds, "layer_types")


def _llama_family(reader: ConfigReader, defaults: dict[str, Any]) -> None:
    """The Llama-style decoders (llama, mistral, mixtral, qwen2/3(-moe), gemma*, phi3, deepseek).

    Common structure (LlamaDecoderLayer): RMSNorm pre-norm, two norms per block, a final norm,
    RoPE, gated SiLU MLP without bias, q/k/v/o without bias unless ``attention_bias``.
    """
    d = defaults
    reader.put("architecture", "decoder")
    reader.take("vocab_size", "vocab_size", d["vocab_size"])
    reader.take("hidden_size", "hidden_size", d["hidden_size"])
    layers = reader.take("num_layers", "num_hidden_layers", d["num_hidden_layers"])
    heads = reader.take("num_heads", "num_attention_heads", d["num_attention_heads"])
    kv = reader.value("num_key_value_heads", d.get("num_key_value_heads"))
    reader.put("num_kv_heads", heads if kv is None else kv, "num_key_value_heads")
    head_dim = reader.value("head_dim", d.get("head_dim"))
    if head_dim is not None and head_dim != reader.fields["hidden_size"] // heads:
        reader.put("head_dim", head_dim, "head_dim")
    elif head_dim is not None:
        reader.put("head_dim", None, "head_dim")
    reader.take("intermediate_size", "intermediate_size", d["intermediate_size"])
    reader.take("max_position_embeddings", "max_position_embeddings", d["max_position_embeddings"])
    act_key = "hidden_activation" if "hidden_activation" in d else "hidden_act"
    act = reader.value(act_key, d.get(act_key, "silu"))
    if act is None:
        act = d.get("hidden_act", "gelu_pytorch_tanh")
    reader.put("activation", _activation(act, reader), act_key)
    reader.put("mlp_gated", True)
    reader.put("mlp_bias", bool(reader.value("mlp_bias", d.get("mlp_bias", False))), "mlp_bias")
    bias = bool(reader.value("attention_bias", d.get("attention_bias", False)))
    reader.put("attention_qkv_bias", bias, "attention_bias")
    reader.put("attention_out_bias", bias, "attention_bias")
    reader.put("norm_type", "rmsnorm")
    eps = reader.value("rms_norm_eps", d.get("rms_norm_eps", 1e-6))
    reader.put("norm_eps", float(eps), "rms_norm_eps")
    reader.put("norm_position", "pre")
    reader.put("position_type", "rope")
    reader.take("tie_word_embeddings", "tie_word_embeddings", d["tie_word_embeddings"])
    _rope(reader, d.get("rope_theta", 10000.0))
    window = reader.value("sliding_window", d.get("sliding_window"))
    use_sliding = reader.value("use_sliding_window", d.get("use_sliding_window", True))
    if window and use_sliding:
        reader.put("sliding_window", int(window), "sliding_window", "use_sliding_window")
        _layer_types(reader, layers)
    _dtype(reader)


def _dtype(reader: ConfigReader) -> None:
    raw = reader.value("torch_dtype", reader.value("dtype"))
    table = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
    if raw in table:
        reader.put("dtype", table[raw], "torch_dtype")


def map_llama(r: ConfigReader) -> None:
    """LlamaConfig defaults (Llama-2-7B-like); transformers models/llama."""
    _llama_family(
        r,
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": None,
            "intermediate_size": 11008,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": False,
        },
    )


def map_mistral(r: ConfigReader) -> None:
    """MistralConfig defaults (Mistral-7B-v0.1: GQA 8, sliding window 4096)."""
    _llama_family(
        r,
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
            "sliding_window": 4096,
        },
    )


def _moe(r: ConfigReader, experts_key: str, experts_default: int, top_k_default: int) -> None:
    r.take("num_experts", experts_key, experts_default)
    r.take("num_experts_per_token", "num_experts_per_tok", top_k_default)


def map_mixtral(r: ConfigReader) -> None:
    """MixtralConfig (Mixtral-8x7B): every layer routes to 2 of 8 SwiGLU experts of
    ``intermediate_size``; router ``gate`` without bias; softmax, top-k renormalised."""
    _llama_family(
        r,
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
            "rope_theta": 1e6,
        },
    )
    _moe(r, "num_local_experts", 8, 2)
    r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")
    r.put("norm_topk_prob", True)


def map_qwen2(r: ConfigReader) -> None:
    """Qwen2Config: q/k/v with bias, o without (Qwen2Attention); sliding only if
    use_sliding_window."""
    _llama_family(
        r,
        {
            "vocab_size": 151936,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "intermediate_size": 22016,
            "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
        },
    )
    r.put("attention_qkv_bias", True)
    r.put("attention_out_bias", False)


def _qwen_moe_layers(r: ConfigReader) -> None:
    """Qwen-MoE: layer i is sparse unless in mlp_only_layers and when (i+1) % step == 0."""
    step = int(r.value("decoder_sparse_step", 1))
    only_dense = set(r.value("mlp_only_layers", []) or [])
    layers = r.fields["num_layers"]
    kinds = tuple(
        "moe" if i not in only_dense and (i + 1) % step == 0 else "dense" for i in range(layers)
    )
    if "dense" in kinds:
        r.put("mlp_layer_types", kinds, "decoder_sparse_step", "mlp_only_layers")


def map_qwen2_moe(r: ConfigReader) -> None:
    """Qwen2MoeConfig (Qwen1.5-MoE-A2.7B): 4 of 60 experts, one shared expert of
    shared_expert_intermediate_size with a sigmoid gate, qkv bias (``qkv_bias``)."""
    map_qwen2(r)
    for key, default in (
        ("vocab_size", 151936),
        ("hidden_size", 2048),
        ("num_layers", 24),
        ("num_heads", 16),
        ("intermediate_size", 5632),
    ):
        hf_key = {"num_layers": "num_hidden_layers", "num_heads": "num_attention_heads"}.get(
            key, key
        )
        r.take(key, hf_key, default)
    kv = r.value("num_key_value_heads", 16)
    r.put("num_kv_heads", kv, "num_key_value_heads")
    bias = bool(r.value("qkv_bias", True))
    r.put("attention_qkv_bias", bias, "qkv_bias")
    _moe(r, "num_experts", 60, 4)
    r.take("moe_intermediate_size", "moe_intermediate_size", 1408)
    shared = r.value("shared_expert_intermediate_size", 5632)
    if shared:
        r.put("num_shared_experts", 1, "shared_expert_intermediate_size")
        r.put("shared_expert_intermediate_size", shared, "shared_expert_intermediate_size")
        r.put("shared_expert_gate", True)
    r.put("norm_topk_prob", bool(r.value("norm_topk_prob", False)), "norm_topk_prob")
    _qwen_moe_layers(r)


def map_qwen3(r: ConfigReader) -> None:
    """Qwen3Config: explicit head_dim (128), q/k RMSNorm per head, attention_bias default off."""
    _llama_family(
        r,
        {
            "vocab_size": 151936,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "head_dim": 128,
            "intermediate_size": 22016,
            "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
        },
    )
    r.put("qk_norm", True)


def map_qwen3_moe(r: ConfigReader) -> None:
    """Qwen3MoeConfig (Qwen3-30B-A3B): 8 of 128 experts, no shared expert, q/k norms."""
    _llama_family(
        r,
        {
            "vocab_size": 151936,
            "hidden_size": 2048,
            "num_hidden_layers": 24,
            "num_attention_heads": 32,
            "num_key_value_heads": 4,
            "head_dim": None,
            "intermediate_size": 6144,
            "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
        },
    )
    r.put("qk_norm", True)
    experts_key = "num_experts" if r.has("num_experts") else "num_local_experts"
    _moe(r, experts_key, 128, 8)
    r.take("moe_intermediate_size", "moe_intermediate_size", 768)
    r.put("norm_topk_prob", bool(r.value("norm_topk_prob", False)), "norm_topk_prob")
    _qwen_moe_layers(r)


def _gemma_common(r: ConfigReader) -> None:
    r.put("scale_embeddings", True)
    r.put("rope_interleaved", False)


def map_gemma(r: ConfigReader) -> None:
    """GemmaConfig (Gemma-7B defaults): head_dim 256, GeGLU (tanh GELU), tied, sqrt(h)-scaled
    embeddings, RMSNorm as (1 + w)."""
    _llama_family(
        r,
        {
            "vocab_size": 256000,
            "hidden_size": 3072,
            "num_hidden_layers": 28,
            "num_attention_heads": 16,
            "num_key_value_heads": 16,
            "head_dim": 256,
            "intermediate_size": 24576,
            "max_position_embeddings": 8192,
            "tie_word_embeddings": True,
            "hidden_act": "gelu_pytorch_tanh",
        },
    )
    act = r.value("hidden_activation") or r.value("hidden_act", "gelu_pytorch_tanh")
    r.put("activation", _activation(act, r), "hidden_activation", "hidden_act")
    _gemma_common(r)


def map_gemma2(r: ConfigReader) -> None:
    """Gemma2Config (Gemma-2-2B defaults): sandwich norms (4 per block), alternating sliding
    and full layers, logit soft-capping, query_pre_attn_scalar."""
    _llama_family(
        r,
        {
            "vocab_size": 256000,
            "hidden_size": 2304,
            "num_hidden_layers": 26,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "intermediate_size": 9216,
            "max_position_embeddings": 8192,
            "tie_word_embeddings": True,
            "hidden_activation": "gelu_pytorch_tanh",
            "sliding_window": 4096,
        },
    )
    _gemma_common(r)
    r.put("norm_position", "sandwich")
    layers = r.fields["num_layers"]
    if r.fields.get("sliding_window") and "layer_types" not in r.fields:
        kinds = tuple("sliding" if i % 2 == 0 else "full" for i in range(layers))
        r.put("layer_types", kinds, "layer_types")
    r.put(
        "attention_scale",
        float(r.value("query_pre_attn_scalar", 256)) ** -0.5,
        "query_pre_attn_scalar",
    )
    r.put("attn_logit_softcap", r.value("attn_logit_softcapping", 50.0), "attn_logit_softcapping")
    r.put(
        "final_logit_softcap", r.value("final_logit_softcapping", 30.0), "final_logit_softcapping"
    )


def map_gemma3_text(r: ConfigReader) -> None:
    """Gemma3TextConfig: sandwich norms, q/k norms, 5 sliding : 1 full layers, a local RoPE
    base for sliding layers, no soft-capping by default."""
    _llama_family(
        r,
        {
            "vocab_size": 262208,
            "hidden_size": 2304,
            "num_hidden_layers": 26,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "intermediate_size": 9216,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": True,
            "hidden_activation": "gelu_pytorch_tanh",
            "sliding_window": 4096,
            "rope_theta": 1e6,
        },
    )
    _gemma_common(r)
    r.put("norm_position", "sandwich")
    r.put("qk_norm", True)
    layers = r.fields["num_layers"]
    if r.fields.get("sliding_window") and "layer_types" not in r.fields:
        pattern = int(r.value("sliding_window_pattern", 6))
        kinds = tuple("full" if (i + 1) % pattern == 0 else "sliding" for i in range(layers))
        r.put("layer_types", kinds, "sliding_window_pattern")
    if not r.has("rope_parameters") and "rope_local_theta" not in r.fields:
        r.put(
            "rope_local_theta",
            float(r.value("rope_local_base_freq", 10000.0)),
            "rope_local_base_freq",
        )
    r.put(
        "attention_scale",
        float(r.value("query_pre_attn_scalar", 256)) ** -0.5,
        "query_pre_attn_scalar",
    )
    r.put("attn_logit_softcap", r.value("attn_logit_softcapping"), "attn_logit_softcapping")
    r.put("final_logit_softcap", r.value("final_logit_softcapping"), "final_logit_softcapping")


def map_phi3(r: ConfigReader) -> None:
    """Phi3Config (Phi-3-mini): fused qkv and gate_up projections (same counts), no biases."""
    _llama_family(
        r,
        {
            "vocab_size": 32064,
            "hidden_size": 3072,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": None,
            "intermediate_size": 8192,
            "max_position_embeddings": 4096,
            "tie_word_embeddings": False,
            "rms_norm_eps": 1e-5,
        },
    )
    r.put("attention_qkv_bias", False)
    r.put("attention_out_bias", False)


def _deepseek(r: ConfigReader, defaults: dict[str, Any]) -> None:
    """DeepSeek-V2/V3: MLA attention, first_k_dense_replace dense layers then MoE layers with
    n_shared_experts shared experts of moe_intermediate_size each."""
    _llama_family(r, defaults)
    r.put("head_dim", None)
    for field, key in (
        ("q_lora_rank", "q_lora_rank"),
        ("kv_lora_rank", "kv_lora_rank"),
        ("qk_nope_head_dim", "qk_nope_head_dim"),
        ("qk_rope_head_dim", "qk_rope_head_dim"),
        ("v_head_dim", "v_head_dim"),
    ):
        r.take(field, key, defaults[key])
    experts = r.value("n_routed_experts", defaults["n_routed_experts"])
    if experts:
        r.put("num_experts", experts, "n_routed_experts")
        r.take("num_experts_per_token", "num_experts_per_tok", defaults["num_experts_per_tok"])
        r.take("moe_intermediate_size", "moe_intermediate_size", defaults["moe_intermediate_size"])
        r.take("num_shared_experts", "n_shared_experts", defaults["n_shared_experts"])
        r.take("first_dense_layers", "first_k_dense_replace", defaults["first_k_dense_replace"])
        r.put("router_bias", False)
        r.put("router_scoring", defaults["scoring"])
        r.take("routed_scaling_factor", "routed_scaling_factor", defaults["routed_scaling_factor"])
        r.put(
            "norm_topk_prob",
            bool(r.value("norm_topk_prob", defaults["norm_topk_prob"])),
            "norm_topk_prob",
        )
        groups = r.value("n_group", defaults["n_group"]) or 1
        topk_groups = r.value("topk_group", defaults["topk_group"]) or 1
        r.put("num_expert_groups", int(groups), "n_group")
        r.put("topk_groups", int(topk_groups), "topk_group")


def map_deepseek_v2(r: ConfigReader) -> None:
    """DeepseekV2Config defaults; MoE from layer first_k_dense_replace on (DeepseekV2Moe)."""
    _deepseek(
        r,
        {
            "vocab_size": 102400,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": None,
            "intermediate_size": 11008,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": False,
            "q_lora_rank": 1536,
            "kv_lora_rank": 512,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
            "n_routed_experts": 64,
            "num_experts_per_tok": None,
            "moe_intermediate_size": 1407,
            "n_shared_experts": 2,
            "first_k_dense_replace": 0,
            "routed_scaling_factor": 1.0,
            "norm_topk_prob": False,
            "n_group": None,
            "topk_group": None,
            "scoring": "softmax",
        },
    )


def map_deepseek_v3(r: ConfigReader) -> None:
    """DeepseekV3Config defaults (DeepSeek-V3 671B): sigmoid routing with a correction-bias
    buffer (not a parameter), group-limited top-8 of 256, 1 shared expert, 3 dense layers.
    The multi-token-prediction layer (num_nextn_predict_layers) is not part of the
    transformers model and is not counted."""
    _deepseek(
        r,
        {
            "vocab_size": 129280,
            "hidden_size": 7168,
            "num_hidden_layers": 61,
            "num_attention_heads": 128,
            "num_key_value_heads": None,
            "intermediate_size": 18432,
            "max_position_embeddings": 4096,
            "tie_word_embeddings": False,
            "q_lora_rank": 1536,
            "kv_lora_rank": 512,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
            "n_routed_experts": 256,
            "num_experts_per_tok": 8,
            "moe_intermediate_size": 2048,
            "n_shared_experts": 1,
            "first_k_dense_replace": 3,
            "routed_scaling_factor": 2.5,
            "norm_topk_prob": True,
            "n_group": 8,
            "topk_group": 4,
            "scoring": "sigmoid",
        },
    )
    r.put("rope_interleaved", bool(r.value("rope_interleave", True)), "rope_interleave")


def map_gpt2(r: ConfigReader) -> None:
    """GPT2Config (GPT-2 124M): learned positions (n_positions), fused c_attn with bias, c_proj
    bias, GELU-tanh MLP of n_inner (4h) with bias, LayerNorm pre-norm, ln_f, tied LM head."""
    _gpt_sizes(r, vocab=50257, hidden=768, layers=12, heads=12, positions=1024)
    r.put("position_type", "learned")
    r.take("tie_word_embeddings", "tie_word_embeddings", True)
    _dtype(r)


def _gpt_sizes(
    r: ConfigReader, *, vocab: int, hidden: int, layers: int, heads: int, positions: int
) -> None:
    """GPT-2-style keys (n_embd, n_layer, n_head, n_inner = 4h by default, n_positions,
    activation_function = gelu_new) with the class defaults given, and _gpt_layer."""
    r.put("architecture", "decoder")
    r.take("vocab_size", "vocab_size", vocab)
    r.take("hidden_size", "n_embd", hidden)
    r.take("num_layers", "n_layer", layers)
    r.take("num_heads", "n_head", heads)
    inner = r.value("n_inner")
    r.put("intermediate_size", inner or 4 * r.fields["hidden_size"], "n_inner")
    r.take("max_position_embeddings", "n_positions", positions)
    r.put(
        "activation",
        _activation(r.value("activation_function", "gelu_new"), r),
        "activation_function",
    )
    _gpt_layer(r, eps_key="layer_norm_epsilon")


def _gpt_layer(r: ConfigReader, *, eps_key: str) -> None:
    """Biases everywhere, LayerNorm with bias, pre-norm, plain MLP."""
    r.put("attention_qkv_bias", True)
    r.put("attention_out_bias", True)
    r.put("mlp_bias", True)
    r.put("mlp_gated", False)
    r.put("norm_type", "layernorm")
    r.put("norm_bias", True)
    r.put("norm_eps", float(r.value(eps_key, 1e-5)), eps_key)
    r.put("norm_position", "pre")


def map_gpt_neox(r: ConfigReader) -> None:
    """GPTNeoXConfig (GPT-NeoX-20B defaults): fused qkv with bias (attention_bias), parallel
    residual with two LayerNorms, partial RoPE (rotary_pct), untied embed_out."""
    r.put("architecture", "decoder")
    r.take("vocab_size", "vocab_size", 50432)
    r.take("hidden_size", "hidden_size", 6144)
    r.take("num_layers", "num_hidden_layers", 44)
    r.take("num_heads", "num_attention_heads", 64)
    r.take("intermediate_size", "intermediate_size", 24576)
    r.take("max_position_embeddings", "max_position_embeddings", 2048)
    r.put("activation", _activation(r.value("hidden_act", "gelu"), r), "hidden_act")
    _gpt_layer(r, eps_key="layer_norm_eps")
    bias = bool(r.value("attention_bias", True))
    r.put("attention_qkv_bias", bias, "attention_bias")
    r.put("attention_out_bias", bias, "attention_bias")
    parallel = bool(r.value("use_parallel_residual", True))
    r.put("parallel_residual", parallel, "use_parallel_residual")
    r.put("parallel_norms", 2)
    r.put("position_type", "rope")
    rotary_pct = r.value("rotary_pct")
    if rotary_pct is not None and not r.has("rope_parameters"):
        r.data = {**r.data, "partial_rotary_factor": rotary_pct}
    r.data.setdefault("rotary_emb_base", None)
    if r.value("rotary_emb_base") is not None and not r.has("rope_theta"):
        r.data = {**r.data, "rope_theta": r.value("rotary_emb_base")}
    _rope(r, 10000.0, partial_default=0.25)
    r.take("tie_word_embeddings", "tie_word_embeddings", False)
    _dtype(r)


def map_gptj(r: ConfigReader) -> None:
    """GPTJConfig (GPT-J-6B): q/k/v/out without bias, MLP with bias, one LayerNorm shared by the
    parallel attention and MLP, interleaved partial RoPE (rotary_dim 64), LM head with bias."""
    _gpt_sizes(r, vocab=50400, hidden=4096, layers=28, heads=16, positions=2048)
    r.put("attention_qkv_bias", False)
    r.put("attention_out_bias", False)
    r.put("parallel_residual", True)
    r.put("parallel_norms", 1)
    r.put("position_type", "rope")
    rotary = r.value("rotary_dim", 64)
    if rotary is not None:
        r.put("rotary_dim", int(rotary), "rotary_dim")
    r.put("rope_interleaved", True)
    r.take("tie_word_embeddings", "tie_word_embeddings", False)
    r.put("lm_head_bias", True)
    _dtype(r)


def map_falcon(r: ConfigReader) -> None:
    """FalconConfig (Falcon-7B): multi-query (1 KV head) unless new_decoder_architecture
    (num_kv_heads), parallel attention with 1 LayerNorm (2 in the new architecture), no
    linear biases (``bias``), RoPE or ALiBi, tied LM head."""
    r.put("architecture", "decoder")
    r.take("vocab_size", "vocab_size", 65024)
    hidden = r.take("hidden_size", "hidden_size", 4544)
    r.take("num_layers", "num_hidden_layers", 32)
    heads = r.take("num_heads", "num_attention_heads", 71)
    new_arch = bool(r.value("new_decoder_architecture", False))
    if new_arch:
        kv = r.value("num_kv_heads", heads)
        r.put("num_kv_heads", kv, "num_kv_heads", "new_decoder_architecture")
    elif r.value("multi_query", True):
        r.put("num_kv_heads", 1, "multi_query")
    else:
        r.put("num_kv_heads", heads, "multi_query")
    ffn = r.value("ffn_hidden_size")
    r.put("intermediate_size", ffn or 4 * hidden, "ffn_hidden_size")
    r.take("max_position_embeddings", "max_position_embeddings", 2048)
    r.put("activation", _activation(r.value("activation", "gelu"), r), "activation")
    _gpt_layer(r, eps_key="layer_norm_epsilon")
    bias = bool(r.value("bias", False))
    for field in ("attention_qkv_bias", "attention_out_bias", "mlp_bias"):
        r.put(field, bias, "bias")
    parallel = bool(r.value("parallel_attn", True))
    r.put("parallel_residual", parallel, "parallel_attn")
    if parallel:
        n_ln = r.value("num_ln_in_parallel_attn")
        if n_ln is None:
            n_ln = 2 if new_arch else 1
        r.put("parallel_norms", int(n_ln), "num_ln_in_parallel_attn", "new_decoder_architecture")
    if r.value("alibi", False):
        r.put("position_type", "alibi", "alibi")
    else:
        r.put("position_type", "rope", "alibi")
        _rope(r, 10000.0)
    r.take("tie_word_embeddings", "tie_word_embeddings", True)
    _dtype(r)


def map_bloom(r: ConfigReader) -> None:
    """BloomConfig: ALiBi, embedding LayerNorm, fused qkv with bias, 4h GELU-tanh MLP with bias,
    sequential pre-norm blocks, tied LM head (BloomForCausalLM)."""
    r.put("architecture", "decoder")
    r.take("vocab_size", "vocab_size", 250880)
    hidden = r.value("hidden_size", r.value("n_embed", 64))
    r.put("hidden_size", hidden, "hidden_size", "n_embed")
    r.take("num_layers", "n_layer", 2)
    r.take("num_heads", "n_head", 8)
    r.put("intermediate_size", 4 * hidden, "hidden_size")
    r.put("activation", "gelu_tanh")
    _gpt_layer(r, eps_key="layer_norm_epsilon")
    r.put("embedding_norm", True)
    r.put("position_type", "alibi")
    r.put("max_position_embeddings", r.value("seq_length"), "seq_length")
    r.take("tie_word_embeddings", "tie_word_embeddings", True)
    _dtype(r)


def map_opt(r: ConfigReader) -> None:
    """OPTConfig (OPT-125M): learned positions with 2 extra rows, biases (enable_bias), ReLU
    MLP of ffn_dim, pre- or post-LN (do_layer_norm_before), final LayerNorm when pre-LN."""
    r.put("architecture", "decoder")
    r.take("vocab_size", "vocab_size", 50272)
    hidden = r.take("hidden_size", "hidden_size", 768)
    if r.value("word_embed_proj_dim", hidden) != hidden:
        raise r.fail(
            "word_embed_proj_dim != hidden_size (project_in/out, OPT-350m) is not representable"
        )
    r.take("num_layers", "num_hidden_layers", 12)
    r.take("num_heads", "num_attention_heads", 12)
    r.take("intermediate_size", "ffn_dim", 3072)
    r.take("max_position_embeddings", "max_position_embeddings", 2048)
    r.put("position_offset", 2)
    r.put(
        "activation", _activation(r.value("activation_function", "relu"), r), "activation_function"
    )
    _gpt_layer(r, eps_key="layer_norm_eps")
    bias = bool(r.value("enable_bias", True))
    for field in ("attention_qkv_bias", "attention_out_bias", "mlp_bias"):
        r.put(field, bias, "enable_bias")
    if not r.value("layer_norm_elementwise_affine", True):
        raise r.fail("layer_norm_elementwise_affine=false is not representable")
    pre = bool(r.value("do_layer_norm_before", True))
    r.put("norm_position", "pre" if pre else "post", "do_layer_norm_before")
    final = pre and not r.value("_remove_final_layer_norm", False)
    r.put("final_norm", final, "do_layer_norm_before")
    r.put("position_type", "learned")
    r.take("tie_word_embeddings", "tie_word_embeddings", True)
    _dtype(r)


def map_bert(r: ConfigReader, *, class_defaults: dict[str, Any] | None = None) -> None:
    """BertConfig (bert-base-uncased), counted as BertModel: embeddings (word, position,
    token type) + LayerNorm, post-LN blocks with biases, exact-GELU MLP, pooler, no MLM head."""
    d = {"vocab_size": 30522, "type_vocab_size": 2, **(class_defaults or {})}
    r.put("architecture", "encoder")
    r.take("vocab_size", "vocab_size", d["vocab_size"])
    r.take("hidden_size", "hidden_size", 768)
    r.take("num_layers", "num_hidden_layers", 12)
    r.take("num_heads", "num_attention_heads", 12)
    r.take("intermediate_size", "intermediate_size", 3072)
    r.take("max_position_embeddings", "max_position_embeddings", 512)
    r.put("activation", _activation(r.value("hidden_act", "gelu"), r), "hidden_act")
    _gpt_layer(r, eps_key="layer_norm_eps")
    r.put("norm_eps", float(r.value("layer_norm_eps", 1e-12)), "layer_norm_eps")
    r.put("norm_position", "post")
    r.put("final_norm", False)
    r.put("embedding_norm", True)
    r.put("position_type", "learned")
    r.take("type_vocab_size", "type_vocab_size", d["type_vocab_size"])
    r.put("pooler", True)
    r.put("lm_head", False)
    r.put("tie_word_embeddings", True)
    _dtype(r)


def map_roberta(r: ConfigReader) -> None:
    """RobertaConfig: BERT's structure (RobertaModel with pooler); position ids start after the
    padding index, which the published max_position_embeddings (514) already includes."""
    map_bert(r, class_defaults={"vocab_size": 50265, "type_vocab_size": 2})


def map_t5(r: ConfigReader) -> None:
    """T5Config (t5-small defaults), counted as T5ForConditionalGeneration: no biases,
    T5LayerNorm (RMS, no bias), relative position bias in each stack's first layer, ReLU or
    gated-GELU MLP (feed_forward_proj), d_kv head width, cross-attention in decoder blocks."""
    r.put("architecture", "encoder-decoder")
    r.take("vocab_size", "vocab_size", 32128)
    r.take("hidden_size", "d_model", 512)
    encoder_layers = r.value("num_layers", 6)
    r.put("num_encoder_layers", encoder_layers, "num_layers")
    decoder_layers = r.value("num_decoder_layers") or encoder_layers
    r.put("num_layers", decoder_layers, "num_decoder_layers")
    heads = r.take("num_heads", "num_heads", 8)
    d_kv = r.value("d_kv", 64)
    r.put("head_dim", d_kv if d_kv * heads != r.fields["hidden_size"] else None, "d_kv")
    r.take("intermediate_size", "d_ff", 2048)
    proj = r.value("feed_forward_proj", "relu")
    gated = proj.startswith("gated-")
    act = proj.split("-")[-1]
    r.put("mlp_gated", gated, "feed_forward_proj")
    r.put("activation", _activation("gelu_new" if act == "gelu" else act, r), "feed_forward_proj")
    r.put("mlp_bias", False)
    r.put("attention_qkv_bias", False)
    r.put("attention_out_bias", False)
    r.put("norm_type", "rmsnorm")
    r.put("norm_eps", float(r.value("layer_norm_epsilon", 1e-6)), "layer_norm_epsilon")
    r.put("norm_position", "pre")
    r.put("attention_scale", 1.0)
    r.put("position_type", "relative")
    r.take("relative_attention_num_buckets", "relative_attention_num_buckets", 32)
    r.take("relative_attention_max_distance", "relative_attention_max_distance", 128)
    r.take("tie_word_embeddings", "tie_word_embeddings", True)
    r.put("max_position_embeddings", r.value("n_positions"), "n_positions")
    _dtype(r)


def map_bart(r: ConfigReader) -> None:
    """BartConfig (bart-large defaults), counted as BartForConditionalGeneration: shared token
    embeddings tied to the LM head, learned positions with 2 extra rows per stack, an embedding
    LayerNorm per stack, post-LN blocks with biases, GELU MLP, no final norm."""
    r.put("architecture", "encoder-decoder")
    r.take("vocab_size", "vocab_size", 50265)
    r.take("hidden_size", "d_model", 1024)
    r.take("num_encoder_layers", "encoder_layers", 12)
    r.take("num_layers", "decoder_layers", 12)
    enc_heads, dec_heads = (
        r.value("encoder_attention_heads", 16),
        r.value("decoder_attention_heads", 16),
    )
    enc_ffn, dec_ffn = r.value("encoder_ffn_dim", 4096), r.value("decoder_ffn_dim", 4096)
    if enc_heads != dec_heads or enc_ffn != dec_ffn:
        raise r.fail("encoder and decoder with different heads or ffn widths are not representable")
    r.put("num_heads", enc_heads, "encoder_attention_heads", "decoder_attention_heads")
    r.put("intermediate_size", enc_ffn, "encoder_ffn_dim", "decoder_ffn_dim")
    r.take("max_position_embeddings", "max_position_embeddings", 1024)
    r.put("position_offset", 2)
    r.put(
        "activation", _activation(r.value("activation_function", "gelu"), r), "activation_function"
    )
    _gpt_layer(r, eps_key="layer_norm_eps")
    r.put("norm_position", "post")
    r.put("final_norm", False)
    r.put("embedding_norm", True)
    r.put("position_type", "learned")
    r.put("scale_embeddings", bool(r.value("scale_embedding", False)), "scale_embedding")
    r.take("tie_word_embeddings", "tie_word_embeddings", True)
    _dtype(r)


def map_mpt(r: ConfigReader) -> None:
    """MptConfig (MPT-7B-like): ALiBi, fused Wqkv, no linear or LayerNorm biases (no_bias),
    a 4h exact-GELU MLP (MptMLP hard-codes 4 x hidden), tied LM head."""
    r.put("architecture", "decoder")
    r.take("vocab_size", "vocab_size", 50368)
    hidden = r.take("hidden_size", "d_model", 2048)
    r.take("num_layers", "n_layers", 24)
    r.take("num_heads", "n_heads", 16)
    r.put("intermediate_size", 4 * hidden, "d_model")
    r.take("max_position_embeddings", "max_seq_len", 2048)
    r.put("activation", "gelu")
    _gpt_layer(r, eps_key="layer_norm_epsilon")
    bias = not bool(r.value("no_bias", True))
    for field in ("attention_qkv_bias", "attention_out_bias", "mlp_bias", "norm_bias"):
        r.put(field, bias, "no_bias")
    attn = r.value("attn_config") or {}
    if isinstance(attn, dict) and attn.get("alibi", True) is False:
        raise r.fail("MPT without ALiBi is not supported")
    r.put("position_type", "alibi", "attn_config")
    r.take("tie_word_embeddings", "tie_word_embeddings", True)
    _dtype(r)


MAPPERS: dict[str, tuple[str, Callable[[ConfigReader], None]]] = {
    "llama": ("LlamaConfig", map_llama),
    "mistral": ("MistralConfig", map_mistral),
    "mixtral": ("MixtralConfig", map_mixtral),
    "qwen2": ("Qwen2Config", map_qwen2),
    "qwen2_moe": ("Qwen2MoeConfig", map_qwen2_moe),
    "qwen3": ("Qwen3Config", map_qwen3),
    "qwen3_moe": ("Qwen3MoeConfig", map_qwen3_moe),
    "gemma": ("GemmaConfig", map_gemma),
    "gemma2": ("Gemma2Config", map_gemma2),
    "gemma3_text": ("Gemma3TextConfig", map_gemma3_text),
    "phi3": ("Phi3Config", map_phi3),
    "gpt2": ("GPT2Config", map_gpt2),
    "gpt_neox": ("GPTNeoXConfig", map_gpt_neox),
    "gptj": ("GPTJConfig", map_gptj),
    "falcon": ("FalconConfig", map_falcon),
    "bloom": ("BloomConfig", map_bloom),
    "opt": ("OPTConfig", map_opt),
    "bert": ("BertConfig", map_bert),
    "roberta": ("RobertaConfig", map_roberta),
    "t5": ("T5Config", map_t5),
    "bart": ("BartConfig", map_bart),
    "deepseek_v2": ("DeepseekV2Config", map_deepseek_v2),
    "deepseek_v3": ("DeepseekV3Config", map_deepseek_v3),
    "mpt": ("MptConfig", map_mpt),
}

SUPPORTED_MODEL_TYPES: tuple[str, ...] = (*MAPPERS, "gemma3")


def map_hf_config(data: dict[str, Any], *, origin: str) -> tuple[Fields, dict[str, str]]:
    """(spec fields, field origins) for a config.json dict; LoadError for unknown types."""
    model_type = data.get("model_type")
    if model_type == "gemma3" and isinstance(data.get("text_config"), dict):
        data = {"model_type": "gemma3_text", **data["text_config"]}
        model_type = "gemma3_text"
    if not isinstance(model_type, str):
        raise LoadError(f"{origin}: no model_type key; is this a Hugging Face config.json?")
    if model_type not in MAPPERS:
        raise UnsupportedModelTypeError(
            f"{origin}: model_type {model_type!r} is not supported; supported: "
            + ", ".join(sorted(SUPPORTED_MODEL_TYPES)),
            model_type=model_type,
            hint="`tfcli params CONFIG --verify` still counts it with transformers; or write "
            "a spec YAML (tfcli show llama-3-8b --all lists the keys)",
        )
    class_name, mapper = MAPPERS[model_type]
    reader = ConfigReader(data, class_name, origin)
    reader.put("family", model_type, "model_type")
    mapper(reader)
    reader.fields.setdefault("source", origin)
    reader.origins.setdefault("source", "MODEL argument")
    return reader.fields, reader.origins
