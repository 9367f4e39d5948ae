"""KV-cache bytes against the tensors transformers actually caches (DESIGN.md oracle 3).

Small models with random weights run a prefill with ``use_cache=True``; the bytes of every
cached key/value tensor are summed and compared with ``tfcli.memory.kv_cache_bytes``.

Sliding-window layers: transformers' DynamicSlidingWindowLayer keeps the last ``w - 1``
tokens between steps (cache_utils.py: "Only cache the last `self.sliding_window - 1`
tokens"), the new token making ``w`` while it attends; tfcli's default rule ("window")
counts ``w``, as vLLM allocates, and ``rule="transformers"`` counts ``w - 1``. Both are
pinned here. DeepSeek-V3 (MLA): transformers 5 caches the compressed latent (kv_lora_rank)
and the shared RoPE key (qk_rope_head_dim) as one-head "keys" and "values": the latent
formula is what is compared.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.memory import kv_cache_bytes  # noqa: E402

T = transformers
SEQ = 24
SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "vocab_size": 500}


def tensor_bytes(tensor: Any) -> int:
    return tensor.numel() * tensor.element_size()


def layer_bytes(cache: Any) -> int:
    return sum(tensor_bytes(layer.keys) + tensor_bytes(layer.values) for layer in cache.layers)


def cached_bytes(config: Any, *, seq2seq: bool = False, batch: int = 1) -> int:
    """Bytes of every cached K/V tensor after a prefill of SEQ tokens (float32)."""
    torch.manual_seed(0)
    auto = T.AutoModelForSeq2SeqLM if seq2seq else T.AutoModelForCausalLM
    model = auto.from_config(config, attn_implementation="eager").eval()
    ids = torch.randint(0, 400, (batch, SEQ))
    inputs = {"input_ids": ids, "use_cache": True}
    if seq2seq:
        inputs["decoder_input_ids"] = ids[:, : SEQ // 2]
    with torch.no_grad():
        cache = model(**inputs).past_key_values
    if seq2seq:
        return layer_bytes(cache.self_attention_cache) + layer_bytes(cache.cross_attention_cache)
    return layer_bytes(cache)


def spec_of(config: Any) -> Any:
    return spec_from_hf_config(config.to_dict(), name="oracle").spec


def test_llama_gqa() -> None:
    config = T.LlamaConfig(**SMALL, num_attention_heads=4, num_key_value_heads=2)
    assert cached_bytes(config, batch=2) == kv_cache_bytes(
        spec_of(config), SEQ, batch=2, dtype="fp32"
    )


def test_qwen3_explicit_head_dim() -> None:
    config = T.Qwen3Config(**SMALL, num_attention_heads=4, num_key_value_heads=2, head_dim=32)
    assert cached_bytes(config) == kv_cache_bytes(spec_of(config), SEQ, dtype="fp32")


def test_mistral_sliding_window_shorter_than_the_sequence() -> None:
    window = 8
    config = T.MistralConfig(
        **SMALL, num_attention_heads=4, num_key_value_heads=2, sliding_window=window
    )
    spec = spec_of(config)
    held = cached_bytes(config)
    assert held == kv_cache_bytes(spec, SEQ, dtype="fp32", rule="transformers")
    per_token = 4 * 2 * 2 * 16 * 4  # layers x K,V x kv heads x head_dim x fp32
    assert held == (window - 1) * per_token
    assert kv_cache_bytes(spec, SEQ, dtype="fp32") == window * per_token


def test_gemma2_hybrid_layers() -> None:
    window = 8
    config = T.Gemma2Config(
        **SMALL, num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=window
    )
    spec = spec_of(config)
    assert spec.layer_kinds == ("sliding", "full", "sliding", "full")
    assert cached_bytes(config) == kv_cache_bytes(spec, SEQ, dtype="fp32", rule="transformers")


def test_deepseek_v3_caches_the_latent() -> None:
    config = T.DeepseekV3Config(
        **SMALL,
        moe_intermediate_size=32,
        first_k_dense_replace=1,
        n_routed_experts=8,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=32,
        kv_lora_rank=24,
        qk_nope_head_dim=16,
        qk_rope_head_dim=8,
        v_head_dim=16,
    )
    spec = spec_of(config)
    assert cached_bytes(config) == kv_cache_bytes(spec, SEQ, dtype="fp32")
    assert kv_cache_bytes(spec, SEQ, dtype="fp32") == 4 * SEQ * (24 + 8) * 4


def test_bart_self_and_cross_attention() -> None:
    config = T.BartConfig(
        vocab_size=500,
        d_model=64,
        encoder_layers=2,
        decoder_layers=3,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
    )
    spec = spec_of(config)
    expected = kv_cache_bytes(spec, SEQ // 2, dtype="fp32", encoder_seq=SEQ)
    assert cached_bytes(config, seq2seq=True) == expected
