"""The records: one per model_type tfcli reads from a config.json (see ``tfcli.hf.records``).

Defaults are transformers 5.x class defaults (checked by tests/test_hf_records.py); structure
(biases, norms, placements) is read off each ``modeling_*.py``. Hooks appear only where one
key cannot say it: RoPE parameters, per-layer kinds, MoE layouts, Mamba widths.

Only the standard library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfcli.hf.reader import Reader
from tfcli.hf.records import (
    LLAMA_STRUCTURE,
    Hook,
    Record,
    act,
    activation,
    dtype_hook,
    explicit_head_dim,
    fixed,
    key,
    kv_heads_default_to_heads,
    layer_types_hook,
    llama_keys,
    llama_like,
    moe_hook,
    out_bias_follows_qkv,
    pattern_layer_types,
    qwen_moe_layers,
    rope_hook,
    sliding_hook,
)

# ---- small hooks ------------------------------------------------------------------------------


def put(**values: object) -> Hook:
    """Fixed structure applied after the keys (overrides what a shared hook set)."""

    def read(r: Reader) -> None:
        for name, value in values.items():
            r.put(name, value)

    return read


def alternate_sliding(every: int, names: tuple[str, ...] = ("layer_types",)) -> Hook:
    """``(i + 1) % every != 0`` layers slide, the others are full (Gemma-2: 2, Cohere-2: 4,
    gpt-oss: 2), when the model has a window and ``layer_types`` is absent."""

    def read(r: Reader) -> None:
        if r.fields.get("sliding_window"):
            pattern_layer_types(r, lambda i: "sliding" if (i + 1) % every else "full", names)

    return read


def window_pattern_key(default: int, name: str = "sliding_window_pattern") -> Hook:
    """Gemma-3 / EXAONE-4: every ``sliding_window_pattern``-th layer is full."""

    def read(r: Reader) -> None:
        every = r.get(name, default, "count")
        alternate_sliding(every, (name,))(r)

    return read


def gemma_scale(default_scalar: float, softcap: float | None, final_cap: float | None) -> Hook:
    """Gemma-2/3: softmax scale ``query_pre_attn_scalar ** -0.5``; logit soft-caps."""

    def read(r: Reader) -> None:
        scalar = r.get("query_pre_attn_scalar", default_scalar, "positive")
        r.put("attention_scale", scalar**-0.5, "query_pre_attn_scalar")
        r.take("attn_logit_softcap", "attn_logit_softcapping", softcap, "?positive")
        r.take("final_logit_softcap", "final_logit_softcapping", final_cap, "?positive")

    return read


def gemma3_local_theta(r: Reader) -> None:
    """Gemma-3's sliding layers rotate with ``rope_local_base_freq`` (older configs)."""
    if not r.has("rope_parameters") and "rope_local_theta" not in r.fields:
        r.take("rope_local_theta", "rope_local_base_freq", 10000.0, "positive")


def gemma_legacy_gelu(r: Reader) -> None:
    """GemmaConfig.__post_init__ turns the legacy ``hidden_act: gelu`` of the official
    releases into ``gelu_pytorch_tanh`` (the tanh GELU Gemma was trained with)."""
    value = r.get("hidden_act", "gelu_pytorch_tanh", "str")
    activation(r, ("hidden_act",), "gelu_pytorch_tanh")
    if value == "gelu":
        r.put("activation", "gelu_tanh", "hidden_act")


def nope_layers(interval_key: str = "no_rope_layer_interval", interval: int = 4) -> Hook:
    """Llama 4 / SmolLM3 ``no_rope_layers``: 1 = RoPE, 0 = NoPE per layer; by default every
    ``no_rope_layer_interval``-th layer is NoPE."""

    def read(r: Reader) -> None:
        layers = r.fields["num_layers"]
        flags = r.get("no_rope_layers", None, "?list")
        if not flags:
            every = r.get(interval_key, interval, "count")
            flags = [int((i + 1) % every != 0) for i in range(layers)]
            names: tuple[str, ...] = (interval_key,)
        else:
            names = ("no_rope_layers",)
        if len(flags) != layers:
            raise r.fail("no_rope_layers", flags, f"has {len(flags)} entries for {layers} layers")
        positions = tuple("rope" if flag else "none" for flag in flags)
        if "none" in positions:
            r.put("layer_positions", positions, *names)

    return read


def nope_on_full_layers(r: Reader) -> None:
    """Cohere-2 and EXAONE-4 rotate only their sliding layers; global layers are NoPE."""
    kinds = r.fields.get("layer_types")
    if kinds and "sliding" in kinds:
        r.put(
            "layer_positions",
            tuple("rope" if k == "sliding" else "none" for k in kinds),
            "layer_types",
        )


def first_dense(r: Reader, default: int) -> None:
    r.take("first_dense_layers", "first_k_dense_replace", default, "natural")


# ---- decoders: Llama family -------------------------------------------------------------------

LLAMA = llama_like(
    "llama",
    "LlamaConfig",
    llama_keys(
        vocab=32000,
        hidden=4096,
        layers=32,
        heads=32,
        kv=None,
        intermediate=11008,
        positions=2048,
        tied=False,
    ),
)

MISTRAL = llama_like(
    "mistral",
    "MistralConfig",
    llama_keys(
        vocab=32000,
        hidden=4096,
        layers=32,
        heads=32,
        kv=8,
        intermediate=14336,
        positions=4096 * 32,
        tied=False,
        bias=None,
        mlp_bias=None,
    ),
    window=4096,
)


def _mixtral_experts(r: Reader) -> None:
    r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")


MIXTRAL = llama_like(
    "mixtral",
    "MixtralConfig",
    llama_keys(
        vocab=32000,
        hidden=4096,
        layers=32,
        heads=32,
        kv=8,
        intermediate=14336,
        positions=4096 * 32,
        tied=False,
        bias=None,
        mlp_bias=None,
        eps=1e-5,
    ),
    moe_hook(("num_local_experts",), 8, ("num_experts_per_tok",), 2),
    _mixtral_experts,
    put(norm_topk_prob=True),
    theta=1e6,
)

QWEN2 = llama_like(
    "qwen2",
    "Qwen2Config",
    llama_keys(
        vocab=151936,
        hidden=4096,
        layers=32,
        heads=32,
        kv=32,
        intermediate=22016,
        positions=32768,
        tied=False,
        bias=None,
        mlp_bias=None,
    ),
    put(attention_qkv_bias=True, attention_out_bias=False),
    window=4096,
    window_switch="use_sliding_window",
)


def _qwen2_moe_shared(r: Reader) -> None:
    shared = r.get("shared_expert_intermediate_size", 5632, "natural")
    if shared:
        r.put("num_shared_experts", 1, "shared_expert_intermediate_size")
        r.put("shared_expert_intermediate_size", shared, "shared_expert_intermediate_size")
        r.put("shared_expert_gate", True)


QWEN2_MOE = llama_like(
    "qwen2_moe",
    "Qwen2MoeConfig",
    (
        *llama_keys(
            vocab=151936,
            hidden=2048,
            layers=24,
            heads=16,
            kv=16,
            intermediate=5632,
            positions=32768,
            tied=False,
            bias=None,
            mlp_bias=None,
        ),
        key("attention_qkv_bias", "qkv_bias", True, "bool"),
        key("moe_intermediate_size", "moe_intermediate_size", 1408, "count"),
        key("norm_topk_prob", "norm_topk_prob", False, "bool"),
    ),
    put(attention_out_bias=False),
    moe_hook(("num_experts",), 60, ("num_experts_per_tok",), 4),
    _qwen2_moe_shared,
    qwen_moe_layers,
    window=4096,
    window_switch="use_sliding_window",
)

QWEN3 = llama_like(
    "qwen3",
    "Qwen3Config",
    llama_keys(
        vocab=151936,
        hidden=4096,
        layers=32,
        heads=32,
        kv=32,
        intermediate=22016,
        positions=32768,
        tied=False,
        head_dim=128,
        mlp_bias=None,
    ),
    put(qk_norm=True),
    window=4096,
    window_switch="use_sliding_window",
)

QWEN3_MOE = llama_like(
    "qwen3_moe",
    "Qwen3MoeConfig",
    (
        *llama_keys(
            vocab=151936,
            hidden=2048,
            layers=24,
            heads=32,
            kv=4,
            intermediate=6144,
            positions=32768,
            tied=False,
            mlp_bias=None,
        ),
        key("moe_intermediate_size", "moe_intermediate_size", 768, "count"),
        key("norm_topk_prob", "norm_topk_prob", False, "bool"),
    ),
    put(qk_norm=True),
    moe_hook(("num_experts", "num_local_experts"), 128, ("num_experts_per_tok",), 8),
    qwen_moe_layers,
    window=4096,
    window_switch="use_sliding_window",
)

GEMMA_STRUCTURE = fixed(scale_embeddings=True, rope_interleaved=False)

GEMMA = llama_like(
    "gemma",
    "GemmaConfig",
    llama_keys(
        vocab=256000,
        hidden=3072,
        layers=28,
        heads=16,
        kv=16,
        intermediate=24576,
        positions=8192,
        tied=True,
        head_dim=256,
        mlp_bias=None,
    ),
    structure=GEMMA_STRUCTURE,
    activation_hook=gemma_legacy_gelu,
)

GEMMA2 = llama_like(
    "gemma2",
    "Gemma2Config",
    llama_keys(
        vocab=256000,
        hidden=2304,
        layers=26,
        heads=8,
        kv=4,
        intermediate=9216,
        positions=8192,
        tied=True,
        head_dim=256,
        mlp_bias=None,
    ),
    alternate_sliding(2),
    gemma_scale(256, 50.0, 30.0),
    window=4096,
    structure={**GEMMA_STRUCTURE, "norm_position": "sandwich"},
    activation_hook=act("hidden_activation", "gelu_pytorch_tanh"),
)

GEMMA3_TEXT = llama_like(
    "gemma3_text",
    "Gemma3TextConfig",
    llama_keys(
        vocab=262208,
        hidden=2304,
        layers=26,
        heads=8,
        kv=4,
        intermediate=9216,
        positions=131072,
        tied=True,
        head_dim=256,
        mlp_bias=None,
    ),
    window_pattern_key(6),
    gemma3_local_theta,
    gemma_scale(256, None, None),
    theta=1e6,
    window=4096,
    structure={**GEMMA_STRUCTURE, "norm_position": "sandwich", "qk_norm": True},
    activation_hook=act("hidden_activation", "gelu_pytorch_tanh"),
)

PHI3 = llama_like(
    "phi3",
    "Phi3Config",
    llama_keys(
        vocab=32064,
        hidden=3072,
        layers=32,
        heads=32,
        kv=None,
        intermediate=8192,
        positions=4096,
        tied=False,
        eps=1e-5,
        bias=None,
        mlp_bias=None,
        with_head_dim=False,
    ),
    put(attention_qkv_bias=False, attention_out_bias=False),
    window=None,
)


def deepseek_record(model_type: str, config_class: str, d: dict[str, Any]) -> Record:
    """DeepSeek-V2/V3 (and Kimi K2, GLM-style MLA): MLA attention, first_k_dense_replace
    dense layers, then MoE layers with n_shared_experts shared experts of
    moe_intermediate_size each; the correction bias is a buffer (not counted)."""

    def moe(r: Reader) -> None:
        r.put("head_dim", None)
        experts = r.get("n_routed_experts", d["n_routed_experts"], "?count")
        if not experts:
            return
        r.put("num_experts", experts, "n_routed_experts")
        r.take("num_experts_per_token", "num_experts_per_tok", d["num_experts_per_tok"], "count")
        r.take(
            "moe_intermediate_size", "moe_intermediate_size", d["moe_intermediate_size"], "count"
        )
        r.take("num_shared_experts", "n_shared_experts", d["n_shared_experts"], "natural")
        first_dense(r, int(d["first_k_dense_replace"]))
        r.put("router_bias", False)
        r.put("router_scoring", d["scoring"])
        r.take(
            "routed_scaling_factor", "routed_scaling_factor", d["routed_scaling_factor"], "float"
        )
        r.take("norm_topk_prob", "norm_topk_prob", d["norm_topk_prob"], "bool")
        r.put("num_expert_groups", r.get("n_group", d["n_group"], "?count") or 1, "n_group")
        r.put("topk_groups", r.get("topk_group", d["topk_group"], "?count") or 1, "topk_group")

    keys = (
        *llama_keys(
            vocab=int(d["vocab_size"]),
            hidden=int(d["hidden_size"]),
            layers=int(d["num_hidden_layers"]),
            heads=int(d["num_attention_heads"]),
            kv=d["num_key_value_heads"],
            intermediate=int(d["intermediate_size"]),
            positions=int(d["max_position_embeddings"]),
            tied=False,
            with_head_dim=False,
            mlp_bias=None,
        ),
        key("q_lora_rank", "q_lora_rank", d["q_lora_rank"], "?count"),
        key("kv_lora_rank", "kv_lora_rank", d["kv_lora_rank"], "count"),
        key("qk_nope_head_dim", "qk_nope_head_dim", d["qk_nope_head_dim"], "count"),
        key("qk_rope_head_dim", "qk_rope_head_dim", d["qk_rope_head_dim"], "count"),
        key("v_head_dim", "v_head_dim", d["v_head_dim"], "count"),
    )
    extra: list[Hook] = [moe]
    if "rope_interleave" in d:
        extra.append(lambda r: r.take("rope_interleaved", "rope_interleave", True, "bool"))
    else:
        extra.append(put(rope_interleaved=True))
    if "index_n_heads" in d:

        def indexer(r: Reader) -> None:
            """DeepSeek-V3.2's lightning indexer (index_n_heads x index_head_dim, top-k)."""
            r.take("index_num_heads", "index_n_heads", d["index_n_heads"], "count")
            r.take("index_head_dim", "index_head_dim", d["index_head_dim"], "count")
            r.take("index_topk", "index_topk", d["index_topk"], "count")

        extra.append(indexer)
    return llama_like(model_type, config_class, keys, *extra, window=None)


DEEPSEEK_V2 = deepseek_record(
    "deepseek_v2",
    "DeepseekV2Config",
    {
        "vocab_size": 102400,
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": None,
        "intermediate_size": 11008,
        "max_position_embeddings": 2048,
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

DEEPSEEK_V3 = deepseek_record(
    "deepseek_v3",
    "DeepseekV3Config",
    {
        "vocab_size": 129280,
        "hidden_size": 7168,
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "intermediate_size": 18432,
        "max_position_embeddings": 4096,
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
        "rope_interleave": True,
    },
)

DEEPSEEK_V32 = deepseek_record(
    "deepseek_v32",
    "DeepseekV32Config",
    {
        "vocab_size": 129280,
        "hidden_size": 7168,
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "intermediate_size": 18432,
        "max_position_embeddings": 163840,
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
        "index_n_heads": 64,
        "index_head_dim": 128,
        "index_topk": 2048,
    },
)

# ---- decoders: GPT family ------------------------------------------------------------------

GPT_LAYER = fixed(
    architecture="decoder",
    attention_qkv_bias=True,
    attention_out_bias=True,
    mlp_bias=True,
    mlp_gated=False,
    norm_type="layernorm",
    norm_bias=True,
    norm_position="pre",
)
"""GPT-2-style blocks: biases everywhere, LayerNorm with bias, pre-norm, plain MLP."""


def gpt2_inner(r: Reader) -> None:
    """``n_inner: null`` means 4 x hidden (GPT2MLP)."""
    inner = r.get("n_inner", None, "?count")
    r.put("intermediate_size", inner or 4 * r.fields["hidden_size"], "n_inner")


def gpt_keys(vocab: int, hidden: int, layers: int, heads: int, positions: int, tied: bool) -> tuple:
    return (
        key("vocab_size", "vocab_size", vocab, "count"),
        key("hidden_size", "n_embd", hidden, "count"),
        key("num_layers", "n_layer", layers, "layers"),
        key("num_heads", "n_head", heads, "count"),
        key("max_position_embeddings", "n_positions", positions, "?count"),
        key("norm_eps", "layer_norm_epsilon", 1e-5, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", tied, "bool"),
    )


GPT2 = Record(
    "gpt2",
    "GPT2Config",
    gpt_keys(50257, 768, 12, 12, 1024, True),
    fixed={**GPT_LAYER, "position_type": "learned"},
    hooks=(gpt2_inner, act("activation_function", "gelu_new"), dtype_hook),
)


def gptj_rotary(r: Reader) -> None:
    rotary = r.get("rotary_dim", 64, "?count")
    if rotary is not None:
        r.put("rotary_dim", rotary, "rotary_dim")


GPTJ = Record(
    "gptj",
    "GPTJConfig",
    gpt_keys(50400, 4096, 28, 16, 2048, False),
    fixed={
        **GPT_LAYER,
        "attention_qkv_bias": False,
        "attention_out_bias": False,
        "parallel_residual": True,
        "parallel_norms": 1,
        "position_type": "rope",
        "rope_interleaved": True,
        "lm_head_bias": True,
    },
    hooks=(gpt2_inner, act("activation_function", "gelu_new"), gptj_rotary, dtype_hook),
)


def neox_rope(r: Reader) -> None:
    rope_hook(10000.0, 0.25)(r)


GPT_NEOX = Record(
    "gpt_neox",
    "GPTNeoXConfig",
    (
        key("vocab_size", "vocab_size", 50432, "count"),
        key("hidden_size", "hidden_size", 6144, "count"),
        key("num_layers", "num_hidden_layers", 44, "layers"),
        key("num_heads", "num_attention_heads", 64, "count"),
        key("intermediate_size", "intermediate_size", 24576, "count"),
        key("max_position_embeddings", "max_position_embeddings", 2048, "?count"),
        key("norm_eps", "layer_norm_eps", 1e-5, "positive"),
        key("attention_qkv_bias", "attention_bias", True, "bool"),
        key("parallel_residual", "use_parallel_residual", True, "bool"),
        key("tie_word_embeddings", "tie_word_embeddings", False, "bool"),
    ),
    fixed={**GPT_LAYER, "parallel_norms": 2, "position_type": "rope"},
    hooks=(
        out_bias_follows_qkv,
        act("hidden_act", "gelu"),
        neox_rope,
        dtype_hook,
    ),
)


def falcon_heads(r: Reader) -> None:
    """Multi-query (1 KV head) unless new_decoder_architecture (num_kv_heads) or
    multi_query false; parallel attention with 1 LayerNorm (2 in the new architecture)."""
    heads = r.fields["num_heads"]
    new_arch = r.get("new_decoder_architecture", False, "bool")
    if new_arch:
        r.put("num_kv_heads", r.get("num_kv_heads", heads, "?count") or heads, "num_kv_heads")
    elif r.get("multi_query", True, "bool"):
        r.put("num_kv_heads", 1, "multi_query")
    else:
        r.put("num_kv_heads", heads, "multi_query")
    ffn = r.get("ffn_hidden_size", None, "?count")
    r.put("intermediate_size", ffn or 4 * r.fields["hidden_size"], "ffn_hidden_size")
    bias = r.get("bias", False, "bool")
    for name in ("attention_qkv_bias", "attention_out_bias", "mlp_bias"):
        r.put(name, bias, "bias")
    parallel = r.get("parallel_attn", True, "bool")
    r.put("parallel_residual", parallel, "parallel_attn")
    if parallel:
        n_ln = r.get("num_ln_in_parallel_attn", None, "?count")
        r.put(
            "parallel_norms",
            n_ln if n_ln is not None else (2 if new_arch else 1),
            "num_ln_in_parallel_attn",
            "new_decoder_architecture",
        )
    if r.get("alibi", False, "bool"):
        r.put("position_type", "alibi", "alibi")
    else:
        r.put("position_type", "rope", "alibi")
        rope_hook(10000.0)(r)


FALCON = Record(
    "falcon",
    "FalconConfig",
    (
        key("vocab_size", "vocab_size", 65024, "count"),
        key("hidden_size", "hidden_size", 4544, "count"),
        key("num_layers", "num_hidden_layers", 32, "layers"),
        key("num_heads", "num_attention_heads", 71, "count"),
        key("max_position_embeddings", "max_position_embeddings", 2048, "?count"),
        key("norm_eps", "layer_norm_epsilon", 1e-5, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", True, "bool"),
    ),
    fixed=GPT_LAYER,
    hooks=(falcon_heads, act("activation", "gelu"), dtype_hook),
)


def bloom_sizes(r: Reader) -> None:
    hidden = r.get(("hidden_size", "n_embed"), 64, "count")
    r.put("hidden_size", hidden, "hidden_size", "n_embed")
    r.put("intermediate_size", 4 * hidden, "hidden_size")
    r.take("max_position_embeddings", "seq_length", None, "?count")


BLOOM = Record(
    "bloom",
    "BloomConfig",
    (
        key("vocab_size", "vocab_size", 250880, "count"),
        key("num_layers", "n_layer", 2, "layers"),
        key("num_heads", "n_head", 8, "count"),
        key("norm_eps", "layer_norm_epsilon", 1e-5, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", True, "bool"),
    ),
    fixed={
        **GPT_LAYER,
        "activation": "gelu_tanh",
        "embedding_norm": True,
        "position_type": "alibi",
    },
    hooks=(bloom_sizes, dtype_hook),
)


def opt_structure(r: Reader) -> None:
    hidden = r.fields["hidden_size"]
    proj = r.get("word_embed_proj_dim", hidden, "?count")
    if proj is not None and proj != hidden:
        raise r.fail(
            "word_embed_proj_dim",
            proj,
            "!= hidden_size (project_in/out, OPT-350m) is not supported",
        )
    bias = r.get("enable_bias", True, "bool")
    for name in ("attention_qkv_bias", "attention_out_bias", "mlp_bias"):
        r.put(name, bias, "enable_bias")
    if not r.get("layer_norm_elementwise_affine", True, "bool"):
        raise r.fail("layer_norm_elementwise_affine", False, "is not supported")
    pre = r.get("do_layer_norm_before", True, "bool")
    r.put("norm_position", "pre" if pre else "post", "do_layer_norm_before")
    final = pre and not r.get("_remove_final_layer_norm", False, "bool")
    r.put("final_norm", final, "do_layer_norm_before")


OPT = Record(
    "opt",
    "OPTConfig",
    (
        key("vocab_size", "vocab_size", 50272, "count"),
        key("hidden_size", "hidden_size", 768, "count"),
        key("num_layers", "num_hidden_layers", 12, "layers"),
        key("num_heads", "num_attention_heads", 12, "count"),
        key("intermediate_size", "ffn_dim", 3072, "count"),
        key("max_position_embeddings", "max_position_embeddings", 2048, "?count"),
        key("tie_word_embeddings", "tie_word_embeddings", True, "bool"),
    ),
    fixed={**GPT_LAYER, "position_offset": 2, "position_type": "learned", "norm_eps": 1e-5},
    hooks=(act("activation_function", "relu"), opt_structure, dtype_hook),
)


def mpt_structure(r: Reader) -> None:
    # MptMLP hard-codes 4 x hidden_size whatever expansion_ratio says
    r.put("intermediate_size", 4 * r.fields["hidden_size"], "d_model")
    bias = not r.get("no_bias", True, "bool")
    for name in ("attention_qkv_bias", "attention_out_bias", "mlp_bias", "norm_bias"):
        r.put(name, bias, "no_bias")
    attn = r.get("attn_config", None, "?dict") or {}
    if attn.get("alibi", True) is False:
        raise r.fail("attn_config", attn, "MPT without ALiBi is not supported")


MPT = Record(
    "mpt",
    "MptConfig",
    (
        key("vocab_size", "vocab_size", 50368, "count"),
        key("hidden_size", "d_model", 2048, "count"),
        key("num_layers", "n_layers", 24, "layers"),
        key("num_heads", "n_heads", 16, "count"),
        key("max_position_embeddings", "max_seq_len", 2048, "?count"),
        key("norm_eps", "layer_norm_epsilon", 1e-5, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", True, "bool"),
    ),
    fixed={**GPT_LAYER, "activation": "gelu", "position_type": "alibi"},
    hooks=(mpt_structure, dtype_hook),
)

# ---- encoders and encoder-decoders --------------------------------------------------------

BERT_STRUCTURE = fixed(
    architecture="encoder",
    attention_qkv_bias=True,
    attention_out_bias=True,
    mlp_bias=True,
    mlp_gated=False,
    norm_type="layernorm",
    norm_bias=True,
    norm_position="post",
    final_norm=False,
    embedding_norm=True,
    position_type="learned",
    pooler=True,
    lm_head=False,
    tie_word_embeddings=True,
)
"""BertModel: embeddings (word, position, token type) + LayerNorm, post-LN blocks with
biases, plain GELU MLP, pooler; counted as AutoModel (no MLM head)."""


def bert_keys(
    vocab: int,
    hidden: int = 768,
    layers: int = 12,
    heads: int = 12,
    intermediate: int = 3072,
    positions: int = 512,
    types: int = 2,
    eps: float = 1e-12,
) -> tuple:
    return (
        key("vocab_size", "vocab_size", vocab, "count"),
        key("hidden_size", "hidden_size", hidden, "count"),
        key("num_layers", "num_hidden_layers", layers, "layers"),
        key("num_heads", "num_attention_heads", heads, "count"),
        key("intermediate_size", "intermediate_size", intermediate, "count"),
        key("max_position_embeddings", "max_position_embeddings", positions, "?count"),
        key("type_vocab_size", "type_vocab_size", types, "natural"),
        key("norm_eps", "layer_norm_eps", eps, "positive"),
    )


BERT = Record(
    "bert",
    "BertConfig",
    bert_keys(30522),
    fixed=BERT_STRUCTURE,
    hooks=(act("hidden_act", "gelu"), dtype_hook),
)
ROBERTA = Record(
    "roberta",
    "RobertaConfig",
    bert_keys(50265),
    fixed=BERT_STRUCTURE,
    hooks=(act("hidden_act", "gelu"), dtype_hook),
)


def t5_structure(r: Reader) -> None:
    encoder_layers = r.get("num_layers", 6, "layers")
    r.put("num_encoder_layers", encoder_layers, "num_layers")
    decoder = r.get("num_decoder_layers", None, "?layers") or encoder_layers
    r.put("num_layers", decoder, "num_decoder_layers")
    heads = r.fields["num_heads"]
    d_kv = r.get("d_kv", 64, "count")
    r.put("head_dim", d_kv if d_kv * heads != r.fields["hidden_size"] else None, "d_kv")
    proj = r.get("feed_forward_proj", "relu", "str")
    gated = proj.startswith("gated-")
    name = proj.split("-")[-1]
    if name not in ("relu", "gelu", "silu", "gelu_new") or proj.count("-") > 1:
        raise r.fail("feed_forward_proj", proj, "expected relu, gelu, gated-gelu or gated-relu")
    r.put("mlp_gated", gated, "feed_forward_proj")
    activation_name = "gelu_new" if name == "gelu" else name
    from tfcli.hf.records import ACTIVATIONS

    r.put("activation", ACTIVATIONS[activation_name], "feed_forward_proj")


T5 = Record(
    "t5",
    "T5Config",
    (
        key("vocab_size", "vocab_size", 32128, "count"),
        key("hidden_size", "d_model", 512, "count"),
        key("num_heads", "num_heads", 8, "count"),
        key("intermediate_size", "d_ff", 2048, "count"),
        key("norm_eps", "layer_norm_epsilon", 1e-6, "positive"),
        key("relative_attention_num_buckets", "relative_attention_num_buckets", 32, "count"),
        key("relative_attention_max_distance", "relative_attention_max_distance", 128, "count"),
        key("tie_word_embeddings", "tie_word_embeddings", True, "bool"),
        key("max_position_embeddings", "n_positions", None, "?count"),
    ),
    fixed=fixed(
        architecture="encoder-decoder",
        mlp_bias=False,
        attention_qkv_bias=False,
        attention_out_bias=False,
        norm_type="rmsnorm",
        norm_position="pre",
        attention_scale=1.0,
        position_type="relative",
    ),
    hooks=(t5_structure, dtype_hook),
)


def bart_structure(r: Reader) -> None:
    enc_heads = r.get("encoder_attention_heads", 16, "count")
    dec_heads = r.get("decoder_attention_heads", 16, "count")
    enc_ffn = r.get("encoder_ffn_dim", 4096, "count")
    dec_ffn = r.get("decoder_ffn_dim", 4096, "count")
    if enc_heads != dec_heads or enc_ffn != dec_ffn:
        raise r.fail(
            "encoder_attention_heads",
            (enc_heads, dec_heads, enc_ffn, dec_ffn),
            "encoder and decoder with different heads or ffn widths are not supported",
        )
    r.put("num_heads", enc_heads, "encoder_attention_heads", "decoder_attention_heads")
    r.put("intermediate_size", enc_ffn, "encoder_ffn_dim", "decoder_ffn_dim")


BART = Record(
    "bart",
    "BartConfig",
    (
        key("vocab_size", "vocab_size", 50265, "count"),
        key("hidden_size", "d_model", 1024, "count"),
        key("num_encoder_layers", "encoder_layers", 12, "layers"),
        key("num_layers", "decoder_layers", 12, "layers"),
        key("max_position_embeddings", "max_position_embeddings", 1024, "?count"),
        key("scale_embeddings", "scale_embedding", False, "bool"),
        key("tie_word_embeddings", "tie_word_embeddings", True, "bool"),
    ),
    fixed={
        **GPT_LAYER,
        "architecture": "encoder-decoder",
        "position_offset": 2,
        "norm_position": "post",
        "norm_eps": 1e-5,
        "final_norm": False,
        "embedding_norm": True,
        "position_type": "learned",
    },
    hooks=(bart_structure, act("activation_function", "gelu"), dtype_hook),
)


@dataclass(frozen=True)
class Wrapper:
    """A multimodal config whose language model is its ``text_config`` (read as
    ``text_model_type``); ``uncounted`` names what the counts leave out."""

    model_type: str
    text_model_type: str
    uncounted: str
    flat_text: bool = False
    """Older configs keep the language model's keys at the top level (Qwen2-VL)."""
    tie: str = "outer"
    """Whose ``tie_word_embeddings`` decides (as each transformers class does): ``outer``
    (Gemma-3, Mistral-3), ``inner`` (Llama 4: its language model is a whole causal LM),
    ``either`` (Qwen2-VL and Qwen2.5-VL tie when either says so)."""
    tie_default: bool = True
    """The wrapper class's own ``tie_word_embeddings`` default."""


WRAPPERS: dict[str, Wrapper] = {
    w.model_type: w
    for w in (
        Wrapper("gemma3", "gemma3_text", "the SigLIP vision tower and multi-modal projector"),
        Wrapper(
            "llama4",
            "llama4_text",
            "the vision encoder and multi-modal projector",
            tie="inner",
            tie_default=False,
        ),
        Wrapper("mistral3", "mistral", "the Pixtral vision tower and multi-modal projector"),
        Wrapper(
            "qwen2_vl",
            "qwen2",
            "the vision transformer and merger",
            flat_text=True,
            tie="either",
            tie_default=False,
        ),
        Wrapper(
            "qwen2_5_vl",
            "qwen2",
            "the vision transformer and merger",
            flat_text=True,
            tie="either",
            tie_default=False,
        ),
    )
}
"""Multimodal model_types read through their text_config."""

RECORDS: dict[str, Record] = {
    r.model_type: r
    for r in (
        LLAMA,
        MISTRAL,
        MIXTRAL,
        QWEN2,
        QWEN2_MOE,
        QWEN3,
        QWEN3_MOE,
        GEMMA,
        GEMMA2,
        GEMMA3_TEXT,
        PHI3,
        GPT2,
        GPT_NEOX,
        GPTJ,
        FALCON,
        BLOOM,
        OPT,
        BERT,
        ROBERTA,
        T5,
        BART,
        DEEPSEEK_V2,
        DEEPSEEK_V3,
        MPT,
    )
}
"""Every model_type tfcli reads, by name."""

_ = (kv_heads_default_to_heads, explicit_head_dim, layer_types_hook, LLAMA_STRUCTURE, sliding_hook)
