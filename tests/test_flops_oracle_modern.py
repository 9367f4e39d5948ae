"""FLOPs of the 2024-26 model types against torch's FlopCounterMode, exact (DESIGN oracle 2).

``forward_flops(spec, s, attention="full", logits="all")`` is "what transformers' eager
implementation executes": every matmul (and einsum, and depthwise convolution) FlopCounterMode
counts, attention as the whole s x s, Llama 4's experts densely, DeepSeek-V3.2's indexer over
all pairs, the reference chunked scans of Gated DeltaNet, Mamba-2 and lightning attention and
Mamba-1's per-token state contraction. Built with ``attn_implementation="eager"`` and
``experts_implementation="eager"`` (torch 2.13 counts 0 for CPU SDPA and grouped_mm).

Three groups:

* dense models at their real widths on the meta device, one period of their layer kinds deep,
  at 128 and 2048 tokens;
* MoE models, which route by data (``nonzero`` in the eager expert loop; meta tensors cannot),
  at reduced widths on the CPU with random weights, at 128 and 2048 tokens;
* MoE models at their real widths on the CPU (parameters in untouched zero pages, as in
  tests/test_flops_oracle.py) at 16 tokens, one or two layers.

FLOPs are affine in the count of each layer kind, so one period of kinds checks every formula
the full depth uses (tests/test_flops.py checks the affinity).
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
SEQS = (128, 2048)
SMALL_BYTES = 64 * 2**20


def build(config: Any, device: str, *, init: str) -> Any:
    """The transformers causal LM of ``config`` (eager attention and experts) on ``device``;
    on the CPU with random weights (``init="random"``) or untouched zero pages (``"zero"``)."""
    with torch.device("meta"):
        model = T.AutoModelForCausalLM.from_config(
            config, attn_implementation="eager", experts_implementation="eager"
        )
    if device == "cpu":
        torch.set_flush_denormal(True)
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if not tensor.is_floating_point():
                    continue
                if init == "random":
                    tensor.normal_(0, 0.02)
                elif tensor.numel() * tensor.element_size() < SMALL_BYTES:
                    tensor.zero_()
    return model.eval()


def counted(config: Any, seq: int, *, device: str, init: str = "random") -> int:
    model = build(config, device, init=init)
    with torch.device(device):
        ids = torch.randint(0, 100, (1, seq))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids)
    return int(counter.get_total_flops())


def ours(config: Any, seq: int) -> int:
    spec = spec_from_hf_config(config.to_dict(), name=config.model_type).spec
    return forward_flops(spec, seq, attention="full", logits="all").total


# ---- dense, real widths, meta device ---------------------------------------------------------

DENSE: dict[str, Any] = {
    # CohereForAI/c4ai-command-r-v01 widths, per-head q/k norms on
    "cohere": T.CohereConfig(num_hidden_layers=1, use_qk_norm=True),
    # CohereForAI/c4ai-command-r7b: 3 sliding (window 4096) : 1 global NoPE layer
    "cohere2": T.Cohere2Config(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=4,
        num_attention_heads=32,
        num_key_value_heads=8,
        sliding_window=64,
    ),
    # HuggingFaceTB/SmolLM3-3B: NoPE every 4th layer
    "smollm3": T.SmolLM3Config(num_hidden_layers=4, pad_token_id=None),
    # LGAI-EXAONE/EXAONE-4.0-32B-like widths at 4 layers, window 64 < 2048
    "exaone4": T.Exaone4Config(num_hidden_layers=4, sliding_window=64),
    # bigcode/starcoder2-3b: biases, plain GELU MLP, sliding window
    "starcoder2": T.Starcoder2Config(num_hidden_layers=2, sliding_window=64),
    "olmo": T.OlmoConfig(num_hidden_layers=2),  # allenai/OLMo-7B-hf
    "olmo2": T.Olmo2Config(num_hidden_layers=2, vocab_size=100352),  # allenai/OLMo-2-1124-7B
    "granite": T.GraniteConfig(num_hidden_layers=2),
    # state-spaces/mamba-2.8b-hf widths: MambaMixer's per-token C contraction + depthwise conv
    "mamba": T.MambaConfig(hidden_size=2560, num_hidden_layers=2),
    # mistralai/Mamba-Codestral-7B-v0.1 widths: the chunked SSD scan (chunk 256)
    "mamba2": T.Mamba2Config(num_hidden_layers=2),
    # RWKV/rwkv-4-169m-pile
    "rwkv": T.RwkvConfig(hidden_size=768, num_hidden_layers=1),
    # tiiuae/Falcon-H1-7B widths: attention and Mamba-2 side by side in each layer
    "falcon_h1": T.FalconH1Config(
        hidden_size=3072,
        num_hidden_layers=2,
        num_attention_heads=12,
        num_key_value_heads=2,
        head_dim=128,
        intermediate_size=12288,
        vocab_size=130049,
        mamba_d_ssm=3072,
        mamba_n_heads=24,
        mamba_d_head=128,
        mamba_d_state=256,
        mamba_rms_norm=True,
    ),
}


@pytest.mark.parametrize("seq", SEQS)
@pytest.mark.parametrize("case", list(DENSE))
def test_dense_equals_flop_counter(case: str, seq: int) -> None:
    config = DENSE[case]
    assert ours(config, seq) == counted(config, seq, device="meta")


# ---- MoE, reduced widths, CPU -------------------------------------------------------------------

SMALL = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
}


def small(cls: Any, **changes: Any) -> Any:
    return cls(**{**SMALL, **changes})


MOE_SMALL: dict[str, Any] = {
    "olmoe": small(T.OlmoeConfig, num_hidden_layers=2, num_experts=8),
    "granitemoe": small(T.GraniteMoeConfig, num_hidden_layers=2),
    "phimoe": small(T.PhimoeConfig, num_hidden_layers=2, attention_bias=True, lm_head_bias=True),
    "glm4_moe": small(
        T.Glm4MoeConfig,
        num_hidden_layers=2,
        head_dim=64,
        n_routed_experts=8,
        moe_intermediate_size=128,
        use_qk_norm=True,
    ),
    "ernie4_5_moe": small(
        T.Ernie4_5_MoeConfig,
        num_hidden_layers=2,
        moe_num_experts=8,
        moe_intermediate_size=128,
        use_bias=True,
    ),
    "gpt_oss": small(
        T.GptOssConfig, num_hidden_layers=2, head_dim=64, num_local_experts=8, sliding_window=64
    ),
    "llama4_text": small(
        T.Llama4TextConfig,
        num_hidden_layers=4,
        head_dim=64,
        num_local_experts=4,
        intermediate_size_mlp=512,
        attention_chunk_size=256,
        interleave_moe_layer_step=2,
    ),
    "qwen3_next": small(
        T.Qwen3NextConfig,
        num_hidden_layers=4,
        head_dim=64,
        num_experts=16,
        moe_intermediate_size=128,
        shared_expert_intermediate_size=128,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=32,
        linear_value_head_dim=32,
    ),
    "minimax": small(
        T.MiniMaxConfig, num_hidden_layers=2, num_local_experts=4, head_dim=64, block_size=64
    ),
    "deepseek_v32": small(
        T.DeepseekV32Config,
        num_hidden_layers=2,
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
        T.JambaConfig,
        num_hidden_layers=2,
        num_experts=4,
        attn_layer_period=2,
        attn_layer_offset=1,
        mamba_d_state=8,
    ),
    "granitemoehybrid": small(
        T.GraniteMoeHybridConfig,
        num_hidden_layers=2,
        num_local_experts=4,
        shared_intermediate_size=128,
        mamba_n_heads=8,
        mamba_d_state=16,
        mamba_chunk_size=64,
        layer_types=["mamba", "attention"],
    ),
}


@pytest.mark.parametrize("seq", SEQS)
@pytest.mark.parametrize("case", list(MOE_SMALL))
def test_moe_small_widths_equal_flop_counter(case: str, seq: int) -> None:
    config = MOE_SMALL[case]
    assert ours(config, seq) == counted(config, seq, device="cpu")


# ---- MoE, real widths, CPU on zero pages, few tokens ----------------------------------------

MOE_REAL: dict[str, Any] = {
    # openai/gpt-oss-20b widths: 32 experts with biases, sinks, sliding/full pair
    "gpt_oss": T.GptOssConfig(num_hidden_layers=2, num_local_experts=32),
    # zai-org/GLM-4.5-Air widths: dense layer, then 128 experts + shared
    "glm4_moe": T.Glm4MoeConfig(num_hidden_layers=2, head_dim=128, attention_bias=True),
    # Qwen/Qwen3-Next-80B-A3B widths: 3 Gated DeltaNet + 1 gated attention layer, 512 experts
    "qwen3_next": T.Qwen3NextConfig(num_hidden_layers=4, intermediate_size=5120),
    # meta-llama/Llama-4-Scout-17B-16E widths: 4 layers (3 chunked RoPE, 1 NoPE full)
    "llama4_text": T.Llama4TextConfig(num_hidden_layers=4, attention_chunk_size=8),
}


@pytest.mark.parametrize("case", list(MOE_REAL))
def test_moe_real_widths_equal_flop_counter(case: str) -> None:
    config = MOE_REAL[case]
    assert ours(config, 16) == counted(config, 16, device="cpu", init="zero")
