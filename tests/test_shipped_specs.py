"""Every shipped spec against transformers (DESIGN.md oracle 1) and published totals.

Two independent routes from a YAML to transformers, each counted on the meta device and
compared with tfcli's own count:

* tfcli's export (tfcli.hf_export, what ``--verify`` uses): re-importing it through the
  config.json loader must give back the same spec, which ties the loader mapping
  (tfcli.hf_mappings), the export and the shipped YAMLs together;
* the checkpoints' published config.json files, written out in Hugging Face's key names in
  tests/hf_configs.py (not generated from the YAMLs): the loader must turn each, as published
  and as transformers 5 re-serialises it, into the shipped spec, and transformers must build
  from it a model with tfcli's count.

Cost: every model, DeepSeek-V3 (61 layers x 256 experts) and Llama-3.1-405B included, builds
on the meta device in well under a second with transformers 5.23 (measured: 0.15 s and
0.23 s), so each is counted at full depth; no layer-count extrapolation is needed.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("transformers")
pytest.importorskip("torch")

from tests.hf_configs import PUBLISHED_CONFIGS, published_hf_config
from tests.oracles import meta_param_count
from tfcli.errors import TfcliError
from tfcli.hf_export import hf_config_dict_from_spec, hf_config_from_spec
from tfcli.loaders import load_model, shipped_specs, spec_from_hf_config
from tfcli.params import count_params
from tfcli.spec import ModelSpec

SPECS_DIR = Path(__file__).resolve().parent.parent / "model_specs"
NAMES = sorted(path.stem for path in SPECS_DIR.glob("*.yaml"))

# transformers 5 forces T5's LM head to be tied to the shared embeddings
# (T5Config.__init__: "we tie weights always and force it to be True"), while the T5 v1.1 /
# Flan-T5 checkpoints ship an untied lm_head (tie_word_embeddings: false). tfcli counts the
# checkpoint's parameters: vocab x d_model more than transformers 5 builds.
UNTIED_T5 = {"flan-t5-base"}

# gpt3-175b has no transformers model_type of its own: its family is gpt2, so it is built as
# GPT2LMHeadModel with the paper's dimensions (learned positions, tied head, biases), which is
# the architecture the GPT-3 paper describes (GPT-2's, with alternating sparse attention that
# has no parameters of its own).

# Fields that describe the checkpoint rather than the architecture.
NOT_ROUND_TRIPPED = {"name", "source", "dtype", "uncounted"}

# Round-trip differences caused by tfcli.hf_mappings, not by the spec or the export. strict:
# once the mapping is fixed the xfail turns into a failure and this entry must go.
LOADER_BUGS: dict[str, str] = {}


# Round-trip differences caused by tfcli.hf_export (strict too).
EXPORT_BUGS: dict[str, str] = {**LOADER_BUGS}


# The same for the published config.json files (tests/hf_configs.py), loaded as published.
PUBLISHED_CONFIG_LOADER_BUGS: dict[str, str] = {**LOADER_BUGS}


def _with_known_bugs(names: list[str], bugs: dict[str, str]) -> list[Any]:
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=bugs[n])) if n in bugs else n
        for n in names
    ]


def _with_loader_bugs(names: list[str]) -> list[Any]:
    return _with_known_bugs(names, LOADER_BUGS)


def _canonical(field: str, value: Any) -> Any:
    """rope_scaling in one spelling: DeepSeek's config.json says ``type: yarn`` where
    transformers 5 writes ``rope_type``, and both tfcli (bench/positions.py) and transformers
    read either; rope_theta has its own spec field."""
    if field == "rope_scaling" and isinstance(value, dict):
        renamed = {("rope_type" if k == "type" else k): v for k, v in value.items()}
        return {k: v for k, v in renamed.items() if k != "rope_theta"}
    return value


def _differences(spec: ModelSpec, again: ModelSpec, ignore: set[str]) -> dict[str, Any]:
    return {
        f.name: (getattr(spec, f.name), getattr(again, f.name))
        for f in dataclasses.fields(spec)
        if f.name not in ignore
        and _canonical(f.name, getattr(spec, f.name)) != _canonical(f.name, getattr(again, f.name))
    }


def test_the_yaml_files_are_the_shipped_specs() -> None:
    assert sorted(name for name, _ in shipped_specs()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_yaml_is_a_valid_spec_named_after_its_file(name: str) -> None:
    data = yaml.safe_load((SPECS_DIR / f"{name}.yaml").read_text())
    spec = ModelSpec.from_dict(data, origin=f"{name}.yaml")
    assert spec.name == name
    assert spec.source and "http" not in spec.source and "://" not in spec.source
    assert load_model(name).spec == spec


@pytest.mark.parametrize("name", NAMES)
def test_shipped_spec_matches_transformers(name: str) -> None:
    spec = load_model(name).spec
    config, kind = hf_config_from_spec(spec)
    expected = meta_param_count(config, kind=kind)
    if name in UNTIED_T5:
        expected += spec.vocab_size * spec.hidden_size
    assert count_params(spec).total == expected


@pytest.mark.parametrize("name", _with_known_bugs(NAMES, EXPORT_BUGS))
def test_export_round_trips_through_the_loader(name: str) -> None:
    spec = load_model(name).spec
    again = spec_from_hf_config(hf_config_dict_from_spec(spec), name=name).spec
    assert _differences(spec, again, NOT_ROUND_TRIPPED) == {}


def _published_gaps(name: str) -> set[str]:
    """Fields a published config.json does not carry: no torch_dtype key in the older ones
    (GPT-2, BERT, RoBERTa, T5, GPT-J, BLOOM), so the loader keeps its default dtype."""
    return {"name", "source"} | (
        {"dtype"} if "torch_dtype" not in PUBLISHED_CONFIGS[name] else set()
    )


@pytest.mark.parametrize("name", _with_known_bugs(NAMES, PUBLISHED_CONFIG_LOADER_BUGS))
def test_published_config_json_loads_as_the_shipped_spec(name: str) -> None:
    data = copy.deepcopy(PUBLISHED_CONFIGS[name])
    again = spec_from_hf_config(data, name=name).spec
    assert _differences(load_model(name).spec, again, _published_gaps(name)) == {}


@pytest.mark.parametrize("name", _with_loader_bugs(NAMES))
def test_transformers_serialised_config_loads_as_the_shipped_spec(name: str) -> None:
    """The config.json transformers 5 writes (``save_pretrained``): rope_parameters, every
    class default spelled out, Gemma's legacy activation already converted."""
    config, _ = published_hf_config(name)
    ignore = _published_gaps(name)
    if name in UNTIED_T5:
        ignore.add("tie_word_embeddings")  # T5Config forces True (see UNTIED_T5)
    again = spec_from_hf_config(config.to_dict(), name=name).spec
    assert _differences(load_model(name).spec, again, ignore) == {}


@pytest.mark.parametrize("name", NAMES)
def test_published_config_model_counts_what_tfcli_counts(name: str) -> None:
    spec = load_model(name).spec
    config, kind = published_hf_config(name)
    expected = meta_param_count(config, kind=kind)
    if name in UNTIED_T5:
        expected += spec.vocab_size * spec.hidden_size
    assert count_params(spec).total == expected


def test_every_shipped_spec_has_its_published_config() -> None:
    assert sorted(PUBLISHED_CONFIGS) == NAMES


def test_export_reaches_the_transformers_config() -> None:
    """What has no parameters (windows, per-layer kinds, scales, soft-caps, RoPE) is carried
    into the config object, not silently dropped."""
    config, _ = hf_config_from_spec(load_model("gemma-2-9b").spec)
    assert config.layer_types[:2] == ["sliding_attention", "full_attention"]
    assert (config.sliding_window, config.query_pre_attn_scalar) == (4096, 256)
    assert (config.attn_logit_softcapping, config.final_logit_softcapping) == (50.0, 30.0)
    config, _ = hf_config_from_spec(load_model("mistral-7b").spec)
    assert config.sliding_window == 4096
    config, _ = hf_config_from_spec(load_model("llama-3.1-70b").spec)
    assert config.rope_parameters["rope_type"] == "llama3"
    assert config.rope_parameters["factor"] == 8.0
    # Qwen2Config would make only layers >= max_window_layers (28) sliding: the export lists
    # the kinds explicitly so that every layer slides, as the spec says.
    spec = load_model("qwen2.5-0.5b").spec.replace(sliding_window=4096)
    config, _ = hf_config_from_spec(spec)
    assert config.layer_types == ["sliding_attention"] * spec.num_layers


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("mistral-7b", {"attention_qkv_bias": True}, "attention_qkv_bias"),
        ("qwen2.5-7b", {"attention_qkv_bias": False}, "attention_qkv_bias"),
        ("llama-3-8b", {"qk_norm": True}, "qk_norm"),
        ("bloom-176b", {"intermediate_size": 4096}, "intermediate_size"),
        ("gpt2", {"mlp_gated": True}, "mlp_gated"),
    ],
)
def test_a_spec_transformers_cannot_build_is_refused(
    name: str, change: dict[str, object], field: str
) -> None:
    spec = load_model(name).spec.replace(**change)
    with pytest.raises(TfcliError, match=f"no transformers .* counterpart: {field}="):
        hf_config_dict_from_spec(spec)


def test_an_unknown_family_is_refused() -> None:
    spec = load_model("llama-3-8b").spec.replace(family="my_llama")
    with pytest.raises(TfcliError, match="'my_llama' has no transformers counterpart"):
        hf_config_dict_from_spec(spec)


# Exact totals published for each checkpoint: the parameter count Hugging Face shows from the
# safetensors metadata of the repository named (or the model card / paper where stated), the
# model as transformers builds it. Each also equals tfcli's independent arithmetic.
PUBLISHED = {
    "gpt2": 124_439_808,  # openai-community/gpt2 ("124M")
    "gpt2-xl": 1_557_611_200,  # openai-community/gpt2-xl ("1.5B")
    "bert-base": 109_482_240,  # google-bert/bert-base-uncased, BertModel ("110M")
    "bert-large": 335_141_888,  # google-bert/bert-large-uncased, BertModel ("336M")
    "roberta-base": 124_645_632,  # FacebookAI/roberta-base, RobertaModel ("125M")
    "bart-base": 139_420_416,  # facebook/bart-base ("139M")
    "t5-base": 222_903_552,  # google-t5/t5-base ("223M", tied LM head)
    "flan-t5-base": 247_577_856,  # google/flan-t5-base ("248M", untied LM head)
    "llama-2-7b": 6_738_415_616,  # meta-llama/Llama-2-7b-hf
    "llama-2-70b": 68_976_648_192,  # meta-llama/Llama-2-70b-hf
    "llama-3-8b": 8_030_261_248,  # meta-llama/Meta-Llama-3-8B
    "llama-3.1-70b": 70_553_706_496,  # meta-llama/Llama-3.1-70B
    "llama-3.1-405b": 405_853_388_800,  # meta-llama/Llama-3.1-405B
    "llama-3.2-1b": 1_235_814_400,  # meta-llama/Llama-3.2-1B ("1.24B", tied)
    "mistral-7b": 7_241_732_096,  # mistralai/Mistral-7B-v0.1 ("7.24B")
    "mixtral-8x7b": 46_702_792_704,  # mistralai/Mixtral-8x7B-v0.1 ("46.7B")
    "qwen2.5-0.5b": 494_032_768,  # Qwen/Qwen2.5-0.5B ("0.49B")
    "qwen2.5-7b": 7_615_616_512,  # Qwen/Qwen2.5-7B ("7.61B")
    "qwen3-8b": 8_190_735_360,  # Qwen/Qwen3-8B ("8.2B")
    "qwen3-30b-a3b": 30_532_122_624,  # Qwen/Qwen3-30B-A3B ("30.5B")
    "gemma-2b": 2_506_172_416,  # google/gemma-2b ("2.51B")
    "gemma-2-9b": 9_241_705_984,  # google/gemma-2-9b ("9.24B")
    "gemma-3-1b": 999_885_952,  # google/gemma-3-1b-pt ("1B")
    "phi-3-mini": 3_821_079_552,  # microsoft/Phi-3-mini-4k-instruct ("3.82B")
    "falcon-7b": 6_921_720_704,  # tiiuae/falcon-7b ("6.92B", tied LM head)
    "bloom-176b": 176_247_271_424,  # bigscience/bloom ("176B")
    "mpt-7b": 6_649_286_656,  # mosaicml/mpt-7b ("6.65B")
    "gpt-j-6b": 6_050_882_784,  # EleutherAI/gpt-j-6b ("6.05B")
    "pythia-1.4b": 1_414_647_808,  # EleutherAI/pythia-1.4b ("1.41B")
    "deepseek-v2-lite": 15_706_484_224,  # deepseek-ai/DeepSeek-V2-Lite ("15.7B")
}


@pytest.mark.parametrize(("name", "total"), sorted(PUBLISHED.items()))
def test_published_totals(name: str, total: int) -> None:
    assert count_params(load_model(name).spec).total == total


def test_published_rounded_figures() -> None:
    """Figures published only rounded, each with the convention it needs."""

    def params(name: str) -> tuple[int, int, ModelSpec]:
        spec = load_model(name).spec
        count = count_params(spec)
        return count.total, count.active, spec

    # Mixtral-8x7B announcement: "12.9B active parameters" (tfcli: 12.88B); Qwen3-30B-A3B
    # model card: "3.3B activated" (tfcli: 3.35B; the card truncates). Both count the
    # embeddings, as tfcli's active count does; checked to within the cards' last digit.
    assert abs(params("mixtral-8x7b")[1] - 12_900_000_000) < 100_000_000
    assert abs(params("qwen3-30b-a3b")[1] - 3_300_000_000) < 100_000_000
    # GPT-3 paper Table 2.1: 175.0B. The stated dimensions in a GPT-2 block give 174.6B; the
    # paper's figure is a headline, so only the nearest billion is checked.
    assert round(params("gpt3-175b")[0], -9) == 175_000_000_000
    # DeepSeek-V3 report: "671B total parameters, of which 37B are activated for each token".
    # Exactly: the main-model tensors of deepseek-ai/DeepSeek-V3's safetensors (layers 0-60;
    # the MTP layer 61 and the fp8 weight_scale_inv tensors left out) hold 671,026,419,200
    # values, the figure checkpoint-header recounts report; transformers keeps the 256 x 58
    # e_score_correction_bias vectors as buffers, not parameters, so 14,848 of them are not in
    # tfcli's count. DeepSeek's "activated" leaves out the input embedding table (a lookup).
    total, active, spec = params("deepseek-v3")
    assert total + 256 * spec.num_moe_layers == 671_026_419_200
    assert round(active - spec.vocab_size * spec.hidden_size, -9) == 37_000_000_000
