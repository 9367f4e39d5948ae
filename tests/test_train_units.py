"""Invariants of the training model that need no oracle run: sharding divides what it should,
breakdowns sum, the collectives' bytes follow the states they move."""

from __future__ import annotations

import pytest

from tfcli.errors import UsageError
from tfcli.loaders import load_model
from tfcli.parallel import communication
from tfcli.params import count_params
from tfcli.train import TrainSetup, train_fit, train_memory

LLAMA = load_model("llama-3-8b").spec


def test_zero_stages_shard_optimizer_then_grads_then_params() -> None:
    base = train_memory(LLAMA, TrainSetup(seq=1024, dp=8)).state
    z1 = train_memory(LLAMA, TrainSetup(seq=1024, dp=8, zero=1)).state
    z2 = train_memory(LLAMA, TrainSetup(seq=1024, dp=8, zero=2)).state
    z3 = train_memory(LLAMA, TrainSetup(seq=1024, dp=8, zero=3)).state
    assert base.parameters == z1.parameters == z2.parameters
    assert z1.optimizer_states < base.optimizer_states / 7
    assert z1.gradients == base.gradients and z2.gradients < base.gradients / 7
    assert z3.parameters < base.parameters / 7
    # Llama-3-8B's dims all divide by 8: dim-0 shards are exact, no padding
    assert z3.parameters * 8 == base.parameters


def test_fsdp_pads_dim0_to_the_world_size() -> None:
    padded = train_memory(LLAMA, TrainSetup(seq=1024, dp=3, zero=3)).state
    total = count_params(LLAMA).total
    assert padded.parameters >= -(-total // 3) * 4


def test_tensor_parallel_halves_the_matmul_weights() -> None:
    one = train_memory(LLAMA, TrainSetup(seq=1024)).state.parameters
    two = train_memory(LLAMA, TrainSetup(seq=1024, tp=2)).state.parameters
    assert one / 2 <= two < one / 2 * 1.001


def test_ddp_all_reduces_every_gradient_once() -> None:
    setup = TrainSetup(seq=1024, dp=4, precision="bf16")
    (ar,) = communication(LLAMA, setup)
    assert ar.kind == "all_reduce"
    assert ar.bytes == train_memory(LLAMA, setup).state.gradients


def test_expert_parallel_all_to_all_counts_four_per_moe_layer() -> None:
    spec = load_model("mixtral-8x7b").spec
    setup = TrainSetup(seq=1024, dp=8, ep=8, precision="bf16")
    (a2a,) = [c for c in communication(spec, setup) if c.parallelism == "EP"]
    assert a2a.count == 4 * spec.num_moe_layers
    assert a2a.bytes == a2a.count * 2 * 1024 * spec.hidden_size * 2


@pytest.mark.parametrize(
    "setup",
    [
        TrainSetup(seq=1024, zero=3),
        TrainSetup(seq=1024, tp=3),
        TrainSetup(seq=1024, ep=2, dp=2),
        TrainSetup(seq=0),
        TrainSetup(seq=1024, pp=64),
    ],
)
def test_impossible_setups_are_usage_errors(setup: TrainSetup) -> None:
    with pytest.raises(UsageError):
        train_memory(LLAMA, setup)


def test_fit_is_monotone_and_tight() -> None:
    setup = TrainSetup(seq=2048, precision="bf16-mixed", dp=8, zero=3)
    fit = train_fit(LLAMA, setup, 80 * 2**30)
    assert fit.max_seq is not None and fit.max_micro_batch is not None
    at = train_memory(LLAMA, TrainSetup(seq=fit.max_seq, precision="bf16-mixed", dp=8, zero=3))
    above = train_memory(
        LLAMA, TrainSetup(seq=fit.max_seq + 1, precision="bf16-mixed", dp=8, zero=3)
    )
    assert at.peak_bytes <= 80 * 2**30 < above.peak_bytes
    assert fit.min_dp is not None and fit.min_dp <= 8


@pytest.mark.parametrize("name", ["rwkv-4-169m", "longformer-base-4096"])
def test_unmodelled_layer_kinds_are_refused_by_name(name: str) -> None:
    """RWKV and Longformer layers have their tensors laid out but no activation model yet:
    one UsageError naming the kind, not a wrong number."""
    spec = load_model(name).spec
    with pytest.raises(UsageError, match="so far"):
        train_memory(spec, TrainSetup(seq=1024))


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("mamba-2.8b", {"mamba"}),
        ("jamba-mini", {"mamba", "mamba moe", "full"}),
        ("granite-4.0-h-small", {"mamba2 moe", "full moe"}),
        ("falcon-h1-7b", {"full+mamba2"}),
        ("llama-4-scout-17b-16e", {"chunked moe", "full moe"}),
    ],
)
def test_mamba_models_answer_with_their_layer_kinds(name: str, kinds: set[str]) -> None:
    spec = load_model(name).spec
    acts = train_memory(spec, TrainSetup(seq=1024, precision="bf16-mixed")).activations
    assert {layer.kind for layer in acts.layers} == kinds


def test_mamba_tensor_parallel_is_refused() -> None:
    with pytest.raises(UsageError, match="--tp is not modelled for Mamba"):
        train_memory(load_model("mamba-2.8b").spec, TrainSetup(seq=1024, tp=2))


def test_qwen3_next_answers_with_deltanet_layers() -> None:
    spec = load_model("qwen3-next-80b-a3b").spec
    acts = train_memory(spec, TrainSetup(seq=4096, precision="bf16")).activations
    assert {layer.kind for layer in acts.layers} == {"gated_deltanet moe", "full moe"}
