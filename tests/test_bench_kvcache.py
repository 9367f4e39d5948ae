"""The built-in model's KV cache holds exactly the bytes ``tfcli kvcache`` predicts.

After a prefill of s tokens (and after further one-token steps), the bytes of every cached
tensor equal ``kv_cache_bytes`` with the default "window" rule: standard MHA (GPT-2), GQA
(Llama), sliding window shorter than the sequence (Mistral; Gemma-2 and Gemma-3 hybrids),
MLA latent with and without a query LoRA (DeepSeek-V3, -V2), and self + cross attention
(BART, T5). The cached tensors have the shapes DESIGN.md section 4 describes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.bench_cases import configs  # noqa: E402
from tfcli.bench.cache import KVCache  # noqa: E402
from tfcli.bench.model import build_model  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.memory import kv_cache_bytes  # noqa: E402

CASES = configs()


@pytest.mark.parametrize(
    "case",
    [
        "gpt2",
        "llama",
        "mistral",
        "gemma2",
        "gemma3_text",
        "deepseek_v2",
        "deepseek_v3",
        "bart",
        "t5",
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cache_bytes_match_the_estimate(case: str, dtype: torch.dtype) -> None:
    config, kind = CASES[case]
    spec = spec_from_hf_config(config.to_dict(), name=case).spec
    model = build_model(spec, dtype=dtype).eval()
    name = "fp32" if dtype == torch.float32 else "bf16"
    prompt, enc = 9, 7
    ids = torch.randint(3, 300, (2, prompt))
    cache = KVCache()
    with torch.no_grad():
        if kind == "seq2seq":
            memory = model.encode(torch.randint(3, 300, (2, enc)))
            model(ids, decoder_input_ids=ids, memory=memory, cache=cache)
        else:
            model(ids, cache=cache)
    expected = kv_cache_bytes(spec, prompt, batch=2, dtype=name, encoder_seq=enc)
    assert cache.nbytes() == expected
    with torch.no_grad():
        for step in range(3):
            token = torch.randint(3, 300, (2, 1))
            if kind == "seq2seq":
                model(ids, decoder_input_ids=token, memory=memory, cache=cache)
            else:
                model(token, cache=cache)
            grown = kv_cache_bytes(spec, prompt + step + 1, batch=2, dtype=name, encoder_seq=enc)
            assert cache.nbytes() == grown


def test_cached_tensor_shapes() -> None:
    """K and V (B, KVH, S, D) per layer; a sliding layer at most the window; MLA the latent
    (B, S, kv_lora_rank) and the shared RoPE key (B, S, qk_rope_head_dim), no per-head K/V."""
    prompt = 9
    ids = torch.randint(3, 300, (2, prompt))
    shapes = {}
    for case in ("llama", "mistral", "deepseek_v3"):
        spec = spec_from_hf_config(CASES[case][0].to_dict(), name=case).spec
        cache = KVCache()
        with torch.no_grad():
            build_model(spec).eval()(ids, cache=cache)
        shapes[case] = [
            (tuple(layer.first.shape), tuple(layer.second.shape))
            for layer in cache.self_attention.values()
            if layer.first is not None and layer.second is not None
        ]
    assert shapes["llama"] == [((2, 2, prompt, 16), (2, 2, prompt, 16))] * 2
    assert shapes["mistral"] == [((2, 2, 5, 16), (2, 2, 5, 16))] * 2  # window 5 < 9 tokens
    assert shapes["deepseek_v3"] == [((2, prompt, 24), (2, prompt, 8))] * 2
