"""The built-in model's state mixers equal transformers (DESIGN.md oracle 4).

Gated DeltaNet (Qwen3-Next), Mamba-1 (Mamba, Jamba), Mamba-2 (Mamba-2, Granite-4.0-H, and
beside the attention of every Falcon-H1 layer) and RWKV-4: a tiny random transformers model
from its config class (fp32, eval, eager attention and experts, norms, biases and SSM vectors
moved away from their init), tfcli's spec of the same config, ``build_model`` +
``load_hf_weights``, then ``assert_close`` (default tolerances) on the logits: the full
forward at lengths below, at and past the chunk size, and the cache path (prefill, then one
token at a time carrying the recurrent state) against both full forwards. Also: parameters
against transformers and tfcli params, state bytes against tfcli's state figures, and
FlopCounterMode FLOPs against tfcli flops.
Two shapes per family (widths, depths, heads, groups, chunk sizes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tfcli.bench.cache import KVCache  # noqa: E402
from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import Transformer, build_model  # noqa: E402
from tfcli.errors import BenchError  # noqa: E402
from tfcli.flops import forward_flops  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.memory import state_bytes_per_layer  # noqa: E402
from tfcli.params import count_params  # noqa: E402
from tfcli.spec import ModelSpec  # noqa: E402

T = transformers
QWEN3_NEXT_CHUNK = 64  # torch_chunk_gated_delta_rule's chunk_size (tfcli: linear_chunk_size)


def _qwen3_next(
    width: int, layers: int, kh: int, vh: int, dk: int, dv: int, types: list[str] | None = None
) -> Any:
    # Layer 0 keeps a dense MLP (mlp_only_layers); ``types`` mixes in gated full attention.
    return T.Qwen3NextConfig(
        vocab_size=97,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=2 * width,
        linear_num_key_heads=kh,
        linear_num_value_heads=vh,
        linear_key_head_dim=dk,
        linear_value_head_dim=dv,
        linear_conv_kernel_dim=4,
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=24,
        mlp_only_layers=[0],
        layer_types=types or ["linear_attention"] * layers,
    )


def _granite(width: int, heads: int, groups: int, chunk: int, types: list[str]) -> Any:
    # The spec does not carry Granite's scalar multipliers (they scale activations, not
    # shapes): neutral values here, the softmax scale 1/sqrt(head_dim) as the spec has it.
    return T.GraniteMoeHybridConfig(
        vocab_size=97,
        hidden_size=width,
        num_hidden_layers=len(types),
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=16,
        shared_intermediate_size=24,
        num_local_experts=4,
        num_experts_per_tok=2,
        mamba_n_heads=heads,
        mamba_d_head=2 * width // heads,
        mamba_d_state=6,
        mamba_n_groups=groups,
        mamba_chunk_size=chunk,
        layer_types=types,
        embedding_multiplier=3.0,
        residual_multiplier=0.5,
        logits_scaling=4.0,
        attention_multiplier=0.3,
        position_embedding_type="rope",
    )


CONFIGS: dict[str, Callable[[], Any]] = {
    "qwen3_next-a": lambda: _qwen3_next(32, 2, 2, 4, 8, 6),
    "qwen3_next-b": lambda: _qwen3_next(24, 3, 1, 2, 4, 8),
    "qwen3_next-hybrid": lambda: _qwen3_next(
        32, 3, 2, 4, 8, 6, ["linear_attention", "full_attention", "linear_attention"]
    ),
    "mamba-a": lambda: T.MambaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2),
    "mamba-b": lambda: T.MambaConfig(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=3,
        state_size=4,
        conv_kernel=3,
        expand=3,
        use_bias=True,
        tie_word_embeddings=False,
    ),
    "mamba2-a": lambda: T.Mamba2Config(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_heads=8,
        head_dim=8,
        state_size=6,
        n_groups=2,
        chunk_size=8,
    ),
    "mamba2-b": lambda: T.Mamba2Config(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=3,
        num_heads=4,
        head_dim=12,
        state_size=5,
        n_groups=1,
        chunk_size=16,
        conv_kernel=3,
        use_bias=True,
    ),
    "jamba-a": lambda: T.JambaConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=48,
        mamba_d_state=6,
        num_experts=4,
        attn_layer_period=2,
        attn_layer_offset=1,
        expert_layer_period=2,
        expert_layer_offset=1,
    ),
    "jamba-b": lambda: T.JambaConfig(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=40,
        mamba_d_state=4,
        mamba_d_conv=3,
        mamba_expand=3,
        num_experts=3,
        num_experts_per_tok=2,
        attn_layer_period=3,
        attn_layer_offset=0,
        expert_layer_period=2,
        expert_layer_offset=0,
    ),
    "granitemoehybrid-a": lambda: _granite(32, 8, 2, 8, ["mamba", "attention"]),
    "granitemoehybrid-b": lambda: _granite(24, 4, 1, 16, ["attention", "mamba", "mamba"]),
    # FalconH1Config's multipliers default to 1 (the spec carries none of them)
    "falcon_h1-a": lambda: T.FalconH1Config(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=48,
        mamba_d_ssm=32,
        mamba_n_heads=4,
        mamba_d_head=8,
        mamba_d_state=4,
        mamba_chunk_size=8,
    ),
    "falcon_h1-b": lambda: T.FalconH1Config(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=40,
        mamba_d_ssm=48,
        mamba_n_heads=6,
        mamba_d_head=8,
        mamba_d_state=5,
        mamba_n_groups=2,
        mamba_chunk_size=16,
        mamba_rms_norm=True,
        projectors_bias=True,
    ),
    "rwkv-a": lambda: T.RwkvConfig(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, context_length=64, rescale_every=0
    ),
    "rwkv-b": lambda: T.RwkvConfig(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=3,
        attention_hidden_size=16,
        intermediate_size=40,
        context_length=64,
        rescale_every=0,
    ),
}


def chunk_of(spec: ModelSpec) -> int:
    """The scan's chunk length (1 for the token-by-token recurrences)."""
    if spec.linear_chunk_size:
        return spec.linear_chunk_size
    return spec.ssm_chunk_size or 1


# transformers' cached forward fails on a model without attention layers (get_seq_length
# of a cache holding only LinearAttentionLayers): its reference runs use_cache=False.


@functools.cache
def pair(case: str) -> tuple[Any, Transformer]:
    """(transformers model, built-in model with its weights), built once per case."""
    config = CONFIGS[case]()
    torch.manual_seed(0)
    hf = T.AutoModelForCausalLM.from_config(
        config, attn_implementation="eager", experts_implementation="eager"
    ).eval()
    with torch.no_grad():  # random, non-trivial norms, biases and SSM vectors
        for name, param in hf.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("bias", "D", "dt_bias") or "norm" in name or "ln" in name:
                param.add_(0.1 * torch.randn_like(param))
    spec = spec_from_hf_config(config.to_dict(), name=case).spec
    ours = build_model(spec).eval()
    load_hf_weights(ours, hf)
    return hf, ours


def lengths(spec: ModelSpec) -> list[int]:
    """One token, a few, and a length past the chunk size that no chunk divides."""
    chunk = chunk_of(spec)
    return sorted({1, 5, chunk + 3 if chunk > 1 else 13})


@pytest.mark.parametrize("case", list(CONFIGS))
def test_same_logits_as_transformers(case: str) -> None:
    hf, ours = pair(case)
    torch.manual_seed(1)
    for length in lengths(ours.spec):
        ids = torch.randint(0, 97, (2, length))
        with torch.no_grad():
            expected = hf(input_ids=ids, use_cache=False).logits
            got = ours(ids)
        torch.testing.assert_close(got, expected, msg=lambda m, n=length: f"length {n}: {m}")


@pytest.mark.parametrize("case", list(CONFIGS))
def test_cached_decoding_matches_the_full_forward(case: str) -> None:
    """Prefill (one token, a few, and past the first chunk), then one token at a time with
    the recurrent states: the logits equal both full forwards."""
    hf, ours = pair(case)
    torch.manual_seed(2)
    chunk = chunk_of(ours.spec)
    total = max(chunk, 8) + 5
    ids = torch.randint(0, 97, (1, total))
    with torch.no_grad():
        expected = hf(input_ids=ids, use_cache=False).logits
        full = ours(ids)
    for prefill in sorted({1, 4, max(chunk, 8) + 2}):
        cache = KVCache()
        with torch.no_grad():
            steps = [ours(ids[:, :prefill], cache=cache)]
            steps += [ours(ids[:, t : t + 1], cache=cache) for t in range(prefill, total)]
        incremental = torch.cat(steps, dim=1)
        torch.testing.assert_close(incremental, full)
        torch.testing.assert_close(incremental, expected)


@pytest.mark.parametrize("case", list(CONFIGS))
def test_parameters_and_state_bytes(case: str) -> None:
    """The built model's parameters equal transformers' (and tfcli params); the states left
    in the cache equal tfcli's transformers-convention state bytes per layer in fp32."""
    hf, ours = pair(case)
    spec = ours.spec
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in hf.parameters()) == count_params(spec).total
    if spec.rwkv_attention_size is not None:
        # transformers' RwkvModel allocates its 5 state vectors at hidden_size (and its cached
        # forward fails when attention_hidden_size differs); ours hold 2 h + 3 A per layer
        return
    cache = KVCache()
    with torch.no_grad():
        ours(torch.randint(0, 97, (1, 3)), cache=cache)
    expected = sum(
        sum(state_bytes_per_layer(spec, plan, rule="transformers", dtype="fp32").values())
        for plan in spec.layers
    )
    assert cache.state_nbytes() == expected


@pytest.mark.parametrize("case", list(CONFIGS))
def test_counted_flops_equal_tfcli_flops(case: str) -> None:
    """FlopCounterMode over the built model on the meta device (naive attention, as eager
    transformers multiplies) equals ``tfcli flops --attention full`` at a length past the
    chunk: the scans run the matmuls tfcli.flops counts for transformers' reference scans."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = spec_from_hf_config(CONFIGS[case]().to_dict(), name=case).spec
    seq = max(lengths(spec))
    model = build_model(spec, device="meta", backend="naive")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(2, seq, dtype=torch.long, device="meta"))
    assert counter.get_total_flops() == forward_flops(spec, seq, batch=2, attention="full").total


@pytest.mark.parametrize("case", list(CONFIGS))
def test_cached_step_flops_equal_tfcli_decode_flops(case: str) -> None:
    """One cached token after a 7-token prompt: FlopCounterMode equals ``tfcli flops`` with
    ``context=7`` (the recurrent steps' matmuls, one conv column, attention over 8 keys)."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = spec_from_hf_config(CONFIGS[case]().to_dict(), name=case).spec
    model = build_model(spec, backend="naive").eval()
    cache = KVCache()
    with torch.no_grad():
        model(torch.randint(0, 97, (2, 7)), cache=cache)
        with FlopCounterMode(display=False) as counter:
            model(torch.randint(0, 97, (2, 1)), cache=cache)
    expected = forward_flops(spec, 1, batch=2, context=7, attention="full").total
    assert counter.get_total_flops() == expected


def test_minimax_lightning_layers_build() -> None:
    """MiniMax (lightning + softmax layers, once refused as "lightning layers") now builds;
    its equality with transformers is tests/test_bench_minimax.py."""
    config = T.MiniMaxConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=48,
        num_local_experts=2,
        num_experts_per_tok=1,
        layer_types=["linear_attention", "full_attention"],
    )
    spec = spec_from_hf_config(config.to_dict(), name="minimax").spec
    model = build_model(spec, device="meta")
    assert model.block(0).mixer is not None and model.block(1).mixer is None


@pytest.mark.parametrize(("name", "layers"), [("rwkv-4-169m", 1), ("jamba-mini", 2)])
def test_the_attention_timing_refuses_state_layers(name: str, layers: int) -> None:
    """The model builds them; ``tfcli bench``'s attention timing names them and stops (and
    times Falcon-H1, whose layers all have attention)."""
    from tfcli.bench.support import check_timeable
    from tfcli.loaders import load_model

    spec = load_model(name).spec
    with pytest.raises(BenchError, match="times attention layers"):
        check_timeable(spec, layers)
    check_timeable(load_model("falcon-h1-7b").spec, 2)  # attention (+ Mamba-2) layers: timed


@pytest.mark.parametrize(
    ("block", "width", "heads", "head_dim", "layers", "index"),
    [(8, 32, 4, 8, 3, 1), (16, 24, 2, 12, 2, 0)],
)
def test_lightning_layer_equals_transformers(
    block: int, width: int, heads: int, head_dim: int, layers: int, index: int
) -> None:
    """LightningAttention alone (the whole MiniMax model: tests/test_bench_minimax.py) equals
    MiniMaxLightningAttention at lengths below and past the block, and its cache path (the
    recurrent step after a prefill) equals its full forward."""
    from transformers.models.minimax.modeling_minimax import MiniMaxLightningAttention

    from tfcli.bench.state_mixers import LightningAttention, MixerState

    config = T.MiniMaxConfig(
        vocab_size=97,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=head_dim,
        intermediate_size=48,
        num_local_experts=2,
        num_experts_per_tok=1,
        block_size=block,
        layer_types=["linear_attention"] * layers,
    )
    spec = spec_from_hf_config(config.to_dict(), name="minimax").spec
    torch.manual_seed(0)
    hf = MiniMaxLightningAttention(config, index).eval()
    with torch.no_grad():
        for param in hf.parameters():
            param.copy_(0.2 * torch.randn_like(param))
        hf.norm.weight.add_(1.0)
    ours = LightningAttention(spec, index).eval()
    missing, unexpected = ours.load_state_dict(hf.state_dict(), strict=False)
    assert not missing  # transformers' extra tensors are its precomputed decay buffers
    assert set(unexpected) == {"slope_rate", "query_decay", "key_decay", "diagonal_decay"}
    for length in (1, 5, block + 3):
        x = torch.randn(2, length, width)
        with torch.no_grad():
            full = ours(x)
            torch.testing.assert_close(full, hf(x, None, None)[0])
            state = MixerState()
            steps = [ours(x[:, :3], state)]
            steps += [ours(x[:, t : t + 1], state) for t in range(3, length)]
        torch.testing.assert_close(torch.cat(steps, dim=1)[:, :length], full)


def test_decode_bench_static_cache_holds_the_parallel_mamba_state() -> None:
    """``bench --mode decode`` times steps over a prebuilt cache: for Falcon-H1 it holds the
    parallel Mamba-2's conv and recurrent state too (tfcli's transformers-convention bytes),
    so the first timed step is already a recurrent step."""
    from tfcli.bench.decode import build_static_cache
    from tfcli.bench.settings import BenchSettings

    _hf, ours = pair("falcon_h1-b")
    spec = ours.spec
    settings = BenchSettings(spec=spec, device=torch.device("cpu"), dtype=torch.float32, seqs=[8])
    cache = build_static_cache(ours, settings, 6)
    assert sorted(cache.states) == list(range(spec.num_layers))
    expected = sum(
        sum(state_bytes_per_layer(spec, plan, rule="transformers", dtype="fp32").values())
        for plan in spec.layers
    )
    assert cache.state_nbytes() == expected


def test_chunked_delta_rule_over_several_chunk_groups_equals_the_recurrence() -> None:
    """Chunks are computed GROUP_CHUNKS at a time with the state carried between groups: over
    a length spanning three groups (not a whole number of chunks) the chunked rule equals the
    token-by-token recurrence (Yang et al. 2024, eq. 10)."""
    import torch

    from tfcli.bench.state_mixers import (
        GROUP_CHUNKS,
        chunk_gated_delta_rule,
        recurrent_gated_delta_step,
    )

    torch.manual_seed(0)
    b, heads, dk, dv, chunk = 1, 2, 4, 3, 4
    s = 2 * GROUP_CHUNKS * chunk + 5
    q = torch.nn.functional.normalize(torch.randn(b, heads, s, dk), dim=-1) * dk**-0.5
    k = torch.nn.functional.normalize(torch.randn(b, heads, s, dk), dim=-1)
    v = torch.randn(b, heads, s, dv)
    g = -torch.rand(b, heads, s) * 0.2
    beta = torch.rand(b, heads, s)
    state0 = torch.randn(b, heads, dk, dv) * 0.1
    out, final = chunk_gated_delta_rule(q, k, v, g, beta, chunk, state0)
    state, steps = state0, []
    for t in range(s):
        o, state = recurrent_gated_delta_step(
            q[:, :, t], k[:, :, t], v[:, :, t], g[:, :, t], beta[:, :, t], state
        )
        steps.append(o)
    torch.testing.assert_close(out, torch.stack(steps, dim=2))
    torch.testing.assert_close(final, state)
