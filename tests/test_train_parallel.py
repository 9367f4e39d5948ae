"""Per-rank memory and collectives under FSDP2 and DTensor tensor parallelism against
PyTorch's own tools on a fake process group (DESIGN.md section 5, item 5):
``FSDPMemTracker`` for 8 ranks in one process, and the collectives recorded at dispatch
(``c10d`` ops: count and the bytes of each buffer) for FSDP2 and DTensor TP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_train_memory import llama_config, spec_from
from tfcli.parallel import communication
from tfcli.train import TrainSetup, train_memory

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16", "bf16-mixed"])
@pytest.mark.parametrize(("batch", "seq"), [(1, 512), (2, 2048)])
def test_fsdp2_dp8_matches_fsdp_mem_tracker(
    precision: str, batch: int, seq: int, tmp_path: Path
) -> None:
    from tests.train_oracle import measure_fsdp

    config = llama_config()
    spec = spec_from(config, tmp_path)
    measured = measure_fsdp(config, world=8, batch=batch, seq=seq, precision=precision)
    setup = TrainSetup(seq=seq, micro_batch=batch, precision=precision, dp=8, zero=3)
    ours = train_memory(spec, setup)
    assert ours.state.parameters == measured.sharded_params
    assert ours.state.optimizer_states == measured.optimizer
    assert ours.activations.total == pytest.approx(measured.activations, rel=0.02)
    assert ours.peak_bytes == pytest.approx(measured.peak, rel=0.05)
    comm = {c.kind: (c.count, c.bytes) for c in communication(spec, setup)}
    assert comm == measured.collectives


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_dtensor_tp_collectives_match_the_recording(precision: str, tmp_path: Path) -> None:
    """One DTensor TP block issues 2 forward and 5 backward all-reduces of t x h x a bytes."""
    from tests.train_oracle import measure_tp_collectives

    config = llama_config()
    spec = spec_from(config, tmp_path)
    measured = measure_tp_collectives(config, world=2, batch=2, seq=256, precision=precision)
    setup = TrainSetup(seq=256, micro_batch=2, precision=precision, tp=2)
    ours = communication(spec, setup)
    count = sum(c.count for c in ours if c.kind.startswith("all_reduce"))
    total = sum(c.bytes for c in ours if c.kind.startswith("all_reduce"))
    assert {"all_reduce": (count, total)} == measured
    assert count == 7 * spec.num_layers
