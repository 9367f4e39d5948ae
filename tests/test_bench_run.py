"""`tfcli bench` end to end on tiny sizes: structure of --json, positive finite figures.

Timings are never asserted as numbers (DESIGN.md habit 3); only their presence and sanity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tests.cli_helpers import assert_one_line_error, run_cli  # noqa: E402
from tfcli.bench.run import cpu_flash_executed_pairs, executed_pairs, fit_exponent  # noqa: E402


def numbers(value: Any) -> list[float]:
    """Every int/float inside a JSON value (booleans excluded)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache = tmp_path_factory.mktemp("cache")
    run = run_cli(
        "bench",
        "gpt2",
        "--device",
        "cpu",
        "--seq",
        "64,128",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--json",
        env={"XDG_CACHE_HOME": str(cache)},
    )
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)


def test_json_structure(tiny_bench: dict[str, Any]) -> None:
    doc = tiny_bench
    assert doc["model"] == "gpt2"
    assert {(p["seq"], p["backend"]) for p in doc["points"]} == {
        (64, "naive"),
        (64, "sdpa"),
        (128, "naive"),
        (128, "sdpa"),
    }
    for point in doc["points"]:
        for key in (
            "core_seconds_median",
            "predicted_core_seconds",
            "estimated_core_flops",
            "executed_core_flops",
            "achieved_flops_per_s",
            "fraction_of_peak",
            "sublayer_seconds_median",
            "block_seconds_median",
            "estimated_peak_bytes",
        ):
            assert key in point, key
    assert set(doc["summary"]) >= {"attention_exponent", "median_abs_error_fraction"}


def test_every_figure_is_finite_and_timings_positive(tiny_bench: dict[str, Any]) -> None:
    assert all(math.isfinite(n) for n in numbers(tiny_bench))
    for point in tiny_bench["points"]:
        assert point["core_seconds_median"] > 0
        assert point["predicted_core_seconds"] > 0
        assert point["achieved_flops_per_s"] > 0
    calibration = tiny_bench["calibration"]
    assert calibration["matmul_flops_per_s"] > 0
    assert calibration["read_bytes_per_s"] > 0


def test_decode_mode(tmp_path: Path) -> None:
    run = run_cli(
        "bench",
        "llama-3.2-1b",
        "--mode",
        "decode",
        "--context",
        "128,256",
        "--repeats",
        "1",
        "--json",
        env={"XDG_CACHE_HOME": str(tmp_path)},
    )
    assert run.code == 0, run.stderr
    steps = json.loads(run.stdout)["decode"]
    assert [d["context"] for d in steps] == [128, 256]
    assert all(d["step_seconds_median"] > 0 and d["kv_bytes"] > 0 for d in steps)


def test_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    run = run_cli(
        "bench",
        "gpt2",
        "--seq",
        "64,128",
        "--repeats",
        "1",
        "--plot",
        str(png),
        env={"XDG_CACHE_HOME": str(tmp_path)},
    )
    assert run.code == 0, run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bench", "gpt2", "--seq", "0"], "--seq"),
        (["bench", "gpt2", "--backend", "flash"], "--backend"),
        (["bench", "gpt2", "--dtype", "fp8"], "--dtype"),
        (["bench", "gpt2", "--repeats", "0"], "--repeats"),
        (["bench", "gpt2", "--device", "tpu"], "--device"),
    ],
)
def test_bad_values(args: list[str], fragment: str) -> None:
    assert_one_line_error(run_cli(*args), fragment)


def test_cpu_flash_block_model_matches_design_figures() -> None:
    """DESIGN.md section 6: causal saving 2n/(n+2), n = S/256: 1.0 up to 512, 1.6 at 2K."""
    for seq, saving in ((512, 1.0), (2048, 1.6), (16384, 2 * 64 / 66)):
        assert seq * seq / cpu_flash_executed_pairs(seq, causal=True) == pytest.approx(saving)
    cpu = torch.device("cpu")
    assert executed_pairs(1000, backend="naive", causal=True, window=None, device=cpu) == 10**6


def test_fit_exponent_recovers_a_power_law() -> None:
    lengths = [512, 1024, 2048, 4096]
    assert fit_exponent(lengths, [3e-9 * s**2 for s in lengths]) == pytest.approx(2.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bench_with_events_and_kernel_choice(tmp_path: Path) -> None:
    run = run_cli(
        "bench",
        "gpt2",
        "--device",
        "cuda",
        "--dtype",
        "fp16",
        "--seq",
        "256,512",
        "--sdpa-kernel",
        "flash",
        "--repeats",
        "2",
        "--json",
        env={"XDG_CACHE_HOME": str(tmp_path)},
    )
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["device"].startswith("cuda:")
    assert all(p["measured_peak_bytes"] is not None for p in doc["points"])


def test_cuda_request_without_gpu_is_one_line() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert_one_line_error(run_cli("bench", "gpt2", "--device", "cuda"), "cuda")


def test_ctrl_c_keeps_what_was_measured() -> None:
    """A KeyboardInterrupt during the sweep stops it; the points measured so far remain."""
    from tfcli.bench.calibrate import Calibration
    from tfcli.bench.run import BenchSettings, run_bench
    from tfcli.loaders import load_model

    spec = load_model("gpt2").spec
    settings = BenchSettings(
        spec=spec,
        device=torch.device("cpu"),
        dtype=torch.float32,
        seqs=[32, 64, 128],
        backends=("sdpa",),
        repeats=1,
        warmup=0,
        time_blocks=False,
    )
    calibration = Calibration("cpu", "float32", 1, 1e11, 1e10, 0.8, 1e9, 1e8, 64, 0.0)
    calls = []

    def interrupt_on_third(label: str) -> None:
        calls.append(label)
        if len(calls) == 3:
            raise KeyboardInterrupt

    result = run_bench(settings, calibration, False, on_step=interrupt_on_third)
    assert result.interrupted
    assert [p.seq for p in result.points] == [32, 64]
