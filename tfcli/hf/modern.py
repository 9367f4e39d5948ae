"""Records for the attention decoders of 2024-26: Llama relatives, new MoE layouts, gpt-oss,
Llama 4, Qwen3-Next (with Gated DeltaNet), MiniMax (lightning attention), DeepSeek-V3.2.

Defaults are transformers 5.x class defaults (tests/test_hf_records.py checks them); the
structure of each is read off its ``modeling_*.py``.

Only the standard library is imported here.
"""

from __future__ import annotations

from tfcli.hf.reader import Reader
from tfcli.hf.records import (
    Key,
    Record,
    act,
    key,
    layer_types_hook,
    llama_keys,
    llama_like,
    moe_hook,
    pattern_layer_types,
    qwen_moe_layers,
)
from tfcli.hf.types import (
    DEEPSEEK_V32,
    alternate_sliding,
    first_dense,
    nope_layers,
    nope_on_full_layers,
    put,
    window_pattern_key,
)

# ---- Llama relatives ---------------------------------------------------------------------------


def granite_multipliers(r: Reader) -> None:
    """Granite's four multipliers (GraniteModel / GraniteAttention / GraniteForCausalLM)."""
    r.take("attention_scale", "attention_multiplier", 1.0, "positive")
    r.take("embedding_multiplier", "embedding_multiplier", 1.0, "positive")
    r.take("residual_multiplier", "residual_multiplier", 1.0, "positive")
    r.put("logit_scale", 1.0 / r.get("logits_scaling", 1.0, "positive"), "logits_scaling")


GRANITE = llama_like(
    "granite",
    "GraniteConfig",
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
    granite_multipliers,
)
"""GraniteConfig: Llama's structure; its multipliers scale activations, not shapes: the
softmax scale is attention_multiplier, embeddings times embedding_multiplier, sublayer outputs
times residual_multiplier, logits divided by logits_scaling."""

OLMO = llama_like(
    "olmo",
    "OlmoConfig",
    llama_keys(
        vocab=50304,
        hidden=4096,
        layers=32,
        heads=32,
        kv=None,
        intermediate=11008,
        positions=2048,
        tied=False,
        mlp_bias=None,
        with_head_dim=False,
    ),
    put(norm_eps=1e-5),  # OlmoLayerNorm's eps is fixed: the config has no eps key
    structure={"norm_type": "layernorm", "norm_affine": False, "norm_eps": 1e-5},
)
"""OlmoConfig: non-parametric LayerNorm (no weight, no bias, eps 1e-5 fixed in OlmoLayerNorm)
before attention and MLP and at the end; otherwise Llama's structure."""

OLMO2 = llama_like(
    "olmo2",
    "Olmo2Config",
    llama_keys(
        vocab=50304,
        hidden=4096,
        layers=32,
        heads=32,
        kv=None,
        intermediate=11008,
        positions=2048,
        tied=False,
        eps=1e-5,
        mlp_bias=None,
        with_head_dim=False,
    ),
    structure={
        "norm_position": "output",
        "qk_norm": True,
        "qk_norm_weights": "all",
        "qk_norm_scope": "all",
    },
)
"""Olmo2Config: RMSNorm on each sublayer's output before the residual add (no input norms),
q_norm over all heads' queries (H d) and k_norm over all keys (KVH d)."""

SMOLLM3 = llama_like(
    "smollm3",
    "SmolLM3Config",
    llama_keys(
        vocab=128256,
        hidden=2048,
        layers=36,
        heads=16,
        kv=4,
        intermediate=11008,
        positions=32768,
        tied=True,
        with_head_dim=False,
    ),
    nope_layers(),
    theta=2e6,
    window=None,
    window_switch="use_sliding_window",
)
"""SmolLM3Config: Llama with NoPE every ``no_rope_layer_interval``-th layer."""

EXAONE4 = llama_like(
    "exaone4",
    "Exaone4Config",
    llama_keys(
        vocab=102400,
        hidden=4096,
        layers=32,
        heads=32,
        kv=32,
        intermediate=16384,
        positions=2048,
        tied=False,
        eps=1e-5,
        bias=None,
        mlp_bias=None,
        with_head_dim=False,
    ),
    window_pattern_key(4),
    nope_on_full_layers,
    window=4096,
    structure={"norm_position": "output", "qk_norm": True},
)
"""Exaone4Config: output norms (OLMo-2 style), per-head q/k RMSNorm, 3 sliding : 1 global
layers (sliding_window_pattern), RoPE on sliding layers only when a window is set."""


def _cohere(r: Reader) -> None:
    r.put("norm_type", "layernorm")
    r.put("norm_bias", False)
    r.put("rope_interleaved", True)  # CohereRotaryEmbedding repeat_interleave, rotate_half pairs
    r.take("logit_scale", "logit_scale", 0.0625, "positive")
    r.put("parallel_residual", True)
    r.put("parallel_norms", 1)


def _cohere_keys(use_qk_norm: bool) -> tuple[Key, ...]:
    keys = llama_keys(
        vocab=256000,
        hidden=8192,
        layers=40,
        heads=64,
        kv=None,
        intermediate=22528,
        positions=8192,
        tied=True,
        eps=1e-5,
        eps_key="layer_norm_eps",
        mlp_bias=None,
        with_head_dim=False,
    )
    if use_qk_norm:
        keys = (*keys, key("qk_norm", "use_qk_norm", False, "bool"))
    return keys


COHERE = llama_like(
    "cohere",
    "CohereConfig",
    _cohere_keys(True),
    _cohere,
    put(qk_norm_weights="all"),
    theta=500000.0,
)
"""CohereConfig (Command-R): one LayerNorm without bias shared by the parallel attention and
MLP, per-head q/k LayerNorms with use_qk_norm, tied head (logit_scale has no parameters)."""

COHERE2 = llama_like(
    "cohere2",
    "Cohere2Config",
    _cohere_keys(False),
    _cohere,
    alternate_sliding(4),
    nope_on_full_layers,
    window=4096,
)
"""Cohere2Config (Command-R7B, Command-A): Cohere's block, 3 sliding : 1 global layers,
RoPE only on the sliding ones."""


def _starcoder2(r: Reader) -> None:
    bias = r.get("use_bias", True, "bool")
    for name in ("attention_qkv_bias", "attention_out_bias", "mlp_bias"):
        r.put(name, bias, "use_bias")
    r.put("norm_bias", True)


STARCODER2 = llama_like(
    "starcoder2",
    "Starcoder2Config",
    llama_keys(
        vocab=49152,
        hidden=3072,
        layers=30,
        heads=24,
        kv=2,
        intermediate=12288,
        positions=4096,
        tied=True,
        eps=1e-5,
        eps_key="norm_epsilon",
        bias=None,
        mlp_bias=None,
        with_head_dim=False,
    ),
    _starcoder2,
    window=None,
    structure={"norm_type": "layernorm", "mlp_gated": False},
    activation_hook=act("hidden_act", "gelu_pytorch_tanh"),
)
"""Starcoder2Config: LayerNorm with bias, biases on every linear (use_bias), a plain GELU-tanh
MLP (c_fc, c_proj), tied head, an optional sliding window."""

# ---- new MoE layouts -------------------------------------------------------------------------


def _olmoe(r: Reader) -> None:
    r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")


OLMOE = llama_like(
    "olmoe",
    "OlmoeConfig",
    (
        *llama_keys(
            vocab=50304,
            hidden=2048,
            layers=16,
            heads=16,
            kv=None,
            intermediate=2048,
            positions=4096,
            tied=False,
            eps=1e-5,
            mlp_bias=None,
            with_head_dim=False,
        ),
        key("norm_topk_prob", "norm_topk_prob", False, "bool"),
    ),
    moe_hook(("num_experts",), 64, ("num_experts_per_tok",), 8),
    _olmoe,
    structure={"qk_norm": True, "qk_norm_weights": "all", "qk_norm_scope": "all"},
)
"""OlmoeConfig: every layer routes to 8 of 64 experts of intermediate_size; q/k RMSNorm over
all heads (H d, KVH d)."""

GRANITEMOE = llama_like(
    "granitemoe",
    "GraniteMoeConfig",
    llama_keys(
        vocab=32000,
        hidden=4096,
        layers=32,
        heads=32,
        kv=None,
        intermediate=11008,
        positions=2048,
        tied=False,
        mlp_bias=None,
    ),
    moe_hook(("num_local_experts",), 8, ("num_experts_per_tok",), 2),
    _olmoe,
    granite_multipliers,
)
"""GraniteMoeConfig: every layer is a MoE of num_local_experts experts of intermediate_size
(softmax over the top-k logits); Granite's multipliers."""


def _phimoe(r: Reader) -> None:
    r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")
    r.put("norm_type", "layernorm")
    r.put("norm_bias", True)
    r.put("router_scoring", "sparsemixer")
    r.take("router_jitter_eps", "router_jitter_noise", 0.01, "float")


PHIMOE = llama_like(
    "phimoe",
    "PhimoeConfig",
    (
        *llama_keys(
            vocab=32064,
            hidden=4096,
            layers=32,
            heads=32,
            kv=8,
            intermediate=6400,
            positions=131072,
            tied=False,
            eps=1e-5,
            mlp_bias=None,
            with_head_dim=False,
        ),
        key("lm_head_bias", "lm_head_bias", False, "bool"),
    ),
    moe_hook(("num_local_experts",), 16, ("num_experts_per_tok",), 2),
    _phimoe,
    theta=1e6,
    window=None,
)
"""PhimoeConfig (Phi-3.5-MoE): sparsemixer top-2 routing, LayerNorm (weight and bias), biases on
q/k/v/o with attention_bias and on the LM head with lm_head_bias."""


def _glm4_moe(r: Reader) -> None:
    r.put("attention_out_bias", False)
    r.take("moe_intermediate_size", "moe_intermediate_size", 1408, "count")
    r.take("num_shared_experts", "n_shared_experts", 1, "natural")
    first_dense(r, 1)
    r.put("router_scoring", "sigmoid")
    r.take("routed_scaling_factor", "routed_scaling_factor", 1.0, "float")
    r.take("norm_topk_prob", "norm_topk_prob", True, "bool")
    r.put("num_expert_groups", r.get("n_group", 1, "?count") or 1, "n_group")
    r.put("topk_groups", r.get("topk_group", 1, "?count") or 1, "topk_group")


GLM4_MOE = llama_like(
    "glm4_moe",
    "Glm4MoeConfig",
    (
        *llama_keys(
            vocab=151552,
            hidden=4096,
            layers=46,
            heads=96,
            kv=8,
            intermediate=10944,
            positions=131072,
            tied=False,
            eps=1e-5,
            mlp_bias=None,
        ),
        key("qk_norm", "use_qk_norm", False, "bool"),
    ),
    moe_hook(("n_routed_experts",), 128, ("num_experts_per_tok",), 8),
    _glm4_moe,
    partial=0.5,
)
"""Glm4MoeConfig (GLM-4.5, GLM-4.5-Air): first_k_dense_replace dense layers, then sigmoid-
routed experts with n_shared_experts shared ones (the correction bias is a buffer); q/k/v
biases (attention_bias), o without; optional per-head q/k norms; half-rotary RoPE."""


def _ernie_moe(r: Reader) -> None:
    bias = r.get("use_bias", False, "bool")
    for name in ("attention_qkv_bias", "attention_out_bias", "mlp_bias", "lm_head_bias"):
        r.put(name, bias, "use_bias")
    r.take("num_experts", "moe_num_experts", 64, "count")
    r.take("num_experts_per_token", "moe_k", 6, "count")
    r.take("moe_intermediate_size", "moe_intermediate_size", 1536, "count")
    r.take("num_shared_experts", "moe_num_shared_experts", 2, "natural")
    r.put("router_correction_bias", True)
    r.put("rope_interleaved", True)  # apply_rotary_pos_emb: cos/sin repeat_interleave'd
    layers = r.fields["num_layers"]
    start = r.get("moe_layer_start_index", 1, "natural")
    end = r.get("moe_layer_end_index", -1, "int")
    end = layers - 1 if end == -1 else end
    step = r.get("moe_layer_interval", 1, "count")
    kinds = tuple(
        "moe" if start <= i <= end and (i + 1) % step == 0 else "dense" for i in range(layers)
    )
    r.put(
        "mlp_layer_types",
        kinds,
        "moe_layer_start_index",
        "moe_layer_end_index",
        "moe_layer_interval",
    )


ERNIE4_5_MOE = llama_like(
    "ernie4_5_moe",
    "Ernie4_5_MoeConfig",
    llama_keys(
        vocab=103424,
        hidden=2560,
        layers=28,
        heads=20,
        kv=4,
        intermediate=12288,
        positions=131072,
        tied=True,
        eps=1e-5,
        bias=None,
        mlp_bias=None,
        with_head_dim=False,
    ),
    _ernie_moe,
    theta=500000.0,
)
"""Ernie4_5_MoeConfig: MoE layers i with moe_layer_start_index <= i <= moe_layer_end_index
and (i + 1) % moe_layer_interval == 0 (Ernie4_5_MoeDecoderLayer); moe_num_shared_experts
shared experts; the routing correction bias is a parameter here (moe_statics); use_bias puts
biases on every linear but the stacked experts, and on the LM head; interleaved RoPE."""


def _gpt_oss(r: Reader) -> None:
    bias = r.fields.get("attention_qkv_bias", True)
    r.put("attention_out_bias", bias, "attention_bias")
    r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")
    r.put("router_bias", True)
    r.put("expert_bias", True)
    r.put("attention_sinks", True)
    r.take("swiglu_limit", "swiglu_limit", 7.0, "?positive")
    r.take("swiglu_alpha", "swiglu_alpha", 1.702, "positive")
    r.put("norm_topk_prob", True)
    if r.fields.get("sliding_window") and "layer_types" not in r.fields:
        pattern_layer_types(r, lambda i: "sliding" if (i + 1) % 2 else "full", ("layer_types",))


GPT_OSS = llama_like(
    "gpt_oss",
    "GptOssConfig",
    llama_keys(
        vocab=201088,
        hidden=2880,
        layers=36,
        heads=64,
        kv=8,
        intermediate=2880,
        positions=131072,
        tied=False,
        head_dim=64,
        eps=1e-5,
        bias=True,
        mlp_bias=None,
    ),
    moe_hook(("num_local_experts", "num_experts"), 128, ("num_experts_per_tok",), 4),
    _gpt_oss,
    theta=150000.0,
    scaling={
        "rope_type": "yarn",
        "factor": 32.0,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "truncate": False,
        "original_max_position_embeddings": 4096,
    },
    window=128,
)
"""GptOssConfig: every layer a MoE of num_local_experts experts with biases (gate_up and down)
and a router with bias; a learned sink logit per head; q/k/v/o biases; alternate sliding
(window 128) and full layers; YaRN RoPE."""


def _llama4(r: Reader) -> None:
    layers = r.fields["num_layers"]
    r.take("intermediate_size", "intermediate_size_mlp", 16384, "count")
    expert = r.get("intermediate_size", 8192, "count")
    r.put("moe_intermediate_size", expert, "intermediate_size")
    r.put("shared_expert_intermediate_size", expert, "intermediate_size")
    r.put("num_shared_experts", 1)
    r.put("norm_topk_prob", False)
    r.put("router_scoring", "sigmoid")
    r.put("moe_dense_reference", True)
    r.put("router_scales_input", True)
    r.put("rope_interleaved", True)  # apply_rotary_emb: view_as_complex over adjacent pairs
    r.take("qk_l2_norm", "use_qk_norm", True, "bool")
    if r.get("attn_temperature_tuning", True):  # a bool in the class; truthy is enough
        floor = r.get("floor_scale", 8192, "count")
        r.put("attention_temperature_floor", floor, "attn_temperature_tuning", "floor_scale")
    r.take("attention_temperature_scale", "attn_scale", 0.1, "positive")
    moe_layers = r.get("moe_layers", None, "?list")
    if moe_layers is None:
        step = r.get("interleave_moe_layer_step", 1, "count")
        moe_layers = list(range(step - 1, layers, step))
        names: tuple[str, ...] = ("interleave_moe_layer_step",)
    else:
        names = ("moe_layers",)
    wanted = set(moe_layers)
    kinds = tuple("moe" if i in wanted else "dense" for i in range(layers))
    if "dense" in kinds:
        r.put("mlp_layer_types", kinds, *names)
    nope_layers()(r)
    chunk = r.get("attention_chunk_size", 8192, "?count")
    if chunk is not None:
        r.put("attention_chunk_size", chunk, "attention_chunk_size")
    if r.get("layer_types", None, "?list") is not None:
        layer_types_hook()(r)
    elif chunk is not None:
        positions = r.fields.get("layer_positions") or ("rope",) * layers
        pattern_layer_types(
            r, lambda i: "chunked" if positions[i] == "rope" else "full", ("no_rope_layers",)
        )


LLAMA4_TEXT = llama_like(
    "llama4_text",
    "Llama4TextConfig",
    llama_keys(
        vocab=202048,
        hidden=5120,
        layers=48,
        heads=40,
        kv=8,
        intermediate=8192,
        positions=131072,
        tied=False,
        head_dim=128,
        eps=1e-5,
        mlp_bias=None,
    ),
    moe_hook(("num_local_experts",), 16, ("num_experts_per_tok",), 1),
    _llama4,
    theta=500000.0,
    window=None,
)
"""Llama4TextConfig (Scout, Maverick): MoE layers every interleave_moe_layer_step (routed
experts and one shared expert, both of intermediate_size; dense layers intermediate_size_mlp);
RoPE layers attend chunks of attention_chunk_size, every no_rope_layer_interval-th layer is a
NoPE full-attention layer; the qk L2 norm has no parameters."""


def _qwen3_next(r: Reader) -> None:
    r.take("linear_num_key_heads", "linear_num_key_heads", 16, "count")
    r.take("linear_num_value_heads", "linear_num_value_heads", 32, "count")
    r.take("linear_key_head_dim", "linear_key_head_dim", 128, "count")
    r.take("linear_value_head_dim", "linear_value_head_dim", 128, "count")
    r.take("conv_kernel", "linear_conv_kernel_dim", 4, "count")
    r.put("linear_chunk_size", 64)
    r.put("attention_output_gate", True)
    r.put("qk_norm", True)
    shared = r.get("shared_expert_intermediate_size", 512, "natural")
    if shared:
        r.put("num_shared_experts", 1, "shared_expert_intermediate_size")
        r.put("shared_expert_intermediate_size", shared, "shared_expert_intermediate_size")
        r.put("shared_expert_gate", True)
    if r.get("layer_types", None, "?list") is not None:
        layer_types_hook("gated_deltanet")(r)
    else:
        every = r.get("full_attention_interval", 4, "count")
        pattern_layer_types(
            r,
            lambda i: "gated_deltanet" if (i + 1) % every else "full",
            ("full_attention_interval",),
        )


QWEN3_NEXT = llama_like(
    "qwen3_next",
    "Qwen3NextConfig",
    (
        *llama_keys(
            vocab=151936,
            hidden=2048,
            layers=48,
            heads=16,
            kv=2,
            intermediate=5632,
            positions=32768,
            tied=False,
            head_dim=256,
            mlp_bias=None,
        ),
        key("moe_intermediate_size", "moe_intermediate_size", 512, "count"),
        key("norm_topk_prob", "norm_topk_prob", True, "bool"),
    ),
    moe_hook(("num_experts",), 512, ("num_experts_per_tok",), 10),
    _qwen3_next,
    qwen_moe_layers,
    partial=0.25,
    window=None,
)
"""Qwen3NextConfig (Qwen3-Next-80B-A3B): 3 Gated DeltaNet layers to 1 full-attention layer
(output-gated attention, per-head q/k norms, quarter-rotary RoPE); 512 experts, top-10, and a
sigmoid-gated shared expert."""


def _minimax(r: Reader) -> None:
    r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")
    r.take("linear_chunk_size", "block_size", 256, "count")
    r.put("residual_from_norm", True)  # MiniMaxDecoderLayer: residual = input_layernorm(x)
    for field, name in (
        ("full_attention_alpha", "full_attn_alpha_factor"),
        ("full_attention_beta", "full_attn_beta_factor"),
        ("linear_attention_alpha", "linear_attn_alpha_factor"),
        ("linear_attention_beta", "linear_attn_beta_factor"),
        ("mlp_alpha", "mlp_alpha_factor"),
        ("mlp_beta", "mlp_beta_factor"),
    ):
        r.take(field, name, 1.0, "float")
    if r.get("layer_types", None, "?list") is not None:
        layer_types_hook("lightning")(r)
    else:
        pattern_layer_types(r, lambda i: "full" if (i + 1) % 2 else "lightning", ("layer_types",))


MINIMAX = llama_like(
    "minimax",
    "MiniMaxConfig",
    llama_keys(
        vocab=32000,
        hidden=4096,
        layers=32,
        heads=32,
        kv=8,
        intermediate=14336,
        positions=131072,
        tied=False,
        eps=1e-5,
        bias=None,
        mlp_bias=None,
    ),
    moe_hook(("num_local_experts",), 8, ("num_experts_per_tok",), 2),
    _minimax,
    theta=1e6,
    window=None,
)
"""MiniMaxConfig (MiniMax-Text-01, M1): lightning (linear) attention layers alternating with
softmax attention layers, MoE in every layer."""

RECORDS_2025: tuple[Record, ...] = (
    GRANITE,
    OLMO,
    OLMO2,
    SMOLLM3,
    EXAONE4,
    COHERE,
    COHERE2,
    STARCODER2,
    OLMOE,
    GRANITEMOE,
    PHIMOE,
    GLM4_MOE,
    ERNIE4_5_MOE,
    GPT_OSS,
    LLAMA4_TEXT,
    QWEN3_NEXT,
    MINIMAX,
    DEEPSEEK_V32,
)
