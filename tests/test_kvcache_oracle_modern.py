"""KV cache and per-sequence state of the 2024-26 model types against transformers' own cache.

DESIGN oracle 3: a transformers model with real (small, random) weights runs a prefill with
``use_cache=True``; the bytes of every tensor its cache holds are summed and compared, exactly,
with ``kv_cache_bytes(spec, seq, batch, dtype, rule="transformers")``:

* attention layers' keys and values (``DynamicLayer``; ``DynamicSlidingWindowLayer`` keeps
  ``w - 1`` tokens of sliding and chunked layers);
* DeepSeek-V3.2's MLA latent and its indexer keys (``DynamicIndexedLayer``);
* linear-attention and SSM layers' conv and recurrent states (``LinearAttentionLayer``: the
  conv state keeps K columns in the model dtype, recurrent states are fp32);
* MiniMax's lightning K^T V state (``MiniMaxCache.linear_cache``), RWKV's five state vectors.

Both fp32 and bf16, batch 2, 100 tokens (longer than every window and chunk used here).
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.memory import kv_cache, kv_cache_bytes  # noqa: E402

T = transformers
SEQ, BATCH = 100, 2
SMALL = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "num_hidden_layers": 4,
}


def small(cls: Any, **changes: Any) -> Any:
    return cls(**{**SMALL, **changes})


def ssm(cls: Any, **changes: Any) -> Any:
    base = {k: v for k, v in SMALL.items() if k in ("hidden_size", "vocab_size")}
    return cls(**{**base, "num_hidden_layers": 3, **changes})


CASES: dict[str, Any] = {
    "gpt_oss": small(T.GptOssConfig, head_dim=64, num_local_experts=4, sliding_window=32),
    "llama4_text": small(
        T.Llama4TextConfig,
        head_dim=64,
        num_local_experts=4,
        intermediate_size_mlp=512,
        attention_chunk_size=64,
    ),
    "cohere2": small(T.Cohere2Config, sliding_window=32),
    "exaone4": small(T.Exaone4Config, sliding_window=32),
    "olmo2": small(T.Olmo2Config),
    "qwen3_next": small(
        T.Qwen3NextConfig,
        head_dim=64,
        num_experts=16,
        moe_intermediate_size=128,
        shared_expert_intermediate_size=128,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=32,
        linear_value_head_dim=32,
    ),
    "minimax": small(T.MiniMaxConfig, num_local_experts=4, head_dim=64, block_size=64),
    "deepseek_v32": small(
        T.DeepseekV32Config,
        num_key_value_heads=4,
        n_routed_experts=8,
        moe_intermediate_size=128,
        q_lora_rank=64,
        kv_lora_rank=32,
        qk_nope_head_dim=32,
        qk_rope_head_dim=16,
        v_head_dim=32,
        index_n_heads=4,
        index_head_dim=32,
        index_topk=64,
        first_k_dense_replace=1,
        n_group=1,
        topk_group=1,
    ),
    "jamba": small(
        T.JambaConfig, num_experts=4, attn_layer_period=2, attn_layer_offset=1, mamba_d_state=8
    ),
    "falcon_h1": small(
        T.FalconH1Config,
        head_dim=64,
        mamba_d_ssm=256,
        mamba_n_heads=8,
        mamba_d_head=32,
        mamba_d_state=16,
        mamba_chunk_size=64,
    ),
    "granitemoehybrid": small(
        T.GraniteMoeHybridConfig,
        num_local_experts=4,
        shared_intermediate_size=128,
        mamba_n_heads=8,
        mamba_d_state=16,
        mamba_chunk_size=64,
        layer_types=["mamba", "attention", "mamba", "attention"],
    ),
    "mamba": ssm(T.MambaConfig, state_size=8),
    "mamba2": ssm(
        T.Mamba2Config, num_heads=8, head_dim=64, state_size=16, n_groups=2, chunk_size=64
    ),
    "rwkv": ssm(T.RwkvConfig),
}


def tensor_bytes(value: Any) -> int:
    """Bytes of every tensor in ``value`` (tensors, lists, tuples, dicts, nested)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


CACHE_TENSORS = ("keys", "values", "indexer_keys", "conv_states", "recurrent_states")


def cached_bytes(config: Any, dtype: Any) -> int:
    """Prefill of BATCH x SEQ tokens; the bytes transformers' cache (or RWKV's state) holds."""
    torch.manual_seed(0)
    model = T.AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    ids = torch.randint(0, 1000, (BATCH, SEQ))
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    if getattr(out, "state", None) is not None:  # RWKV
        return tensor_bytes(out.state)
    cache = out.past_key_values
    total = sum(
        tensor_bytes(getattr(layer, name, None)) for layer in cache.layers for name in CACHE_TENSORS
    )
    return total + tensor_bytes(getattr(cache, "linear_cache", None))


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("case", list(CASES))
def test_cache_bytes_equal_transformers(case: str, dtype: str) -> None:
    config = CASES[case]
    spec = spec_from_hf_config(config.to_dict(), name=case).spec
    torch_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16
    expected = cached_bytes(config, torch_dtype)
    assert kv_cache_bytes(spec, SEQ, batch=BATCH, dtype=dtype, rule="transformers") == expected


def test_state_does_not_grow_with_tokens() -> None:
    """A Mamba-2 layer's state is the same at 100 and 10,000 tokens; its KV-per-token is 0."""
    spec = spec_from_hf_config(CASES["mamba2"].to_dict(), name="mamba2").spec
    short = kv_cache(spec, 100, rule="transformers")
    long = kv_cache(spec, 10_000, rule="transformers")
    assert short.total_bytes == long.total_bytes == short.state_bytes > 0
    assert short.bytes_per_token == 0 and short.self_attention_bytes == 0


def test_hybrid_breakeven_is_state_over_kv_per_token() -> None:
    spec = spec_from_hf_config(CASES["qwen3_next"].to_dict(), name="qwen3_next").spec
    cache = kv_cache(spec, 4096, rule="transformers")
    assert cache.breakeven_tokens == cache.state_bytes // cache.bytes_per_token
