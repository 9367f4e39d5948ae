"""vLLM's one page size for hybrid attention + state models (the vllm convention).

Oracles: vLLM PR #32492 states that Qwen3-Next runs with a "non-standard block size (544)";
the page arithmetic is vLLM's ``_align_hybrid_block_size`` (vllm/platforms/interface.py),
with state shapes from vLLM's ``MambaStateShapeCalculator.gated_delta_net_state_shape``:
conv ``(K - 1, 2 x key_dim + value_dim)`` and recurrent ``(Hv, dk, dv)``, both in bf16.
"""

from __future__ import annotations

import math

from tfcli.loaders import load_model
from tfcli.memory import kv_cache


def _qwen3_next():
    return load_model("qwen3-next-80b-a3b").spec


def test_qwen3_next_block_is_544_tokens() -> None:
    cache = kv_cache(_qwen3_next(), 262144, rule="vllm", dtype="bf16")
    assert cache.unified_pages is not None
    assert cache.unified_pages.block_size == 544
    assert cache.block_size == 544


def test_qwen3_next_pages_follow_vllm_arithmetic() -> None:
    spec = _qwen3_next()
    seq = 100_003
    # Qwen3-Next-80B-A3B config.json: 16 key heads x 128, 32 value heads x 128, conv kernel 4,
    # 2 KV heads x head_dim 256, 12 of 48 layers full attention
    conv = (4 - 1) * (2 * 16 * 128 + 32 * 128) * 2
    recurrent = 32 * 128 * 128 * 2
    state = conv + recurrent
    kv_token = 2 * 2 * 256 * 2
    block = 16 * math.ceil(state / (16 * kv_token))
    page = block * kv_token
    cache = kv_cache(spec, seq, rule="vllm", dtype="bf16")
    assert cache.unified_pages is not None
    assert cache.unified_pages.state_bytes == state
    assert cache.unified_pages.page_bytes == page
    attention = 12 * block * math.ceil(seq / block) * kv_token
    assert cache.self_attention_bytes == attention
    assert cache.state_bytes == 36 * page
    assert cache.total_bytes == attention + 36 * page


def test_user_block_larger_than_needed_is_kept_and_aligns() -> None:
    spec = _qwen3_next()
    cache = kv_cache(spec, 4096, rule="vllm", dtype="bf16", block_size=1024)
    assert cache.unified_pages is not None
    assert cache.unified_pages.block_size == 1024


def test_transformers_convention_has_no_pages_and_dense_model_none() -> None:
    assert kv_cache(_qwen3_next(), 4096, rule="transformers").unified_pages is None
    dense = load_model("llama-3-8b").spec
    assert kv_cache(dense, 4096, rule="vllm").unified_pages is None
