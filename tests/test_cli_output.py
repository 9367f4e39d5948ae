"""Output conventions: help, completion, formats, ASCII fallback, closed/full stdout, Ctrl-C,
--verify's exit code, serving time, hardware presets, models listing (issues 12 and 13)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cli_helpers import REPO, run_cli
from tfcli.hardware import PRESETS, lookup_hardware


def _raw(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "120", "TFCLI_DEBUG": "0", **env}
    return subprocess.run(
        [sys.executable, "-m", "tfcli", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=REPO,
        timeout=120,
    )


# ---- CLI conventions ---------------------------------------------------------------------------


def test_bare_tfcli_prints_help_without_an_error_line() -> None:
    run = run_cli()
    assert run.code == 0
    assert "Usage" in run.stdout and "params" in run.stdout
    assert "error" not in run.stderr


@pytest.mark.parametrize("command", ["params", "flops", "kvcache", "compare", "models", "show"])
def test_short_help_and_examples_epilog(command: str) -> None:
    run = run_cli(command, "-h")
    assert run.code == 0, run.stderr
    assert "Examples:" in run.stdout and f"$ tfcli {command}" in run.stdout


def test_shell_completion_is_offered() -> None:
    run = run_cli("--help")
    assert "--install-completion" in run.stdout and "--show-completion" in run.stdout


# ---- formats -----------------------------------------------------------------------------------


def test_json_flag_is_format_json() -> None:
    a = json.loads(run_cli("params", "gpt2", "--json").stdout)
    b = json.loads(run_cli("params", "gpt2", "--format", "json").stdout)
    assert a == b


def test_csv_carries_raw_numbers_one_row_per_combination() -> None:
    run = run_cli("flops", "llama-3-8b", "--seq", "1024,8192", "--batch", "1,8", "--format", "csv")
    assert run.code == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [(r["seq"], r["batch"]) for r in rows] == [
        ("1024", "1"),
        ("1024", "8"),
        ("8192", "1"),
        ("8192", "8"),
    ]
    assert all(r["forward_flops"].isdigit() for r in rows)
    kv_run = run_cli("kvcache", "llama-3-8b", "--seq", "8192", "--batch", "1,8", "--format", "csv")
    kv = list(csv.DictReader(io.StringIO(kv_run.stdout)))
    assert [int(r["total_bytes"]) for r in kv] == [2**30, 8 * 2**30]
    models = list(csv.DictReader(io.StringIO(run_cli("models", "--format", "csv").stdout)))
    assert {"model", "total_params", "active_params"} <= set(models[0])


def test_markdown_tables() -> None:
    run = run_cli("params", "gpt2", "--format", "markdown")
    assert run.code == 0, run.stderr
    assert "| component | parameters | share |" in run.stdout
    assert "| total | 124,439,808 | 100.0% |" in run.stdout


def test_bad_format_is_one_line() -> None:
    run = run_cli("params", "gpt2", "--format", "xml")
    assert run.code == 2 and "--format" in run.stderr


# ---- robustness of the output ------------------------------------------------------------------


@pytest.mark.parametrize(
    "env", [{"LC_ALL": "C", "PYTHONUTF8": "0"}, {"PYTHONIOENCODING": "ascii"}], ids=str
)
@pytest.mark.parametrize(
    "args",
    [
        ["params", "mixtral-8x7b"],
        ["flops", "llama-3-8b", "--seq", "100", "--hardware", "h100"],
        ["models"],
        ["kvcache", "gemma-2-9b"],
        ["--help"],
    ],
    ids=" ".join,
)
def test_ascii_terminals_get_an_ascii_view(env: dict[str, str], args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfcli", *args],
        capture_output=True,
        env={**os.environ, "COLUMNS": "100", **env},
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    proc.stdout.decode("ascii")  # nothing but ASCII


def test_closed_stdout_is_one_line_and_nonzero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfcli", "params", "gpt2", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "closed" in lines[0], proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("extra", [["--json"], []], ids=["json", "table"])
def test_full_disk_is_one_line_and_nonzero(extra: list[str]) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "tfcli", "params", "gpt2", *extra],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=120,
        )
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "No space left" in lines[0] and "Traceback" not in proc.stderr


def test_ctrl_c_before_any_work_says_interrupted() -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import typer\n"
        "from tfcli.cli import app, main\n"
        "@app.command('sleepy', hidden=True)\n"
        "def sleepy() -> None:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(30)\n"
        "main(['sleepy'])\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err


# ---- answers -----------------------------------------------------------------------------------


def test_serving_time_keys_and_values() -> None:
    doc = json.loads(
        run_cli(
            "flops", "llama-3-8b", "--seq", "4096", "--batch", "8", "--hardware", "h100", "--json"
        ).stdout
    )
    serving = doc["serving"]
    assert serving["ttft_seconds"] > 0 and serving["tpot_seconds"] > 0
    assert serving["output_tokens_per_s"] == pytest.approx(8 / serving["tpot_seconds"])
    assert serving["mfu"] == 0.5 and serving["mbu"] == 0.6
    assert serving["tpot_bound"] == "memory" and serving["ttft_bound"] == "compute"
    human = run_cli("flops", "llama-3-8b", "--seq", "4096", "--hardware", "h100")
    assert "TTFT" in human.stdout and "TPOT" in human.stdout and "Chowdhery" in human.stdout


def test_peak_without_bandwidth_is_compute_only_and_says_so() -> None:
    run = run_cli("flops", "llama-3-8b", "--mode", "decode", "--peak-tflops", "100")
    assert run.code == 0, run.stderr
    assert "compute-bound answer only" in run.stdout and "0.0 µs" not in run.stdout
    assert "inf" not in run.stdout.replace("infinity", "")
    doc = json.loads(
        run_cli("flops", "llama-3-8b", "--mode", "decode", "--peak-tflops", "100", "--json").stdout
    )
    assert doc["roofline"]["bound"] == "compute only" and doc["roofline"]["memory_seconds"] is None


def test_new_hardware_presets_with_sources() -> None:
    names = [
        "b200",
        "gb200",
        "h20",
        "l40s",
        "a10g",
        "l4",
        "mi300x",
        "mi325x",
        "mi355x",
        "gaudi3",
        "tpu-v5e",
        "tpu-v5p",
        "tpu-v6e",
    ]
    for name in names:
        device = lookup_hardware(name)
        assert device.source and device.memory_bytes > 0 and device.bandwidth_bytes_per_s > 0
        assert device.sparse_peak_for("bf16") >= device.peak_for("bf16")
    assert lookup_hardware("b200").peak_for("bf16") == 2250e12
    assert lookup_hardware("tpu-v5e").peak_for("bf16") == 197e12
    assert lookup_hardware("gaudi3").sparse_factor == 1.0
    assert len(PRESETS) >= 17


def test_fit_defaults_to_bf16_weights_and_marks_contexts_beyond_training() -> None:
    doc = json.loads(run_cli("kvcache", "gemma-2-9b", "--hardware", "h100", "--json").stdout)
    fit = doc["fit"]
    assert fit["weights_dtype"] == "bf16" and fit["weights_dtype_is_default"]
    assert fit["beyond_trained_context"] and fit["max_seq_within_trained_context"] == 8192
    human = run_cli("kvcache", "gemma-2-9b", "--hardware", "h100")
    assert "beyond the trained context of 8,192" in human.stdout and "bf16" in human.stdout


def test_compare_what_if_columns() -> None:
    doc = json.loads(
        run_cli("compare", "llama-3-8b", "llama-3-8b:num_kv_heads=32", "--json").stdout
    )
    base, what_if = doc["models"]
    assert doc["baseline"] == "llama-3-8b" and what_if["overrides"] == ["num_kv_heads=32"]
    assert what_if["kv_cache"]["total_bytes"] == 4 * base["kv_cache"]["total_bytes"]
    bad = run_cli("compare", "llama-3-8b", "llama-3-8b:oops")
    assert bad.code == 2 and "MODEL:key=value" in bad.stderr


def test_models_listing_one_notation_legend_nothing_cut_at_80() -> None:
    run = run_cli("models", env={"COLUMNS": "80"})
    assert run.code == 0, run.stderr
    assert "…" not in run.stdout and "GQA 32/8" in run.stdout and "MLA 128, r 512" in run.stdout
    assert "GQA H/K = H query heads sharing K KV heads" in run.stdout
    assert all(len(line) <= 80 for line in run.stdout.splitlines() if "│" in line or "─" in line)


def test_verify_exits_1_and_says_why_when_totals_differ() -> None:
    pytest.importorskip("transformers")
    run = _raw(["params", "flan-t5-base", "--verify"])
    if run.returncode == 0:
        pytest.skip("flan-t5-base counts agree with this transformers version")
    assert run.returncode == 1, run.stderr
    assert "--verify:" in run.stderr and "ties" in run.stderr


def test_bench_skip_reason_is_whole_at_80_columns() -> None:
    pytest.importorskip("torch")
    run = _raw(
        ["bench", "gpt2", "--seq", "1024k", "--backend", "naive", "--repeats", "1",
         "--warmup", "0", "--no-blocks"],
        COLUMNS="80",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    reasons = [line for line in run.stdout.splitlines() if "skipped:" in line]
    assert (reasons and "needs ~" in reasons[0] and "GiB" in reasons[0]) or "TiB" in reasons[0]
    assert "…" not in run.stdout
