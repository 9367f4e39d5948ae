"""The built-in model's Longformer (tfcli.bench.sparse_attention) against transformers.

Oracle: ``transformers.LongformerModel``'s last hidden state (fp32, eval, eager), its weights
copied by ``tfcli.bench.hf_weights.load_hf_weights``; norms and biases perturbed so that a
misplaced one shows. Lengths 8 (a multiple of the window 4) and 7 (padded to 8); global
tokens: the spec's first ``global_tokens`` against a ``global_attention_mask`` on the same
tokens. Parameters: the built model's count equals ``tfcli params`` and LongformerModel's.
BigBird: ``attention_type: original_full`` and ``block_sparse`` (eval: the "random" blocks
are block 0, tfcli.bench.sparse_attention.bigbird_inputs) against BigBirdModel.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import build_model  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.params import count_params  # noqa: E402
from tfcli.spec import ModelSpec  # noqa: E402

WINDOW = 4


def _longformer() -> tuple[torch.nn.Module, ModelSpec]:
    config = transformers.LongformerConfig(
        attention_window=[WINDOW, WINDOW],
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=66,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    hf = transformers.LongformerModel(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim == 1:  # norms and biases: perturbed off their 1 / 0 initialisation
                p.add_(torch.randn_like(p) * 0.1)
    spec = spec_from_hf_config(config.to_dict(), name="tiny-longformer").spec
    return hf, spec


def _ours(spec: ModelSpec, hf: torch.nn.Module) -> torch.nn.Module:
    model = build_model(spec, backend="naive").eval()
    load_hf_weights(model, hf)
    return model


def _ids(seq: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seq)
    return torch.randint(2, 100, (2, seq), generator=gen)  # no pad id (1): positions 2..


@pytest.mark.parametrize("seq", [8, 7])
@pytest.mark.parametrize("backend", ["naive", "sdpa"])
def test_local_attention_equals_longformer(seq: int, backend: str) -> None:
    hf, spec = _longformer()
    assert spec.global_tokens == 0  # LongformerModel has no global token unless given
    model = _ours(spec, hf)
    model.set_backend(backend)
    ids = _ids(seq)
    with torch.no_grad():
        expected = hf(ids).last_hidden_state
        got = model(ids)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("seq", [8, 7])
def test_global_tokens_equal_global_attention_mask(seq: int) -> None:
    hf, spec = _longformer()
    spec = spec.replace(global_tokens=2)
    model = _ours(spec, hf)
    ids = _ids(seq)
    mask = torch.zeros_like(ids)
    mask[:, :2] = 1
    with torch.no_grad():
        expected = hf(ids, global_attention_mask=mask).last_hidden_state
        without = hf(ids).last_hidden_state
        got = model(ids)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(expected, without)  # the global rows change the output


def test_parameters_equal_tfcli_and_transformers() -> None:
    hf, spec = _longformer()
    model = build_model(spec, device="meta")
    ours = sum(p.numel() for p in model.parameters())
    assert ours == count_params(spec).total == sum(p.numel() for p in hf.parameters())


def _big_bird(**changes: object) -> transformers.BigBirdConfig:
    return transformers.BigBirdConfig(
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
        attn_implementation="eager",
        **changes,
    )


@pytest.mark.parametrize("rescale", [False, True])
def test_big_bird_original_full_equals_transformers(rescale: bool) -> None:
    """BigBird with ``attention_type: original_full`` is BERT-like full attention (what
    BigBirdModel also falls back to on short inputs); the bench builds that path only."""
    config = _big_bird(attention_type="original_full", rescale_embeddings=rescale)
    torch.manual_seed(0)
    hf = transformers.BigBirdModel(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    spec = spec_from_hf_config(config.to_dict(), name="tiny-bigbird-full").spec
    model = _ours(spec, hf)
    assert sum(p.numel() for p in model.parameters()) == count_params(spec).total
    assert count_params(spec).total == sum(p.numel() for p in hf.parameters())
    for seq in (8, 13):
        ids = _ids(seq)
        with torch.no_grad():
            out = hf(ids)
            got = model(ids)
        torch.testing.assert_close(got, out.last_hidden_state)
        torch.testing.assert_close(model.pooled(got), out.pooler_output)


def _perturbed(hf: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    return hf


@pytest.mark.parametrize("seq", [16, 15, 23])
def test_big_bird_block_sparse_equals_transformers(seq: int) -> None:
    """Block 2, one random block: block-sparse above (5 + 2 r) b = 14 tokens, 15 and 23
    padded to the block. A fresh BigBirdModel per length: one short input switches it to
    original_full for good (``set_attention_type`` in its forward)."""
    config = _big_bird(block_size=2, num_random_blocks=1)
    torch.manual_seed(0)
    hf = _perturbed(transformers.BigBirdModel(config).eval())
    spec = spec_from_hf_config(config.to_dict(), name="tiny-bigbird").spec
    assert spec.sparse_attention == "bigbird"
    model = _ours(spec, hf)
    ids = _ids(seq)
    with torch.no_grad():
        out = hf(ids)
        got = model(ids)
    assert hf.attention_type == "block_sparse"
    torch.testing.assert_close(got, out.last_hidden_state)
    torch.testing.assert_close(model.pooled(got), out.pooler_output)
    model.set_backend("sdpa")
    with torch.no_grad():
        torch.testing.assert_close(model(ids), out.last_hidden_state)


def test_big_bird_short_input_falls_back_to_full_attention() -> None:
    config = _big_bird(block_size=2, num_random_blocks=1)
    torch.manual_seed(0)
    hf = _perturbed(transformers.BigBirdModel(config).eval())
    spec = spec_from_hf_config(config.to_dict(), name="tiny-bigbird").spec
    model = _ours(spec, hf)
    ids = _ids(14)
    with torch.no_grad():
        expected = hf(ids).last_hidden_state
        got = model(ids)
    assert hf.attention_type == "original_full"
    torch.testing.assert_close(got, expected)
