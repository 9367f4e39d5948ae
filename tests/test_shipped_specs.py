"""Every shipped spec against transformers (DESIGN.md oracle 1) and published totals.

Each spec is exported to a transformers config (tfcli.hf_export), the real model class is
built on the meta device and counted. The export is checked too: re-importing it through
the config.json loader gives back the same architecture.
"""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from tests.oracles import meta_param_count
from tfcli.hf_export import hf_config_dict_from_spec, hf_config_from_spec
from tfcli.loaders import load_model, shipped_specs, spec_from_hf_config
from tfcli.params import count_params

NAMES = [name for name, _ in shipped_specs()]

# transformers 5 forces T5's LM head to be tied to the shared embeddings
# (T5Config.__init__: "we tie weights always and force it to be True"), while the T5 v1.1 /
# Flan-T5 checkpoints ship an untied lm_head (tie_word_embeddings: false). tfcli counts the
# checkpoint's parameters: vocab x d_model more than transformers 5 builds.
UNTIED_T5 = {"flan-t5-base"}

# Fields that describe the checkpoint rather than the architecture, or that a config.json
# does not carry, and so may legitimately differ after a round trip through the export.
NOT_ROUND_TRIPPED = {"name", "source", "dtype", "max_position_embeddings", "rope_scaling"}


@pytest.mark.parametrize("name", NAMES)
def test_shipped_spec_matches_transformers(name: str) -> None:
    spec = load_model(name).spec
    config, kind = hf_config_from_spec(spec)
    expected = meta_param_count(config, kind=kind)
    if name in UNTIED_T5:
        expected += spec.vocab_size * spec.hidden_size
    assert count_params(spec).total == expected


@pytest.mark.parametrize("name", NAMES)
def test_export_round_trips_through_the_loader(name: str) -> None:
    spec = load_model(name).spec
    again = spec_from_hf_config(hf_config_dict_from_spec(spec), name=name).spec
    for field in dataclasses.fields(spec):
        if field.name in NOT_ROUND_TRIPPED:
            continue
        assert getattr(again, field.name) == getattr(spec, field.name), field.name


def test_every_shipped_spec_names_its_source() -> None:
    for name in NAMES:
        assert load_model(name).spec.source, name


PUBLISHED = {
    # Meta Llama 3 model card / safetensors index of meta-llama/Meta-Llama-3-8B.
    "llama-3-8b": 8_030_261_248,
    # openai-community/gpt2 (GPT-2 small, "124M").
    "gpt2": 124_439_808,
    # openai-community/gpt2-xl ("1.5B").
    "gpt2-xl": 1_557_611_200,
    # google-bert/bert-base-uncased as BertModel ("110M").
    "bert-base": 109_482_240,
    # meta-llama/Llama-2-7b-hf and Llama-2-70b-hf safetensors indexes.
    "llama-2-7b": 6_738_415_616,
    "llama-2-70b": 68_976_648_192,
    # mistralai/Mistral-7B-v0.1 ("7.24B") and Mixtral-8x7B-v0.1 ("46.7B").
    "mistral-7b": 7_241_732_096,
    "mixtral-8x7b": 46_702_792_704,
    # google/flan-t5-base ("248M", untied LM head).
    "flan-t5-base": 247_577_856,
}


@pytest.mark.parametrize(("name", "total"), sorted(PUBLISHED.items()))
def test_published_totals(name: str, total: int) -> None:
    assert count_params(load_model(name).spec).total == total


def test_deepseek_v3_against_its_checkpoint_tensors() -> None:
    """DeepSeek-V3's checkpoint without the MTP module holds 671,026,419,200 values
    (deepseek-ai/DeepSeek-V3 README: 671B main model + 14B MTP); 14,848 of them are the
    e_score_correction_bias vectors (256 experts x 58 MoE layers), which transformers keeps
    as buffers, not parameters."""
    spec = load_model("deepseek-v3").spec
    buffers = 256 * spec.num_moe_layers
    assert buffers == 14_848
    assert count_params(spec).total + buffers == 671_026_419_200
