"""A hub id resolved offline through a local Hugging Face cache made by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")
transformers = pytest.importorskip("transformers")

from tests.cli_helpers import assert_one_line_error, run_cli  # noqa: E402
from tfcli.errors import ModelNotFoundError  # noqa: E402
from tfcli.loaders import load_model  # noqa: E402
from tfcli.params import count_params  # noqa: E402

REPO_ID = "test-org/tiny-llama"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_cache(root: Path) -> Path:
    """Lay out models--org--name/{refs/main, snapshots/<commit>/config.json} as the hub does."""
    config = transformers.LlamaConfig(
        vocab_size=32000,
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
    )
    repo = root / "models--test-org--tiny-llama"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    config.save_pretrained(snapshot)
    return snapshot / "config.json"


def test_hub_id_loads_from_the_offline_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = make_cache(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from_hub = load_model(REPO_ID)
    from_path = load_model(str(config_path))
    assert from_hub.spec.replace(name="x", source=None) == from_path.spec.replace(
        name="x", source=None
    )
    assert from_hub.config_path == config_path
    assert "hub cache" in from_hub.origin


def test_uncached_hub_id_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        load_model("nobody/nothing")


def test_cli_counts_a_cached_hub_id(tmp_path: Path) -> None:
    config_path = make_cache(tmp_path)
    env = {"HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    run = run_cli("params", REPO_ID, "--json", env=env)
    assert run.code == 0, run.stderr
    expected = count_params(load_model(str(config_path)).spec).total
    assert json.loads(run.stdout)["total_params"] == expected
    assert_one_line_error(run_cli("params", "nobody/nothing", env=env), "nobody/nothing")
