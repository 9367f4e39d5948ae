"""DeepSeek-V3.2's sparse attention (the lightning indexer) in the built-in model, checked
against transformers' DeepseekV32ForCausalLM (eager, fp32 on the CPU).

index_topk 4 with 9-13 tokens: from the fifth query on, the indexer really drops keys.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.bench.cache import KVCache  # noqa: E402
from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import Transformer, build_model  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402

TOPK = 4


def tiny_config() -> Any:
    return transformers.DeepseekV32Config(
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=300,
        first_k_dense_replace=1,
        n_routed_experts=8,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        q_lora_rank=32,
        kv_lora_rank=24,
        qk_nope_head_dim=16,
        qk_rope_head_dim=8,
        v_head_dim=16,
        index_n_heads=4,
        index_head_dim=16,
        index_topk=TOPK,
    )


@functools.cache
def pair() -> tuple[Any, Transformer]:
    config = tiny_config()
    torch.manual_seed(0)
    hf = transformers.AutoModelForCausalLM.from_config(
        config, attn_implementation="eager", experts_implementation="eager"
    ).eval()
    with torch.no_grad():  # non-trivial norms and routing corrections
        for name, param in hf.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(0.1 * torch.randn_like(param))
        for name, buffer in hf.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.add_(0.1 * torch.randn_like(buffer))
    spec = spec_from_hf_config(config.to_dict(), name="dsv32-tiny").spec
    ours = build_model(spec).eval()
    load_hf_weights(ours, hf)
    return hf, ours


def test_spec_reads_the_indexer() -> None:
    _hf, ours = pair()
    spec = ours.spec
    assert (spec.index_num_heads, spec.index_head_dim, spec.index_topk) == (4, 16, TOPK)


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
def test_same_logits_as_transformers(backend: str) -> None:
    hf, ours = pair()
    ours.set_backend(backend)
    torch.manual_seed(1)
    for length in (3, 9, 13):  # below, and above, index_topk
        ids = torch.randint(3, 300, (2, length))
        with torch.no_grad():
            expected, got = hf(input_ids=ids).logits, ours(ids)
        torch.testing.assert_close(got, expected, msg=lambda m, n=length: f"length {n}: {m}")


def test_the_indexer_drops_keys() -> None:
    """Without the indexer's mask the logits differ: the test above does test the selection."""
    hf, ours = pair()
    ids = torch.randint(3, 300, (1, 11))
    with torch.no_grad():
        expected = hf(input_ids=ids).logits
        saved = [block.attention.indexer for block in ours.layers]
        try:
            for block in ours.layers:
                block.attention.indexer = None
            dense = ours(ids)
        finally:
            for block, indexer in zip(ours.layers, saved, strict=True):
                block.attention.indexer = indexer
    assert not torch.allclose(dense, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(dense[:, :TOPK], expected[:, :TOPK])


def test_parameter_count_equals_transformers_and_tfcli() -> None:
    from tfcli.params import count_params

    hf, ours = pair()
    total = sum(p.numel() for p in ours.parameters())
    assert total == sum(p.numel() for p in hf.parameters())
    assert total == count_params(ours.spec).total


def test_cached_decode_equals_transformers_and_keeps_the_indexer_keys() -> None:
    """Prefill 3 tokens then one token at a time: the logits equal transformers' full forward
    and the cache holds what ``tfcli kvcache`` predicts (latent + RoPE key + indexer key)."""
    from tfcli.memory import kv_cache_bytes

    hf, ours = pair()
    ids = torch.randint(3, 300, (2, 10))
    cache = KVCache()
    with torch.no_grad():
        expected = hf(input_ids=ids).logits
        steps = [ours(ids[:, :3], cache=cache)]
        steps += [ours(ids[:, t : t + 1], cache=cache) for t in range(3, 10)]
    torch.testing.assert_close(torch.cat(steps, dim=1), expected)
    assert cache.nbytes() == kv_cache_bytes(ours.spec, 10, batch=2, dtype="fp32")


def test_static_cache_decode_equals_transformers() -> None:
    """``bench --mode decode``'s preallocated cache, indexer keys written in place: the
    step's logits equal transformers' full forward; the planned KV bytes (latent, RoPE key,
    indexer key of context + 1 tokens) equal the cache's and ``tfcli kvcache``'s."""
    from dataclasses import replace

    from tests.test_bench_run import fake_calibration
    from tests.test_bench_trust import tiny_settings
    from tfcli.bench.decode import build_static_cache, plan_decode
    from tfcli.memory import kv_cache_bytes

    hf, ours = pair()
    prompt = 9
    ids = torch.randint(3, 300, (1, prompt + 1))
    settings = replace(tiny_settings(spec=ours.spec, layers=2, batch=1), backends=("naive",))
    cache = build_static_cache(ours, settings, prompt)
    for layer in cache.self_attention.values():
        layer.slot = 0  # type: ignore[attr-defined]
    cache.length = 0  # prefill from position 0 over the preallocated buffers
    with torch.no_grad():
        expected = hf(input_ids=ids).logits
        ours(ids[:, :prompt], cache=cache)
        for layer in cache.self_attention.values():
            layer.slot = prompt  # type: ignore[attr-defined]
        step = ours(ids[:, prompt:], cache=cache)
    torch.testing.assert_close(step[:, -1], expected[:, -1])
    planned = plan_decode(settings, fake_calibration(), prompt).kv_bytes
    assert planned == cache.nbytes() == kv_cache_bytes(ours.spec, prompt + 1, batch=1, dtype="fp32")
