"""The built-in model's MiniMax blocks equal transformers (DESIGN.md oracle 4).

MiniMaxDecoderLayer (transformers/models/minimax/modeling_minimax.py) takes the residual
after the input norm and mixes residual and sublayer output with alpha/beta factors that
depend on the layer type (lightning or softmax attention) and the MLP: a tiny random
MiniMaxForCausalLM from MiniMaxConfig (fp32, eval, eager attention and experts, norms moved
away from 1, non-default factors), tfcli's spec of the same config, ``build_model`` +
``load_hf_weights``, then ``assert_close`` (default tolerances) on the logits at lengths
below and past the lightning block, the cache path (prefill, then one token at a time with
the K^T V state) against the full forward, and the parameter count against transformers and
tfcli params.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.bench.cache import KVCache  # noqa: E402
from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import build_model  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.params import count_params  # noqa: E402

T = transformers
BLOCK = 4  # MiniMaxConfig.block_size, small so that a length of 11 spans three blocks


def _config(layer_types: list[str], experts: int, top_k: int) -> Any:
    return T.MiniMaxConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=len(layer_types),
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=24,
        num_local_experts=experts,
        num_experts_per_tok=top_k,
        block_size=BLOCK,
        layer_types=layer_types,
        tie_word_embeddings=False,
        initializer_range=0.1,  # larger activations than 0.02: every factor shows in the logits
        full_attn_alpha_factor=1.5,
        full_attn_beta_factor=0.75,
        linear_attn_alpha_factor=0.6,
        linear_attn_beta_factor=1.3,
        mlp_alpha_factor=1.2,
        mlp_beta_factor=0.8,
        attn_implementation="eager",
        experts_implementation="eager",
    )


CASES = {
    "lin-full-lin": (["linear_attention", "full_attention", "linear_attention"], 4, 2),
    "full-lin": (["full_attention", "linear_attention"], 2, 1),
}


def _pair(case: str) -> tuple[Any, Any]:
    config = _config(*CASES[case])
    torch.manual_seed(0)
    hf = T.MiniMaxForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in hf.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                param.add_(0.3 * torch.randn_like(param))
    spec = spec_from_hf_config(config.to_dict(), name=f"minimax-{case}").spec
    ours = build_model(spec).eval()
    load_hf_weights(ours, hf)
    return hf, ours


@pytest.mark.parametrize("case", sorted(CASES))
def test_minimax_logits_and_cache_equal_transformers(case: str) -> None:
    hf, ours = _pair(case)
    spec = ours.spec
    assert spec.residual_from_norm
    assert (spec.linear_attention_alpha, spec.linear_attention_beta) == (0.6, 1.3)
    assert (spec.full_attention_alpha, spec.full_attention_beta) == (1.5, 0.75)
    assert (spec.mlp_alpha, spec.mlp_beta) == (1.2, 0.8)
    hf_params = sum(p.numel() for p in hf.parameters())
    assert sum(p.numel() for p in ours.parameters()) == hf_params
    assert count_params(spec).total == hf_params
    torch.manual_seed(1)
    for length in (3, 3 * BLOCK - 1):
        tokens = torch.randint(0, 97, (2, length))
        with torch.no_grad():
            expected = hf(tokens).logits
            full = ours(tokens)
            torch.testing.assert_close(full, expected)
            cache = KVCache()
            steps = [ours(tokens[:, :2], cache=cache)]
            steps += [ours(tokens[:, t : t + 1], cache=cache) for t in range(2, length)]
        torch.testing.assert_close(torch.cat(steps, dim=1), expected)
