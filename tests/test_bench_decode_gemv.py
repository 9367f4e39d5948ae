"""Decode predictions price each weight matrix at the GEMV bandwidth of its contracted
dimension: the step's weight reads are recorded from the matrix products it dispatches, and
the calibration's decode-attention probe runs at the model's head layout.

Oracles: torch's own parameter tensors (their ``numel`` and shapes) for what a step reads;
the formula of ``tfcli.bench.decode`` for how the prediction composes the probed rates."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tests.test_bench_run import fake_calibration  # noqa: E402
from tfcli.bench import decode as decode_module  # noqa: E402
from tfcli.bench.calibrate import (  # noqa: E402
    GEMV_INNER_DIMS,
    calibration_key,
    decode_heads_of,
    measure_gemv_rates,
)
from tfcli.bench.model import build_model  # noqa: E402
from tfcli.bench.opcount import count_step  # noqa: E402
from tfcli.bench.settings import BenchSettings  # noqa: E402
from tfcli.bench.timing import Probe  # noqa: E402
from tfcli.loaders import load_model  # noqa: E402

CPU = torch.device("cpu")


def tiny_llama(**changes: Any) -> Any:
    base = load_model("llama-3.2-1b").spec.replace(
        hidden_size=64, num_heads=4, num_kv_heads=2, intermediate_size=160, num_layers=2
    )
    return base.replace(vocab_size=96, **changes)


def tiny_mixtral() -> Any:
    return load_model("mixtral-8x7b").spec.replace(
        hidden_size=64,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=96,
        num_layers=2,
        vocab_size=80,
        num_experts=4,
        moe_intermediate_size=96,
    )


def decode_settings(spec: Any) -> BenchSettings:
    return BenchSettings(
        spec=spec,
        device=CPU,
        dtype=torch.float32,
        seqs=[],
        layers=spec.num_layers,
        mode="decode",
        contexts=[16],
        repeats=1,
        warmup=0,
    )


@pytest.fixture
def fake_rates(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """GEMV probes replaced by 1e9 x K bytes/s (no 256 MiB buffer); records each call's Ks."""
    calls: list[list[int]] = []

    def rates(_device: Any, _dtype: Any, dims: Any) -> tuple[float, ...]:
        calls.append(list(dims))
        return tuple(1e9 * k for k in dims)

    monkeypatch.setattr(decode_module, "measure_gemv_rates", rates)
    return calls


def linear_weight_bytes(model: Any) -> dict[int, int]:
    """Bytes of every 2-D parameter other than the input embedding, by its input width
    (an nn.Linear's weight is (out, in)); the tied LM head is the embedding matrix itself."""
    by_k: dict[int, int] = {}
    for name, p in model.named_parameters():
        if p.dim() == 2 and not name.startswith("embed"):
            by_k[p.shape[1]] = by_k.get(p.shape[1], 0) + p.numel() * p.element_size()
    return by_k


def test_a_dense_step_reads_every_linear_weight_once_by_its_input_width(
    fake_rates: list[list[int]],
) -> None:
    spec = tiny_llama()  # tied embeddings: the head reads the embedding matrix (V x h)
    torch.manual_seed(0)
    model = build_model(spec, layers=spec.num_layers).eval()
    step = decode_module.measure_decode(
        model, decode_settings(spec), fake_calibration(), 16, Probe(CPU)
    )
    expected = linear_weight_bytes(model)
    head = spec.vocab_size * spec.hidden_size * 4
    expected[spec.hidden_size] = expected.get(spec.hidden_size, 0) + head
    assert step.weight_reads == expected
    assert set(expected) == {spec.hidden_size, spec.intermediate_size}
    # the planned weight bytes are the same matrices plus the layers' norm vectors
    vectors = sum(
        p.numel() * 4 for n, p in model.named_parameters() if p.dim() == 1 and "layers." in n
    )
    assert step.weight_bytes == sum(expected.values()) + vectors
    assert fake_rates == [[spec.hidden_size, spec.intermediate_size]]
    assert step.gemv_rates == {k: 1e9 * k for k in expected}


def test_the_prediction_prices_each_width_at_its_own_rate(fake_rates: list[list[int]]) -> None:
    spec = tiny_llama()
    model = build_model(spec, layers=spec.num_layers).eval()
    cal = fake_calibration()
    step = decode_module.measure_decode(model, decode_settings(spec), cal, 16, Probe(CPU))
    assert step.weight_reads is not None
    weights = sum(b / (1e9 * k) for k, b in step.weight_reads.items())
    memory = weights + step.executed_kv_bytes / cal.decode_kv_bytes_per_s
    work = max(memory, step.flops / cal.matmul_flops_per_s)
    expected = work + step.operators * cal.op_overhead_seconds
    assert step.predicted_seconds == pytest.approx(expected, rel=1e-12)


def test_later_contexts_reuse_the_run_s_gemv_probes(fake_rates: list[list[int]]) -> None:
    spec = tiny_llama()
    model = build_model(spec, layers=spec.num_layers).eval()
    known: dict[int, float] = {}
    for context in (8, 16, 32):
        decode_module.measure_decode(
            model, decode_settings(spec), fake_calibration(), context, Probe(CPU), known
        )
    assert len(fake_rates) == 1 and set(known) == {spec.hidden_size, spec.intermediate_size}


def test_a_moe_step_reads_only_the_experts_its_router_picked(
    fake_rates: list[list[int]],
) -> None:
    spec = tiny_mixtral()
    torch.manual_seed(0)
    model = build_model(spec, layers=spec.num_layers).eval()
    step = decode_module.measure_decode(
        model, decode_settings(spec), fake_calibration(), 16, Probe(CPU)
    )
    assert step.weight_reads is not None
    h, f, k = spec.hidden_size, spec.intermediate_size, spec.num_experts_per_token
    attention = (2 * h * h + 2 * h * spec.kv_heads * spec.resolved_head_dim) * 4
    router = spec.num_experts * h * 4
    per_layer_h = attention + router + k * 2 * f * h * 4  # q, k, v, o, router, gate, up
    head = spec.vocab_size * h * 4  # mixtral does not tie
    assert step.weight_reads[h] == spec.num_layers * per_layer_h + head
    assert step.weight_reads[f] == spec.num_layers * k * f * h * 4  # down
    stacked = [p for n, p in model.named_parameters() if p.dim() == 3]
    assert stacked, "the experts are stacked (E, out, in) tensors"
    assert all(p.shape[0] == spec.num_experts for p in stacked)


def test_count_step_records_nothing_without_parameters() -> None:
    w = torch.randn(8, 4)
    counted = count_step(lambda: torch.nn.functional.linear(torch.randn(1, 4), w))
    assert counted.operators > 0 and counted.weight_read_bytes == 0
    counted = count_step(lambda: torch.nn.functional.linear(torch.randn(1, 4), w), [w])
    assert dict(counted.weight_reads) == {4: 8 * 4 * 4}


def test_gemv_rate_interpolates_in_log_k_and_clamps_outside() -> None:
    rates = tuple(float(i + 1) for i in range(len(GEMV_INNER_DIMS)))
    cal = replace(fake_calibration(), gemv_bytes_per_s=rates)
    for k, r in zip(GEMV_INNER_DIMS, rates, strict=True):
        assert cal.gemv_rate(k) == r
    assert cal.gemv_rate(1) == rates[0] and cal.gemv_rate(10**6) == rates[-1]
    k0, k1 = GEMV_INNER_DIMS[2], GEMV_INNER_DIMS[3]
    middle = round(math.sqrt(k0 * k1))  # halfway in log2
    t = (math.log2(middle) - math.log2(k0)) / (math.log2(k1) - math.log2(k0))
    assert cal.gemv_rate(middle) == pytest.approx(rates[2] + t * (rates[3] - rates[2]))
    assert cal.fastest_gemv == max(rates)


def test_measured_gemv_rates_are_finite_and_positive_for_odd_widths() -> None:
    rates = measure_gemv_rates(CPU, torch.float32, [3, 896])
    assert len(rates) == 2 and all(math.isfinite(r) and r > 0 for r in rates)


def test_the_decode_probe_runs_at_the_model_s_head_layout() -> None:
    llama = load_model("llama-3-8b").spec
    assert decode_heads_of(llama) == (32, 8)
    deepseek = load_model("deepseek-v3").spec  # MLA expands to per-head keys and values
    assert decode_heads_of(deepseek) == (deepseek.num_heads, deepseek.num_heads)
    gqa = calibration_key(CPU, torch.float32, 128, (32, 8))
    mha = calibration_key(CPU, torch.float32, 128, (32, 32))
    assert gqa != mha and gqa.endswith("h32kv8")
