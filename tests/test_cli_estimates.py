"""`tfcli flops`, `kvcache` and `compare` as a user runs them: JSON, figures, bad input."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tfcli.units import GIB


def test_flops_json_at_128k() -> None:
    run = run_cli("flops", "llama-3-8b", "--seq", "131072", "--json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["conventions"]["attention"] == "causal"
    assert sum(doc["components_flops"].values()) == doc["forward_flops"]
    # Attention = 2 (QK^T, AV) x 2 x 32 heads x 128 x s(s+1)/2 pairs x 32 layers.
    s = 131072
    assert doc["attention_flops"] == 32 * 2 * 2 * 32 * 128 * (s * (s + 1) // 2)
    assert 0.6 < doc["attention_share"] < 0.75
    assert "exceeds" in run.stderr  # 128K is past Llama-3-8B's trained 8K context


def test_flops_human_output_states_the_convention() -> None:
    run = run_cli("flops", "llama-3-8b", "--seq", "131072")
    assert run.code == 0, run.stderr
    assert "causal s(s+1)/2" in run.stdout
    assert "of the forward pass" in run.stdout
    assert "multiply-accumulate is 2 FLOPs" in run.stdout


def test_flops_modes_and_roofline() -> None:
    decode = json.loads(
        run_cli("flops", "llama-3-8b", "--mode", "decode", "--context", "8191", "--json").stdout
    )
    assert decode["decode"]["saving_factor"] > 1000
    train = json.loads(run_cli("flops", "gpt2", "--mode", "train", "--json").stdout)
    assert train["train_step_flops"] == 3 * train["forward_flops"]
    roof = json.loads(
        run_cli("flops", "llama-3-8b", "--mode", "decode", "--hardware", "h100", "--json").stdout
    )
    assert roof["roofline"]["bound"] == "memory"


def test_kvcache_llama_2_70b_128k_is_40_gib() -> None:
    run = run_cli("kvcache", "llama-2-70b", "--seq", "131072", "--json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["bytes_per_token"] == 327_680
    assert doc["total_bytes"] == 40 * GIB
    human = run_cli("kvcache", "llama-2-70b", "--seq", "131072")
    assert "40.00 GiB" in human.stdout


def test_kvcache_fit_and_encoder_only() -> None:
    doc = json.loads(
        run_cli("kvcache", "llama-3-8b", "--seq", "8192", "--budget", "80GiB", "--json").stdout
    )
    fit = doc["fit"]
    assert fit["weights_fit"]
    assert fit["max_batch_for_seq"] == fit["available_bytes"] // (8192 * 131072)
    bert = run_cli("kvcache", "bert-base")
    assert bert.code == 0 and "no KV cache" in bert.stdout
    too_big = json.loads(
        run_cli("kvcache", "llama-3.1-405b", "--hardware", "h100", "--json").stdout
    )
    assert too_big["fit"]["weights_fit"] is False


def test_compare_json() -> None:
    run = run_cli("compare", "llama-3-8b", "mistral-7b", "deepseek-v3", "--seq", "4096", "--json")
    assert run.code == 0, run.stderr
    models = {m["model"]: m for m in json.loads(run.stdout)["models"]}
    assert models["llama-3-8b"]["total_params"] == 8_030_261_248
    assert models["llama-3-8b"]["kv_cache"]["bytes_per_token"] == 131_072
    assert models["deepseek-v3"]["active_params"] < models["deepseek-v3"]["total_params"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["flops", "llama-3-8b", "--seq", "0"], "--seq"),
        (["flops", "llama-3-8b", "--batch", "-1"], "--batch"),
        (["flops", "llama-3-8b", "--hardware", "h1000"], "h1000"),
        (["flops", "llama-3-8b", "--attention", "half"], "--attention"),
        (["flops", "llama-3-8b", "--seq", "lots"], "--seq"),
        (["kvcache", "llama-3-8b", "--seq", "0"], "--seq"),
        (["kvcache", "llama-3-8b", "--batch", "-1"], "--batch"),
        (["kvcache", "llama-3-8b", "--dtype", "fp7"], "fp7"),
        (["kvcache", "llama-3-8b", "--budget", "lots"], "lots"),
        (["kvcache", "llama-3-8b", "--hardware", "tpu"], "tpu"),
        (["compare", "llama-3-8b"], "at least two"),
        (["compare", "llama-3-8b", "nope-model"], "nope-model"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_values_are_one_line(args: list[str], fragment: str) -> None:
    assert_one_line_error(run_cli(*args), fragment)
