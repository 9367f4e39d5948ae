"""DeBERTa-v2/v3, ModernBERT, Longformer and BigBird against transformers, exact (DESIGN.md
section 5, oracles 1 and 2).

* Parameters: real-size configs built with transformers' config classes (the published
  checkpoints' hyperparameters), saved as config.json, loaded by tfcli through the config.json
  path, compared with ``sum(p.numel())`` of ``AutoModel`` on the meta device.
* FLOPs, ``attention="full"`` (what transformers executes): ``FlopCounterMode`` on the
  transformers model with eager attention, 2 layers at real widths, seq 128 and 2048, plus
  one-layer counts extrapolated to the shipped spec's depth (layer affinity). Longformer pads
  to its window and multiplies overlapping chunks; BigBird pads to its blocks and multiplies
  gathered blocks (and falls back to full attention on short inputs); DeBERTa adds the
  c2p / p2c position matmuls and projects the relative embeddings. Only ModernBERT runs on
  the meta device: the others call ``.item()`` on data (Longformer's global-token test,
  BigBird's padding check, DeBERTa's relative positions), so they run on the CPU with
  parameters allocated by ``to_empty`` (untouched pages read as zeros; small tensors are
  zeroed): the FLOPs do not depend on the values.
* FLOPs, the default convention (the pattern): the attended pairs tfcli counts equal the
  non-zero attention probabilities transformers returns (``output_attentions``; masked
  logits underflow to exactly 0 after the softmax), on small widths with real random weights.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tests.cli_helpers import run_cli  # noqa: E402
from tests.oracles import meta_param_count  # noqa: E402
from tfcli.flops import forward_flops  # noqa: E402
from tfcli.hf.encoders import ENCODER_RECORDS  # noqa: E402
from tfcli.hf.records import Record  # noqa: E402
from tfcli.hf_export import hf_config_from_spec  # noqa: E402
from tfcli.loaders import load_model, spec_from_hf_config  # noqa: E402
from tfcli.params import count_params  # noqa: E402
from tfcli.spec import ModelSpec  # noqa: E402

T = transformers
SMALL_BYTES = 64 * 2**20


# ---- configs: published hyperparameters -------------------------------------------------------


def deberta_v3_base(**changes: Any) -> Any:
    """microsoft/deberta-v3-base: 256 log buckets, shared key projections, c2p + p2c, a
    LayerNorm on the relative embeddings, no absolute positions."""
    return T.DebertaV2Config(
        **{
            "vocab_size": 128100,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 512,
            "relative_attention": True,
            "position_buckets": 256,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "pos_att_type": "p2c|c2p",
            "layer_norm_eps": 1e-7,
            "max_relative_positions": -1,
            "position_biased_input": False,
            "type_vocab_size": 0,
            **changes,
        }
    )


def deberta_v2_xlarge(**changes: Any) -> Any:
    """microsoft/deberta-v2-xlarge's layout: as v3 but 1536 wide, 24 layers, and the
    ConvLayer (kernel 3) after the first layer."""
    return deberta_v3_base(
        **{
            "hidden_size": 1536,
            "num_hidden_layers": 24,
            "num_attention_heads": 24,
            "intermediate_size": 6144,
            "conv_kernel_size": 3,
            "conv_act": "gelu",
            **changes,
        }
    )


def deberta_separate_keys(**changes: Any) -> Any:
    """DeBERTa with separate position projections (share_att_key false: pos_key_proj and
    pos_query_proj), no buckets (span = max_position_embeddings) and absolute positions."""
    return deberta_v3_base(
        **{
            "position_buckets": -1,
            "share_att_key": False,
            "position_biased_input": True,
            "type_vocab_size": 2,
            **changes,
        }
    )


def modernbert_base(**changes: Any) -> Any:
    """answerdotai/ModernBERT-base (ModernBertConfig's defaults)."""
    return T.ModernBertConfig(**changes)


def modernbert_large(**changes: Any) -> Any:
    """answerdotai/ModernBERT-large."""
    return T.ModernBertConfig(
        **{
            "hidden_size": 1024,
            "intermediate_size": 2624,
            "num_hidden_layers": 28,
            "num_attention_heads": 16,
            **changes,
        }
    )


def longformer_base(**changes: Any) -> Any:
    """allenai/longformer-base-4096: RoBERTa-base, window 512 on every layer."""
    layers = changes.pop("num_hidden_layers", 12)
    return T.LongformerConfig(
        **{
            "attention_window": [512] * layers,
            "num_hidden_layers": layers,
            "max_position_embeddings": 4098,
            "type_vocab_size": 1,
            "vocab_size": 50265,
            "layer_norm_eps": 1e-5,
            "pad_token_id": 1,
            **changes,
        }
    )


def longformer_large(**changes: Any) -> Any:
    """allenai/longformer-large-4096."""
    return longformer_base(
        **{
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            **changes,
        }
    )


def bigbird_base(**changes: Any) -> Any:
    """google/bigbird-roberta-base (BigBirdConfig's defaults): blocks of 64, 3 random."""
    return T.BigBirdConfig(**changes)


def bigbird_large(**changes: Any) -> Any:
    """google/bigbird-roberta-large."""
    return T.BigBirdConfig(
        **{
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            **changes,
        }
    )


PARAM_CASES: dict[str, Any] = {
    "deberta-v3-base": deberta_v3_base(),
    "deberta-v2-xlarge": deberta_v2_xlarge(),
    "deberta-separate-keys": deberta_separate_keys(),
    "deberta-c2p-only": deberta_separate_keys(pos_att_type=["c2p"], max_relative_positions=128),
    "deberta-class-defaults": T.DebertaV2Config(),  # no relative attention: BERT-like
    "modernbert-base": modernbert_base(),
    "modernbert-large": modernbert_large(),
    "modernbert-biases": modernbert_base(
        num_hidden_layers=4, attention_bias=True, mlp_bias=True, norm_bias=True
    ),
    "longformer-base-4096": longformer_base(),
    "longformer-large-4096": longformer_large(),
    "bigbird-roberta-base": bigbird_base(),
    "bigbird-roberta-large": bigbird_large(),
    "bigbird-full-no-bias": bigbird_base(attention_type="original_full", use_bias=False),
}

ENCODER_TYPES = frozenset(config.model_type for config in PARAM_CASES.values())
"""The model_types this file covers (tests/test_params_oracle.py counts them as covered)."""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, config in PARAM_CASES.items():
        folder = tmp_path_factory.mktemp(name)
        config.save_pretrained(folder)
        out[name] = folder
    return out


@pytest.mark.parametrize("case", list(PARAM_CASES))
def test_params_equal_transformers_automodel(case: str, saved: dict[str, Path]) -> None:
    counts = count_params(load_model(str(saved[case])).spec)
    assert counts.total == meta_param_count(PARAM_CASES[case], kind="base")
    assert sum(counts.components.values()) == counts.total
    assert counts.active == counts.total


def test_published_base_models_count_as_transformers(saved: dict[str, Path]) -> None:
    """The shipped specs are the published configs: same totals as transformers builds."""
    for name in ("deberta-v3-base", "modernbert-base", "longformer-base-4096"):
        shipped = count_params(load_model(name).spec).total
        assert shipped == meta_param_count(PARAM_CASES[name], kind="base")
    shipped = count_params(load_model("bigbird-roberta-base").spec).total
    assert shipped == meta_param_count(PARAM_CASES["bigbird-roberta-base"], kind="base")


@pytest.mark.parametrize("record", ENCODER_RECORDS, ids=lambda r: r.model_type)
def test_record_defaults_are_the_config_class_defaults(record: Record) -> None:
    """Every key's default is the transformers 5 class default, and a config.json that names
    nothing but its model_type reads as the class defaults spelled out (hooks included)."""
    config = getattr(T, record.config_class)()
    for k in record.keys:
        assert getattr(config, k.name) == k.default, k.name
    bare = spec_from_hf_config({"model_type": record.model_type}, name="x").spec
    spelled = spec_from_hf_config(config.to_dict(), name="x").spec
    assert bare.replace(source=None) == spelled.replace(source=None)


# ---- FLOPs: what transformers executes ---------------------------------------------------------


def truncated(config: Any, layers: int) -> Any:
    """The same config with ``layers`` layers (per-layer lists cut to match)."""
    config = copy.deepcopy(config)
    config.num_hidden_layers = layers
    for name in ("attention_window", "layer_types"):
        value = getattr(config, name, None)
        if isinstance(value, list):
            setattr(config, name, value[:layers])
    return config


def build(config: Any, device: str) -> Any:
    """``AutoModel`` with eager attention on ``device`` ("meta", or "cpu" backed by untouched
    zero pages, see the module docstring), in eval mode."""
    with torch.device("meta"):
        model = T.AutoModel.from_config(config, attn_implementation="eager")
    if device == "cpu":
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if tensor.numel() * tensor.element_size() < SMALL_BYTES:
                    tensor.zero_()
    return model.eval()


def counted_flops(config: Any, seq: int, *, device: str, global_tokens: int = 0) -> int:
    """FlopCounterMode total of one AutoModel forward over ``seq`` tokens (batch 1); with
    ``global_tokens`` g the first g tokens get Longformer's global attention."""
    model = build(config, device)
    with torch.device(device):
        inputs: dict[str, Any] = {"input_ids": torch.randint(5, 100, (1, seq))}
        if global_tokens:
            mask = torch.zeros(1, seq, dtype=torch.long)
            mask[:, :global_tokens] = 1
            inputs["global_attention_mask"] = mask
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    return int(counter.get_total_flops())


def spec_of(config: Any, name: str) -> ModelSpec:
    return spec_from_hf_config(config.to_dict(), name=name).spec


FLOP_CASES: dict[str, tuple[Any, str]] = {
    "deberta-v3-base": (deberta_v3_base(), "cpu"),
    "modernbert-base": (modernbert_base(), "meta"),
    "longformer-base-4096": (longformer_base(), "cpu"),
    "bigbird-roberta-base": (bigbird_base(), "cpu"),
}
"""Shipped spec name -> (its published config, device the oracle runs on)."""


@pytest.mark.parametrize("seq", [128, 2048])
@pytest.mark.parametrize("case", list(FLOP_CASES))
def test_full_convention_equals_flop_counter(case: str, seq: int) -> None:
    config, device = FLOP_CASES[case]
    two = truncated(config, 2)
    ours = forward_flops(spec_of(two, case), seq, attention="full", logits="all")
    assert ours.total == counted_flops(two, seq, device=device)


@pytest.mark.parametrize("case", list(FLOP_CASES))
def test_two_layers_extrapolate_to_the_shipped_spec(case: str) -> None:
    """counted(1 layer) + (L - 1) x (counted(2) - counted(1)) is the full-depth forward and
    equals tfcli's figure for the shipped spec (ModernBERT: the first layer is global, the
    second local; eager attention multiplies s x s on both)."""
    config, device = FLOP_CASES[case]
    seq = 128
    one = counted_flops(truncated(config, 1), seq, device=device)
    two = counted_flops(truncated(config, 2), seq, device=device)
    shipped = load_model(case).spec
    expected = one + (shipped.num_layers - 1) * (two - one)
    assert forward_flops(shipped, seq, attention="full").total == expected


VARIANT_CASES: dict[str, tuple[Any, int, str]] = {
    # ConvLayer (kernel 3, counted as a convolution by FlopCounterMode), separate position
    # projections and absolute positions
    "deberta-v2-conv": (deberta_v2_xlarge(num_hidden_layers=2), 300, "cpu"),
    "deberta-separate-keys": (deberta_separate_keys(num_hidden_layers=2), 300, "cpu"),
    "deberta-c2p-only": (
        deberta_separate_keys(num_hidden_layers=2, pos_att_type=["c2p"], share_att_key=True),
        300,
        "cpu",
    ),
    # not a multiple of the window: padded from 600 to 1024
    "longformer-padded": (longformer_base(num_hidden_layers=2), 600, "cpu"),
    "longformer-window-256": (
        longformer_base(num_hidden_layers=2, attention_window=[256, 256]),
        1000,
        "cpu",
    ),
    # BigBird's fallback boundary: (5 + 2 x 3) x 64 = 704 tokens run full attention, 705 run
    # block-sparse on 768 padded tokens
    "bigbird-704": (bigbird_base(num_hidden_layers=2), 704, "cpu"),
    "bigbird-705": (bigbird_base(num_hidden_layers=2), 705, "cpu"),
    "bigbird-original-full": (
        bigbird_base(num_hidden_layers=2, attention_type="original_full"),
        1024,
        "cpu",
    ),
    "modernbert-large": (modernbert_large(num_hidden_layers=3), 500, "meta"),
}


@pytest.mark.parametrize("case", list(VARIANT_CASES))
def test_variants_equal_flop_counter(case: str) -> None:
    config, seq, device = VARIANT_CASES[case]
    ours = forward_flops(spec_of(config, case), seq, attention="full")
    assert ours.total == counted_flops(config, seq, device=device)


@pytest.mark.parametrize("seq", [128, 2048])
def test_longformer_global_tokens_equal_flop_counter(seq: int) -> None:
    """With g global tokens transformers also runs query_global on them, key_global and
    value_global on every (padded) token, and 2 x 2 g P more score/value products."""
    config = truncated(longformer_base(), 2)
    spec = spec_of(config, "longformer").replace(global_tokens=3)
    ours = forward_flops(spec, seq, attention="full")
    assert ours.total == counted_flops(config, seq, device="cpu", global_tokens=3)


def test_bigbird_pads_only_when_block_sparse() -> None:
    spec = load_model("bigbird-roberta-base").spec
    assert forward_flops(spec, 704, attention="full").layers[0].pairs == 704 * 704
    padded = forward_flops(spec, 705, attention="full")
    assert padded.layers[0].pairs == 64 * 64 * (2 * 12 + 2 * 7 + 8 * 8)


# ---- FLOPs: the pattern (default convention) against transformers' attention probabilities


def attended(probabilities: Any, rows: int, cols: int) -> int:
    """Non-zero attention probabilities of the first ``rows`` queries over the first ``cols``
    keys, per head (batch 1)."""
    heads = probabilities.shape[1]
    nonzero = int((probabilities[:, :, :rows, :cols] != 0).sum())
    assert nonzero % heads == 0
    return nonzero // heads


def small_model(config: Any, *, train: bool = False) -> Any:
    torch.manual_seed(0)
    model = T.AutoModel.from_config(config, attn_implementation="eager")
    return model.train() if train else model.eval()


@pytest.mark.parametrize("seq", [40, 129])
def test_modernbert_pattern_pairs_equal_its_attention(seq: int) -> None:
    """Layer 0 global (s x s), layer 1 local: |i - j| <= local_attention / 2 = 8."""
    config = T.ModernBertConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=2,
        local_attention=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
    )
    model = small_model(config)
    with torch.no_grad():
        out = model(input_ids=torch.randint(5, 100, (1, seq)), output_attentions=True)
    expected = [attended(a, seq, seq) for a in out.attentions]
    ours = forward_flops(spec_of(config, "modernbert"), seq)
    assert [layer.pairs for layer in ours.layers] == expected
    assert expected[0] == seq * seq and expected[1] < seq * seq


def small_longformer(window: int) -> Any:
    return T.LongformerConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=1,
        num_attention_heads=2,
        attention_window=[window],
        max_position_embeddings=520,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


@pytest.mark.parametrize(
    ("seq", "window", "g"),
    [(50, 16, 0), (50, 16, 3), (100, 8, 10), (20, 64, 2), (33, 4, 30), (64, 16, 8)],
)
def test_longformer_pattern_pairs_equal_its_attention(seq: int, window: int, g: int) -> None:
    """Local attention probabilities (window columns plus the g global-key columns) and the
    global tokens' own attention over every key, padding excluded."""
    config = small_longformer(window)
    model = small_model(config)
    mask = torch.zeros(1, seq, dtype=torch.long)
    mask[:, :g] = 1
    with torch.no_grad():
        out = model(
            input_ids=torch.randint(5, 100, (1, seq)),
            global_attention_mask=mask,
            output_attentions=True,
        )
    local = out.attentions[0]  # (batch, heads, seq, g + window + 1)
    expected = attended(local, seq, local.shape[-1])
    if g:
        # (batch, heads, keys, g): each global token's probabilities over every key
        expected += attended(out.global_attentions[0], seq, g)
    spec = spec_of(config, "longformer").replace(global_tokens=g)
    assert forward_flops(spec, seq).layers[0].pairs == expected


@pytest.mark.parametrize(
    ("seq", "block", "random"), [(100, 8, 2), (128, 8, 2), (75, 8, 2), (73, 8, 2), (200, 16, 1)]
)
def test_bigbird_pattern_pairs_equal_its_attention(seq: int, block: int, random: int) -> None:
    """Blocks of b with r random blocks (block-sparse above (5 + 2r) b tokens, e.g. 72 for
    b = 8, r = 2), in training mode: in eval mode transformers 5 draws no random blocks (every
    random block is block 0, already global), which attends fewer distinct pairs for the same
    matmuls."""
    config = T.BigBirdConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=1,
        num_attention_heads=2,
        block_size=block,
        num_random_blocks=random,
        max_position_embeddings=256,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = small_model(config, train=True)
    with torch.no_grad():
        out = model(input_ids=torch.randint(5, 100, (1, seq)), output_attentions=True)
    expected = attended(out.attentions[0], seq, seq)
    assert forward_flops(spec_of(config, "big_bird"), seq).layers[0].pairs == expected


def test_outputs_state_the_convention() -> None:
    """The JSON and the table say which convention is in force and what it counts."""
    result = run_cli("flops", "longformer-base-4096", "--seq", "1000", "--json")
    assert result.code == 0
    assert "Longformer pattern: |i-j| <= 256" in result.stdout
    result = run_cli("flops", "bigbird-roberta-base", "--seq", "1000", "--attention", "full")
    assert result.code == 0
    assert "BigBird as transformers executes it" in result.stdout
    assert "Scaling with sequence length (forward, batch 1, as executed pairs)" in result.stdout


def test_the_conventions_differ_where_transformers_does_more() -> None:
    """Longformer at 128 tokens: transformers pads to 512 and multiplies chunks; the pattern
    over 128 tokens with a 256-token half-window is the full 128 x 128. BigBird at 2048
    tokens: the pattern and the block kernel agree (a multiple of the block size)."""
    longformer = load_model("longformer-base-4096").spec
    pattern, executed = (
        forward_flops(longformer, 128),
        forward_flops(longformer, 128, attention="full"),
    )
    assert pattern.layers[0].pairs == 128 * 128
    assert executed.total > 4 * pattern.total
    bigbird = load_model("bigbird-roberta-base").spec
    assert (
        forward_flops(bigbird, 2048).total == forward_flops(bigbird, 2048, attention="full").total
    )


# ---- KV cache, export ---------------------------------------------------------------------------

SHIPPED = ("deberta-v3-base", "modernbert-base", "longformer-base-4096", "bigbird-roberta-base")


@pytest.mark.parametrize("name", SHIPPED)
def test_kvcache_says_an_encoder_keeps_none(name: str) -> None:
    result = run_cli("kvcache", name)
    assert result.code == 0
    assert "encoder-only" in result.stdout and "no KV cache" in result.stdout
    result = run_cli("kvcache", name, "--json")
    assert result.code == 0
    assert '"total_bytes": 0' in result.stdout


@pytest.mark.parametrize("name", SHIPPED)
def test_verify_export_builds_what_tfcli_counts(name: str) -> None:
    """``--verify``'s export (tfcli.hf_export) gives a config transformers builds as AutoModel
    with tfcli's count, and it carries the attention layout (not only the shapes)."""
    spec = load_model(name).spec
    config, kind = hf_config_from_spec(spec)
    assert kind == "base"
    assert meta_param_count(config, kind=kind) == count_params(spec).total
    again = spec_from_hf_config(config.to_dict(), name=name).spec
    for field in ("sparse_attention", "sliding_window", "layer_types", "sparse_block_size"):
        assert getattr(again, field) == getattr(spec, field)
    result = run_cli("params", name, "--verify")
    assert result.code == 0
    assert "equal" in result.stdout
