"""KV-cache formulas: published golden values, properties, tensor parallel, paging, fit.

Golden values and their sources:
* Llama-2-7B: 32 layers x 32 KV heads x 128 x 2 (K, V) x 2 B (fp16) = 524,288 B/token
  (meta-llama/Llama-2-7b-hf config.json: MHA, hidden 4096, 32 heads, 32 layers; DESIGN.md
  section 5 lists it as a published figure).
* Llama-3-8B: 32 layers x 8 KV heads x 128 x 2 x 2 B = 131,072 B/token (GQA, config.json).
* Llama-2-70B: 80 layers x 8 KV heads x 128 x 2 x 2 B = 327,680 B/token; 131,072 tokens =
  40 GiB exactly.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.specs_for_tests import llama_like
from tfcli.memory import (
    CacheLayout,
    attention_variants,
    cached_tokens,
    kv_cache,
    kv_cache_bytes,
    naive_attention_score_bytes,
    solve_fit,
)
from tfcli.units import GIB

LLAMA_2_7B = {"num_kv_heads": 32, "vocab_size": 32000, "intermediate_size": 11008}
LLAMA_2_70B = {
    "hidden_size": 8192,
    "num_layers": 80,
    "num_heads": 64,
    "num_kv_heads": 8,
    "intermediate_size": 28672,
    "vocab_size": 32000,
}


def test_llama_2_7b_per_token_fp16() -> None:
    assert kv_cache_bytes(llama_like(**LLAMA_2_7B), 1, dtype="fp16") == 524_288


def test_llama_3_8b_per_token_bf16() -> None:
    assert kv_cache_bytes(llama_like(), 1) == 131_072


def test_llama_2_70b_at_128k_is_40_gib() -> None:
    spec = llama_like(**LLAMA_2_70B)
    assert kv_cache(spec, 1).bytes_per_token == 327_680
    assert kv_cache_bytes(spec, 131072) == 40 * GIB


@given(st.integers(1, 10**6), st.integers(1, 64))
def test_linear_in_batch_and_sequence(seq: int, batch: int) -> None:
    spec = llama_like()
    assert kv_cache_bytes(spec, seq, batch=batch) == seq * batch * kv_cache_bytes(spec, 1)


@given(st.integers(1, 64), st.sampled_from([64, 80, 128, 256]), st.integers(1, 48))
def test_mha_equals_formula(heads: int, head_dim: int, layers: int) -> None:
    spec = llama_like(
        hidden_size=heads * head_dim, num_heads=heads, num_kv_heads=heads, num_layers=layers
    )
    assert kv_cache_bytes(spec, 1, dtype="fp32") == 2 * heads * head_dim * 4 * layers


@given(st.integers(1, 20000), st.integers(1, 5000))
def test_sliding_window_caps_every_layer(seq: int, window: int) -> None:
    spec = llama_like(sliding_window=window)
    per_token = kv_cache_bytes(llama_like(), 1)
    assert kv_cache_bytes(spec, seq) == min(seq, window) * per_token
    assert kv_cache_bytes(spec, seq, rule="transformers") == min(seq, window - 1) * per_token


def test_hybrid_layers_only_cap_sliding_ones() -> None:
    kinds = tuple("sliding" if i % 2 == 0 else "full" for i in range(32))
    spec = llama_like(sliding_window=4096, layer_types=kinds)
    per_layer_token = 2 * 8 * 128 * 2
    assert kv_cache_bytes(spec, 32768) == 16 * 4096 * per_layer_token + 16 * 32768 * per_layer_token


def test_mla_caches_latent_and_rope_key() -> None:
    spec = llama_like(
        kv_lora_rank=512,
        qk_rope_head_dim=64,
        qk_nope_head_dim=128,
        v_head_dim=128,
        q_lora_rank=1536,
    )
    assert kv_cache(spec, 1).bytes_per_token_per_layer == (512 + 64) * 2


def test_tensor_parallel_splits_and_replicates_heads() -> None:
    spec = llama_like()
    whole = kv_cache_bytes(spec, 1000)
    assert kv_cache_bytes(spec, 1000, tp=2) == whole // 2
    assert kv_cache_bytes(spec, 1000, tp=8) == whole // 8
    # 16 ranks for 8 KV heads: each rank still holds one head (replicated).
    assert kv_cache_bytes(spec, 1000, tp=16) == whole // 8


def test_paged_blocks_round_up() -> None:
    assert cached_tokens("full", 1000, None, block_size=16) == 1008
    spec = llama_like()
    assert kv_cache_bytes(spec, 1000, block_size=16) == kv_cache_bytes(spec, 1008)


def test_encoder_only_has_no_cache() -> None:
    spec = llama_like(architecture="encoder", lm_head=False)
    assert kv_cache_bytes(spec, 512) == 0


def test_encoder_decoder_adds_cross_attention() -> None:
    spec = llama_like(architecture="encoder-decoder", num_encoder_layers=4, num_layers=4)
    cache = kv_cache(spec, 10, encoder_seq=100)
    per_token_layer = 2 * 8 * 128 * 2
    assert cache.self_attention_bytes == 4 * 10 * per_token_layer
    assert cache.cross_attention_bytes == 4 * 100 * per_token_layer


def test_variants_reduction() -> None:
    variants = {
        v.label: v.total_bytes for v in attention_variants(llama_like(), 8192, CacheLayout())
    }
    assert variants["MHA"] == 4 * variants["GQA"] == 32 * variants["MQA"]


def test_naive_scores_bytes() -> None:
    # 32 heads x 8192^2 x 4 B = 8 GiB: the materialised score matrix of one layer (fp32).
    assert naive_attention_score_bytes(llama_like(), 8192) == 8 * GIB


def test_fit_solver() -> None:
    spec = llama_like(**LLAMA_2_70B)
    per_token = 327_680
    budget, weights, reserve = 200 * GIB, 130 * GIB, 10 * GIB
    fit = solve_fit(
        spec, budget_bytes=budget, weights_bytes_=weights, reserve_bytes=reserve, seq=4096, batch=2
    )
    available = budget - weights - reserve
    assert fit.max_seq_for_batch == available // (2 * per_token)
    assert fit.max_batch_for_seq == available // (4096 * per_token)
    too_small = solve_fit(
        spec, budget_bytes=80 * GIB, weights_bytes_=weights, reserve_bytes=0, seq=4096, batch=1
    )
    assert not too_small.weights_fit
    assert too_small.max_seq_for_batch is None


def test_fit_unbounded_when_every_layer_slides() -> None:
    spec = llama_like(sliding_window=4096)
    fit = solve_fit(
        spec, budget_bytes=80 * GIB, weights_bytes_=16 * GIB, reserve_bytes=0, seq=4096, batch=1
    )
    assert fit.unbounded_seq
