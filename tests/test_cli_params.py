"""`tfcli params`, `models` and `show` as a user runs them, and every kind of bad input.

Golden totals come from published figures: Llama-3-8B 8,030,261,248 (Meta's model card /
the Hugging Face safetensors index of meta-llama/Meta-Llama-3-8B) and GPT-2 small 124,439,808
(openai-community/gpt2, the 124M model of Radford et al. 2019).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import assert_one_line_error, run_cli

LLAMA_3_8B_PUBLISHED = 8_030_261_248
GPT2_PUBLISHED = 124_439_808

LLAMA_YAML = {
    "name": "tiny-llama",
    "family": "llama",
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "intermediate_size": 128,
    "activation": "silu",
    "mlp_gated": True,
    "norm_type": "rmsnorm",
    "tie_word_embeddings": False,
}


def write_spec(tmp_path: Path, **changes: object) -> Path:
    data = {**LLAMA_YAML, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_params_llama_3_8b_prints_published_total() -> None:
    run = run_cli("params", "llama-3-8b")
    assert run.code == 0, run.stderr
    assert "8,030,261,248" in run.stdout


@pytest.mark.parametrize(
    ("model", "published"), [("llama-3-8b", LLAMA_3_8B_PUBLISHED), ("gpt2", GPT2_PUBLISHED)]
)
def test_params_json_is_one_document_with_raw_integers(model: str, published: int) -> None:
    run = run_cli("params", model, "--json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["total_params"] == published
    assert isinstance(doc["total_params"], int)
    assert sum(doc["components_params"].values()) == doc["total_params"]
    assert doc["weight_bytes"]["bf16"] == 2 * published
    assert doc["weight_bytes"]["fp32"] == 4 * published
    assert doc["weight_bytes"]["int4"] == (published + 1) // 2


def test_params_set_override_changes_the_count() -> None:
    base = json.loads(run_cli("params", "llama-3-8b", "--json").stdout)
    mha = json.loads(run_cli("params", "llama-3-8b", "--json", "--set", "num_kv_heads=32").stdout)
    # k and v projections grow from 8 to 32 heads of 128: 2 x 4096 x (32 - 8) x 128 per layer.
    assert mha["total_params"] - base["total_params"] == 32 * 2 * 4096 * 24 * 128


def test_params_explain_shows_formulas() -> None:
    run = run_cli("params", "gpt2", "--explain")
    assert run.code == 0, run.stderr
    assert "50257" in run.stdout.replace(",", "")


def test_models_lists_shipped_specs() -> None:
    run = run_cli("models", "--json")
    assert run.code == 0, run.stderr
    names = {m["model"] for m in json.loads(run.stdout)["models"]}
    assert {"llama-3-8b", "gpt2", "bert-base", "t5-base", "deepseek-v3"} <= names


def test_show_lists_fields_and_origins() -> None:
    run = run_cli("show", "llama-3-8b", "--json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["spec"]["num_kv_heads"] == 8
    assert set(doc["field_origins"]) >= {"num_kv_heads", "hidden_size"}


def test_user_yaml_spec_loads(tmp_path: Path) -> None:
    run = run_cli("params", str(write_spec(tmp_path)), "--json")
    assert run.code == 0, run.stderr
    # Independent arithmetic for the tiny spec: embeddings + 2 layers + final norm + head.
    h, v, f, kv = 64, 1000, 128, 2 * 16
    layer = h * h + 2 * h * kv + h * h + 3 * h * f + 2 * h
    assert json.loads(run.stdout)["total_params"] == v * h + 2 * layer + h + v * h


# ---- bad input: one line on stderr, exit code 2, no traceback ------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("params", str(tmp_path / "nope.yaml")), "nope.yaml")


def test_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nhidden_size: [1, 2\n")
    assert_one_line_error(run_cli("params", str(path)), "bad.yaml")


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", "hidden_size": 64,,}')
    assert_one_line_error(run_cli("params", str(path)), "config.json")


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write_spec(tmp_path, num_kv_heads=None, num_kv_head=2)
    assert_one_line_error(run_cli("params", str(path)), "num_kv_head", "did you mean")


def test_wrong_type(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("params", str(write_spec(tmp_path, hidden_size="big"))), "hidden_size"
    )


@pytest.mark.parametrize("value", [0, -64])
def test_zero_or_negative_size(tmp_path: Path, value: int) -> None:
    path = write_spec(tmp_path, hidden_size=value)
    assert_one_line_error(run_cli("params", str(path)), "hidden_size")


def test_heads_not_dividing_hidden(tmp_path: Path) -> None:
    path = write_spec(tmp_path, num_heads=5, num_kv_heads=1)
    assert_one_line_error(run_cli("params", str(path)), "head_dim")


def test_kv_heads_not_dividing_heads(tmp_path: Path) -> None:
    path = write_spec(tmp_path, num_kv_heads=3)
    assert_one_line_error(run_cli("params", str(path)), "num_kv_heads")


def test_top_k_above_expert_count(tmp_path: Path) -> None:
    path = write_spec(tmp_path, num_experts=4, num_experts_per_token=8)
    assert_one_line_error(run_cli("params", str(path)), "num_experts_per_token")


def test_unknown_model_name_suggests_close_matches() -> None:
    assert_one_line_error(run_cli("params", "llama-3-8"), "llama-3-8b")


def test_bad_set_override() -> None:
    assert_one_line_error(run_cli("params", "llama-3-8b", "--set", "num_kv_head=4"), "num_kv_heads")


def test_unknown_dtype() -> None:
    assert_one_line_error(run_cli("params", "llama-3-8b", "--dtype", "fp7"), "fp7")


def test_unknown_option_is_one_line() -> None:
    assert_one_line_error(run_cli("params", "llama-3-8b", "--frobnicate"), "frobnicate")


def test_verify_builds_the_transformers_model(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    doc = json.loads(run_cli("params", "mixtral-8x7b", "--verify", "--json").stdout)
    assert doc["difference"] == 0
    assert doc["transformers_total_params"] == 46_702_792_704
    flan = json.loads(run_cli("params", "flan-t5-base", "--verify", "--json").stdout)
    assert flan["difference"] == 32128 * 768
    assert "ties T5's LM head" in flan["difference_explained"]


def test_unknown_model_type_is_one_line_and_verify_still_counts(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from tests.oracles import meta_param_count

    config = transformers.StableLmConfig(
        hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4
    )
    config.save_pretrained(tmp_path)
    assert_one_line_error(run_cli("params", str(tmp_path)), "stablelm", "supported", "--verify")
    run = run_cli("params", str(tmp_path), "--verify", "--json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["transformers_total_params"] == meta_param_count(config)


@pytest.mark.parametrize(
    ("config_class", "tower"),
    [("Gemma3Config", "SigLIP vision tower"), ("Llama4Config", "vision encoder")],
)
def test_multimodal_config_names_what_is_not_counted(
    tmp_path: Path, config_class: str, tower: str
) -> None:
    """A vision-language config is counted as its language model, and says so in one line."""
    import transformers

    getattr(transformers, config_class)().save_pretrained(tmp_path)
    run = run_cli("params", str(tmp_path))
    assert run.code == 0, run.stderr
    notes = [line for line in run.stdout.splitlines() if "not counted" in line]
    assert len(notes) == 1 and tower in notes[0] and "language model only" in notes[0]
    doc = json.loads(run_cli("params", str(tmp_path), "--json").stdout)
    assert tower in doc["not_counted"]
