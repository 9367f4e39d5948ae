"""Loading specs: YAML round trip, config.json defaults, overrides, search path, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tfcli.errors import LoadError, ModelNotFoundError, SpecError
from tfcli.loaders import load_model, parse_overrides, shipped_specs, spec_from_hf_config


def test_yaml_round_trip(tmp_path: Path) -> None:
    spec = load_model("deepseek-v3").spec
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(spec.to_dict()))
    assert load_model(str(path)).spec == spec


def test_shipped_names_are_case_insensitive() -> None:
    assert load_model("Llama-3-8B").spec.name == "llama-3-8b"


def test_config_json_missing_keys_take_class_defaults(tmp_path: Path) -> None:
    # MistralConfig defaults: 8 KV heads, sliding window 4096, untied embeddings.
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "mistral"}))
    loaded = load_model(str(path))
    assert loaded.spec.kv_heads == 8
    assert loaded.spec.sliding_window == 4096
    assert loaded.field_origins["num_kv_heads"].startswith("MistralConfig default")
    assert loaded.config_path == path


def test_field_origins_name_config_keys(tmp_path: Path) -> None:
    loaded = spec_from_hf_config(
        {"model_type": "llama", "num_key_value_heads": 8, "hidden_size": 4096}, name="x"
    )
    assert loaded.field_origins["num_kv_heads"] == "config.json: num_key_value_heads"
    assert loaded.field_origins["vocab_size"] == "LlamaConfig default (vocab_size)"


def test_old_style_rope_keys() -> None:
    spec = spec_from_hf_config(
        {"model_type": "llama", "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3"}},
        name="x",
    ).spec
    assert spec.rope_theta == 500000.0
    assert spec.rope_scaling == {"rope_type": "llama3"}


def test_overrides_are_typed() -> None:
    assert parse_overrides(["num_kv_heads=32", "rope_theta=1e6", "qk_norm=true"]) == {
        "num_kv_heads": 32,
        "rope_theta": 1e6,
        "qk_norm": True,
    }
    with pytest.raises(SpecError, match="did you mean"):
        parse_overrides(["num_kv_head=4"])
    with pytest.raises(SpecError, match="num_kv_heads must be"):
        parse_overrides(["num_kv_heads=many"])
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_overrides(["num_kv_heads"])


def test_override_validation_runs_again() -> None:
    with pytest.raises(SpecError, match="does not divide"):
        load_model("llama-3-8b", overrides=["num_kv_heads=5"])


def test_specs_dir_and_env_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_model("gpt2").spec.to_dict() | {"name": "my-gpt"}
    (tmp_path / "my-gpt.yaml").write_text(yaml.safe_dump(data))
    assert load_model("my-gpt", specs_dirs=[tmp_path]).spec.name == "my-gpt"
    with pytest.raises(ModelNotFoundError):
        load_model("my-gpt")
    monkeypatch.setenv("TFCLI_SPECS_PATH", str(tmp_path))
    assert "my-gpt" in dict(shipped_specs())
    assert load_model("my-gpt").spec.hidden_size == 768


def test_errors_are_specific(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such file"):
        load_model(str(tmp_path / "missing.yaml"))
    bad_type = tmp_path / "config.json"
    bad_type.write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(LoadError, match="not supported; supported: bart, bert"):
        load_model(str(bad_type))
    with pytest.raises(ModelNotFoundError, match=r"did you mean 'llama-3-8b'"):
        load_model("llama-3-8")
    (tmp_path / "folder").mkdir()
    with pytest.raises(LoadError, match=r"no config\.json"):
        load_model(str(tmp_path / "folder"))


def test_unrepresentable_configs_are_refused() -> None:
    with pytest.raises(LoadError, match="word_embed_proj_dim"):
        spec_from_hf_config({"model_type": "opt", "word_embed_proj_dim": 512}, name="opt-350m")
    with pytest.raises(LoadError, match="different heads"):
        spec_from_hf_config({"model_type": "bart", "decoder_attention_heads": 8}, name="b")


def test_gemma3_multimodal_config_uses_its_text_config() -> None:
    spec = spec_from_hf_config(
        {"model_type": "gemma3", "text_config": {"hidden_size": 1152, "num_hidden_layers": 26}},
        name="g",
    ).spec
    assert spec.family == "gemma3_text"
    assert spec.hidden_size == 1152
