"""The built-in model builds DeBERTa-v2/v3 disentangled attention exactly (DESIGN.md oracle 4).

Tiny DebertaV2Model configs (fp32, eval, eager attention) get random, perturbed norms and
biases; their weights are copied into the built-in model of the spec tfcli's loader reads from
the same config, and ``torch.testing.assert_close`` (default fp32 tolerances) compares the last
hidden state at three lengths (up to 40, beyond every span here), on both backends. The built
model's parameter count must equal ``tfcli params`` and transformers' own count.

Covered: c2p + p2c with shared key projections over log buckets (256, and 6 so that lengths
beyond 3 reach the log buckets), separate pos_key_proj / pos_query_proj, c2p only, p2c only,
max_relative_positions without buckets (distances only clamped), buckets whose log scale
runs to max_relative_positions rather than max_position_embeddings, the content scale that
pos_att_type sets without relative attention, position_biased_input true and false,
norm_rel_ebd layer_norm and none, the ConvLayer (kernels 3 and 5, tanh and gelu).
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import Transformer, build_model  # noqa: E402
from tfcli.errors import TfcliError  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.params import count_params  # noqa: E402

LENGTHS = (5, 13, 40)


def _config(**changes: Any) -> Any:
    base: dict[str, Any] = {
        "vocab_size": 300,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "max_position_embeddings": 64,
        "relative_attention": True,
        "pos_att_type": ["p2c", "c2p"],
        "position_buckets": 256,
        "max_relative_positions": -1,
        "share_att_key": True,
        "norm_rel_ebd": "layer_norm",
        "position_biased_input": False,
    }
    return transformers.DebertaV2Config(**{**base, **changes})


CONFIGS = {
    "v3_buckets_256": lambda: _config(),
    "v3_log_buckets_6": lambda: _config(position_buckets=6),
    "separate_keys": lambda: _config(share_att_key=False, position_buckets=8),
    "separate_c2p_only": lambda: _config(share_att_key=False, pos_att_type=["c2p"]),
    "shared_p2c_only": lambda: _config(pos_att_type=["p2c"], position_buckets=10),
    # transformers builds (and counts) the norm_rel_ebd LayerNorm without relative attention;
    # pos_att_type empty: transformers scales by 1 / sqrt(D (1 + len(pos_att_type))) even
    # without relative attention, which the spec does not record
    "no_relative_with_rel_norm": lambda: _config(
        relative_attention=False, position_biased_input=True, pos_att_type=[]
    ),
    "no_relative_scaled_by_terms": lambda: _config(
        relative_attention=False, position_biased_input=True, pos_att_type=["p2c", "c2p"]
    ),
    "max_relative_no_norm": lambda: _config(
        position_buckets=-1,
        max_relative_positions=16,
        norm_rel_ebd="none",
        share_att_key=False,
        position_biased_input=True,
    ),
    "buckets_8_log_to_max_relative_24": lambda: _config(
        position_buckets=8, max_relative_positions=24, share_att_key=False
    ),
    # DeBERTa-v2 xlarge's ConvLayer after layer 0 (tanh by default), and a wider one
    "conv_3_tanh": lambda: _config(conv_kernel_size=3, num_hidden_layers=3),
    "conv_5_gelu_absolute": lambda: _config(
        conv_kernel_size=5, conv_act="gelu", position_biased_input=True, position_buckets=8
    ),
}


def _perturb(hf: Any) -> None:
    """Norms and biases off their ones / zeros, so a missing or misplaced copy shows; the
    matrices and tables at std 0.3 (the init's 0.02 leaves the softmax nearly uniform, where
    a wrong relative position would hide under the tolerance)."""
    with torch.no_grad():
        for name, param in hf.named_parameters():
            if name.endswith("bias") or "norm" in name.lower():
                param.add_(0.1 * torch.randn_like(param))
            else:
                param.normal_(0.0, 0.3)


@functools.cache
def pair(case: str) -> tuple[Any, Transformer]:
    config = CONFIGS[case]()
    torch.manual_seed(0)
    hf = transformers.AutoModel.from_config(config, attn_implementation="eager").eval()
    _perturb(hf)
    spec = spec_from_hf_config(config.to_dict(), name=case).spec
    ours = build_model(spec).eval()
    load_hf_weights(ours, hf)
    return hf, ours


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
@pytest.mark.parametrize("case", list(CONFIGS))
def test_same_hidden_state_as_transformers(case: str, backend: str) -> None:
    hf, ours = pair(case)
    ours.set_backend(backend)
    torch.manual_seed(1)
    for length in LENGTHS:
        ids = torch.randint(3, 300, (2, length))
        with torch.no_grad():
            expected = hf(input_ids=ids).last_hidden_state
            got = ours(ids)
        torch.testing.assert_close(got, expected, msg=lambda m, n=length: f"length {n}: {m}")


@pytest.mark.parametrize("case", list(CONFIGS))
def test_parameters_equal_tfcli_params_and_transformers(case: str) -> None:
    hf, ours = pair(case)
    spec = spec_from_hf_config(CONFIGS[case]().to_dict(), name=case).spec
    built = sum(p.numel() for p in ours.parameters())
    assert built == count_params(spec).total
    assert built == sum(p.numel() for p in hf.parameters())


def test_a_conv_layer_with_an_unknown_activation_is_refused() -> None:
    with pytest.raises(TfcliError, match="conv_act"):
        spec_from_hf_config(_config(conv_kernel_size=3, conv_act="mish").to_dict(), name="c")


def test_bench_times_a_deberta_encoder_end_to_end() -> None:
    """tfcli bench's sweep (in process, round calibration figures) runs the sublayer and block
    timings with the c2p / p2c terms (they need the relative inputs the sweep passes)."""
    from tests.test_bench_run import fake_calibration
    from tfcli.bench.run import run_bench
    from tfcli.bench.settings import BenchSettings

    spec = spec_from_hf_config(_config(position_buckets=8).to_dict(), name="deberta").spec
    settings = BenchSettings(
        spec, torch.device("cpu"), torch.float32, [16], layers=2, repeats=1, warmup=0
    )
    result = run_bench(settings, fake_calibration(), True)
    assert {point.backend for point in result.points} == {"naive", "sdpa"}
    for point in result.points:
        assert point.block is not None and point.block.median > 0
        assert point.sublayer is not None and point.sublayer.median > 0


@pytest.mark.parametrize("case", list(CONFIGS))
def test_the_exported_config_reads_back_the_same_position_scheme(case: str) -> None:
    """--verify exports a spec to DebertaV2Config: the bucketing, its log range and the
    content scale without relative attention must survive the round trip."""
    from tfcli.hf_export import hf_config_dict_from_spec

    spec = spec_from_hf_config(CONFIGS[case]().to_dict(), name=case).spec
    exported = hf_config_dict_from_spec(spec)
    again = spec_from_hf_config(exported, name=case).spec
    fields = (
        "position_type",
        "relative_position_span",
        "relative_position_bucketed",
        "relative_bucket_max_position",
        "attention_scale",
        "disentangled_terms",
        "encoder_conv_kernel",
        "encoder_conv_activation",
    )
    assert [getattr(again, f) for f in fields] == [getattr(spec, f) for f in fields]
