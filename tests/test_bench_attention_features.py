"""The built-in model builds the 2025-26 attention and MoE features exactly (DESIGN.md oracle 4).

For each model_type two tiny transformers models (fp32, eval, eager attention and eager
experts) get random, perturbed norms, biases, sinks and routing corrections; their weights are
copied into the built-in model of the spec tfcli's loader reads from the same config, and
``torch.testing.assert_close`` (default fp32 tolerances) compares the logits over several
lengths, one longer than every window and chunk. The cached path (prefill, then one token at
a time) must equal the full forward, with prompts shorter and longer than the chunk / window
so that the trimmed sliding and chunked caches are exercised.

Features covered: attention sinks, sliding layers and gpt-oss's clamped, interleaved SwiGLU
experts with biases and a router bias (gpt_oss); chunked attention, NoPE layers with
temperature tuning, the parameter-free q/k norm, interleaved RoPE, sigmoid top-1 routing
applied to the expert input, the shared expert and interleaved MoE layers (llama4_text);
output norms and q/k norms over all heads (olmo2); non-parametric LayerNorms (olmo); NoPE
layers (smollm3); sigmoid group routing with a correction bias, first dense layers and
half-rotary RoPE (glm4_moe); Qwen3-MoE; sparsemixer routing with LayerNorms and biases
(phimoe); Qwen3-Next's output-gated attention with (1 + w) norms and a gated shared expert,
in configs of full-attention layers only (its Gated DeltaNet layers are another mixer).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.bench.cache import KVCache  # noqa: E402
from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import Transformer, build_model  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402

SMALL = {"vocab_size": 300, "pad_token_id": None, "bos_token_id": 1, "eos_token_id": 2}
LENGTHS = (1, 5, 11)
"""Full-forward lengths: one token, about one chunk / window (4), several of them."""
SEQ = 11
PREFILLS = (1, 3, 6)
"""Cached-path prompts: from the first token, inside the first chunk, past it."""


def _gpt_oss(**kw: Any) -> Any:
    return transformers.GptOssConfig(**SMALL, sliding_window=4, **kw)


def _llama4(**kw: Any) -> Any:
    return transformers.Llama4TextConfig(**SMALL, attention_chunk_size=4, floor_scale=3, **kw)


CONFIGS: dict[str, Callable[[], Any]] = {
    # gpt-oss: sliding / full layers, 4 experts top-2 (interleaved gate_up with biases)
    "gpt_oss": lambda: _gpt_oss(
        hidden_size=64,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_local_experts=4,
        num_experts_per_tok=2,
    ),
    "gpt_oss_mqa_deep": lambda: _gpt_oss(
        hidden_size=48,
        intermediate_size=40,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=1,
        head_dim=8,
        num_local_experts=3,
        num_experts_per_tok=1,
        swiglu_limit=0.05,  # small: the clamp bites on these random weights
    ),
    # Llama 4: chunked RoPE layers, a NoPE full layer every 2nd (temperature-tuned),
    # MoE every 2nd layer beside dense ones of intermediate_size_mlp
    "llama4_text": lambda: _llama4(
        hidden_size=64,
        intermediate_size=48,
        intermediate_size_mlp=80,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_local_experts=4,
        num_experts_per_tok=1,
        interleave_moe_layer_step=2,
        no_rope_layer_interval=2,
    ),
    "llama4_text_no_qk_norm": lambda: _llama4(
        hidden_size=48,
        intermediate_size=32,
        intermediate_size_mlp=64,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=3,
        head_dim=8,
        num_local_experts=3,
        num_experts_per_tok=2,
        use_qk_norm=False,
        no_rope_layer_interval=3,
    ),
    "olmo2": lambda: transformers.Olmo2Config(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "olmo2_wide_mha": lambda: transformers.Olmo2Config(
        **SMALL,
        hidden_size=96,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=6,
    ),
    "olmo": lambda: transformers.OlmoConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "olmo_mha_deep": lambda: transformers.OlmoConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=3,
        num_attention_heads=6,
        tie_word_embeddings=True,
    ),
    "smollm3": lambda: transformers.SmolLM3Config(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        no_rope_layer_interval=2,
    ),
    "smollm3_sliding": lambda: transformers.SmolLM3Config(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        no_rope_layers=[1, 0, 1],
        use_sliding_window=True,
        sliding_window=4,
    ),
    "qwen3_moe": lambda: transformers.Qwen3MoeConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=24,
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
    ),
    "qwen3_moe_sparse_step": lambda: transformers.Qwen3MoeConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=1,
        head_dim=8,
        num_experts=6,
        num_experts_per_tok=3,
        moe_intermediate_size=24,
        decoder_sparse_step=2,
        norm_topk_prob=False,
    ),
    "glm4_moe": lambda: transformers.Glm4MoeConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        n_routed_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        n_group=2,
        topk_group=1,
        first_k_dense_replace=1,
        routed_scaling_factor=1.5,
    ),
    "glm4_moe_qk_norm": lambda: transformers.Glm4MoeConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=8,
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        n_shared_experts=2,
        n_group=1,
        topk_group=1,
        first_k_dense_replace=2,
        use_qk_norm=True,
    ),
    "phimoe": lambda: transformers.PhimoeConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
    ),
    "phimoe_biases": lambda: transformers.PhimoeConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=32,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=3,
        num_local_experts=6,
        num_experts_per_tok=2,
        attention_bias=True,
        lm_head_bias=True,
        router_jitter_noise=0.3,  # wide: several experts compete in each slot's softmax
    ),
    "olmoe": lambda: transformers.OlmoeConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
    ),
    "olmoe_mha_top1": lambda: transformers.OlmoeConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=24,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_experts=3,
        num_experts_per_tok=1,
        norm_topk_prob=True,
    ),
    # EXAONE-4: output norms, per-head q/k norms, sliding layers with RoPE, NoPE full layers
    "exaone4": lambda: transformers.Exaone4Config(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=4,
        sliding_window_pattern=2,
    ),
    "exaone4_deep": lambda: transformers.Exaone4Config(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=3,
        sliding_window=3,
        sliding_window_pattern=4,
    ),
    # Cohere: parallel block under one bias-free LayerNorm, per-head q/k LayerNorm weights,
    # interleaved RoPE, logit_scale
    "cohere": lambda: transformers.CohereConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        use_qk_norm=True,
    ),
    "cohere_untied_no_qk_norm": lambda: transformers.CohereConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=1,
        tie_word_embeddings=False,
        logit_scale=0.5,
    ),
    # Cohere-2: sliding RoPE layers and a NoPE full layer every 2nd / 4th
    "cohere2": lambda: transformers.Cohere2Config(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=4,
        sliding_window_pattern=2,
    ),
    "cohere2_deep": lambda: transformers.Cohere2Config(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=3,
        sliding_window=3,
    ),
    "starcoder2": lambda: transformers.Starcoder2Config(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "starcoder2_sliding_no_bias": lambda: transformers.Starcoder2Config(
        **SMALL,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        sliding_window=4,
        use_bias=False,
    ),
    # Granite: attention_multiplier as the softmax scale, embedding / residual multipliers,
    # logits divided by logits_scaling
    "granite": lambda: transformers.GraniteConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attention_multiplier=0.2,
        embedding_multiplier=3.0,
        residual_multiplier=0.5,
        logits_scaling=4.0,
    ),
    "granite_defaults_mqa": lambda: transformers.GraniteConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=1,
    ),
    "granitemoe": lambda: transformers.GraniteMoeConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        attention_multiplier=0.2,
        embedding_multiplier=3.0,
        residual_multiplier=0.5,
        logits_scaling=3.0,
    ),
    "granitemoe_top1": lambda: transformers.GraniteMoeConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=24,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=3,
        num_local_experts=3,
        num_experts_per_tok=1,
    ),
    # ERNIE-4.5 MoE: the routing correction bias is a parameter (moe_statics), shared experts,
    # a dense first layer, interleaved RoPE
    "ernie4_5_moe": lambda: transformers.Ernie4_5_MoeConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        moe_num_experts=4,
        moe_k=2,
        moe_intermediate_size=32,
        moe_num_shared_experts=1,
    ),
    "ernie4_5_moe_interval": lambda: transformers.Ernie4_5_MoeConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=3,
        moe_num_experts=6,
        moe_k=2,
        moe_intermediate_size=16,
        moe_num_shared_experts=0,
        moe_layer_start_index=0,
        moe_layer_interval=2,
        use_bias=True,
    ),
    # DeBERTa-v2 without its disentangled attention (relative_attention false): an encoder
    "deberta-v2": lambda: transformers.DebertaV2Config(
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=96,
        max_position_embeddings=64,
    ),
    "deberta-v2_wide": lambda: transformers.DebertaV2Config(
        vocab_size=300,
        hidden_size=96,
        num_hidden_layers=3,
        num_attention_heads=6,
        intermediate_size=128,
        max_position_embeddings=32,
        hidden_act="gelu_new",
    ),
    # Qwen3-Next's gated full attention on its own: layer_types with no linear-attention layers
    "qwen3_next_full_attention": lambda: transformers.Qwen3NextConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        shared_expert_intermediate_size=48,
        layer_types=["full_attention"] * 2,
    ),
    "qwen3_next_full_attention_dense_layer": lambda: transformers.Qwen3NextConfig(
        **SMALL,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=1,
        head_dim=8,
        num_experts=6,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=24,
        mlp_only_layers=[1],
        layer_types=["full_attention"] * 3,
    ),
}


ENCODERS = ("deberta-v2", "deberta-v2_wide")
"""Compared on the last hidden state (AutoModel), with no cache."""


def _perturb(hf: Any) -> None:
    """Random, non-trivial norms, biases, sinks and routing corrections (their defaults are
    ones and zeros, which would hide a missing or misplaced copy)."""
    with torch.no_grad():
        for name, param in hf.named_parameters():
            perturbed = ("bias", "sinks", "e_score_correction_bias")
            if name.endswith(perturbed) or "norm" in name.lower():
                param.add_(0.1 * torch.randn_like(param))
        for name, buffer in hf.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.add_(0.1 * torch.randn_like(buffer))


@functools.cache
def pair(case: str) -> tuple[Any, Transformer]:
    """(transformers model, built-in model with its weights), built once per case."""
    config = CONFIGS[case]()
    torch.manual_seed(0)
    auto = transformers.AutoModel if case in ENCODERS else transformers.AutoModelForCausalLM
    hf = auto.from_config(
        config, attn_implementation="eager", experts_implementation="eager"
    ).eval()
    _perturb(hf)
    spec = spec_from_hf_config(config.to_dict(), name=case).spec
    ours = build_model(spec).eval()
    load_hf_weights(ours, hf)
    return hf, ours


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
@pytest.mark.parametrize("case", list(CONFIGS))
def test_same_logits_as_transformers(case: str, backend: str) -> None:
    hf, ours = pair(case)
    ours.set_backend(backend)
    torch.manual_seed(1)
    for length in LENGTHS:
        ids = torch.randint(3, 300, (2, length))
        with torch.no_grad():
            reference = hf(input_ids=ids)
            expected = reference.last_hidden_state if case in ENCODERS else reference.logits
            got = ours(ids)
        torch.testing.assert_close(got, expected, msg=lambda m, n=length: f"length {n}: {m}")


@pytest.mark.parametrize("case", [case for case in CONFIGS if case not in ENCODERS])
def test_cached_decoding_matches_the_full_forward(case: str) -> None:
    """Prefill, then one token at a time: the logits equal ours and transformers' full
    forward over the whole sequence (chunked and sliding caches trimmed on the way)."""
    hf, ours = pair(case)
    ours.set_backend("sdpa")
    torch.manual_seed(2)
    ids = torch.randint(3, 300, (1, SEQ))
    with torch.no_grad():
        expected, full = hf(input_ids=ids).logits, ours(ids)
    for prefill in PREFILLS:
        cache = KVCache()
        with torch.no_grad():
            steps = [ours(ids[:, :prefill], cache=cache)]
            steps += [ours(ids[:, t : t + 1], cache=cache) for t in range(prefill, SEQ)]
        incremental = torch.cat(steps, dim=1)
        torch.testing.assert_close(incremental, full, msg=lambda m, n=prefill: f"{n}: {m}")
        torch.testing.assert_close(incremental, expected, msg=lambda m, n=prefill: f"{n}: {m}")


def test_every_model_type_the_bench_builds_has_a_weight_mapping_and_a_case() -> None:
    """Every model_type tfcli reads (``tfcli.hf.RECORDS``) whose class-default spec the bench
    builds has a weight mapping and a case, here or in tests/bench_cases.py (the classic
    records' cases)."""
    from tests.bench_cases import configs
    from tfcli.bench.hf_weights import MAPPERS, SEQ2SEQ_MAPPERS
    from tfcli.bench.support import missing_features
    from tfcli.errors import TfcliError
    from tfcli.hf import RECORDS

    buildable = set()
    for model_type in RECORDS:
        try:
            spec = spec_from_hf_config({"model_type": model_type}, name=model_type).spec
        except TfcliError:  # no class default for a required key (deepseek_v2's top-k)
            continue
        if not missing_features(spec):
            buildable.add(model_type)
    assert buildable <= set(MAPPERS) | set(SEQ2SEQ_MAPPERS)
    from tests.test_bench_minimax import CASES as MINIMAX_CASES
    from tests.test_bench_minimax import _config as minimax_config
    from tests.test_bench_state_mixers import CONFIGS as STATE_CONFIGS

    configs_here = [make() for make in CONFIGS.values()]
    configs_there = [config for config, _kind in configs().values()]
    configs_state = [make() for make in STATE_CONFIGS.values()]
    configs_state += [minimax_config(*args) for args in MINIMAX_CASES.values()]
    cases = {
        spec_from_hf_config(config.to_dict(), name="case").spec.family
        for config in configs_here + configs_there + configs_state
    }
    assert buildable <= cases
    assert {"gpt_oss", "llama4_text", "olmo2", "smollm3", "glm4_moe", "phimoe"} <= buildable


@pytest.mark.parametrize("case", ["gpt_oss", "llama4_text", "olmo2", "exaone4", "cohere2"])
def test_cache_bytes_match_the_estimate(case: str) -> None:
    """After a prompt longer than the chunk / window and after each further token, the cached
    tensors hold what ``tfcli kvcache`` predicts under its default "window" rule (a chunked
    layer keeps at most its chunk, a sliding layer its window; sinks cache nothing)."""
    from tfcli.memory import kv_cache_bytes

    _hf, ours = pair(case)
    cache = KVCache()
    prompt = 6
    with torch.no_grad():
        ours(torch.randint(3, 300, (2, prompt)), cache=cache)
        assert cache.nbytes() == kv_cache_bytes(ours.spec, prompt, batch=2, dtype="fp32")
        for step in range(1, 4):
            ours(torch.randint(3, 300, (2, 1)), cache=cache)
            expected = kv_cache_bytes(ours.spec, prompt + step, batch=2, dtype="fp32")
            assert cache.nbytes() == expected


@pytest.mark.parametrize("chunk", [1, 3, 4])
def test_chunk_mask_attends_the_pairs_tfcli_counts(chunk: int) -> None:
    """The chunked mask (checked against transformers above) attends exactly the pairs
    ``tfcli flops`` counts for a chunked layer, in a prefill and in a decode step over the
    trimmed cache (the last c keys)."""
    from tfcli.bench.attention import attention_mask
    from tfcli.flops import attended_pairs

    for seq in range(1, 14):
        mask = attention_mask(seq, seq, causal=True, window=None, chunk=chunk)
        pairs = seq * (seq + 1) // 2 if mask is None else int(mask.sum())
        assert pairs == attended_pairs(seq, causal=True, chunk=chunk)
        kept = min(seq, chunk)  # the cache after ``seq`` tokens, then the new token
        step = attention_mask(
            1, kept + 1, causal=True, window=None, chunk=chunk, q_offset=seq, key_offset=seq - kept
        )
        visible = kept + 1 if step is None else int(step.sum())
        assert visible == attended_pairs(1, causal=True, context=seq, chunk=chunk)


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
@pytest.mark.parametrize(
    ("window", "chunk", "q_offset", "key_offset", "s_q", "s_k"),
    [
        (None, None, 0, 0, 7, 7),  # prefill: is_causal with a dummy first query
        (3, None, 0, 0, 7, 7),  # sliding window: a boolean mask with the sink column
        (None, 3, 0, 0, 7, 7),  # chunked
        (None, None, 4, 0, 3, 7),  # chunked prefill after a cache
        (3, None, 9, 7, 2, 4),  # on a trimmed sliding cache
    ],
)
def test_sinks_through_sdpa_equal_the_naive_core(
    kv_heads: int,
    window: int | None,
    chunk: int | None,
    q_offset: int,
    key_offset: int,
    s_q: int,
    s_k: int,
) -> None:
    """The sink as an extra key through SDPA (``sdpa_with_sinks``) equals the naive core's
    extra softmax column (checked against transformers' gpt-oss above)."""
    from tfcli.bench.attention import attention_core

    torch.manual_seed(3)
    q = torch.randn(2, 4, s_q, 8)
    k, v = torch.randn(2, kv_heads, s_k, 8), torch.randn(2, kv_heads, s_k, 8)
    sinks = torch.randn(4)
    kwargs = {"causal": True, "window": window, "chunk": chunk, "sinks": sinks}
    kwargs |= {"q_offset": q_offset, "key_offset": key_offset, "scale": 0.3}
    naive = attention_core(q, k, v, backend="naive", **kwargs)
    sdpa = attention_core(q, k, v, backend="sdpa", **kwargs)
    torch.testing.assert_close(sdpa, naive)


def test_the_bench_knows_which_kernel_and_mask_a_layer_gets() -> None:
    """Sinks keep the fused SDPA kernel (one extra key); a chunked layer hands SDPA a mask
    of its chunk (its cache keeps c tokens), a NoPE full layer none."""
    from tfcli.bench.work import executed_kernel, layer_chunk, layer_reach

    _hf, ours = pair("gpt_oss")
    assert executed_kernel(ours.spec, "sdpa", torch.device("cpu")) == "flash"
    _hf, ours = pair("llama4_text")
    assert [layer_chunk(ours.spec, i) for i in range(4)] == [4, None, 4, None]
    assert [layer_reach(ours.spec, i) for i in range(4)] == [4, None, 4, None]


def test_a_layer_without_an_mlp_is_the_attention_sublayer_alone() -> None:
    """``mlp_layer_types: none``: no published attention model has such a layer, so the
    oracle is transformers' Llama with that layer's MLP silenced (down_proj zero): x + MLP(.)
    is then x, what the MLP-less block computes (its norm2 and MLP weights are dropped)."""
    from tfcli.bench.hf_weights import map_llama_family

    config = transformers.LlamaConfig(
        **SMALL,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    hf = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    _perturb(hf)
    with torch.no_grad():
        hf.model.layers[1].mlp.down_proj.weight.zero_()
    spec = spec_from_hf_config(config.to_dict(), name="llama").spec
    bare = spec.replace(mlp_layer_types=("dense", "none", "dense"))
    ours = build_model(bare).eval()
    sd = {k: v.detach() for k, v in hf.state_dict().items()}
    mapped = {
        name: tensor
        for name, tensor in map_llama_family(spec, sd, 3).items()
        if not name.startswith(("layers.1.mlp.", "layers.1.norm2."))
    }
    assert set(mapped) == set(ours.state_dict())
    ours.load_state_dict(mapped)
    assert ours.block(1).mlp is None
    ids = torch.randint(3, 300, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(input_ids=ids).logits)
        cache = KVCache()
        steps = [ours(ids[:, :3], cache=cache)] + [
            ours(ids[:, t : t + 1], cache=cache) for t in range(3, 7)
        ]
        torch.testing.assert_close(torch.cat(steps, dim=1), hf(input_ids=ids).logits)


def test_sink_memory_matches_the_estimate() -> None:
    """The allocator's peak of one sinks-through-SDPA core call equals ``estimate_peak_bytes``
    within 10% (the copies one dim wider are the difference from a plain call)."""
    from tfcli.bench.allocations import peak_bytes
    from tfcli.bench.attention import attention_core
    from tfcli.bench.work import estimate_peak_bytes
    from tfcli.loaders import load_model

    spec = load_model("gpt-oss-20b").spec.replace(
        hidden_size=512, num_heads=8, num_kv_heads=2, head_dim=64
    )
    seq, cpu = 1024, torch.device("cpu")
    q = torch.randn(1, 8, seq, 64)
    k, v = torch.randn(1, 2, seq, 64), torch.randn(1, 2, seq, 64)
    sinks = torch.randn(8)
    measured = peak_bytes(
        lambda: attention_core(q, k, v, backend="sdpa", causal=True, sinks=sinks), cpu
    )
    if measured is None:
        pytest.skip("the profiler cannot record memory here")
    threads = torch.get_num_threads()
    estimated = estimate_peak_bytes(spec, 1, seq, "sdpa", "fp32", cpu_threads=threads)
    assert measured == pytest.approx(estimated, rel=0.1)


def test_tensor_parallel_refuses_per_head_parameters_it_does_not_split() -> None:
    """--dist tp shards q/k/v by columns; OLMo-2's all-head q/k norms would stay whole: refused
    with one line (FSDP, which shards every parameter, is allowed)."""
    from tfcli.bench.dist import _check_spec
    from tfcli.errors import BenchError
    from tfcli.loaders import load_model

    spec = load_model("olmo-2-7b").spec
    with pytest.raises(BenchError, match="does not shard"):
        _check_spec(spec, "tp", 2)
    _check_spec(spec, "fsdp", 2)
