"""Training memory of state-space models (Mamba-1, Jamba, Mamba-2, Granite-4.0-H, Falcon-H1)
Llama 4's chunked attention and T5 against PyTorch's MemTracker on the transformers model of
the same config (DESIGN.md section 5, item 5; tests/train_oracle.py), as
tests/test_train_hybrid.py does for Gated DeltaNet.

transformers runs the Mamba mixers through their reference PyTorch paths on CPU (no
``mamba_ssm`` / ``causal_conv1d`` kernels: ``mamba_selective_scan``'s token-by-token
recurrence keeps every state; ``mamba2_chunk_scan``'s fp32 einsums); tfcli.train_mixers
models what they save.

Parameters, gradients and optimizer states: exact. Activations at the end of the forward
pass: within 2% (they come out exact to a few bytes). Peak: within 5%.

The matrix is small on purpose (each case builds and runs a model under FakeTensorMode, and
the reference scan is a Python loop over tokens): per model four cases that together cover
fp32 and bf16-mixed, recompute none and full, micro-batch 1 and 2, and two sequence
lengths; bf16 once per model.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.test_train_memory import spec_from
from tfcli.train import TrainSetup, train_memory

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def mamba_config() -> Any:
    """Two Mamba-1 blocks: d_inner 512, state 16, dt rank 16, kernel 4 (no MLP)."""
    return transformers.MambaConfig(
        vocab_size=512,
        hidden_size=256,
        state_size=16,
        num_hidden_layers=2,
        expand=2,
        conv_kernel=4,
        time_step_rank=16,
        tie_word_embeddings=False,
    )


def jamba_config() -> Any:
    """A Jamba Mamba block (dt/B/C norms) then an attention block, dense MLPs (one expert:
    MoE is covered by tests/test_train_memory.py)."""
    return transformers.JambaConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        mamba_d_state=16,
        mamba_expand=2,
        mamba_dt_rank=16,
        attn_layer_period=2,
        attn_layer_offset=1,
        expert_layer_period=100,
        expert_layer_offset=99,
        num_experts=1,
        num_experts_per_tok=1,
        tie_word_embeddings=False,
    )


def mamba2_config() -> Any:
    """Two Mamba-2 blocks: 16 heads of 32, 2 groups of state 16, chunks of 16 (so the test
    sequences run one and two chunks, padded and not)."""
    return transformers.Mamba2Config(
        vocab_size=512,
        hidden_size=256,
        state_size=16,
        num_hidden_layers=2,
        expand=2,
        head_dim=32,
        num_heads=16,
        n_groups=2,
        chunk_size=16,
        tie_word_embeddings=False,
    )


def granite_config(*, experts: int = 0) -> Any:
    """Granite-4.0-H: a Mamba-2 block then an attention block, each with the dense shared
    MLP (fused ``input_linear``: one autocast copy of its input), mup-style multipliers; with
    ``experts`` routed experts (top 2) beside the shared MLP."""
    return transformers.GraniteMoeHybridConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=256 if experts else 512,
        shared_intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        mamba_n_heads=16,
        mamba_d_head=32,
        mamba_d_state=16,
        mamba_n_groups=1,
        mamba_chunk_size=16,
        mamba_expand=2,
        num_local_experts=experts,
        num_experts_per_tok=2,
        layer_types=["mamba", "attention"],
        position_embedding_type="rope",
        tie_word_embeddings=False,
    )


def falcon_h1_config() -> Any:
    """Falcon-H1: every block runs attention and a Mamba-2 side by side (no mamba_rms_norm:
    ``scan * silu(gate)``), with its mup multipliers and per-channel ``mup_vector``."""
    return transformers.FalconH1Config(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        mamba_n_heads=16,
        mamba_d_head=32,
        mamba_d_state=16,
        mamba_n_groups=1,
        mamba_chunk_size=16,
        mamba_expand=2,
        mamba_d_ssm=512,
        tie_word_embeddings=False,
    )


def llama4_config(*, moe: bool = False) -> Any:
    """Llama 4 text: a chunked RoPE layer (chunks of 8: the sequences span one to three
    chunks, the mask is explicit from one full chunk on) with the L2 qk norm, then a NoPE
    full layer with temperature tuning; dense MLPs, or with ``moe`` the dense-reference MoE
    (4 experts, top 1, a shared expert) in both."""
    return transformers.Llama4TextConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        intermediate_size_mlp=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        num_local_experts=4 if moe else 1,
        num_experts_per_tok=1,
        interleave_moe_layer_step=1 if moe else 100,
        attention_chunk_size=8,
        no_rope_layers=[1, 0],
        layer_types=["chunked_attention", "full_attention"],
        use_qk_norm=True,
        attn_temperature_tuning=True,
        tie_word_embeddings=False,
    )


def t5_config() -> Any:
    """T5 (encoder-decoder, relative position bias, ReLU MLP), two layers per stack, no
    dropout (a training run's dropout masks are not modelled)."""
    return transformers.T5Config(
        vocab_size=512,
        d_model=256,
        d_kv=64,
        d_ff=512,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="relu",
        dropout_rate=0.0,
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
    )


CONFIGS = {
    "mamba": (mamba_config, "eager"),
    "jamba": (jamba_config, "sdpa"),
    "mamba2": (mamba2_config, "eager"),
    "granite": (granite_config, "sdpa"),
    "falcon_h1": (falcon_h1_config, "sdpa"),
    "llama4": (llama4_config, "sdpa"),
    "llama4_moe": (lambda: llama4_config(moe=True), "eager"),
    "t5": (t5_config, "eager"),
}
"""Model -> (config factory, attention implementation: Mamba offers eager only)."""

MATRIX = [
    ("fp32", "none", 1, 16),
    ("fp32", "full", 2, 8),
    ("bf16-mixed", "none", 2, 8),
    ("bf16-mixed", "full", 1, 24),
    ("bf16", "none", 2, 16),
]

CASES = [
    pytest.param(model, *case, id=f"{model}-{case[0]}-{case[1]}-b{case[2]}-s{case[3]}")
    for model in CONFIGS
    for case in MATRIX
]


def check(config: Any, impl: str, precision: str, recompute: str, batch: int, seq: int, tmp: Path):
    from tests.train_oracle import measure

    spec = spec_from(config, tmp)
    kind = "seq2seq" if spec.architecture == "encoder-decoder" else "causal_lm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measured = measure(
            config,
            batch=batch,
            seq=seq,
            impl=impl,
            precision=precision,
            recompute=recompute,
            kind=kind,
        )
    setup = TrainSetup(
        seq=seq, micro_batch=batch, precision=precision, recompute=recompute, attention_impl=impl
    )
    ours = train_memory(spec, setup)
    assert ours.state.parameters == measured.params
    assert ours.state.gradients == measured.grads
    assert ours.state.optimizer_states == measured.optimizer
    assert ours.buffers_bytes == measured.buffers
    assert ours.activations.total == pytest.approx(measured.activations, rel=0.02)
    assert ours.peak_bytes == pytest.approx(measured.peak, rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "precision", "recompute", "batch", "seq"), CASES)
def test_ssm_matches_memtracker(
    model: str, precision: str, recompute: str, batch: int, seq: int, tmp_path: Path
) -> None:
    factory, impl = CONFIGS[model]
    check(factory(), impl, precision, recompute, batch, seq, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("recompute", "batch", "seq"), [("none", 2, 16), ("full", 1, 24)])
def test_granite_moe_matches_memtracker_in_bf16(
    recompute: str, batch: int, seq: int, tmp_path: Path
) -> None:
    """Granite-4.0-H's routed experts (transformers 5 grouped_mm: bf16 only under fake mode)."""
    check(granite_config(experts=4), "sdpa", "bf16", recompute, batch, seq, tmp_path)


def test_mamba_blocks_have_one_norm_and_no_mlp(tmp_path: Path) -> None:
    """A pure Mamba block is a norm and the mixer: no MLP part, one norm's worth."""
    spec = spec_from(mamba_config(), tmp_path)
    acts = train_memory(spec, TrainSetup(seq=64)).activations
    (layer,) = acts.layers
    assert layer.kind == "mamba"
    names = {p.name for p in layer.parts}
    assert "mlp" not in names
    assert {"in_proj, conv", "scan states", "discretisation"} <= names
