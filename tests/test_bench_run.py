"""`tfcli bench` end to end on tiny sizes: structure of --json, positive finite figures.

Timings are never asserted as numbers (DESIGN.md habit 3); only their presence and sanity.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tests.cli_helpers import REPO, Run, assert_one_line_error, run_cli  # noqa: E402
from tfcli.bench.allocations import peak_bytes, running_peak  # noqa: E402
from tfcli.bench.calibrate import GEMV_INNER_DIMS, Calibration  # noqa: E402
from tfcli.bench.run import (  # noqa: E402
    BenchSettings,
    check_model_fits,
    cpu_flash_executed_pairs,
    decode_executed_kv_bytes,
    executed_kernel,
    executed_pairs,
    fit_exponent,
    plan_point,
)
from tfcli.errors import BenchError  # noqa: E402
from tfcli.loaders import load_model  # noqa: E402


def fake_calibration() -> Calibration:
    """Round figures (no measurement) for tests that only need the arithmetic."""
    return Calibration(
        device="cpu",
        dtype="float32",
        threads=1,
        head_dim=64,
        matmul_flops_per_s=1e11,
        read_bytes_per_s=1e10,
        sdpa_efficiency=0.8,
        sdpa_masked_efficiency=0.4,
        first_touch_bytes_per_s=1e9,
        softmax_elements_per_s=1e8,
        gemv_bytes_per_s=(1e10,) * len(GEMV_INNER_DIMS),
        decode_kv_bytes_per_s=1e10,
        probe_flops_per_s=1e11,
    )


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
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One user cache dir for the module: the device is calibrated once (a few seconds)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tiny_bench(cache_dir: Path) -> dict[str, Any]:
    """2 lengths, 1 repeat, no warm-up, --json and --plot in one run."""
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
        "--plot",
        str(cache_dir / "bench.png"),
        env={"XDG_CACHE_HOME": str(cache_dir)},
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
        assert point["skipped"] is None
        for key in (
            "core_seconds_median",
            "core_seconds_iqr",
            "core_probe_flops_per_s",
            "predicted_core_seconds",
            "core_error_fraction",
            "estimated_core_flops",
            "executed_core_flops",
            "achieved_flops_per_s",
            "fraction_of_peak",
            "sublayer_seconds_median",
            "block_seconds_median",
            "estimated_peak_bytes",
            "measured_peak_bytes",
        ):
            assert key in point, key
        assert len(point["core_seconds_samples"]) == 1
        assert len(point["core_probe_flops_per_s"]) == 1
    assert set(doc["summary"]) >= {
        "attention_exponent",
        "predicted_attention_exponent",
        "median_abs_error_fraction",
        "naive_sdpa_memory_ratio",
        "naive_memory_error_fraction",
        "probe_median_fraction_of_calibrated",
    }
    assert set(doc["calibration"]) >= {
        "matmul_flops_per_s",
        "read_bytes_per_s",
        "gemv_bytes_per_s",
        "sdpa_efficiency",
        "probe_flops_per_s",
        "cached",
    }


def test_every_figure_is_finite_and_positive(tiny_bench: dict[str, Any]) -> None:
    """Every number is finite; every time, rate, byte and FLOP count is positive. Errors are
    signed; spreads (IQR of one sample) may be 0."""
    assert all(math.isfinite(n) for n in numbers(tiny_bench))
    for point in tiny_bench["points"]:
        for key, value in point.items():
            if key == "core_error_fraction" or isinstance(value, bool):
                continue
            if key.endswith(("_iqr", "spread_fraction")):
                assert all(n >= 0 for n in numbers(value)), (key, value)
            else:
                assert all(n > 0 for n in numbers(value)), (key, value)
    calibration = tiny_bench["calibration"]
    for key in ("matmul_flops_per_s", "read_bytes_per_s", "sdpa_efficiency", "probe_flops_per_s"):
        assert calibration[key] > 0


def test_plot_is_written(tiny_bench: dict[str, Any], cache_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    assert (cache_dir / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibration_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored per device key under $XDG_CACHE_HOME/tfcli; an entry of an older probe set or
    one taken on a busy machine is not reused (measured again)."""
    from dataclasses import replace

    from tfcli.bench.calibrate import _from_cache, cache_path, calibration_key, store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key = calibration_key(torch.device("cpu"), torch.float32, 64)
    store(key, fake_calibration())
    assert cache_path() == tmp_path / "tfcli" / "calibration.json"
    entry = json.loads(cache_path().read_text())[key]
    assert _from_cache(entry) == fake_calibration()
    assert _from_cache({k: v for k, v in entry.items() if k != "gemv_bytes_per_s"}) is None
    busy = replace(fake_calibration(), matmul_spread=0.5).to_dict()
    assert _from_cache(busy) is None


def test_decode_mode(cache_dir: Path) -> None:
    run = run_cli(
        "bench",
        "gpt2",
        "--mode",
        "decode",
        "--context",
        "128,256",
        "--repeats",
        "1",
        "--json",
        env={"XDG_CACHE_HOME": str(cache_dir)},
    )
    assert run.code == 0, run.stderr
    steps = json.loads(run.stdout)["decode"]
    assert [d["context"] for d in steps] == [128, 256]
    for d in steps:
        assert d["step_seconds_median"] > 0 and d["predicted_seconds"] > 0
        # MHA, fp32: 2 H (L + 1) d x 4 B (the new token attends itself too)
        assert d["kv_bytes"] == 2 * 12 * (d["context"] + 1) * 64 * 4
        assert d["executed_kv_bytes"] == d["kv_bytes"]  # each KV head read once
        assert d["layers"] == 1 and not d["whole_model"]


def test_decode_mode_steps_a_recurrent_model(cache_dir: Path) -> None:
    """RWKV-4 (two layers kept by --set): no KV cache, one state per layer whose size does
    not depend on the context; --layers beyond the depth says that every layer is built."""
    from tfcli.loaders import load_model
    from tfcli.memory import state_bytes_per_layer

    run = run_cli(
        "bench",
        "rwkv-4-169m",
        "--set",
        "num_layers=2",
        "--layers",
        "99",
        "--mode",
        "decode",
        "--context",
        "8,64",
        "--repeats",
        "1",
        "--json",
        env={"XDG_CACHE_HOME": str(cache_dir)},
    )
    assert run.code == 0, run.stderr
    assert "--layers 99: rwkv-4-169m has 2 layers" in run.stderr
    steps = json.loads(run.stdout)["decode"]
    spec = load_model("rwkv-4-169m").spec
    # transformers' RWKV state: 2 shifted tokens (h, the dtype) + num, den, max (3 h, fp32)
    per_layer = 2 * spec.hidden_size * 4 + 3 * spec.hidden_size * 4
    plan = spec.layer_runs[0].plan
    assert sum(state_bytes_per_layer(spec, plan, rule="transformers", dtype="fp32").values()) == (
        per_layer
    )
    for d in steps:
        assert d["kv_bytes"] == 0 and d["whole_model"] and d["layers"] == 2
        assert d["state_bytes"] == 2 * per_layer
        assert d["state_traffic_bytes"] >= 2 * d["state_bytes"]
        assert d["step_seconds_median"] > 0 and d["predicted_seconds"] > 0


def test_chunked_nope_and_sink_models_bench() -> None:
    """gpt-oss (sinks: one extra key through SDPA) and Llama 4 (chunked RoPE layers,
    NoPE full layers, MoE) time end to end (in process, round calibration figures); a decode
    step of Llama 4 reads the last min(L + 1, c) tokens of a chunked layer and L + 1 of a
    full one."""
    import transformers

    from tfcli.bench.run import run_bench
    from tfcli.loaders import spec_from_hf_config

    small = {"vocab_size": 300, "hidden_size": 64, "num_attention_heads": 4, "head_dim": 16}
    small |= {"num_key_value_heads": 2, "num_local_experts": 4, "pad_token_id": None}
    gpt_oss = transformers.GptOssConfig(
        **small, intermediate_size=48, num_hidden_layers=2, sliding_window=16
    )
    llama4 = transformers.Llama4TextConfig(
        **small,
        intermediate_size=48,
        intermediate_size_mlp=80,
        num_hidden_layers=4,
        num_experts_per_tok=1,
        interleave_moe_layer_step=2,
        no_rope_layer_interval=2,
        attention_chunk_size=32,
    )
    cpu, fp32 = torch.device("cpu"), torch.float32
    spec = spec_from_hf_config(gpt_oss.to_dict(), name="gpt_oss").spec
    settings = BenchSettings(spec, cpu, fp32, [32], layers=2, repeats=1, warmup=0)
    result = run_bench(settings, fake_calibration(), True)
    assert {point.backend: point.kernel for point in result.points} == {
        "naive": "naive",
        "sdpa": "flash",
    }
    assert all(point.core is not None and point.core.median > 0 for point in result.points)
    spec = spec_from_hf_config(llama4.to_dict(), name="llama4").spec
    settings = BenchSettings(
        spec, cpu, fp32, [], layers=4, mode="decode", contexts=[40], repeats=1, warmup=0
    )
    (step,) = run_bench(settings, fake_calibration(), True).decode
    per_token = 2 * 2 * 16 * 4  # K and V, 2 KV heads x 16, fp32, one layer
    assert step.kv_bytes == per_token * (2 * min(41, 32) + 2 * 41)
    assert step.step is not None and step.step.median > 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bench", "gpt2", "--seq", "0"], "--seq"),
        (["bench", "gpt2", "--backend", "flash"], "--backend"),
        (["bench", "gpt2", "--dtype", "fp8"], "--dtype"),
        (["bench", "gpt2", "--repeats", "0"], "--repeats"),
        (["bench", "gpt2", "--device", "tpu"], "--device"),
        (["bench", "gpt2", "--threads", "0"], "--threads"),
        (["bench", "gpt2", "--mode", "train"], "--mode"),
    ],
)
def test_bad_values(args: list[str], fragment: str) -> None:
    assert_one_line_error(run_cli(*args), fragment)


def test_cpu_flash_block_model_matches_design_figures() -> None:
    """DESIGN.md section 6: causal saving 2n/(n+2), n = S/256: 1.0 up to 512, 1.6 at 2K."""
    for seq, saving in ((512, 1.0), (2048, 1.6), (16384, 2 * 64 / 66)):
        assert seq * seq / cpu_flash_executed_pairs(seq, causal=True) == pytest.approx(saving)
    cpu = torch.device("cpu")
    assert executed_pairs(1000, kernel="naive", causal=True, masked=False, device=cpu) == 10**6
    assert executed_pairs(1000, kernel="flash", causal=True, masked=True, device=cpu) == 10**6


def test_kernel_choice_follows_what_torch_runs() -> None:
    """MLA (d_qk != d_v) falls back to SDPA's math kernel on CPU; soft-capping runs naive."""
    cpu = torch.device("cpu")
    assert executed_kernel(load_model("llama-3-8b").spec, "sdpa", cpu) == "flash"
    assert executed_kernel(load_model("deepseek-v2-lite").spec, "sdpa", cpu) == "math"
    assert executed_kernel(load_model("gemma-2-9b").spec, "sdpa", cpu) == "naive"


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
    calibration = fake_calibration()
    calls = []

    def interrupt_on_third(label: str) -> None:
        calls.append(label)
        if len(calls) == 3:
            raise KeyboardInterrupt

    result = run_bench(settings, calibration, False, on_step=interrupt_on_third)
    assert result.interrupted
    assert [p.seq for p in result.points] == [32, 64]


def test_point_that_does_not_fit_is_skipped_before_allocating() -> None:
    """A naive point at 1M tokens needs 12 x 2 x 10^12 x 4 B: skipped with the reason."""
    settings = BenchSettings(
        spec=load_model("gpt2").spec,
        device=torch.device("cpu"),
        dtype=torch.float32,
        seqs=[2**20],
    )
    point = plan_point(settings, fake_calibration(), 2**20, "naive")
    assert point.skipped is not None and "--force" in point.skipped
    assert point.estimated_peak_bytes >= 2 * 12 * 2**40 * 4
    settings.force = True
    assert plan_point(settings, fake_calibration(), 2**20, "naive").skipped is None


def test_model_too_large_is_refused_before_building() -> None:
    settings = BenchSettings(
        spec=load_model("llama-3.1-405b").spec,
        device=torch.device("cpu"),
        dtype=torch.float32,
        seqs=[512],
        layers=126,
    )
    with pytest.raises(BenchError, match="GiB"):
        check_model_fits(settings)


def test_decode_kv_streaming_model() -> None:
    """CPU SDPA with GQA would stream each KV head once per query head (DESIGN.md section 6);
    the grouped kernel a decode step runs reads each once."""
    llama = load_model("llama-3-8b").spec  # 32 heads, 8 KV heads
    assert decode_executed_kv_bytes(llama, 1000, "sdpa") == 4000
    assert decode_executed_kv_bytes(llama, 1000) == 1000


def test_cpu_peak_memory_counts_reused_pages() -> None:
    """The allocator sees a 64 MiB tensor even when the process has just freed one of that
    size (its pages are reused, so the RSS would not grow: what read 0 B on main)."""
    size = 64 * 2**20
    cpu = torch.device("cpu")
    warm = torch.empty(size // 4).fill_(1.0)
    del warm
    growth = peak_bytes(lambda: torch.empty(size // 4).fill_(1.0), cpu)
    if growth is None:
        pytest.skip("the profiler cannot record memory here")
    assert size <= growth < size + 2**20
    assert peak_bytes(lambda: None, cpu) == 0


def test_running_peak_follows_allocations_and_frees() -> None:
    assert running_peak([100, 50, -100, 200, -250]) == 250
    assert running_peak([-10, 5]) == 0


@pytest.mark.parametrize(("seq", "dtype"), [(1024, "fp32"), (2048, "fp32"), (1024, "bf16")])
def test_measured_core_memory_matches_the_estimate(seq: int, dtype: str) -> None:
    """DESIGN.md section 6 acceptance, in bytes (not time): SDPA's measured peak within 25% of
    its estimate at seq >= 1024, and the naive / SDPA ratio within 25% of the estimated one
    (8 heads, 2 KV heads, d = 64: a narrow layer keeps the naive point small)."""
    from tfcli.bench.attention import attention_core
    from tfcli.bench.run import estimate_peak_bytes

    spec = load_model("llama-3-8b").spec.replace(
        hidden_size=512, num_heads=8, num_kv_heads=2, head_dim=64
    )
    cpu = torch.device("cpu")
    torch_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16
    q = torch.randn(1, 8, seq, 64, dtype=torch_dtype)
    k = torch.randn(1, 2, seq, 64, dtype=torch_dtype)
    v = torch.randn(1, 2, seq, 64, dtype=torch_dtype)
    measured = {}
    estimated = {}
    for backend in ("naive", "sdpa"):
        measured[backend] = peak_bytes(
            lambda b=backend: attention_core(q, k, v, backend=b, causal=True), cpu
        )
        estimated[backend] = estimate_peak_bytes(
            spec, 1, seq, backend, dtype, cpu_threads=torch.get_num_threads()
        )
    if measured["sdpa"] is None:
        pytest.skip("the profiler cannot record memory here")
    assert measured["sdpa"] == pytest.approx(estimated["sdpa"], rel=0.25)
    assert measured["naive"] == pytest.approx(estimated["naive"], rel=0.25)
    ratio = measured["naive"] / measured["sdpa"]
    assert ratio == pytest.approx(estimated["naive"] / estimated["sdpa"], rel=0.25)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("batch", "seq", "kv_heads", "head_dim", "dtype"),
    [
        (1, 1024, 2, 64, "fp32"),
        (1, 1024, 2, 64, "bf16"),
        (2, 512, 4, 128, "bf16"),
        (3, 100, 2, 32, "bf16"),
        (1, 48, 2, 64, "bf16"),  # below the packing threshold
        (1, 256, 8, 64, "fp16"),
    ],
)
def test_the_cpu_flash_peak_is_every_buffer_the_estimate_names(
    batch: int, seq: int, kv_heads: int, head_dim: int, dtype: str, threads: int
) -> None:
    """The SDPA core's allocator peak equals the estimate to the byte: output, row
    statistics, per-thread tiles and (bf16 on an AMX CPU) the packed K and V."""
    from tfcli.bench.attention import attention_core
    from tfcli.bench.run import estimate_peak_bytes

    spec = load_model("llama-3-8b").spec.replace(
        hidden_size=8 * head_dim, num_heads=8, num_kv_heads=kv_heads, head_dim=head_dim
    )
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    q = torch.randn(batch, 8, seq, head_dim, dtype=torch_dtype)
    k = torch.randn(batch, kv_heads, seq, head_dim, dtype=torch_dtype)
    v = torch.randn(batch, kv_heads, seq, head_dim, dtype=torch_dtype)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        measured = peak_bytes(
            lambda: attention_core(q, k, v, backend="sdpa", causal=True), torch.device("cpu")
        )
    finally:
        torch.set_num_threads(before)
    if measured is None:
        pytest.skip("the profiler cannot record memory here")
    assert measured == estimate_peak_bytes(spec, batch, seq, "sdpa", dtype, cpu_threads=threads)


@pytest.mark.parametrize(
    ("causal", "window", "chunk", "dtype"),
    [
        (True, 256, None, "fp32"),  # Gemma / Mistral sliding layers
        (False, 128, None, "fp32"),  # ModernBERT's local layers: |i - j| <= w / 2
        (True, None, 256, "fp32"),  # Llama 4's chunked layers
        (True, 256, None, "bf16"),
    ],
)
def test_a_masked_cpu_flash_peak_adds_the_mask_and_its_additive_copy(
    causal: bool, window: int | None, chunk: int | None, dtype: str
) -> None:
    """With a window or chunk the core hands SDPA a bool (S, S) mask, which SDPA turns into
    an additive mask of the query dtype: both held while the kernel runs, to the byte."""
    from tfcli.bench.attention import attention_core
    from tfcli.bench.run import estimate_peak_bytes

    seq = 1536
    spec = load_model("llama-3-8b").spec.replace(
        hidden_size=512, num_heads=8, num_kv_heads=2, head_dim=64
    )
    torch_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16
    q = torch.randn(1, 8, seq, 64, dtype=torch_dtype)
    k, v = (torch.randn(1, 2, seq, 64, dtype=torch_dtype) for _ in range(2))
    measured = peak_bytes(
        lambda: attention_core(q, k, v, backend="sdpa", causal=causal, window=window, chunk=chunk),
        torch.device("cpu"),
    )
    if measured is None:
        pytest.skip("the profiler cannot record memory here")
    threads = torch.get_num_threads()
    expected = estimate_peak_bytes(
        spec, 1, seq, "sdpa", dtype, cpu_threads=threads, window=window or chunk
    )
    assert measured == expected


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("name", ["bloom-176b", "t5-base"])
def test_a_position_bias_runs_the_flash_kernel_and_its_peak_is_estimated(
    name: str, causal: bool
) -> None:
    """ALiBi (BLOOM) and T5's relative bias through SDPA: the flash kernel, not the math
    fallback (a 3-D, strided or grad-requiring mask sent it there: 100 ms against 26 ms),
    and the allocator peak equals the estimate to the byte (under a causal mask: the bool
    mask and the bias copy with -inf filled in)."""
    from torch.profiler import profile

    from tfcli.bench.model import build_model
    from tfcli.bench.run import BenchSettings, core_bias, estimate_peak_bytes

    spec = load_model(name).spec.replace(hidden_size=256, num_heads=4, head_dim=64)
    seq = 768
    model = build_model(spec, layers=1).eval()
    settings = BenchSettings(spec=spec, device=torch.device("cpu"), dtype=torch.float32, seqs=[])
    rows, bias = core_bias(model, settings, seq)
    assert rows == seq and bias is not None
    attention = model.block(0).attention
    attention.causal = causal
    q, k, v = (torch.randn(1, 4, seq, 64) for _ in range(3))
    with torch.no_grad(), profile() as prof:
        attention.core(q, k, v, bias=bias)
    names = {event.key for event in prof.key_averages()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in names
    assert "aten::_scaled_dot_product_attention_math" not in names
    with torch.no_grad():
        measured = peak_bytes(lambda: attention.core(q, k, v, bias=bias), torch.device("cpu"))
    if measured is None:
        pytest.skip("the profiler cannot record memory here")
    threads = torch.get_num_threads()
    expected = estimate_peak_bytes(spec, 1, seq, "sdpa", "fp32", cpu_threads=threads, causal=causal)
    assert measured == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_peak_memory_uses_the_allocator() -> None:
    device = torch.device("cuda")
    growth = peak_bytes(lambda: torch.empty(2**20, device=device), device)
    assert growth is not None and growth >= 4 * 2**20


def test_missing_torch_is_one_line_with_the_install_hint() -> None:
    """Without torch, `tfcli bench` says how to get it (torch hidden via sys.modules)."""
    code = (
        "import sys; sys.modules['torch'] = None; "
        "from tfcli.cli import main; main(['bench', 'gpt2'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    assert_one_line_error(run, "torch", "pip install 'tfcli[bench]'")


def test_missing_matplotlib_fails_before_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from tfcli.render import bench as view

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    with pytest.raises(BenchError, match="matplotlib") as err:
        view.check_plot_available()
    assert err.value.hint == "pip install 'tfcli[plot]'"


def test_busy_calibration_is_flagged() -> None:
    """A probe far below the matmul rate (2-thread calls waiting for scheduler slices) or a
    large matmul spread marks the calibration noisy: warned about and not cached."""
    from dataclasses import replace

    quiet = fake_calibration()
    assert not quiet.noisy
    assert replace(quiet, probe_flops_per_s=0.05 * quiet.matmul_flops_per_s).noisy
    assert replace(quiet, matmul_spread=0.3).noisy
    assert replace(quiet, matmul_flops_per_s=0.5 * quiet.probe_flops_per_s).noisy
