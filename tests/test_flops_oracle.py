"""Forward FLOPs against torch.utils.flop_counter.FlopCounterMode on transformers models.

DESIGN.md oracle 2. FlopCounterMode counts every matmul (mm, bmm, addmm, baddbmm) as
2 x M x N x K and nothing else; it sees the full s x s attention of an eager implementation
(masks are applied after QK^T), so the comparison uses ``attention="full"``. torch 2.13 counts
0 for CPU SDPA and for transformers-5 grouped_mm experts, hence ``attn_implementation="eager"``
and ``experts_implementation="eager"``. Every case below is EXACT (``==``): the router, the LM
head over every position, BERT's pooler, T5/BART cross-attention and DeepSeek's MLA are all
matmuls both sides count the same way; embeddings, RoPE, T5's relative bias, softmax, norms
and softcaps are not matmuls and neither side counts them.

Widths are the real models' (Llama-3-8B, Mistral-7B, Qwen2.5-7B, Gemma-2-9B, GPT-2, BERT-base,
T5-base, BART-base, Mixtral-8x7B, DeepSeek-V3, Qwen1.5-MoE-A2.7B) with 2 layers; FLOPs are
affine in the layer count (tests/test_flops.py), and ``test_two_layers_extrapolate_to_the_
shipped_spec`` checks that 1- and 2-layer counts scaled to 32 layers equal the shipped spec.

Dense models run on the meta device (no memory, no arithmetic). MoE models route each token
by data (``nonzero``/``where`` in the eager expert loop), which meta tensors cannot do: they run
on the CPU with parameters allocated by ``to_empty`` and never written. Large tensors then sit
in untouched anonymous pages that the kernel maps to the shared zero page on read, so a
"12 GB" Mixtral costs ~0.5 GB of RSS; tensors below 64 MiB are zeroed explicitly. All router
logits are then equal and top-k picks the first k experts for every token: the FLOPs are the
same for any routing (tokens x top-k expert MLPs in total), which is what tfcli counts.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tfcli.flops import attended_pairs, decode_flops, forward_flops  # noqa: E402
from tfcli.loaders import load_model, spec_from_hf_config  # noqa: E402
from tfcli.spec import ModelSpec  # noqa: E402

T = transformers
SEQ = 64
"""Tokens per forward on the meta device (longer than the test sliding windows of 16)."""
MOE_SEQ = 16
"""Tokens per forward for MoE models, which compute for real on the CPU."""
SMALL_BYTES = 64 * 2**20
"""Parameters and buffers below this size are zeroed (they may reuse dirty heap memory)."""

AUTO = {
    "causal_lm": T.AutoModelForCausalLM,
    "base": T.AutoModel,
    "seq2seq": T.AutoModelForSeq2SeqLM,
}


def build(config: Any, kind: str, device: str) -> Any:
    """The transformers model of ``config`` with eager attention and experts, on ``device``
    ("meta", or "cpu" backed by untouched zero pages, see the module docstring)."""
    with torch.device("meta"):
        model = AUTO[kind].from_config(
            config, attn_implementation="eager", experts_implementation="eager"
        )
    if device == "cpu":
        torch.set_flush_denormal(True)
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if tensor.numel() * tensor.element_size() < SMALL_BYTES:
                    tensor.zero_()
    return model.eval()


def counted_flops(config: Any, kind: str, *, device: str, seq: int = SEQ) -> int:
    """FlopCounterMode total of one forward pass over ``seq`` tokens (batch 1)."""
    model = build(config, kind, device)
    with torch.device(device):
        ids = torch.randint(0, 100, (1, seq))
    inputs = {"input_ids": ids}
    if kind == "seq2seq":
        inputs["decoder_input_ids"] = ids
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    return int(counter.get_total_flops())


def spec_of(config: Any, name: str) -> ModelSpec:
    return spec_from_hf_config(config.to_dict(), name=name).spec


def llama_config(layers: int = 2) -> Any:
    """meta-llama/Meta-Llama-3-8B config.json widths."""
    return T.LlamaConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=8192,
        rope_theta=500000.0,
    )


DENSE: dict[str, tuple[Any, str]] = {
    "llama": (llama_config(), "causal_lm"),
    # mistralai/Mistral-7B-v0.1 widths (MistralConfig defaults) with a window of 16 < SEQ: the
    # eager kernel multiplies all s x s scores and masks afterwards, so FlopCounterMode sees
    # the full count even on sliding layers (tfcli's causal count differs, see below).
    "mistral": (T.MistralConfig(num_hidden_layers=2, sliding_window=16), "causal_lm"),
    # Qwen/Qwen2.5-7B: q/k/v biases (bias adds are not matmuls: neither side counts them).
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
    ),
    # google/gemma-2-9b: head_dim 256 != 3584/16, alternating sliding/full layers (window
    # 16 here), logit softcaps (elementwise, not counted by either side).
    "gemma2": (
        T.Gemma2Config(
            vocab_size=256000,
            hidden_size=3584,
            intermediate_size=14336,
            num_hidden_layers=2,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=256,
            sliding_window=16,
        ),
        "causal_lm",
    ),
    # openai-community/gpt2 (GPT2Config defaults): Conv1D layers are addmm, counted as matmuls.
    "gpt2": (T.GPT2Config(n_layer=2), "causal_lm"),
    # google-bert/bert-base-uncased as BertModel: the pooler's dense layer runs on the first
    # token of each sequence only (2 x h x h per sequence), as tfcli's "pooler" counts.
    "bert": (T.BertConfig(num_hidden_layers=2), "base"),
    # google-t5/t5-base: encoder over SEQ, decoder over SEQ with cross-attention to SEQ; the
    # relative position bias is an embedding lookup (no FLOPs); tied LM head over every token.
    "t5": (T.T5Config(d_model=768, d_ff=3072, num_layers=2, num_heads=12), "seq2seq"),
    # facebook/bart-base: learned positions, biases everywhere, tied LM head.
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
    ),
}


@pytest.mark.parametrize("case", list(DENSE))
def test_dense_full_convention_equals_flop_counter(case: str) -> None:
    config, kind = DENSE[case]
    ours = forward_flops(spec_of(config, case), SEQ, attention="full", logits="all")
    assert ours.total == counted_flops(config, kind, device="meta")


# MoE models at real widths on zero pages (module docstring).
MOE: dict[str, Any] = {
    # mistralai/Mixtral-8x7B-v0.1 (MixtralConfig defaults): all 8 experts, top-2.
    "mixtral": T.MixtralConfig(num_hidden_layers=2),
    # Qwen/Qwen1.5-MoE-A2.7B: 60 experts of 1408, top-4, a 5632-wide shared expert with a
    # sigmoid gate (hidden -> 1, counted as the "moe.shared_expert_gate" matmul).
    "qwen2_moe": T.Qwen2MoeConfig(
        vocab_size=151936,
        hidden_size=2048,
        intermediate_size=5632,
        moe_intermediate_size=1408,
        shared_expert_intermediate_size=5632,
        num_experts=60,
        num_experts_per_tok=4,
        num_hidden_layers=2,
        num_attention_heads=16,
        num_key_value_heads=16,
    ),
}


@pytest.mark.parametrize("case", list(MOE))
def test_moe_full_convention_equals_flop_counter(case: str) -> None:
    config = MOE[case]
    ours = forward_flops(spec_of(config, case), MOE_SEQ, attention="full")
    assert ours.total == counted_flops(config, "causal_lm", device="cpu", seq=MOE_SEQ)


DEEPSEEK_EXPERTS = 64
"""DeepSeek-V3 has 256 routed experts; its stacked expert weights (256 x 4096 x 7168 fp32 =
30 GB in one tensor) exceed what the kernel lets one process reserve here, even untouched. The
oracle runs 64 experts (8 groups of 8, top-4 groups, top-8: the same routing shape), and the
test checks that the real 256-expert count differs by exactly the router term."""


def deepseek_v3_config(experts: int) -> Any:
    """deepseek-ai/DeepSeek-V3 widths (DeepseekV3Config defaults: MLA with q_lora_rank 1536,
    kv_lora_rank 512, 128 heads of 128 + 64 rope, v 128; top-8 of 8 groups; one shared
    expert), 2 layers: the first dense (first_k_dense_replace), the second MoE."""
    return T.DeepseekV3Config(
        num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=experts
    )


def test_deepseek_v3_mla_and_moe_equal_flop_counter() -> None:
    config = deepseek_v3_config(DEEPSEEK_EXPERTS)
    spec = spec_of(config, "deepseek_v3")
    ours = forward_flops(spec, MOE_SEQ, attention="full")
    assert ours.total == counted_flops(config, "causal_lm", device="cpu", seq=MOE_SEQ)
    # Scaling to the real 256 experts: only the router (2 x t x h x E per MoE layer) depends
    # on the expert count; the routed-expert FLOPs depend on top-k alone.
    real = forward_flops(spec_of(deepseek_v3_config(256), "deepseek_v3"), MOE_SEQ, attention="full")
    router_delta = 2 * MOE_SEQ * spec.hidden_size * (256 - DEEPSEEK_EXPERTS) * spec.num_moe_layers
    assert real.total - ours.total == router_delta
    assert real.components["moe.routed_experts"] == ours.components["moe.routed_experts"]


def test_two_layers_extrapolate_to_the_shipped_spec() -> None:
    """ "Other layers scaled by their count": counted(1 layer) + 31 x (counted(2) - counted(1))
    is the 32-layer Llama-3-8B forward, and equals tfcli's figure for the shipped spec."""
    one = counted_flops(llama_config(1), "causal_lm", device="meta")
    two = counted_flops(llama_config(2), "causal_lm", device="meta")
    shipped = load_model("llama-3-8b").spec
    assert one + 31 * (two - one) == forward_flops(shipped, SEQ, attention="full").total


def test_decode_step_with_cache_equals_flop_counter() -> None:
    """One new token after L cached: transformers' eager attention multiplies 1 x (L + 1)
    scores (causal and full agree for a single query); LM head on that token only."""
    config, context = llama_config(), 40
    model = build(config, "causal_lm", "meta")
    with torch.device("meta"), torch.no_grad():
        prefix = model(input_ids=torch.randint(0, 100, (1, context)), use_cache=True)
        with FlopCounterMode(display=False) as counter:
            model(
                input_ids=torch.randint(0, 100, (1, 1)),
                past_key_values=prefix.past_key_values,
                use_cache=True,
            )
    spec = spec_of(config, "llama")
    for attention in ("causal", "full"):
        step = decode_flops(spec, context, attention=attention).with_cache
        assert step.total == counter.get_total_flops()


def test_sliding_decode_step_sees_the_window() -> None:
    """Gemma-2 with window 16 and 40 cached: the sliding layer's cache holds w - 1 = 15 tokens
    (transformers' DynamicSlidingWindowLayer), so its eager scores are 1 x 16; the full layer's
    are 1 x 41. tfcli's decode pairs are min(L + 1, w) and L + 1."""
    config, _ = DENSE["gemma2"]
    context = 40
    model = build(config, "causal_lm", "meta")
    with torch.device("meta"), torch.no_grad():
        prefix = model(input_ids=torch.randint(0, 100, (1, context)), use_cache=True)
        with FlopCounterMode(display=False) as counter:
            model(
                input_ids=torch.randint(0, 100, (1, 1)),
                past_key_values=prefix.past_key_values,
                use_cache=True,
            )
    step = decode_flops(spec_of(config, "gemma2"), context).with_cache
    assert [layer.pairs for layer in step.layers] == [16, 41]
    assert step.total == counter.get_total_flops()


def test_causal_convention_counts_fewer_pairs_than_the_counter() -> None:
    """The default causal count differs from FlopCounterMode by exactly the strictly-upper
    pairs: 2 x 2 x heads x head_dim x s(s-1)/2 per layer (QK^T and AV)."""
    config, kind = DENSE["llama"]
    spec = spec_of(config, "llama")
    causal = forward_flops(spec, SEQ).total
    upper = SEQ * (SEQ - 1) // 2
    per_layer = 2 * 2 * spec.num_heads * spec.resolved_head_dim * upper
    assert counted_flops(config, kind, device="meta") - causal == 2 * per_layer


def test_sliding_window_difference_is_the_masked_pairs() -> None:
    """Mistral, window 16 < 64 tokens: the eager kernel multiplies all 64 x 64 scores, tfcli's
    default counts sum_i min(i+1, 16) pairs; the difference is exactly the masked pairs
    (s^2 - sliding pairs) x 2 x 2 x heads x head_dim per layer."""
    config, kind = DENSE["mistral"]
    spec = spec_of(config, "mistral")
    masked = SEQ * SEQ - attended_pairs(SEQ, causal=True, window=16)
    per_layer = 2 * 2 * spec.num_heads * spec.resolved_head_dim * masked
    ours = forward_flops(spec, SEQ).total
    assert counted_flops(config, kind, device="meta") - ours == spec.num_layers * per_layer
