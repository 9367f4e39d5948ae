"""Forward FLOPs against torch.utils.flop_counter.FlopCounterMode on transformers models.

DESIGN.md oracle 2. FlopCounterMode counts every matmul as 2 x M x N x K and counts the
full s x s attention of an eager implementation (masks are applied after the product), so
the comparison uses ``attention="full"``. torch 2.13 counts 0 for CPU SDPA and for
transformers-5 grouped_mm experts, hence ``attn_implementation="eager"`` and
``experts_implementation="eager"``.

Dense models run on the meta device at their real widths with 2 layers (FLOPs are affine in
the layer count, tests/test_flops.py). MoE models route tokens by the router's values, which
needs real tensors: they run on the CPU with small widths but their real expert counts and
top-k; the eager expert loop then evaluates exactly tokens x top-k experts, as tfcli counts.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tfcli.flops import forward_flops  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402

T = transformers
SEQ = 64

AUTO = {
    "causal_lm": T.AutoModelForCausalLM,
    "base": T.AutoModel,
    "seq2seq": T.AutoModelForSeq2SeqLM,
}


def counted_flops(config: Any, kind: str, *, device: str) -> int:
    """FlopCounterMode total of one forward pass over SEQ tokens (batch 1)."""
    torch.manual_seed(0)
    with torch.device(device):
        model = AUTO[kind].from_config(
            config, attn_implementation="eager", experts_implementation="eager"
        )
    model.eval()
    ids = torch.randint(0, 100, (1, SEQ), device=device)
    inputs = {"input_ids": ids}
    if kind == "seq2seq":
        inputs["decoder_input_ids"] = ids
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    return int(counter.get_total_flops())


CASES: dict[str, tuple[Any, str, str]] = {
    # Llama-3-8B widths, 2 layers.
    "llama": (
        T.LlamaConfig(
            vocab_size=128256,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=2,
            num_attention_heads=32,
            num_key_value_heads=8,
        ),
        "causal_lm",
        "meta",
    ),
    # Mistral-7B widths with a window (16) shorter than the sequence: the eager kernel still
    # multiplies all s x s scores and masks, so the full count is what FlopCounterMode sees.
    "mistral": (T.MistralConfig(num_hidden_layers=2, sliding_window=16), "causal_lm", "meta"),
    "qwen2": (
        T.Qwen2Config(
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=2,
            num_attention_heads=28,
            num_key_value_heads=4,
        ),
        "causal_lm",
        "meta",
    ),
    "gemma2": (T.Gemma2Config(num_hidden_layers=2, sliding_window=16), "causal_lm", "meta"),
    "gpt2": (T.GPT2Config(n_layer=2), "causal_lm", "meta"),
    # BertModel: the pooler's dense layer runs on the first token only (2 x h x h FLOPs).
    "bert": (T.BertConfig(num_hidden_layers=2), "base", "meta"),
    # T5-base widths: encoder over SEQ, decoder over SEQ with cross-attention to SEQ.
    "t5": (T.T5Config(d_model=768, d_ff=3072, num_layers=2, num_heads=12), "seq2seq", "meta"),
    "bart": (
        T.BartConfig(
            d_model=768,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=12,
            decoder_attention_heads=12,
            encoder_ffn_dim=3072,
            decoder_ffn_dim=3072,
        ),
        "seq2seq",
        "meta",
    ),
    # Mixtral's 8 experts, top-2, at small widths on real tensors.
    "mixtral": (
        T.MixtralConfig(
            hidden_size=256,
            intermediate_size=512,
            num_hidden_layers=2,
            num_attention_heads=8,
            num_key_value_heads=2,
            vocab_size=1000,
        ),
        "causal_lm",
        "cpu",
    ),
    # DeepSeek-V3's 256 experts, 8 groups / top-4 groups, top-8, one shared expert, a dense
    # first layer, MLA with q_lora_rank, at small widths on real tensors.
    "deepseek_v3": (
        T.DeepseekV3Config(
            hidden_size=256,
            intermediate_size=512,
            moe_intermediate_size=64,
            num_hidden_layers=3,
            first_k_dense_replace=1,
            num_attention_heads=8,
            num_key_value_heads=8,
            q_lora_rank=64,
            kv_lora_rank=32,
            qk_nope_head_dim=16,
            qk_rope_head_dim=8,
            v_head_dim=16,
            vocab_size=1000,
        ),
        "causal_lm",
        "cpu",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_full_convention_matches_flop_counter(case: str) -> None:
    config, kind, device = CASES[case]
    spec = spec_from_hf_config(config.to_dict(), name=case).spec
    ours = forward_flops(spec, SEQ, attention="full", logits="all")
    assert ours.total == counted_flops(config, kind, device=device)


def test_causal_convention_counts_fewer_pairs_than_the_counter() -> None:
    """The default causal count differs from FlopCounterMode by exactly the strictly-upper
    pairs: 2 x 2 x heads x head_dim x s(s-1)/2 per layer (QK^T and AV)."""
    config, kind, device = CASES["llama"]
    spec = spec_from_hf_config(config.to_dict(), name="llama").spec
    causal = forward_flops(spec, SEQ).total
    upper = SEQ * (SEQ - 1) // 2
    per_layer = 2 * 2 * spec.num_heads * spec.resolved_head_dim * upper
    assert counted_flops(config, kind, device=device) - causal == 2 * per_layer
