"""`tfcli bench --mixers`: JSON structure on a tiny width, bad values, the banded cores.

Timings are never asserted as numbers (DESIGN.md habit 3): only presence and finiteness. The
banded sliding and chunked cores are checked against an explicit masked softmax (the naive
core with the full S x S mask), and their executed-pair counts against a direct count.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tests.cli_helpers import assert_one_line_error, run_cli  # noqa: E402
from tfcli.bench.attention import attention_core, naive_attention  # noqa: E402
from tfcli.bench.local_attention import chunked_attention, sliding_attention  # noqa: E402
from tfcli.bench.mixer_specs import (  # noqa: E402
    MixerKind,
    kind_spec,
    parse_mixers,
    sliding_block,
    sliding_executed_pairs,
)
from tfcli.bench.mixers import Crossover, crossover, fit_lengths  # noqa: E402
from tfcli.errors import UsageError  # noqa: E402
from tfcli.loaders import load_model  # noqa: E402

ATTENTION_KINDS = ("full", "sliding", "chunked")
KINDS = (*ATTENTION_KINDS, "linear", "mamba2", "lightning", "rwkv")
TINY = ["--set", "hidden_size=64", "--set", "num_heads=4", "--set", "num_kv_heads=2"]


def numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []


def seed_calibration(cache: Path, head_dim: int) -> None:
    """Store round calibration figures under this machine's key in ``cache``, so the CLI run
    skips the few-second calibration (its figures only scale the predictions here)."""
    import os
    import time
    from dataclasses import replace
    from unittest import mock

    from tfcli.bench.calibrate import (
        GEMV_INNER_DIMS,
        Calibration,
        calibration_key,
        store,
    )

    cpu = torch.device("cpu")
    figures = Calibration(
        device="cpu",
        dtype="float32",
        threads=1,
        head_dim=head_dim,
        matmul_flops_per_s=1e11,
        read_bytes_per_s=1e10,
        sdpa_efficiency=0.8,
        sdpa_masked_efficiency=0.7,
        first_touch_bytes_per_s=1e9,
        softmax_elements_per_s=1e8,
        gemv_bytes_per_s=(1e10,) * len(GEMV_INNER_DIMS),
        decode_kv_bytes_per_s=1e10,
        probe_flops_per_s=1e11,
        measured_at=time.time(),
    )
    with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": str(cache)}):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the key names the thread count the CLI runs with
        try:
            key = calibration_key(cpu, torch.float32, head_dim, decode_heads=(4, 2))  # TINY
            store(key, replace(figures, decode_heads=4, decode_kv_heads=2))
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Seven kinds at width 64 over 2 tiny lengths, 1 repeat, no warm-up, one thread (a
    shared machine delays 2-thread calls far more)."""
    cache = tmp_path_factory.mktemp("cache")
    seed_calibration(cache, head_dim=16)
    run = run_cli(
        "bench",
        "llama-3.2-1b",
        *TINY,
        "--mixers",
        "full,sliding:64,chunked:32,linear,mamba2,lightning,rwkv",
        "--seq",
        "64,128",
        "--threads",
        "1",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--json",
        env={"XDG_CACHE_HOME": str(cache)},
    )
    assert run.code == 0, run.stderr
    document: dict[str, Any] = json.loads(run.stdout)
    assert document["calibration"]["cached"], "the seeded calibration was not used"
    return document


def test_json_has_every_kind_and_finite_numbers(doc: dict[str, Any]) -> None:
    assert doc["mode"] == "mixers"
    assert list(doc["kinds"]) == list(KINDS)
    assert doc["kinds"]["sliding"]["window"] == 64
    assert doc["kinds"]["linear"]["layer_type"] == "gated_deltanet"
    assert {(p["kind"], p["seq"]) for p in doc["points"]} == {
        (k, s) for k in KINDS for s in (64, 128)
    }
    for point in doc["points"]:
        assert point["skipped"] is None
        assert point["mixer_seconds_median"] > 0 and point["predicted_mixer_seconds"] > 0
        assert point["measured_peak_bytes"] is None or point["measured_peak_bytes"] > 0
        if point["kind"] in ATTENTION_KINDS:
            assert point["core_seconds_median"] > 0 and point["executed_core_flops"] > 0
            assert point["elementwise_bytes"] == 0  # one SDPA core: priced by its FLOPs
            continue
        # a state mixer's elementwise passes read at least its (S, 64) fp32 input once
        assert point["elementwise_bytes"] > point["seq"] * 64 * 4
        assert "core_seconds_median" not in point
        if point["kind"] == "rwkv":  # WKV is elementwise: no matmul FLOPs in its scan
            assert point["estimated_scan_flops"] == 0
        else:  # the whole mixer is the scaling series; its scan is in the estimate
            assert point["estimated_scan_flops"] > 0
    assert any("has no gated_deltanet layers" in note for note in doc["notes"])
    summary = doc["summary"]
    for key in (
        "attention_exponent",
        "predicted_attention_exponent",
        "mixer_exponent",
        "median_abs_error_fraction",
        "peak_bytes",
        "overtakes_full",
        "overtakes_full_predicted",
    ):
        assert set(summary[key]) == set(KINDS), key
    for kind in KINDS:
        assert math.isfinite(summary["attention_exponent"][kind])
    assert summary["exponent_of"] == {k: "core" if k in ATTENTION_KINDS else "mixer" for k in KINDS}
    assert summary["overtakes_full"]["full"]["status"] == "n/a"
    assert "noisy" in summary["noise_note"]
    assert all(math.isfinite(n) for n in numbers(doc))


def test_executed_work_follows_the_window(doc: dict[str, Any]) -> None:
    """The banded core's executed FLOPs are 4 H d x its pair count (the same as full's while
    the sequence fits in the window); the chunked core's grow linearly with the chunks."""
    by = {(p["kind"], p["seq"]): p for p in doc["points"]}
    heads, head_dim = 4, 16
    for seq in (64, 128):
        pairs = sliding_executed_pairs(seq, 64)
        assert by[("sliding", seq)]["executed_core_flops"] == 4 * heads * head_dim * pairs
    assert by[("sliding", 64)]["executed_core_flops"] == by[("full", 64)]["executed_core_flops"]
    chunk = by[("chunked", 64)]["executed_core_flops"]
    assert by[("chunked", 128)]["executed_core_flops"] == 2 * chunk


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("sliding", "window"),
        ("foo", "unknown kind"),
        ("chunked:0", "positive"),
        ("full:12", "no window"),
        ("full,full", "twice"),
        (",", "no kinds"),
    ],
)
def test_bad_mixers_value_is_refused(value: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment) as err:
        parse_mixers(value)
    assert err.value.exit_code == 2 and err.value.message.startswith("--mixers")


@pytest.mark.parametrize(("value", "fragment"), [("sliding", "window"), ("foo", "unknown")])
def test_bad_mixers_value_is_one_line(value: str, fragment: str) -> None:
    assert_one_line_error(run_cli("bench", "gpt2", "--mixers", value), "--mixers", fragment)


def test_mixers_do_not_combine_with_decode() -> None:
    assert_one_line_error(
        run_cli("bench", "gpt2", "--mixers", "full", "--mode", "decode"), "--mixers"
    )


def test_parse_keeps_order_and_windows() -> None:
    assert parse_mixers("full, sliding:4k ,chunked:8192,linear,mamba2") == (
        MixerKind("full"),
        MixerKind("sliding", 4096),
        MixerKind("chunked", 8192),
        MixerKind("linear"),
        MixerKind("mamba2"),
    )


@pytest.mark.parametrize(("seq", "window"), [(200, 64), (300, 100), (50, 1000)])
def test_banded_cores_equal_the_masked_softmax(seq: int, window: int) -> None:
    torch.manual_seed(0)
    q = torch.randn(1, 4, seq, 16)
    k, v = torch.randn(1, 2, seq, 16), torch.randn(1, 2, seq, 16)
    sliding = attention_core(q, k, v, backend="naive", causal=True, window=window)
    torch.testing.assert_close(sliding_attention(q, k, v, window=window), sliding)
    rows, cols = torch.arange(seq)[:, None], torch.arange(seq)[None, :]
    same_chunk = (cols <= rows) & (rows // window == cols // window)
    chunked = naive_attention(q, k, v, scale=16**-0.5, mask=same_chunk)
    torch.testing.assert_close(chunked_attention(q, k, v, chunk=window), chunked)


@pytest.mark.parametrize("window", [1, 3, 64, 100, 300])
def test_sliding_pair_count_is_the_block_sum(window: int) -> None:
    """The closed form equals summing each block's rows x keys directly."""
    block = sliding_block(window)
    for seq in (1, 63, 64, 65, 257, 1000):
        direct = sum(
            (min(seq, s + block) - s) * (min(seq, s + block) - max(0, s - window + 1))
            for s in range(0, seq, block)
        )
        assert sliding_executed_pairs(seq, window) == direct


def test_kind_specs_keep_the_width_and_say_their_defaults() -> None:
    spec = load_model("qwen2.5-0.5b").spec
    layer, note = kind_spec(spec, MixerKind("sliding", 1024))
    assert layer.layer_kinds == ("sliding",) and layer.sliding_window == 1024
    assert layer.hidden_size == spec.hidden_size and note is None
    linear, note = kind_spec(spec, MixerKind("linear"))
    assert linear.layer_kinds == ("gated_deltanet",) and note is not None
    assert linear.linear_num_key_heads * linear.linear_key_head_dim == spec.hidden_size  # type: ignore[operator]
    qwen3_next = load_model("qwen3-next-80b-a3b").spec
    native, note = kind_spec(qwen3_next, MixerKind("linear"))
    assert native.linear_num_value_heads == 32 and note is None  # Qwen3-Next's own widths
    full, note = kind_spec(qwen3_next, MixerKind("full"))  # its gate is not built: said so
    assert not full.attention_output_gate and note is not None and "gate" in note


def test_crossover_and_fit_lengths() -> None:
    assert crossover([1, 2, 4], [3.0, 1.0, 0.5], [1.0, 2.0, 4.0]).status == "crosses"
    cross = crossover([1, 4], [4.0, 1.0], [1.0, 4.0])
    assert cross.seq == pytest.approx(2.0)
    assert crossover([1, 2], [0.5, 0.5], [1.0, 1.0]) == Crossover("always")
    assert crossover([1, 2], [2.0, 2.0], [1.0, 1.0]) == Crossover("never")
    assert fit_lengths(MixerKind("sliding", 1024), [1024, 2048, 4096, 8192]) == [2048, 4096, 8192]
    assert fit_lengths(MixerKind("full"), [512, 1024, 2048]) == [1024, 2048]


def test_ctrl_c_keeps_what_was_measured(tmp_path: Path) -> None:
    """A KeyboardInterrupt during the sweep stops it; the points measured so far remain, and
    the plot of them is written."""
    from tfcli.bench.calibrate import GEMV_INNER_DIMS, Calibration
    from tfcli.bench.mixers import run_mixers, summarize_mixers
    from tfcli.bench.settings import BenchSettings

    spec = load_model("llama-3.2-1b").spec.replace(hidden_size=64, num_heads=4, num_kv_heads=2)
    settings = BenchSettings(
        spec=spec,
        device=torch.device("cpu"),
        dtype=torch.float32,
        seqs=[32, 64],
        repeats=1,
        warmup=0,
    )
    figures = Calibration(
        device="cpu",
        dtype="float32",
        threads=1,
        head_dim=16,
        matmul_flops_per_s=1e11,
        read_bytes_per_s=1e10,
        sdpa_efficiency=0.8,
        sdpa_masked_efficiency=0.7,
        first_touch_bytes_per_s=1e9,
        softmax_elements_per_s=1e8,
        gemv_bytes_per_s=(1e10,) * len(GEMV_INNER_DIMS),
        decode_kv_bytes_per_s=1e10,
        probe_flops_per_s=1e11,
    )
    calls: list[str] = []

    def interrupt_on_third(label: str) -> None:
        calls.append(label)
        if len(calls) == 3:
            raise KeyboardInterrupt

    kinds = parse_mixers("full,sliding:16")
    result = run_mixers(settings, kinds, figures, False, on_step=interrupt_on_third)
    assert result.interrupted
    assert [(p.kind, p.seq) for p in result.points] == [("full", 32), ("sliding", 32)]
    assert all(p.mixer is not None for p in result.points)
    summary = summarize_mixers(result)
    assert set(summary.kinds) == {"full", "sliding"}
    pytest.importorskip("matplotlib")
    from tfcli.render.bench_mixers import write_mixers_plot

    write_mixers_plot(result, summary, tmp_path / "mixers.svg", "svg")
    assert "<svg" in (tmp_path / "mixers.svg").read_text()[:2000]
