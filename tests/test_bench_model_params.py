"""The built-in model of every shipped spec: exact parameters and FLOPs (meta device).

Parameters: ``sum(p.numel())`` of the full-depth model equals ``tfcli params`` exactly.
FLOPs: FlopCounterMode on a 2-layer build with the naive backend (which, like an eager
implementation, multiplies the full s x s scores) equals ``tfcli flops --attention full``
for the same 2-layer spec exactly; FLOPs are affine in the layer count (tests/test_flops.py),
so the full model's figure follows. On the meta device MoE layers route every token to the
first k experts (tfcli.bench.layers.MoE.forward_meta): the same number of expert evaluations.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tfcli.bench.model import build_model  # noqa: E402
from tfcli.bench.support import missing_features  # noqa: E402
from tfcli.errors import BenchError  # noqa: E402
from tfcli.flops import (  # noqa: E402
    bigbird_falls_back,
    executed_length,
    forward_flops,
    sparse_kernel_pairs,
)
from tfcli.loaders import load_model, shipped_specs  # noqa: E402
from tfcli.params import count_params  # noqa: E402
from tfcli.spec import ModelSpec  # noqa: E402

SEQ = 32


def _buildable(name: str) -> object:
    """A shipped spec, skipped (with what is missing) while the bench cannot build it."""
    missing = missing_features(load_model(name).spec)
    if missing:
        return pytest.param(
            name, marks=pytest.mark.skip(reason="bench does not build " + ", ".join(missing))
        )
    return name


NAMES = [_buildable(name) for name, _ in shipped_specs()]


@pytest.mark.parametrize("name", NAMES)
def test_parameters_equal_tfcli_params(name: str) -> None:
    spec = load_model(name).spec
    model = build_model(spec, device="meta")
    assert sum(p.numel() for p in model.parameters()) == count_params(spec).total


@pytest.mark.parametrize("name", NAMES)
def test_naive_backend_flops_equal_full_convention(name: str) -> None:
    spec = load_model(name).spec.truncated(2)
    model = build_model(spec, device="meta", backend="naive")
    ids = torch.zeros(1, SEQ, dtype=torch.long, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        if spec.architecture == "encoder-decoder":
            model(ids, decoder_input_ids=ids)
        else:
            model(ids)
    # the bench routes each token to its top-k experts; Llama 4's transformers reference runs
    # every expert on every token, which only the full convention's MoE term counts
    expected = forward_flops(spec.replace(moe_dense_reference=False), SEQ, attention="full")
    pooler = expected.components.get("pooler", 0)  # forward() returns hidden states; no pooler
    assert counter.get_total_flops() == expected.total - pooler + _dense_band_extra(spec)


def _dense_band_extra(spec: ModelSpec) -> int:
    """Longformer and block-sparse BigBird: the bench multiplies the whole padded P x P for
    QK^T and AV (a masked dense softmax, tfcli.bench.sparse_attention) where transformers'
    own kernels multiply ``sparse_kernel_pairs``; 2 x H x D FLOPs per dot product, on every
    layer. BigBird on a short input falls back to full attention in both."""
    if spec.sparse_attention == "none" or (
        spec.sparse_attention == "bigbird" and bigbird_falls_back(spec, SEQ)
    ):
        return 0
    padded = executed_length(spec, SEQ, "full")
    width = spec.num_heads * spec.resolved_head_dim
    g_pairs = 0
    if spec.sparse_attention == "longformer":  # the bench's global rows, dense
        g_pairs = 2 * min(spec.global_tokens, SEQ) * padded
    extra = 0
    for run in spec.layer_runs:
        qk, av = sparse_kernel_pairs(spec, run.plan, padded, spec.global_tokens)
        extra += run.count * 2 * width * (2 * padded * padded + g_pairs - qk - av)
    return extra


def test_every_shipped_spec_is_buildable() -> None:
    assert [name for name, _ in shipped_specs() if missing_features(load_model(name).spec)] == []


def test_a_mixer_the_model_does_not_build_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard for a mixer kind the estimates learn before the bench does: every kind is
    built today, so one is taken out of the built list."""
    import tfcli.bench.support as support

    monkeypatch.setattr(support, "BUILT_MIXERS", ("attention", "mla"))
    spec = load_model("qwen3-next-80b-a3b").spec
    assert support.missing_features(spec) == ["gated_deltanet layers"]
    with pytest.raises(BenchError, match=r"does not build gated_deltanet layers yet"):
        build_model(spec, device="meta")
