"""KV-cache formulas: published golden values, properties, tensor parallel, paging, fit, CLI.

Golden values and their sources:
* Llama-2-7B: 32 layers x 32 KV heads x 128 x 2 (K, V) x 2 B (fp16) = 524,288 B/token
  (meta-llama/Llama-2-7b-hf config.json: MHA, hidden 4096, 32 heads, 32 layers; DESIGN.md
  section 5 lists it as a published figure).
* Llama-3-8B: 32 layers x 8 KV heads x 128 x 2 x 2 B = 131,072 B/token (GQA, config.json).
* Llama-2-70B: 80 layers x 8 KV heads x 128 x 2 x 2 B = 327,680 B/token; 131,072 tokens =
  40 GiB exactly (meta-llama/Llama-2-70b-hf config.json).
* DeepSeek-V3: MLA caches kv_lora_rank 512 + qk_rope_head_dim 64 = 576 values per token per
  layer (DeepSeek-V2 paper section 2.1.3: (d_c + d_h^R) per layer), 1,152 B in bf16, x 61
  layers = 70,272 B/token (deepseek-ai/DeepSeek-V3 config.json).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.specs_for_tests import llama_like
from tfcli.errors import UsageError
from tfcli.memory import (
    CacheLayout,
    attention_variants,
    cached_tokens,
    flash_attention_working_bytes,
    kv_cache,
    kv_cache_bytes,
    mla_decompressed_elements_per_token,
    naive_attention_score_bytes,
    solve_fit,
    weight_bytes_per_device,
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
DEEPSEEK_V3_ATTENTION = {
    "hidden_size": 7168,
    "num_layers": 61,
    "num_heads": 128,
    "num_kv_heads": 128,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
}


# ---- golden values --------------------------------------------------------------------------


def test_llama_2_7b_per_token_fp16() -> None:
    assert kv_cache_bytes(llama_like(**LLAMA_2_7B), 1, dtype="fp16") == 524_288


def test_llama_3_8b_per_token_bf16() -> None:
    assert kv_cache_bytes(llama_like(), 1) == 131_072


def test_llama_2_70b_at_128k_is_40_gib() -> None:
    spec = llama_like(**LLAMA_2_70B)
    assert kv_cache(spec, 1).bytes_per_token == 327_680
    assert kv_cache_bytes(spec, 131072) == 40 * GIB


def test_deepseek_v3_latent_and_decompressed() -> None:
    spec = llama_like(**DEEPSEEK_V3_ATTENTION)
    cache = kv_cache(spec, 1)
    assert cache.bytes_per_token_per_layer == (512 + 64) * 2 == 1_152
    assert cache.bytes_per_token == 70_272
    # Per-head K (128 + 64) and V (128) for 128 heads: what MLA avoids caching.
    assert mla_decompressed_elements_per_token(spec) == 128 * (192 + 128) == 40_960
    # MLA latent is replicated on every tensor-parallel rank, not split.
    assert kv_cache_bytes(spec, 1000, tp=8) == kv_cache_bytes(spec, 1000)


@pytest.mark.parametrize(("dtype", "per_layer"), [("fp32", 8192), ("fp8", 2048), ("int4", 1024)])
def test_dtype_widths(dtype: str, per_layer: int) -> None:
    assert kv_cache(llama_like(), 1, dtype=dtype).bytes_per_token_per_layer == per_layer


# ---- properties -----------------------------------------------------------------------------


@given(st.integers(1, 10**6), st.integers(1, 64), st.sampled_from(["fp32", "bf16", "int4"]))
def test_linear_in_batch_and_sequence(seq: int, batch: int, dtype: str) -> None:
    spec = llama_like()
    one = kv_cache_bytes(spec, 1, dtype=dtype)
    assert kv_cache_bytes(spec, seq, batch=batch, dtype=dtype) == seq * batch * one


@given(st.integers(1, 64), st.sampled_from([64, 80, 128, 256]), st.integers(1, 48))
def test_mha_equals_formula(heads: int, head_dim: int, layers: int) -> None:
    spec = llama_like(
        hidden_size=heads * head_dim, num_heads=heads, num_kv_heads=heads, num_layers=layers
    )
    assert spec.attention_kind == "MHA"
    assert kv_cache_bytes(spec, 1, dtype="fp32") == 2 * heads * head_dim * 4 * layers


@given(st.integers(1, 20000), st.integers(2, 5000))
def test_sliding_window_caps_every_layer(seq: int, window: int) -> None:
    spec = llama_like(sliding_window=window)
    per_token = kv_cache_bytes(llama_like(), 1)
    assert kv_cache_bytes(spec, seq) == min(seq, window) * per_token
    assert kv_cache_bytes(spec, seq, rule="transformers") == min(seq, window - 1) * per_token


def test_transformers_rule_window_of_one_keeps_everything() -> None:
    # DynamicSlidingWindowLayer slices [-w + 1:], which for w = 1 is [0:]: every token stays.
    assert cached_tokens("sliding", 50, 1, rule="transformers") == 50
    assert cached_tokens("sliding", 50, 1) == 1


def test_hybrid_layers_only_cap_sliding_ones() -> None:
    kinds = tuple("sliding" if i % 2 == 0 else "full" for i in range(32))
    spec = llama_like(sliding_window=4096, layer_types=kinds)
    per_layer_token = 2 * 8 * 128 * 2
    cache = kv_cache(spec, 32768)
    assert cache.total_bytes == 16 * 4096 * per_layer_token + 16 * 32768 * per_layer_token
    assert sum(cache.bytes_by_kind.values()) == cache.total_bytes == sum(cache.per_layer_bytes)
    assert cache.layers_by_kind == {"sliding": 16, "full": 16}


def test_unknown_rule_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        cached_tokens("sliding", 10, 4, rule="half")


# ---- paged allocation (vLLM v1) -------------------------------------------------------------


def vllm_sliding_blocks(seq: int, window: int, block: int) -> tuple[int, int]:
    """Blocks a vLLM v1 sliding-window layer holds while token ``seq`` is computed, and the
    most it held at any earlier step: a step-by-step replay of ``KVCacheManager.allocate_slots``
    (``remove_skipped_blocks(num_computed_tokens)``, then slots for one more token) and of
    ``SlidingWindowManager.remove_skipped_blocks`` (frees the blocks before
    ``(num_computed - window + 1) // block_size``), one decode token per step."""
    blocks: list[bool] = []  # True = held, False = freed (null block)
    peak = 0
    for computed in range(seq):
        last_useful_block = (computed - window + 1) // block
        for i in range(last_useful_block - 1, -1, -1):
            if not blocks[i]:
                break
            blocks[i] = False
        while len(blocks) < math.ceil((computed + 1) / block):
            blocks.append(True)
        peak = max(peak, sum(blocks))
    return sum(blocks), peak


@given(st.integers(1, 300), st.integers(1, 64), st.sampled_from([1, 4, 16]))
def test_paged_sliding_layer_matches_vllm_bookkeeping(seq: int, window: int, block: int) -> None:
    held, peak = vllm_sliding_blocks(seq, window, block)
    assert cached_tokens("sliding", seq, window, block_size=block) == held * block
    assert cached_tokens("sliding", seq, window, block_size=block, peak=True) == peak * block


def test_paged_blocks_round_up() -> None:
    assert cached_tokens("full", 1000, None, block_size=16) == 1008
    spec = llama_like()
    assert kv_cache_bytes(spec, 1000, block_size=16) == kv_cache_bytes(spec, 1008)
    # A window of 4096 in blocks of 16: 256 blocks when aligned, 257 when it straddles.
    assert cached_tokens("sliding", 131072, 4096, block_size=16) == 4096
    assert cached_tokens("sliding", 131073, 4096, block_size=16) == 4096 + 16


def test_block_size_needs_the_window_rule() -> None:
    with pytest.raises(UsageError, match="block"):
        cached_tokens("full", 10, None, rule="transformers", block_size=16)


# ---- tensor parallelism ---------------------------------------------------------------------


def test_tensor_parallel_splits_and_replicates_heads() -> None:
    spec = llama_like()
    whole = kv_cache_bytes(spec, 1000)
    assert kv_cache_bytes(spec, 1000, tp=2) == whole // 2
    assert kv_cache_bytes(spec, 1000, tp=8) == whole // 8
    # 16 and 32 ranks for 8 KV heads: each rank still holds one head (replicated).
    assert kv_cache_bytes(spec, 1000, tp=16) == whole // 8
    assert kv_cache_bytes(spec, 1000, tp=32) == whole // 8


@pytest.mark.parametrize("tp", [0, 3, 64])
def test_tensor_parallel_rejects_uneven_splits(tp: int) -> None:
    # 3 divides neither 32 query heads nor 8 KV heads; 64 ranks exceed the 32 query heads.
    with pytest.raises(UsageError, match="--tp"):
        kv_cache_bytes(llama_like(), 10, tp=tp)


def test_weights_split_evenly_across_ranks() -> None:
    assert weight_bytes_per_device(8_030_261_248, "bf16", 1) == 16_060_522_496
    assert weight_bytes_per_device(8_030_261_248, "bf16", 8) == 16_060_522_496 // 8
    assert weight_bytes_per_device(3, "int4", 1) == 2


# ---- architectures --------------------------------------------------------------------------


def test_encoder_only_has_no_cache() -> None:
    spec = llama_like(architecture="encoder", lm_head=False)
    assert kv_cache_bytes(spec, 512) == 0


def test_encoder_decoder_adds_cross_attention() -> None:
    spec = llama_like(architecture="encoder-decoder", num_encoder_layers=4, num_layers=4)
    cache = kv_cache(spec, 10, encoder_seq=100)
    per_token_layer = 2 * 8 * 128 * 2
    assert cache.self_attention_bytes == 4 * 10 * per_token_layer
    assert cache.cross_attention_bytes == 4 * 100 * per_token_layer
    assert cache.bytes_by_kind == {"full": 4 * 10 * per_token_layer, "cross": 4 * 100 * 4096}


# ---- what-if variants -----------------------------------------------------------------------


def test_variants_reduction() -> None:
    variants = {
        v.label: v.total_bytes for v in attention_variants(llama_like(), 8192, CacheLayout())
    }
    assert variants["MHA"] == 4 * variants["GQA"] == 32 * variants["MQA"]


def test_variants_of_an_mha_model_show_it_once() -> None:
    spec = llama_like(num_kv_heads=32)
    variants = attention_variants(spec, 100, CacheLayout())
    assert [(v.label, v.is_this_model) for v in variants] == [("MHA", True), ("MQA", False)]


def test_variants_of_mla_compare_latent_with_decompressed() -> None:
    spec = llama_like(**DEEPSEEK_V3_ATTENTION)
    variants = {v.label: v for v in attention_variants(spec, 1000, CacheLayout())}
    assert variants["MLA"].is_this_model
    assert variants["MLA"].bytes_per_token_per_layer == 1_152
    assert variants["MHA"].bytes_per_token_per_layer == 40_960 * 2
    assert variants["MQA"].bytes_per_token_per_layer == (192 + 128) * 2


# ---- attention working memory ---------------------------------------------------------------


def test_naive_scores_bytes() -> None:
    # 32 heads x 8192^2 x 4 B = 8 GiB: the materialised score matrix of one layer (fp32).
    assert naive_attention_score_bytes(llama_like(), 8192) == 8 * GIB


def test_flash_working_bytes_are_linear() -> None:
    # Output 32 x 8192 x 128 x 4 B plus an fp32 log-sum-exp per row.
    assert flash_attention_working_bytes(llama_like(), 8192) == 32 * 8192 * (128 * 4 + 4)


# ---- fit solver -----------------------------------------------------------------------------


def test_fit_solver() -> None:
    spec = llama_like(**LLAMA_2_70B)
    per_token = 327_680
    budget, weights, reserve = 200 * GIB, 130 * GIB, 10 * GIB
    fit = solve_fit(
        spec, budget_bytes=budget, weights_bytes_=weights, reserve_bytes=reserve, seq=4096, batch=2
    )
    available = budget - weights - reserve
    assert fit.available_bytes == available
    assert fit.max_seq_for_batch == available // (2 * per_token)
    assert fit.max_batch_for_seq == available // (4096 * per_token)
    too_small = solve_fit(
        spec, budget_bytes=80 * GIB, weights_bytes_=weights, reserve_bytes=0, seq=4096, batch=1
    )
    assert not too_small.weights_fit
    assert too_small.max_seq_for_batch is None
    assert too_small.max_batch_for_seq is None


@given(st.integers(1, 2**36), st.integers(1, 8), st.sampled_from([None, 16]))
def test_fit_is_the_exact_boundary(available: int, batch: int, block: int | None) -> None:
    kinds = tuple("sliding" if i % 4 else "full" for i in range(8))
    spec = llama_like(num_layers=8, sliding_window=1000, layer_types=kinds)
    fit = solve_fit(
        spec,
        budget_bytes=available + 5,
        weights_bytes_=5,
        reserve_bytes=0,
        seq=3000,
        batch=batch,
        block_size=block,
    )

    def peak(s: int, b: int) -> int:
        return kv_cache(spec, s, batch=b, block_size=block, peak=True).total_bytes

    if fit.max_seq_for_batch is None:
        assert peak(1, batch) > available
    else:
        assert (
            peak(fit.max_seq_for_batch, batch) <= available < peak(fit.max_seq_for_batch + 1, batch)
        )
    largest = fit.max_batch_for_seq or 0
    assert largest * peak(3000, 1) <= available < (largest + 1) * peak(3000, 1)


def test_fit_unbounded_when_every_layer_slides() -> None:
    spec = llama_like(sliding_window=4096)
    fit = solve_fit(
        spec, budget_bytes=80 * GIB, weights_bytes_=16 * GIB, reserve_bytes=0, seq=4096, batch=1
    )
    assert fit.unbounded_seq


def test_encoder_only_fit_has_no_cache_answer() -> None:
    spec = llama_like(architecture="encoder", lm_head=False)
    fit = solve_fit(spec, budget_bytes=GIB, weights_bytes_=1, reserve_bytes=0, seq=10, batch=1)
    assert fit.max_seq_for_batch is None and fit.weights_fit


# ---- the command ----------------------------------------------------------------------------


def test_cli_json_has_raw_integers_and_the_rule() -> None:
    run = run_cli(
        "kvcache", "gemma-2-9b", "--seq", "8192", "--budget", "40GiB", "--weights-dtype", "bf16",
        "--json",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    # 42 layers x 8 KV heads x 256 x 2 x 2 B; half the layers slide with w = 4096 and, under
    # the default transformers convention, keep w - 1 = 4095 tokens.
    assert doc["bytes_per_token"] == 42 * 8192 == 344_064
    assert doc["total_bytes"] == 21 * 8192 * 8192 + 21 * 4095 * 8192
    assert doc["convention"] == "transformers" and "w - 1 = 4,095" in doc["rule_note"]
    assert doc["layers_by_kind"] == {"sliding": 21, "full": 21}
    fit = doc["fit"]
    assert fit["reserve_bytes"] == 4 * GIB  # 10% of 40 GiB, the stated default
    assert fit["reserve_rule"] == "10% of the budget"
    for key in ("total_bytes", "bytes_per_token", "available_bytes", "max_seq_for_batch"):
        value = doc.get(key, fit.get(key))
        assert isinstance(value, int) and not isinstance(value, bool), key
    assert [v["attention"] for v in doc["variants"]] == ["MHA", "GQA", "MQA"]


def test_cli_human_output_states_rule_units_and_fit() -> None:
    run = run_cli("kvcache", "mistral-7b", "--seq", "32768")
    assert run.code == 0, run.stderr
    assert "w - 1 = 4,095" in run.stdout and "convention transformers" in run.stdout
    assert "1 GiB = 2**30 bytes" in run.stdout
    paged = run_cli("kvcache", "gemma-2-9b", "--seq", "8193", "--convention", "vllm")
    assert "convention vllm" in paged.stdout and "blocks of 16" in paged.stdout
    short = run_cli("kvcache", "llama-3.1-405b", "--hardware", "h100")
    assert "the weights alone do not fit" in short.stdout
    fits = run_cli("kvcache", "llama-3-8b", "--seq", "8192", "--budget", "24GiB", "--tp", "2")
    assert "longest context at batch 1" in fits.stdout and "per device" in fits.stdout


def test_cli_encoder_decoder_and_encoder_only() -> None:
    doc = json.loads(
        run_cli("kvcache", "bart-base", "--seq", "64", "--encoder-seq", "512", "--json").stdout
    )
    assert doc["cross_attention_bytes"] == 6 * 512 * 2 * 768 * 2
    assert doc["self_attention_bytes"] == 6 * 64 * 2 * 768 * 2
    bert = json.loads(run_cli("kvcache", "bert-base", "--json").stdout)
    assert bert["has_kv_cache"] is False and bert["total_bytes"] == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--seq", "0"], "--seq"),
        (["--batch", "-1"], "--batch"),
        (["--dtype", "fp7"], "fp7"),
        (["--budget", "lots"], "lots"),
        (["--tp", "3"], "--tp 3"),
        (["--convention", "vllm", "--block-size", "0"], "--block-size"),
        (["--encoder-seq", "0"], "--encoder-seq"),
        (["--convention", "half"], "--convention"),
        (["--block-size", "16"], "--convention vllm"),
        (["--convention", "vllm", "--batched-tokens", "0"], "--batched-tokens"),
        (["--budget", "80GiB", "--hardware", "h100"], "not both"),
        (["--budget", "80GiB", "--reserve", "-5%"], "--reserve"),
        (["--weights-dtype", "fp9"], "fp9"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_cli_bad_values_are_one_line(args: list[str], fragment: str) -> None:
    # --seq beyond the trained context would print a warning: bad input must stop before it.
    extra = [] if "--seq" in args else ["--seq", "100000"]
    assert_one_line_error(run_cli("kvcache", "llama-3-8b", *extra, *args), fragment)


def test_compare_cli_json() -> None:
    run = run_cli("compare", "llama-2-70b", "mistral-7b", "bert-base", "--seq", "131072", "--json")
    assert run.code == 0, run.stderr
    models = {m["model"]: m for m in json.loads(run.stdout)["models"]}
    assert models["llama-2-70b"]["kv_cache"]["bytes_per_token"] == 327_680
    assert models["llama-2-70b"]["kv_cache"]["total_bytes"] == 40 * GIB
    # Mistral-7B v0.1 slides every layer over 4096 tokens: 32 x 4096 x 4096 B.
    assert models["mistral-7b"]["kv_cache"]["total_bytes"] == 4096 * 131_072
    assert models["bert-base"]["kv_cache"] is None  # encoder-only: no KV cache
    for row in models.values():
        for key in ("total_params", "active_params", "weight_bytes", "forward_flops"):
            assert isinstance(row[key], int), key
        assert 0 < row["attention_share"] < 1
