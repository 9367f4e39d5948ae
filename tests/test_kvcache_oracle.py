"""KV-cache bytes against the tensors transformers actually caches (DESIGN.md oracle 3).

Small models (4 layers, width 64) with random weights run a prefill with ``use_cache=True``;
the bytes of every cached key/value tensor (``past_key_values.layers[i].keys/.values``; for
BART the self- and cross-attention caches of the EncoderDecoderCache) are summed and compared
with ``tfcli.memory.kv_cache_bytes`` exactly.

Sliding-window layers: transformers 5's DynamicSlidingWindowLayer keeps the last ``w - 1``
tokens between calls (cache_utils.py: "Only cache the last `self.sliding_window - 1`
tokens"), and the next token makes ``w`` while it attends. tfcli's default rule ("window")
counts ``w``: the keys the newest token attends, itself included, which is what vLLM
allocates; ``rule="transformers"`` counts ``w - 1``. Both are pinned here: the cache after the
prefill against the "transformers" rule, and the keys (and unmasked mask entries) the next
decode step attends against the "window" rule.

DeepSeek-V3 (MLA): transformers 5 caches the compressed latent, viewed as one-head "keys"
(kv_lora_rank, after kv_a_layernorm) and "values" (the RoPE key, qk_rope_head_dim), and
decompresses per-head K/V on every step (``DeepseekV3Attention.expand_kv``). So the cache is
compared with tfcli's latent formula, the latent width with ``kv_a_proj_with_mqa``'s output,
and the decompressed K/V that ``expand_kv`` returns with ``mla_decompressed_elements_per_token``
(what MLA saves).
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.memory import (  # noqa: E402
    kv_cache_bytes,
    mla_decompressed_elements_per_token,
    mla_latent_elements_per_token,
)

T = transformers
SEQ = 24
SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "vocab_size": 500}


def tensor_bytes(tensor: Any) -> int:
    return tensor.numel() * tensor.element_size()


def layer_bytes(cache: Any) -> int:
    return sum(tensor_bytes(layer.keys) + tensor_bytes(layer.values) for layer in cache.layers)


def build(config: Any, *, seq2seq: bool = False, dtype: Any = None) -> Any:
    torch.manual_seed(0)
    auto = T.AutoModelForSeq2SeqLM if seq2seq else T.AutoModelForCausalLM
    model = auto.from_config(config, attn_implementation="eager", dtype=dtype or torch.float32)
    return model.eval()


def cached_bytes(config: Any, *, seq2seq: bool = False, batch: int = 1, dtype: Any = None) -> int:
    """Bytes of every cached K/V tensor after a prefill of SEQ tokens."""
    model = build(config, seq2seq=seq2seq, dtype=dtype)
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


def test_llama_bf16_two_bytes_per_value() -> None:
    config = T.LlamaConfig(**SMALL, num_attention_heads=4, num_key_value_heads=1)
    held = cached_bytes(config, dtype=torch.bfloat16)
    assert held == kv_cache_bytes(spec_of(config), SEQ, dtype="bf16")
    assert held == 4 * SEQ * 2 * 1 * 16 * 2  # layers x tokens x K,V x 1 KV head x 16 x 2 B


def keys_attended_by_next_token(config: Any, module: Any) -> list[tuple[int, int]]:
    """(key length, unmasked keys) per layer for one decode step after a prefill of SEQ."""
    model = build(config)
    ids = torch.randint(0, 400, (1, SEQ + 1))
    seen: list[tuple[int, int]] = []
    eager = module.eager_attention_forward

    def recording(mod: Any, query: Any, key: Any, value: Any, mask: Any, **kw: Any) -> Any:
        visible = key.shape[-2] if mask is None else int((mask[0, 0, -1] == 0).sum())
        seen.append((key.shape[-2], visible))
        return eager(mod, query, key, value, mask, **kw)

    with torch.no_grad():
        cache = model(input_ids=ids[:, :SEQ], use_cache=True).past_key_values
        module.eager_attention_forward = recording
        try:
            model(input_ids=ids[:, SEQ:], past_key_values=cache, use_cache=True)
        finally:
            module.eager_attention_forward = eager
    return seen


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
    # The next token attends w keys (w - 1 cached + itself): the "window" rule's count.
    seen = keys_attended_by_next_token(config, T.models.mistral.modeling_mistral)
    assert seen == [(window, window)] * 4
    assert kv_cache_bytes(spec, SEQ + 1, dtype="fp32") == window * per_token


def test_gemma2_hybrid_layers() -> None:
    window = 8
    config = T.Gemma2Config(
        **SMALL, num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=window
    )
    spec = spec_of(config)
    assert spec.layer_kinds == ("sliding", "full", "sliding", "full")
    assert cached_bytes(config) == kv_cache_bytes(spec, SEQ, dtype="fp32", rule="transformers")
    # Decode step: sliding layers attend w keys, full layers all SEQ + 1 ("window" rule).
    seen = keys_attended_by_next_token(config, T.models.gemma2.modeling_gemma2)
    assert [visible for _, visible in seen] == [window, SEQ + 1, window, SEQ + 1]
    per_layer_token = 2 * 2 * 16 * 4
    expected = (2 * window + 2 * (SEQ + 1)) * per_layer_token
    assert kv_cache_bytes(spec, SEQ + 1, dtype="fp32") == expected


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
    model = build(config)
    attention = T.models.deepseek_v3.modeling_deepseek_v3.DeepseekV3Attention
    first = model.model.layers[0].self_attn
    # The cached latent is exactly the output of the down-projection kv_a_proj_with_mqa.
    assert first.kv_a_proj_with_mqa.out_features == mla_latent_elements_per_token(spec) == 32
    # What MLA avoids caching: the per-head K and V that expand_kv rebuilds on every step.
    expanded: list[int] = []
    expand = attention.expand_kv

    def recording(self: Any, kv_nope: Any, k_rot: Any) -> Any:
        keys, values = expand(self, kv_nope, k_rot)
        expanded.append((keys.numel() + values.numel()) // keys.shape[-2])
        return keys, values

    attention.expand_kv = recording
    try:
        with torch.no_grad():
            model(input_ids=torch.randint(0, 400, (1, SEQ)), use_cache=True)
    finally:
        attention.expand_kv = expand
    assert expanded == [mla_decompressed_elements_per_token(spec)] * 4
    assert expanded[0] == 4 * (16 + 8 + 16)


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
