"""Measurements that can be trusted (issue 10, part 2): the calibration cache, the re-probe,
settings that must change what is timed, and nothing measured being lost.

No timing is asserted (DESIGN.md habit 3): these tests check bytes, counts, control flow and
what the user is told. Calibration is replaced by round figures wherever the test is about
the arithmetic or the bookkeeping, so the tests do not spend seconds probing the machine.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tests.cli_helpers import assert_one_line_error, run_cli  # noqa: E402
from tests.test_bench_run import fake_calibration  # noqa: E402
from tfcli.bench import calibrate as cal_module  # noqa: E402
from tfcli.bench import run as run_module  # noqa: E402
from tfcli.bench.calibrate import (  # noqa: E402
    calibrate,
    calibration_key,
    read_cache,
    store,
    validate_entry,
)
from tfcli.bench.run import BenchSettings, measure_point, plan_point, run_bench  # noqa: E402
from tfcli.bench.timing import Probe  # noqa: E402
from tfcli.loaders import load_model  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "tfcli" / "calibration.json"


@pytest.fixture
def no_probing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the probes by round figures; the list counts the measurements."""
    calls: list[int] = []

    def measure(device: Any, dtype: Any, head_dim: int, *_decode_heads: Any) -> Any:
        calls.append(head_dim)
        return replace(fake_calibration(), head_dim=head_dim, measured_at=1.0)

    monkeypatch.setattr(cal_module, "measure", measure)
    return calls


# ---- the calibration cache -------------------------------------------------------------------


def key() -> str:
    return calibration_key(CPU, torch.float32, 64)


@pytest.mark.parametrize(
    ("field", "raw", "reason"),
    [
        ("matmul_flops_per_s", "0", "not positive"),
        ("matmul_flops_per_s", '"fast"', "not a number"),
        ("matmul_flops_per_s", "null", "not a number"),
        ("gemv_bytes_per_s", "[-1.0]", "not a list"),
        ("gemv_bytes_per_s", "[" + ", ".join(["-1.0"] * 13) + "]", "not positive"),
        ("decode_kv_heads", "0", "positive integer"),
        ("read_bytes_per_s", "true", "not a number"),
        ("threads", "0", "positive integer"),
        ("device", "3", "not a string"),
        ("matmul_spread", "-0.5", "negative"),
    ],
)
def test_a_bad_cached_value_is_reported_and_measured_again(
    cache_home: Path, no_probing: list[int], field: str, raw: str, reason: str
) -> None:
    entry = fake_calibration().to_dict()
    text = json.dumps({key(): {**entry, field: "@"}}).replace('"@"', raw)
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text(text)
    warnings: list[str] = []
    found, cached = calibrate(CPU, torch.float32, 64, warn=warnings.append)
    assert not cached and no_probing == [64]
    assert len(warnings) == 1 and field in warnings[0] and reason in warnings[0]
    assert all(math.isfinite(v) for v in vars(found).values() if isinstance(v, float))
    again, cached = calibrate(CPU, torch.float32, 64)  # the bad entry was replaced
    assert cached and again == found


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_the_cache_are_refused(
    cache_home: Path, no_probing: list[int], constant: str
) -> None:
    entry = fake_calibration().to_dict()
    text = json.dumps({key(): {**entry, "matmul_flops_per_s": "@"}}).replace('"@"', constant)
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text(text)
    warnings: list[str] = []
    _found, cached = calibrate(CPU, torch.float32, 64, warn=warnings.append)
    assert not cached and len(warnings) == 1 and "non-finite" in warnings[0]


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "directory", "huge", "garbage", "list"])
def test_a_cache_file_that_is_not_a_small_json_object_is_not_read(
    cache_home: Path, no_probing: list[int], kind: str
) -> None:
    """A symlink to /dev/zero or a FIFO would block or fill memory if read: refused at stat,
    then replaced by a regular file when the new figures are stored."""
    cache_home.parent.mkdir(parents=True)
    if kind == "dev_zero":
        cache_home.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(cache_home)
    elif kind == "directory":
        cache_home.mkdir()
    elif kind == "huge":
        cache_home.write_text(" " * (2 << 20) + "{}")
    elif kind == "garbage":
        cache_home.write_bytes(b"\x00\xff not json")
    else:
        cache_home.write_text("[1, 2]")
    entries, problem = read_cache()
    assert entries == {} and problem is not None
    warnings: list[str] = []
    _found, cached = calibrate(CPU, torch.float32, 64, warn=warnings.append)
    assert not cached and len(warnings) == 1
    if kind != "directory":  # os.replace cannot replace a directory by a file: not stored
        assert cache_home.is_file() and not cache_home.is_symlink()
        assert validate_entry(json.loads(cache_home.read_text())[key()])[0] is not None


def test_a_calibration_with_an_unstable_noise_probe_is_not_cached(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unstable = replace(fake_calibration(), probe_spread=0.6)
    assert unstable.noisy and "noise probe spread 60%" in unstable.noise_reason()
    monkeypatch.setattr(cal_module, "measure", lambda *_args: unstable)
    _found, cached = calibrate(CPU, torch.float32, 64)
    assert not cached and not cache_home.exists()


def _store_many(home: str, worker: int) -> None:
    os.environ["XDG_CACHE_HOME"] = home
    for i in range(15):
        store(f"worker{worker}-entry{i}", fake_calibration())


def test_concurrent_writers_keep_every_entry_and_valid_json(tmp_path: Path) -> None:
    """Four processes storing 15 entries each, at once: the lock serialises the read-modify-
    write and os.replace makes each write atomic, so all 60 entries survive."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_store_many, args=(str(tmp_path), w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    data = json.loads((tmp_path / "tfcli" / "calibration.json").read_text())
    assert len(data) == 60
    assert not [p for p in (tmp_path / "tfcli").iterdir() if p.name.startswith(".calibration-")]


# ---- re-probing when a point beats the calibration -------------------------------------------


def tiny_settings(**changes: Any) -> BenchSettings:
    base = BenchSettings(
        spec=load_model("gpt2").spec,
        device=CPU,
        dtype=torch.float32,
        seqs=[32, 64],
        backends=("sdpa",),
        repeats=1,
        warmup=0,
        time_blocks=False,
    )
    return replace(base, **changes)


def test_a_point_above_the_calibrated_peak_triggers_one_reprobe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A calibration of 1 MFLOP/s is beaten by every point: the device is probed again once,
    every prediction is redone with the new figures, and a note says so."""
    slow = replace(fake_calibration(), matmul_flops_per_s=1e6)
    fast = fake_calibration()
    calls: list[bool] = []

    def recalibrate(*_args: Any, **kwargs: Any) -> tuple[Any, bool]:
        calls.append(kwargs.get("recalibrate", False))
        return fast, False

    monkeypatch.setattr(run_module, "calibrate_for", recalibrate)
    result = run_bench(tiny_settings(), slow, True)
    assert calls == [True]
    assert result.calibration is fast and not result.calibration_cached
    assert len(result.notes) == 1 and "re-probed" in result.notes[0]
    for point in result.points:
        expected = plan_point(tiny_settings(), fast, point.seq, point.backend)
        assert point.predicted_core_seconds == expected.predicted_core_seconds


def test_a_decode_step_above_the_calibrated_bandwidth_triggers_one_reprobe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = replace(fake_calibration(), gemv_bytes_per_s=(1e3,) * 13, decode_kv_bytes_per_s=1e3)
    fast = fake_calibration()
    monkeypatch.setattr(run_module, "calibrate_for", lambda *_a, **_k: (fast, False))
    settings = tiny_settings(mode="decode", contexts=[16, 32])
    result = run_bench(settings, slow, True)
    assert result.calibration is fast and len(result.notes) == 1
    assert "decode after 16 tokens" in result.notes[0] and "bandwidth" in result.notes[0]
    from tfcli.bench.decode import predict_decode_seconds

    for step in result.decode:
        assert step.predicted_seconds == predict_decode_seconds(step, fast)


# ---- settings that must change what is timed -------------------------------------------------


def test_layers_n_times_n_layers_each_with_its_own_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """--layers 3 calls the core of 3 layers per sample, and the estimates are the sums over
    the layers' own kinds (Gemma-2 alternates sliding and full layers)."""
    from tfcli.bench.model import SelfAttention

    calls: list[int] = []
    real = SelfAttention.core

    def counting(self: SelfAttention, *args: Any, **kwargs: Any) -> Any:
        calls.append(self.index)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SelfAttention, "core", counting)
    settings = tiny_settings(layers=3)
    from tfcli.bench.model import build_model

    model = build_model(settings.spec, layers=3).eval()
    point = measure_point(model, settings, fake_calibration(), 32, "sdpa", Probe(CPU))
    assert point.layers == 3 and point.core is not None
    assert calls == [0, 1, 2] * 2  # the memory call, then one timed sample
    one = plan_point(tiny_settings(), fake_calibration(), 32, "sdpa")
    assert point.executed_core_flops == 3 * one.executed_core_flops

    gemma = load_model("gemma-2-9b").spec
    assert gemma.layer_kinds[:2] == ("sliding", "full")
    per_layer = [
        plan_point(
            tiny_settings(spec=gemma.replace(layer_types=(kind,) * gemma.num_layers)),
            fake_calibration(),
            8192,
            "sdpa",
        )
        for kind in ("sliding", "full")
    ]
    both = plan_point(tiny_settings(spec=gemma, layers=2), fake_calibration(), 8192, "sdpa")
    assert both.estimated_core_flops == sum(p.estimated_core_flops for p in per_layer)
    assert both.predicted_core_seconds == pytest.approx(
        sum(p.predicted_core_seconds for p in per_layer)
    )


@pytest.mark.parametrize(
    ("name", "seq"),
    [
        ("longformer-base-4096", 1000),  # band + globals, padded to 1,024 rows
        ("bigbird-roberta-base", 2048),  # block-sparse
        ("modernbert-base", 1500),  # layer 0 global, layer 1 local (|i - j| <= 64)
        ("gemma-2-9b", 8192),
        ("llama-4-scout-17b-16e", 9000),  # chunked layers, then a NoPE full one
    ],
)
def test_the_core_flops_column_is_tfcli_flops_per_layer_attention(name: str, seq: int) -> None:
    """'FLOPs' of a point is what ``tfcli flops`` counts for the built layers' attention
    (its pattern for an encoder), and Longformer's and BigBird's cores execute the dense
    padded P x P their masked softmax multiplies."""
    from tfcli.flops import executed_length, forward_flops

    spec = load_model(name).spec
    layers = 4 if name.startswith("llama-4") else 2
    point = plan_point(tiny_settings(spec=spec, layers=layers), fake_calibration(), seq, "sdpa")
    count = forward_flops(spec, seq)
    expected = sum(layer.attention for layer in count.layers[:layers])
    assert point.estimated_core_flops == expected
    if spec.sparse_attention != "none":
        rows = executed_length(spec, seq, "full")
        width = spec.num_heads * (spec.qk_head_dim + spec.value_head_dim)
        assert point.executed_core_flops == layers * 2 * rows * rows * width


@pytest.mark.parametrize(
    ("value", "fragment"), [("0", "--layers"), ("two", "--layers"), ("-1", "--layers")]
)
def test_bad_layers_values(value: str, fragment: str) -> None:
    assert_one_line_error(run_cli("bench", "gpt2", "--layers", value), fragment)


def test_layers_all_is_the_model_depth() -> None:
    from tfcli.commands.bench import parse_layers

    assert parse_layers("all", 24) == 24
    assert parse_layers("ALL", 24) == 24
    assert parse_layers("100", 24) == 24
    assert parse_layers("3", 24) == 3


def test_decode_on_an_encoder_only_model_is_refused_like_flops() -> None:
    bench = run_cli("bench", "bert-base", "--mode", "decode")
    assert_one_line_error(bench, "encoder-only")
    flops = run_cli("flops", "bert-base", "--mode", "decode")
    assert_one_line_error(flops, "encoder-only")


def test_latent_attention_honours_the_causal_flag() -> None:
    """The causal-saving row times DeepSeek's MLA core with causal off: the flag must change
    the result (a future query is visible only without it)."""
    from tfcli.bench.model import build_model

    spec = load_model("deepseek-v2-lite").spec.replace(
        hidden_size=64, num_heads=4, num_kv_heads=4, kv_lora_rank=16, qk_nope_head_dim=8,
        qk_rope_head_dim=8, v_head_dim=8, num_experts=None, num_experts_per_token=None,
        first_dense_layers=0,
    )  # fmt: skip
    attention = build_model(spec, layers=1).eval().block(0).attention
    x = torch.randn(1, 6, 64)
    q, k, v = attention.project_qkv(x, torch.arange(6))
    with torch.no_grad():
        causal = attention.core(q, k, v)
        attention.causal = False
        full = attention.core(q, k, v)
    torch.testing.assert_close(causal[:, :, -1], full[:, :, -1])  # the last query sees all
    assert not torch.allclose(causal[:, :, 0], full[:, :, 0])


# ---- nothing measured is lost ----------------------------------------------------------------


def test_an_allocation_failure_keeps_the_points_measured_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = run_module._time_point

    def fail_at_64(model: Any, blocks: Any, settings: Any, result: Any, probe: Any) -> None:
        if result.seq == 64:
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: can't allocate "
                "memory: you tried to allocate 105553116266496 bytes."
            )
        real(model, blocks, settings, result, probe)

    monkeypatch.setattr(run_module, "_time_point", fail_at_64)
    result = run_bench(tiny_settings(seqs=[32, 64, 128], force=True), fake_calibration(), True)
    assert [p.seq for p in result.points] == [32, 64, 128]
    first, failed, last = result.points
    assert first.core is not None and last.core is not None and not result.interrupted
    assert failed.core is None and failed.skipped is not None
    assert failed.skipped.startswith("allocation failed: [enforce fail")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("bench.txt", "must end in"), ("bench", "must end in"), ("missing/bench.png", "does not")],
)
def test_a_bad_plot_path_is_refused_before_anything_runs(
    tmp_path: Path, name: str, fragment: str
) -> None:
    run = run_cli("bench", "gpt2", "--plot", str(tmp_path / name))
    assert_one_line_error(run, "--plot", fragment)


def test_a_plot_directory_is_refused(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("bench", "gpt2", "--plot", str(tmp_path)), "directory")


def test_the_plot_is_written_after_the_results_are_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A plot that fails to write costs the plot only: the tables are already on stdout."""
    from tfcli.cli import main
    from tfcli.errors import BenchError
    from tfcli.render import bench as view

    def broken(*_args: Any) -> None:
        raise BenchError("cannot write the plot: disk full")

    monkeypatch.setattr(view, "write_plot", broken)
    monkeypatch.setattr(
        "tfcli.bench.calibrate.calibrate", lambda *a, **k: (fake_calibration(), True)
    )
    argv = ["bench", "gpt2", "--seq", "32", "--backend", "sdpa", "--repeats", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--warmup", "0", "--no-blocks", "--plot", str(tmp_path / "p.png")])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert "Attention time" in out and "disk full" in err


def test_sdpa_kernel_on_cpu_says_it_is_ignored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfcli.cli import main

    monkeypatch.setattr(
        "tfcli.bench.calibrate.calibrate", lambda *a, **k: (fake_calibration(), True)
    )
    argv = ["bench", "gpt2", "--device", "cpu", "--seq", "32", "--backend", "sdpa"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--repeats", "1", "--warmup", "0", "--no-blocks", "--sdpa-kernel", "flash"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0
    assert "--sdpa-kernel flash is ignored on cpu" in " ".join(err.split())
    assert "Attention time" in out


# ---- the decode step the bench times is the model's own decode ----------------------------------


@pytest.mark.parametrize("name", ["llama-3.2-1b", "mistral-7b", "deepseek-v2-lite", "gpt2"])
def test_static_cache_decode_equals_the_full_forward(name: str) -> None:
    """The preallocated cache written in place (what ``bench --mode decode`` times) gives the
    logits of the full forward: GQA through the grouped kernel, a sliding window shorter than
    the prompt, MLA latents, MHA with learned positions."""
    from tfcli.bench.decode import build_static_cache
    from tfcli.bench.model import build_model

    spec = load_model(name).spec
    small = {"hidden_size": 64, "intermediate_size": 96, "num_layers": 2, "vocab_size": 300}
    if spec.is_mla:
        small |= {"num_heads": 4, "num_kv_heads": 4, "kv_lora_rank": 16, "qk_nope_head_dim": 8}
        small |= {"qk_rope_head_dim": 8, "v_head_dim": 8, "num_experts": None}
        small |= {"num_experts_per_token": None, "first_dense_layers": 0, "q_lora_rank": None}
    elif spec.num_heads != spec.kv_heads:
        small |= {"num_heads": 4, "num_kv_heads": 2, "head_dim": 16}
    else:
        small |= {"num_heads": 4, "num_kv_heads": 4, "head_dim": 16}
    if spec.sliding_window is not None:
        small["sliding_window"] = 5
    spec = spec.replace(**small)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    prompt = 9
    ids = torch.randint(0, 300, (1, prompt + 1))
    settings = tiny_settings(spec=spec, layers=spec.num_layers, batch=1)
    cache = build_static_cache(model, settings, prompt)
    for layer in cache.self_attention.values():
        layer.slot = 0  # type: ignore[attr-defined]
    cache.length = 0
    with torch.no_grad():
        full = model(ids)
        model(ids[:, :prompt], cache=cache)
        for layer in cache.self_attention.values():
            layer.slot = prompt  # type: ignore[attr-defined]
        step = model(ids[:, prompt:], cache=cache)
    torch.testing.assert_close(step[:, -1], full[:, -1])


def test_decode_prediction_adds_the_operators_overhead() -> None:
    """t = weights / GEMV + KV / decode bandwidth + operators x overhead on the CPU; on CUDA
    launches overlap the GPU's work, so the overhead is a floor instead."""
    from tfcli.bench.decode import DecodeResult, predict_decode_seconds
    from tfcli.bench.opcount import count_ops

    cal = replace(fake_calibration(), op_overhead_seconds=5e-6)  # GEMV, decode: 10 GB/s
    step = DecodeResult(context=1, weight_bytes=10**9, executed_kv_bytes=10**8, operators=2000)
    assert predict_decode_seconds(step, cal) == pytest.approx(0.1 + 0.01 + 0.01)
    assert predict_decode_seconds(step, cal, device_type="cuda") == pytest.approx(0.11)
    assert count_ops(lambda: torch.ones(3) + torch.ones(3)) == 3


def test_the_per_operator_overhead_is_calibrated() -> None:
    from tfcli.bench.opcount import measure_op_overhead

    seconds = measure_op_overhead(CPU, torch.float32)
    assert math.isfinite(seconds) and seconds > 0
