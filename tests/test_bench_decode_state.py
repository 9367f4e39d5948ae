"""Decode steps through state mixers (Gated DeltaNet, Mamba-1, Mamba-2, RWKV; Falcon-H1's
parallel Mamba-2; hybrids with attention layers).

Oracles: the tensors themselves. A step's output equals the model's own cached path after
the same priming token (the cache path equals transformers: tests/test_bench_state_mixers);
the elementwise traffic ``count_step`` records is checked on a module whose bytes are
arithmetic; the state bytes equal the bench cache's own state tensors after the step."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.test_bench_decode_gemv import decode_settings, fake_rates  # noqa: E402, F401
from tests.test_bench_run import fake_calibration  # noqa: E402
from tests.test_bench_state_mixers import CONFIGS  # noqa: E402
from tfcli.bench import decode as decode_module  # noqa: E402
from tfcli.bench.model import build_model  # noqa: E402
from tfcli.bench.opcount import count_step  # noqa: E402
from tfcli.bench.support import check_timeable  # noqa: E402
from tfcli.bench.timing import Probe  # noqa: E402
from tfcli.errors import BenchError  # noqa: E402
from tfcli.loaders import load_model, spec_from_hf_config  # noqa: E402
from tfcli.plan import STATE_MIXERS  # noqa: E402

CPU = torch.device("cpu")
CASES = ["qwen3_next-hybrid", "mamba-b", "mamba2-a", "jamba-a", "falcon_h1-a", "minimax", "rwkv"]


def _spec(case: str) -> Any:
    if case == "minimax":  # lightning layers and a full-attention layer
        from tests.test_bench_minimax import CASES as MINIMAX
        from tests.test_bench_minimax import _config as minimax_config

        config = minimax_config(*MINIMAX["lin-full-lin"])
    elif case == "rwkv":
        import transformers

        config = transformers.RwkvConfig(
            vocab_size=97, hidden_size=32, num_hidden_layers=2, intermediate_size=64
        )
    else:
        config = CONFIGS[case]()
    return spec_from_hf_config(config.to_dict(), name=case).spec


class _Scaled(torch.nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(n, n))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        product = (x * y).view(-1)  # mul: reads x and y, writes one; the view moves nothing
        return product @ self.weight[: product.numel(), :4]  # a matrix product: not counted


def test_count_step_adds_the_bytes_moved_inside_the_traffic_modules_only() -> None:
    module = _Scaled(64)
    x, y = torch.randn(8, 8), torch.randn(8, 8)

    def call() -> torch.Tensor:
        return module(x, y) + 1.0  # outside the module: not counted

    counted = count_step(call, module.parameters(), [module])
    assert counted.elementwise_bytes == 3 * 64 * 4
    assert count_step(call, module.parameters()).elementwise_bytes == 0


@pytest.mark.parametrize("case", CASES)
def test_a_state_step_runs_and_prices_its_state_traffic(
    case: str,
    fake_rates: list[list[int]],  # noqa: F811
) -> None:
    spec = _spec(case)
    torch.manual_seed(0)
    model = build_model(spec, layers=spec.num_layers).eval()
    settings = replace(decode_settings(spec), batch=2)
    cal = fake_calibration()
    step = decode_module.measure_decode(model, settings, cal, 16, Probe(CPU))
    assert step.step is not None and step.skipped is None
    state_layers = [i for i, k in enumerate(spec.layer_kinds) if k in STATE_MIXERS]
    parallel = spec.parallel_ssm
    assert state_layers or parallel
    cache = decode_module.build_static_cache(model, settings, 16)
    assert step.state_bytes == cache.state_nbytes()  # the bench's own state tensors
    bf16 = replace(settings, dtype=torch.bfloat16)
    bf16_cache = decode_module.build_static_cache(model.to(torch.bfloat16), bf16, 16)
    assert decode_module.plan_decode(bf16, cal, 16).state_bytes == bf16_cache.state_nbytes()
    assert step.state_traffic_bytes is not None
    assert step.state_traffic_bytes >= 2 * step.state_bytes  # each state read and written
    attention_layers = spec.num_layers - len(state_layers)
    assert (step.kv_bytes == 0) == (attention_layers == 0)
    assert step.weight_reads is not None
    weights = sum(b / (1e9 * k) for k, b in step.weight_reads.items())
    memory = (
        weights
        + step.executed_kv_bytes / cal.decode_kv_bytes_per_s
        + step.state_traffic_bytes / cal.read_bytes_per_s
    )
    expected = max(memory, step.flops / cal.matmul_flops_per_s)
    expected += step.operators * cal.op_overhead_seconds
    assert step.predicted_seconds == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("case", ["mamba-b", "qwen3_next-hybrid"])
def test_the_state_step_flops_are_tfcli_flops_one_token_layers(case: str) -> None:
    """The step FLOPs of the state layers are what ``tfcli flops`` counts for one token."""
    from tfcli.flops import forward_flops

    spec = _spec(case)
    per_layer = decode_module.state_layer_step_flops(spec, 16, 1)
    count = forward_flops(spec, 1, logits="last", context=16)
    expected = {layer.index: layer.total for layer in count.layers if layer.kind in STATE_MIXERS}
    assert per_layer == expected and per_layer


def test_the_state_is_the_same_size_at_every_context(
    fake_rates: list[list[int]],  # noqa: F811
) -> None:
    spec = _spec("mamba2-a")
    model = build_model(spec, layers=spec.num_layers).eval()
    steps = [
        decode_module.measure_decode(
            model, decode_settings(spec), fake_calibration(), context, Probe(CPU)
        )
        for context in (8, 64)
    ]
    assert steps[0].state_bytes == steps[1].state_bytes > 0
    assert steps[0].state_traffic_bytes == steps[1].state_traffic_bytes
    assert steps[0].kv_bytes == steps[1].kv_bytes == 0


@pytest.mark.parametrize("name", ["rwkv-4-169m", "mamba-2.8b", "qwen3-next-80b-a3b"])
def test_prefill_timing_refuses_state_layers_and_decode_takes_them(name: str) -> None:
    spec = load_model(name).spec
    with pytest.raises(BenchError, match="times attention layers") as refused:
        check_timeable(spec, 1)
    assert f"tfcli bench {name} --mode decode" in str(refused.value.hint)
    check_timeable(spec, spec.num_layers, "decode")
