"""Records for state-space and recurrent models: Mamba-1, Mamba-2, RWKV-4, and the hybrids
Jamba (Mamba-1 + attention + MoE), Falcon-H1 (attention and Mamba-2 side by side in every
layer) and Granite-4.0-H (Mamba-2 + attention + MoE with a shared MLP).

Defaults are transformers 5.x class defaults (tests/test_hf_records.py checks them).

Only the standard library is imported here.
"""

from __future__ import annotations

import math

from tfcli.hf.reader import Reader
from tfcli.hf.records import (
    Record,
    act,
    dtype_hook,
    fixed,
    key,
    kv_heads_default_to_heads,
    layer_types_hook,
    llama_keys,
    llama_like,
    moe_hook,
    pattern_layer_types,
)
from tfcli.hf.types import put

MAMBA_STRUCTURE = fixed(
    architecture="decoder",
    norm_type="rmsnorm",
    norm_position="pre",
    position_type="none",
    num_heads=1,
    mlp_gated=False,
)
"""MambaBlock: an RMSNorm and the mixer, no MLP (plan: mlp none); norm_f at the end."""


def _dt_rank(r: Reader, name: str) -> None:
    """``time_step_rank: auto`` means ceil(hidden / 16) (MambaConfig, JambaConfig)."""
    value, _found = r.raw(name, "auto")
    if value == "auto":
        rank = math.ceil(r.fields["hidden_size"] / 16)
    else:
        from tfcli.hf.reader import check

        rank = check(r, name, value, "count")
    r.put("ssm_dt_rank", rank, name)


def _inner(
    r: Reader,
    expand_key: str,
    expand: int,
    d_ssm_key: str | None = None,
    d_ssm: int | None = None,
) -> int:
    """The SSM inner width: ``d_ssm_key`` when set (default ``d_ssm``; an explicit null means
    ``expand * hidden_size``, as FalconH1Mixer reads it), else ``expand * hidden_size``."""
    inner = r.get(d_ssm_key, d_ssm, "?count") if d_ssm_key else None
    if inner is None:
        factor = r.get(expand_key, expand, "positive")
        inner = int(factor * r.fields["hidden_size"])
        r.put("ssm_inner_size", inner, expand_key)
    else:
        r.put("ssm_inner_size", inner, d_ssm_key or expand_key)
    r.fields.setdefault("intermediate_size", inner)
    return inner


def _mamba(r: Reader) -> None:
    _inner(r, "expand", 2)
    _dt_rank(r, "time_step_rank")
    r.put("intermediate_size", r.fields["ssm_inner_size"], "expand")


MAMBA = Record(
    "mamba",
    "MambaConfig",
    (
        key("vocab_size", "vocab_size", 50280, "count"),
        key("hidden_size", "hidden_size", 768, "count"),
        key("num_layers", "num_hidden_layers", 32, "layers"),
        key("ssm_state_size", "state_size", 16, "count"),
        key("conv_kernel", "conv_kernel", 4, "count"),
        key("ssm_proj_bias", "use_bias", False, "bool"),
        key("ssm_conv_bias", "use_conv_bias", True, "bool"),
        key("norm_eps", "layer_norm_epsilon", 1e-5, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", True, "bool"),
    ),
    fixed={**MAMBA_STRUCTURE, "mixer": "mamba"},
    hooks=(_mamba, act("hidden_act", "silu"), dtype_hook),
)
"""MambaConfig (state-spaces/mamba-*-hf): MambaMixer in every block."""


def _mamba2(r: Reader) -> None:
    inner = _inner(r, "expand", 2)
    heads = r.fields["ssm_num_heads"]
    head_dim = r.get("head_dim", 64, "count")
    if heads * head_dim != inner:
        raise r.fail(
            "head_dim", head_dim, f"num_heads x head_dim must equal expand x hidden ({inner})"
        )
    r.put("intermediate_size", inner, "expand")


MAMBA2 = Record(
    "mamba2",
    "Mamba2Config",
    (
        key("ssm_num_heads", "num_heads", 128, "count"),
        key("vocab_size", "vocab_size", 32768, "count"),
        key("hidden_size", "hidden_size", 4096, "count"),
        key("num_layers", "num_hidden_layers", 64, "layers"),
        key("ssm_state_size", "state_size", 128, "count"),
        key("conv_kernel", "conv_kernel", 4, "count"),
        key("ssm_groups", "n_groups", 8, "count"),
        key("ssm_proj_bias", "use_bias", False, "bool"),
        key("ssm_conv_bias", "use_conv_bias", True, "bool"),
        key("ssm_chunk_size", "chunk_size", 256, "count"),
        key("norm_eps", "layer_norm_epsilon", 1e-5, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", False, "bool"),
    ),
    fixed={**MAMBA_STRUCTURE, "mixer": "mamba2", "ssm_gated_norm": True},
    hooks=(_mamba2, act("hidden_act", "silu"), dtype_hook),
)
"""Mamba2Config (mamba-codestral, Mamba-2 checkpoints): Mamba2Mixer in every block, with a
gated RMSNorm over d_inner; reference chunked scan of chunk_size."""


def _rwkv(r: Reader) -> None:
    hidden = r.fields["hidden_size"]
    attention = r.get("attention_hidden_size", None, "?count")
    if attention is not None and attention != hidden:
        r.put("rwkv_attention_size", attention, "attention_hidden_size")
    inner = r.get("intermediate_size", None, "?count")
    r.put("intermediate_size", inner or 4 * hidden, "intermediate_size")


RWKV = Record(
    "rwkv",
    "RwkvConfig",
    (
        key("vocab_size", "vocab_size", 50277, "count"),
        key("max_position_embeddings", "context_length", 1024, "?count"),
        key("hidden_size", "hidden_size", 4096, "count"),
        key("num_layers", "num_hidden_layers", 32, "layers"),
        key("norm_eps", "layer_norm_epsilon", 1e-5, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", False, "bool"),
    ),
    fixed=fixed(
        architecture="decoder",
        mixer="rwkv",
        num_heads=1,
        norm_type="layernorm",
        norm_bias=True,
        norm_position="pre",
        position_type="none",
        embedding_norm=True,
        mlp_gated=False,
        activation="relu",
    ),
    hooks=(_rwkv, dtype_hook),
)
"""RwkvConfig (RWKV-4): time mixing and channel mixing (squared ReLU) per block, LayerNorms
ln1 and ln2 with bias, block 0's pre_ln (the embedding norm), ln_out."""


def _jamba(r: Reader) -> None:
    layers = r.fields["num_layers"]
    r.take("ssm_state_size", "mamba_d_state", 16, "count")
    r.take("conv_kernel", "mamba_d_conv", 4, "count")
    _inner(r, "mamba_expand", 2)
    r.put("intermediate_size", r.fields.get("intermediate_size"), "intermediate_size")
    _dt_rank(r, "mamba_dt_rank")
    r.take("ssm_conv_bias", "mamba_conv_bias", True, "bool")
    r.take("ssm_proj_bias", "mamba_proj_bias", False, "bool")
    r.put("ssm_dt_norms", True)
    attn_period = r.get("attn_layer_period", 8, "count")
    attn_offset = r.get("attn_layer_offset", 4, "natural")
    pattern_layer_types(
        r,
        lambda i: "full" if i % attn_period == attn_offset else "mamba",
        ("attn_layer_period", "attn_layer_offset"),
    )
    expert_period = r.get("expert_layer_period", 2, "count")
    expert_offset = r.get("expert_layer_offset", 1, "natural")
    kinds = tuple("moe" if i % expert_period == expert_offset else "dense" for i in range(layers))
    r.put("mlp_layer_types", kinds, "expert_layer_period", "expert_layer_offset")
    r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")


JAMBA = Record(
    "jamba",
    "JambaConfig",
    (
        *llama_keys(
            vocab=65536,
            hidden=4096,
            layers=32,
            heads=32,
            kv=8,
            intermediate=14336,
            positions=262144,
            tied=False,
            bias=None,
            mlp_bias=None,
            with_head_dim=False,
        ),
    ),
    fixed=fixed(
        architecture="decoder",
        mlp_gated=True,
        norm_type="rmsnorm",
        norm_position="pre",
        position_type="none",
        norm_topk_prob=False,
    ),
    hooks=(
        kv_heads_default_to_heads,
        moe_hook(("num_experts",), 16, ("num_experts_per_tok",), 2),
        _jamba,
        act("hidden_act", "silu"),
        dtype_hook,
    ),
)
"""JambaConfig (Jamba-v0.1, Jamba-1.5-Mini/Large): attention every attn_layer_period layers
(at attn_layer_offset), Mamba-1 (with dt/B/C RMSNorms) elsewhere; MoE every
expert_layer_period layers (at expert_layer_offset), its top-k softmax weights left
unnormalised (JambaTopKRouter); no positional encoding."""


def _mamba2_keys(
    r: Reader, *, expand: int, d_ssm_key: str | None, d_ssm: int | None = None
) -> None:
    """Falcon-H1 / Granite-4.0-H ``mamba_*`` keys (``mamba_d_head: auto`` = d_inner / heads)."""
    inner = _inner(r, "mamba_expand", expand, d_ssm_key, d_ssm)
    heads = r.get("mamba_n_heads", 128, "count")
    r.put("ssm_num_heads", heads, "mamba_n_heads")
    head, _found = r.raw("mamba_d_head", "auto")
    if head != "auto":
        from tfcli.hf.reader import check

        head = check(r, "mamba_d_head", head, "count")
        if head * heads != inner:
            raise r.fail("mamba_d_head", head, f"x mamba_n_heads must equal d_inner ({inner})")
    r.take("ssm_groups", "mamba_n_groups", 1, "count")
    r.take("ssm_state_size", "mamba_d_state", 256, "count")
    r.take("conv_kernel", "mamba_d_conv", 4, "count")
    r.take("ssm_chunk_size", "mamba_chunk_size", 256, "count")
    r.take("ssm_conv_bias", "mamba_conv_bias", True, "bool")
    r.take("ssm_proj_bias", "mamba_proj_bias", False, "bool")


def _falcon_h1(r: Reader) -> None:
    _mamba2_keys(r, expand=2, d_ssm_key="mamba_d_ssm", d_ssm=1024)
    r.take("ssm_gated_norm", "mamba_rms_norm", False, "bool")
    out = r.get("projectors_bias", False, "bool")
    if out != r.fields["ssm_proj_bias"]:
        r.put("ssm_out_proj_bias", out, "projectors_bias")
    r.put("parallel_ssm", True)


FALCON_H1 = llama_like(
    "falcon_h1",
    "FalconH1Config",
    llama_keys(
        vocab=128000,
        hidden=4096,
        layers=32,
        heads=32,
        kv=8,
        intermediate=14336,
        positions=8192,
        tied=False,
        eps=1e-5,
    ),
    _falcon_h1,
    window=None,
)
"""FalconH1Config: every layer runs attention and a Mamba-2 mixer side by side on the same
normed input (their sum joins the residual), then a gated MLP; the mixer's gated RMSNorm only
with mamba_rms_norm; multipliers scale activations, not shapes."""


def _granite_hybrid(r: Reader) -> None:
    _mamba2_keys(r, expand=2, d_ssm_key=None)
    r.put("ssm_gated_norm", True)
    shared = r.get("shared_intermediate_size", 1024, "count")
    experts = r.get("num_local_experts", 8, "natural")
    if experts:
        r.put("num_experts", experts, "num_local_experts")
        r.take("num_experts_per_token", "num_experts_per_tok", 2, "count")
        r.put("moe_intermediate_size", r.fields["intermediate_size"], "intermediate_size")
        r.put("shared_expert_intermediate_size", shared, "shared_intermediate_size")
        r.put("num_shared_experts", 1, "shared_intermediate_size")
    else:
        r.put("intermediate_size", shared, "shared_intermediate_size", "num_local_experts")
    layer_types_hook("mamba2", only_if_mixed=False)(r)
    if "layer_types" not in r.fields:
        r.put("mixer", "mamba2", "layer_types")
    position = r.get("position_embedding_type", None, "?str")
    r.put("position_type", "rope" if position == "rope" else "none", "position_embedding_type")


GRANITEMOEHYBRID = llama_like(
    "granitemoehybrid",
    "GraniteMoeHybridConfig",
    llama_keys(
        vocab=32000,
        hidden=4096,
        layers=32,
        heads=32,
        kv=None,
        intermediate=11008,
        positions=2048,
        tied=False,
        mlp_bias=None,
        with_head_dim=False,
    ),
    _granite_hybrid,
    window=None,
)
"""GraniteMoeHybridConfig (Granite-4.0-H): Mamba-2 or attention per layer (layer_types), a
MoE of num_local_experts experts plus an always-on gated shared MLP of
shared_intermediate_size (only the shared MLP without experts); RoPE only with
position_embedding_type rope."""

RECORDS_SSM: tuple[Record, ...] = (MAMBA, MAMBA2, RWKV, JAMBA, FALCON_H1, GRANITEMOEHYBRID)
_ = put
