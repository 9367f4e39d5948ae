"""The layer plan, the shapes table, the declarative records and the layering rule.

* Every record's defaults are the transformers config class defaults (the dataclass fields of
  transformers 5.x ``configuration_*.py``), and a config.json naming only its model_type reads
  as the class defaults spelled out.
* Every ``--explain`` term is the product of its factors, and the terms of a component sum to
  it (parameters and FLOPs, every shipped spec).
* Domain modules import only the standard library and other domain modules (read with
  ``ast``, DESIGN.md's import rule).
* The plan groups layers by kind with their positions; ``--as`` reads a clone's config.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import REPO, run_cli
from tfcli.errors import LoadError
from tfcli.flops import forward_flops
from tfcli.hf import RECORDS, SUPPORTED_MODEL_TYPES
from tfcli.hf.records import Record
from tfcli.loaders import load_model, shipped_specs, spec_from_hf_config
from tfcli.params import count_params
from tfcli.terms import sum_terms

NAMES = [name for name, _ in shipped_specs()]


# ---- records ----------------------------------------------------------------------------------


def _class_defaults(record: Record) -> dict[str, object]:
    transformers = pytest.importorskip("transformers")
    cls = getattr(transformers, record.config_class)
    if not dataclasses.is_dataclass(cls):
        pytest.skip(f"{record.config_class} is not a dataclass in this transformers")
    out: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


@pytest.mark.parametrize("record", list(RECORDS.values()), ids=lambda r: r.model_type)
def test_record_defaults_are_the_config_class_defaults(record: Record) -> None:
    defaults = _class_defaults(record)
    checked = 0
    for key in record.keys:
        if key.name in defaults:
            assert defaults[key.name] == key.default, (record.model_type, key.name)
            checked += 1
    assert checked, record.model_type


@pytest.mark.parametrize("record", list(RECORDS.values()), ids=lambda r: r.model_type)
def test_a_bare_config_reads_as_the_class_defaults(record: Record) -> None:
    """``{"model_type": X}`` and the config class's own ``to_dict()`` read as one spec: the
    records' defaults and hooks agree with what transformers fills in."""
    transformers = pytest.importorskip("transformers")
    config = getattr(transformers, record.config_class)()
    try:
        bare = spec_from_hf_config({"model_type": record.model_type}, name="x").spec
    except LoadError as refused:
        # DeepseekV2Config() leaves num_experts_per_tok None: no model can be built from the
        # class defaults, and both readings must say so the same way.
        with pytest.raises(LoadError) as spelled_refusal:
            spec_from_hf_config(config.to_dict(), name="x")
        assert str(spelled_refusal.value) == str(refused)
        return
    spelled = spec_from_hf_config(config.to_dict(), name="x").spec
    if record.model_type == "t5":  # T5Config forces tie_word_embeddings=True (see shipped specs)
        spelled = spelled.replace(tie_word_embeddings=bare.tie_word_embeddings)
    assert bare.replace(source=None) == spelled.replace(source=None)


# ---- terms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_explain_terms_multiply_to_their_values_and_sum_to_the_components(name: str) -> None:
    spec = load_model(name).spec
    counts = count_params(spec)
    assert sum_terms(list(counts.terms)) == counts.components
    fwd = forward_flops(spec, 777, attention="full", encoder_seq=300)
    by_term = sum_terms(list(fwd.terms))
    for component, value in fwd.components.items():
        if component in by_term:
            assert by_term[component] == value, component
    for term in (*counts.terms, *fwd.terms):
        product = 1
        for _, factor in term.factors:
            product *= factor
        assert product == term.value


# ---- the import rule ------------------------------------------------------------------------

DOMAIN = (
    "spec", "plan", "shapes", "terms", "units", "params", "flops", "memory", "hardware",
    "errors", "roofline", "train", "parallel", "tensors",
)  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", DOMAIN)
def test_domain_modules_import_only_the_standard_library(module: str) -> None:
    path = REPO / "tfcli" / f"{module}.py"
    if not path.exists():
        pytest.skip(f"no tfcli/{module}.py")
    outside = {
        name
        for name in _imports(path)
        if name not in sys.stdlib_module_names and name not in ("tfcli", "__future__")
    }
    assert not outside, outside


def test_the_hf_records_import_only_the_standard_library() -> None:
    for path in sorted((REPO / "tfcli" / "hf").glob("*.py")):
        outside = {
            name
            for name in _imports(path)
            if name not in sys.stdlib_module_names and name not in ("tfcli", "__future__")
        }
        assert not outside, (path.name, outside)


# ---- the plan -------------------------------------------------------------------------------


def test_alternating_layers_are_two_groups_with_their_positions() -> None:
    counts = count_params(load_model("gemma-2-9b").spec)
    assert [(g.kind, g.index, g.count, g.stride) for g in counts.groups] == [
        ("sliding", 0, 21, 2),
        ("full", 1, 21, 2),
    ]
    run = run_cli("params", "gemma-2-9b")
    assert "decoder 0, 2, ..., 40 (21x)" in run.stdout
    assert "decoder 1, 3, ..., 41 (21x)" in run.stdout


def test_hybrid_groups_every_kind() -> None:
    spec = load_model("qwen3-next-80b-a3b").spec
    kinds = {g.kind: g.count for g in forward_flops(spec, 1024).groups}
    assert kinds == {"gated_deltanet": 36, "full": 12}
    assert spec.kind_counts == {"gated_deltanet": 36, "full": 12}


def test_a_million_uniform_layers_are_two_runs() -> None:
    spec = load_model("llama-3-8b").spec.replace(num_layers=1_000_000)
    assert len(spec.layer_runs) == 2  # layer 0 (the first) and the rest
    assert count_params(spec).groups[0].count == 1_000_000


def test_as_reads_a_clone_with_a_known_mapping(tmp_path: Path) -> None:
    config = {
        "model_type": "my_llama_clone",
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 1000,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    refused = run_cli("params", str(tmp_path))
    assert refused.code == 2 and "--as" in refused.stderr
    run = run_cli("params", str(tmp_path), "--as", "llama", "--json")
    assert run.code == 0, run.stderr
    as_llama = {**config, "model_type": "llama"}
    expected = count_params(spec_from_hf_config(as_llama, name="x").spec).total
    assert json.loads(run.stdout)["total_params"] == expected
    human = run_cli("params", str(tmp_path), "--as", "llama")
    assert "read as llama (--as)" in human.stdout
    bad = run_cli("params", str(tmp_path), "--as", "nonsense")
    assert bad.code == 2 and "nonsense" in bad.stderr


def test_models_types_lists_every_model_type_with_its_config_class() -> None:
    transformers = pytest.importorskip("transformers")
    run = run_cli("models", "--types", "--json")
    assert run.code == 0, run.stderr
    rows = {row["model_type"]: row for row in json.loads(run.stdout)["model_types"]}
    assert set(rows) == set(SUPPORTED_MODEL_TYPES)
    for model_type, record in RECORDS.items():
        assert rows[model_type]["reads"] == record.config_class
        assert hasattr(transformers, record.config_class), record.config_class
    # a bare Llama config is the LlamaConfig defaults: 32 query heads, all of them KV heads
    assert rows["llama"]["defaults"] == "MHA 32"
    assert rows["mamba"]["defaults"].startswith("Mamba ")
