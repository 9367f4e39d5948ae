"""Training memory per device against PyTorch's MemTracker on the transformers model of the
same config (DESIGN.md section 5, item 5; tests/train_oracle.py).

Parameters, gradients and optimizer states: exact. Activations at the end of the forward
pass: within 2% (they come out exact to a few bytes). Peak of the step: within 5%.
The configs are built from hyperparameters with transformers' config classes (no download);
tfcli reads the same config.json through its loader.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tfcli.loaders import load_model
from tfcli.spec import ModelSpec
from tfcli.train import TrainSetup, train_memory

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def llama_config() -> Any:
    """Dense GQA decoder, Llama-style (untied head), small but real-ish widths."""
    return transformers.LlamaConfig(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=2,
        num_attention_heads=16,
        num_key_value_heads=4,
        tie_word_embeddings=False,
    )


def qwen3_config() -> Any:
    """Explicit head_dim (128 x 16 heads != hidden 1024), q/k norms, tied embeddings."""
    return transformers.Qwen3Config(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=2,
        head_dim=128,
        num_attention_heads=16,
        num_key_value_heads=4,
        tie_word_embeddings=True,
    )


def mixtral_config() -> Any:
    """MoE: 8 experts, top-2 (transformers 5 fused grouped_mm experts)."""
    return transformers.MixtralConfig(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=1408,
        num_hidden_layers=2,
        num_attention_heads=16,
        num_key_value_heads=4,
        num_local_experts=8,
        num_experts_per_tok=2,
        tie_word_embeddings=False,
    )


def bert_config() -> Any:
    """Encoder: post-norm LayerNorm, GELU, learned positions, token types, pooler. Dropout off
    (tfcli's convention); positions up to 2048 so both test lengths run."""
    return transformers.BertConfig(
        vocab_size=30522,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=2,
        num_attention_heads=12,
        max_position_embeddings=2048,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def gemma2_config() -> Any:
    """Sliding/full hybrid (window 256 < 512 and 2048), sandwich norms, Gemma's fp32
    ``1 + weight`` RMSNorm, GeGLU, attention and final-logit soft-capping, scaled and tied
    embeddings, explicit head_dim. Soft-capping needs eager attention."""
    return transformers.Gemma2Config(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=2,
        head_dim=128,
        num_attention_heads=8,
        num_key_value_heads=4,
        sliding_window=256,
    )


def mistral_config() -> Any:
    """Every layer sliding (window 256 < 512 and 2048): SDPA then needs an explicit mask."""
    return transformers.MistralConfig(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=2,
        num_attention_heads=16,
        num_key_value_heads=4,
        sliding_window=256,
    )


def bart_config() -> Any:
    """Encoder-decoder: post-norm LayerNorm, GELU, learned positions with offset, embedding
    norms, cross-attention, tied head with a final_logits_bias buffer. Dropout off."""
    return transformers.BartConfig(
        vocab_size=32000,
        d_model=768,
        encoder_ffn_dim=3072,
        decoder_ffn_dim=3072,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=12,
        decoder_attention_heads=12,
        max_position_embeddings=2048,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )


CONFIGS = {
    "llama": llama_config,
    "mistral": mistral_config,
    "qwen3": qwen3_config,
    "mixtral": mixtral_config,
    "bert": bert_config,
    "gemma2": gemma2_config,
    "bart": bart_config,
}
KINDS = {"bert": "base", "bart": "seq2seq"}
"""The transformers auto class (AutoModel for the encoder, as tfcli counts it)."""
SIZES = [(1, 512), (2, 2048)]
PRECISIONS = {
    "llama": ("fp32", "bf16", "bf16-mixed"),
    "mistral": ("fp32", "bf16", "bf16-mixed"),
    "qwen3": ("fp32", "bf16", "bf16-mixed"),
    "mixtral": ("bf16",),  # MoE runs under fake mode in bf16 only (grouped_mm)
    "bert": ("fp32", "bf16", "bf16-mixed"),
    "gemma2": ("fp32", "bf16", "bf16-mixed"),
    "bart": ("fp32", "bf16", "bf16-mixed"),
}
IMPLS = {"gemma2": ("eager",)}
RECOMPUTES = {"mistral": ("none",)}
"""SDPA cannot soft-cap (transformers refuses it; so does tfcli, tested below)."""


def spec_from(config: Any, tmp: Path) -> ModelSpec:
    path = tmp / "config.json"
    path.write_text(config.to_json_string())
    return load_model(str(path)).spec


CASES = [
    pytest.param(
        model,
        impl,
        precision,
        recompute,
        batch,
        seq,
        id=f"{model}-{impl}-{precision}-{recompute}-b{batch}-s{seq}",
    )
    for model in CONFIGS
    for impl, precision, recompute, (batch, seq) in itertools.product(
        IMPLS.get(model, ("sdpa", "eager")),
        PRECISIONS[model],
        RECOMPUTES.get(model, ("none", "full")),
        SIZES,
    )
]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "impl", "precision", "recompute", "batch", "seq"), CASES)
def test_train_memory_matches_memtracker(
    model: str, impl: str, precision: str, recompute: str, batch: int, seq: int, tmp_path: Path
) -> None:
    from tests.train_oracle import measure

    config = CONFIGS[model]()
    spec = spec_from(config, tmp_path)
    measured = measure(
        config,
        batch=batch,
        seq=seq,
        impl=impl,
        precision=precision,
        recompute=recompute,
        kind=KINDS.get(model, "causal_lm"),
    )
    ours = train_memory(
        spec,
        TrainSetup(
            seq=seq,
            micro_batch=batch,
            precision=precision,
            recompute=recompute,
            attention_impl=impl,
        ),
    )
    assert ours.state.parameters == measured.params
    assert ours.state.gradients == measured.grads
    assert ours.state.optimizer_states == measured.optimizer
    assert ours.buffers_bytes == measured.buffers
    assert ours.activations.total == pytest.approx(measured.activations, rel=0.02)
    assert ours.peak_bytes == pytest.approx(measured.peak, rel=0.05)


def test_sgd_momentum_state_is_one_buffer(tmp_path: Path) -> None:
    from tests.train_oracle import measure

    config = llama_config()
    spec = spec_from(config, tmp_path)
    measured = measure(config, batch=1, seq=256, optimizer="sgd", precision="fp32")
    ours = train_memory(spec, TrainSetup(seq=256, precision="fp32", optimizer="sgd"))
    assert ours.state.optimizer_states == measured.optimizer
    assert ours.peak_bytes == pytest.approx(measured.peak, rel=0.05)


def test_cli_json_matches_memtracker(tmp_path: Path) -> None:
    """``tfcli train --json`` reports the same per-device bytes as the tracker."""
    from tests.cli_helpers import run_cli
    from tests.train_oracle import measure

    config = llama_config()
    path = tmp_path / "config.json"
    path.write_text(config.to_json_string())
    measured = measure(config, batch=2, seq=512, precision="bf16-mixed")
    run = run_cli(
        "train",
        str(path),
        "--seq",
        "512",
        "--micro-batch",
        "2",
        "--precision",
        "bf16-mixed",
        "--json",
    )
    assert run.code == 0, run.stderr
    data = json.loads(run.stdout)
    memory = data["memory"]
    assert memory["parameters_bytes"] == measured.params
    assert memory["gradients_bytes"] == measured.grads
    assert memory["optimizer_states_bytes"] == measured.optimizer
    assert memory["activations_bytes"] == pytest.approx(measured.activations, rel=0.02)
    assert memory["peak_bytes"] == pytest.approx(measured.peak, rel=0.05)


def test_softcapped_attention_refuses_sdpa(tmp_path: Path) -> None:
    from tfcli.errors import UsageError

    spec = spec_from(gemma2_config(), tmp_path)
    with pytest.raises(UsageError, match="eager"):
        train_memory(spec, TrainSetup(seq=512, attention_impl="sdpa"))
