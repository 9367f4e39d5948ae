"""Records for the encoders with their own attention: DeBERTa-v2/v3 (disentangled attention),
ModernBERT (global/local alternation), Longformer (local window + global tokens) and BigBird
(block-sparse attention). See ``tfcli.hf.records`` for what a record is.

Defaults are the transformers 5.x class defaults (``configuration_*.py``); keys a modeling file
reads with ``getattr(config, name, default)`` but that the config class does not declare
(DeBERTa's ``position_buckets``, ``share_att_key``, ``norm_rel_ebd``, ``conv_kernel_size``,
ModernBERT's legacy ``global_rope_theta``) are read in hooks with the modeling file's default.
The structure is read off each ``modeling_*.py``; every encoder is counted as ``AutoModel``
(with the pooler where the base model has one: Longformer, BigBird).

Only the standard library is imported here.
"""

from __future__ import annotations

from tfcli.hf.reader import Reader, check
from tfcli.hf.records import (
    ACTIVATIONS,
    Record,
    act,
    dtype_hook,
    fixed,
    key,
    layer_types_hook,
    pattern_layer_types,
    rope_hook,
)

ENCODER = fixed(
    architecture="encoder",
    lm_head=False,
    tie_word_embeddings=True,
)


def _bert_like_keys(
    vocab: int,
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    positions: int,
    types: int,
    eps: float,
) -> tuple:
    return (
        key("vocab_size", "vocab_size", vocab, "count"),
        key("hidden_size", "hidden_size", hidden, "count"),
        key("num_layers", "num_hidden_layers", layers, "layers"),
        key("num_heads", "num_attention_heads", heads, "count"),
        key("intermediate_size", "intermediate_size", intermediate, "count"),
        key("max_position_embeddings", "max_position_embeddings", positions, "?count"),
        key("type_vocab_size", "type_vocab_size", types, "natural"),
        key("norm_eps", "layer_norm_eps", eps, "positive"),
    )


POST_LN_BLOCK = fixed(
    attention_qkv_bias=True,
    attention_out_bias=True,
    mlp_bias=True,
    mlp_gated=False,
    norm_type="layernorm",
    norm_bias=True,
    norm_position="post",
    final_norm=False,
    embedding_norm=True,
)
"""BERT's block: q/k/v/o and MLP with biases, post-LN with bias, an embedding LayerNorm."""


def _heads_divide_hidden(r: Reader) -> None:
    hidden, heads = r.fields["hidden_size"], r.fields["num_heads"]
    if hidden % heads:
        raise r.fail("num_attention_heads", heads, f"does not divide hidden_size={hidden}")


# ---- DeBERTa-v2 / v3 ---------------------------------------------------------------------------


def deberta_structure(r: Reader) -> None:
    """DebertaV2Model (modeling_deberta_v2.py).

    ``relative_attention``: DisentangledSelfAttention adds the c2p / p2c terms of
    ``pos_att_type`` over ``rel_embeddings`` of ``2k`` rows, k = ``position_buckets`` if > 0,
    else ``max_relative_positions`` if >= 1, else ``max_position_embeddings``; distances
    beyond k / 2 are log-bucketed only with ``position_buckets`` > 0, towards max_position =
    ``max_relative_positions`` if >= 1, else ``max_position_embeddings``;
    ``share_att_key`` (getattr default False) projects them with the content query/key
    projections, else ``pos_key_proj`` (c2p) and ``pos_query_proj`` (p2c) are separate.
    ``norm_rel_ebd`` containing ``layer_norm`` adds a LayerNorm (built even without relative
    attention). ``position_biased_input`` keeps the absolute position table.
    ``conv_kernel_size`` > 0 adds ConvLayer after the first layer (DeBERTa-v2 xlarge), with
    ``conv_act`` (default tanh).
    Without relative attention the content scores are still divided by sqrt(D x (1 + the
    c2p / p2c entries of ``pos_att_type``)) (``DisentangledSelfAttention.forward``): recorded
    as ``attention_scale``.
    """
    _heads_divide_hidden(r)
    hidden, heads = r.fields["hidden_size"], r.fields["num_heads"]
    head_size = r.get("attention_head_size", hidden // heads, "count")
    if head_size != hidden // heads:
        raise r.fail("attention_head_size", head_size, "!= hidden_size / heads is not supported")
    embedding = r.get("embedding_size", hidden, "?count")
    if embedding is not None and embedding != hidden:
        raise r.fail("embedding_size", embedding, "!= hidden_size (embed_proj) is not supported")
    biased = r.take("position_biased_input", "position_biased_input", True, "bool")
    norm_rel = r.get("norm_rel_ebd", "none", "str")
    r.put(
        "relative_embedding_norm",
        "layer_norm" in [x.strip() for x in norm_rel.lower().split("|")],
        "norm_rel_ebd",
    )
    if r.get("relative_attention", False, "bool"):
        buckets = r.get("position_buckets", -1, "int")
        max_relative = r.get("max_relative_positions", -1, "int")
        names: tuple[str, ...]
        if buckets > 0:
            span, names = buckets, ("position_buckets",)
        elif max_relative >= 1:
            span, names = max_relative, ("max_relative_positions",)
        else:
            span = r.fields["max_position_embeddings"]
            names = ("max_relative_positions", "max_position_embeddings")
        if not span:
            raise r.fail("max_position_embeddings", span, "relative attention needs a span")
        r.put("position_type", "disentangled", "relative_attention")
        r.put("relative_position_span", span, *names)
        r.put("relative_position_bucketed", buckets > 0, "position_buckets")
        if buckets > 0 and max_relative >= 1:
            r.put("relative_bucket_max_position", max_relative, "max_relative_positions")
        r.put("disentangled_terms", _pos_att_type(r), "pos_att_type")
        r.put("share_attention_key", r.get("share_att_key", False, "bool"), "share_att_key")
    else:
        r.put("position_type", "learned" if biased else "none", "relative_attention")
        terms = _pos_att_type(r)
        if terms:  # the content scores keep the 1 / sqrt(D (1 + |terms|)) of the terms
            r.put("attention_scale", (head_size * (1 + len(terms))) ** -0.5, "pos_att_type")
    kernel = r.get("conv_kernel_size", 0, "natural")
    if kernel:
        groups = r.get("conv_groups", 1, "count")
        if groups != 1:
            raise r.fail("conv_groups", groups, "grouped ConvLayer is not supported")
        if kernel % 2 == 0:
            raise r.fail("conv_kernel_size", kernel, "an even kernel is not supported")
        r.put("encoder_conv_kernel", kernel, "conv_kernel_size")
        conv_acts = {"tanh": "tanh", **ACTIVATIONS}  # ConvLayer's ACT2FN, tanh by default
        conv_act = r.get("conv_act", "tanh", "str")
        if conv_act not in conv_acts:
            known = ", ".join(sorted(conv_acts))
            raise r.fail("conv_act", conv_act, f"activation not supported ({known})")
        r.put("encoder_conv_activation", conv_acts[conv_act], "conv_act")


def _pos_att_type(r: Reader) -> tuple[str, ...]:
    """``pos_att_type`` as a list or ``"p2c|c2p"`` (DebertaV2Config.__post_init__); the
    modeling code acts on ``c2p`` and ``p2c`` only, in a fixed order."""
    raw = r.get("pos_att_type", None, "any")
    if raw is None:
        return ()
    if isinstance(raw, str):
        entries = [x.strip() for x in raw.lower().split("|")]
    elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        entries = list(raw)
    else:
        raise r.fail("pos_att_type", raw, "expected a list of names or 'p2c|c2p'")
    return tuple(t for t in ("c2p", "p2c") if t in entries)


DEBERTA_V2 = Record(
    "deberta-v2",
    "DebertaV2Config",
    _bert_like_keys(128100, 1536, 24, 24, 6144, 512, 0, 1e-7),
    fixed={**ENCODER, **POST_LN_BLOCK, "pooler": False},
    hooks=(deberta_structure, act("hidden_act", "gelu"), dtype_hook),
)
"""DebertaV2Model: BERT's post-LN blocks with disentangled self-attention; no pooler."""


# ---- ModernBERT --------------------------------------------------------------------------------


def modernbert_structure(r: Reader) -> None:
    """ModernBertModel (modeling_modernbert.py): Wqkv ``h x 3h`` and Wo ``h x h`` with
    ``attention_bias``; Wi ``h x 2f`` (GeGLU input and gate) and Wo ``f x h`` with ``mlp_bias``;
    LayerNorms with ``norm_bias``; layer 0 has no attention norm (``attn_norm`` is Identity);
    an embedding norm and a final norm; no pooler. Layer i is local (sliding) when
    ``i % global_attn_every_n_layers`` (default 3) unless ``layer_types`` is given; local
    layers attend ``|i - j| <= local_attention // 2`` with RoPE base ``local_rope_theta``
    (10000), global layers ``global_rope_theta`` (160000) (``rope_parameters`` per layer kind
    in transformers 5)."""
    _heads_divide_hidden(r)
    bias = r.get("attention_bias", False, "bool")
    r.put("attention_qkv_bias", bias, "attention_bias")
    r.put("attention_out_bias", bias, "attention_bias")
    if r.get("layer_types", None, "?list") is not None:
        layer_types_hook()(r)
    else:
        every = r.get("global_attn_every_n_layers", 3, "count")
        pattern_layer_types(
            r, lambda i: "sliding" if i % every else "full", ("global_attn_every_n_layers",)
        )
    window = r.get("local_attention", 128, "count")
    if "sliding" in (r.fields.get("layer_types") or ()):
        r.put("sliding_window", window, "local_attention")
    if r.has("rope_parameters"):
        rope_hook(160000.0)(r)
        if "rope_local_theta" not in r.fields:
            r.put("rope_local_theta", 10000.0, "rope_parameters")
    else:
        r.take("rope_theta", "global_rope_theta", 160000.0, "positive")
        r.take("rope_local_theta", "local_rope_theta", 10000.0, "positive")
        if r.get("rope_scaling", None, "?dict") is not None:
            raise r.fail("rope_scaling", r.data["rope_scaling"], "is not supported for ModernBERT")
    if r.fields.get("rope_local_theta") == r.fields["rope_theta"]:
        r.fields["rope_local_theta"] = None


MODERNBERT = Record(
    "modernbert",
    "ModernBertConfig",
    (
        key("vocab_size", "vocab_size", 50368, "count"),
        key("hidden_size", "hidden_size", 768, "count"),
        key("num_layers", "num_hidden_layers", 22, "layers"),
        key("num_heads", "num_attention_heads", 12, "count"),
        key("intermediate_size", "intermediate_size", 1152, "count"),
        key("max_position_embeddings", "max_position_embeddings", 8192, "?count"),
        key("norm_eps", "norm_eps", 1e-5, "positive"),
        key("norm_bias", "norm_bias", False, "bool"),
        key("mlp_bias", "mlp_bias", False, "bool"),
    ),
    fixed={
        **ENCODER,
        "mlp_gated": True,
        "norm_type": "layernorm",
        "norm_position": "pre",
        "final_norm": True,
        "embedding_norm": True,
        "first_layer_attention_norm": False,
        "position_type": "rope",
        "type_vocab_size": 0,
        "pooler": False,
    },
    hooks=(modernbert_structure, act("hidden_activation", "gelu"), dtype_hook),
)
"""ModernBertModel: pre-LN GeGLU blocks without biases, alternating global and local
attention with two RoPE bases."""


# ---- Longformer --------------------------------------------------------------------------------

ROBERTA_POSITION_OFFSET = 2
"""RoBERTa-style position ids start at ``padding_idx + 1`` = 2 (pad_token_id 1), so a table
of ``max_position_embeddings`` rows serves ``max_position_embeddings - 2`` tokens."""


def longformer_structure(r: Reader) -> None:
    """LongformerModel (modeling_longformer.py): RoBERTa's embeddings (positions offset by
    ``padding_idx + 1``) and post-LN blocks; LongformerSelfAttention adds query_global,
    key_global and value_global (``h x h`` + bias each); a pooler. ``attention_window`` w (one
    value, or one per layer: they must agree here) is the local window, ``w / 2`` keys each
    side; inputs are padded to a multiple of w."""
    _heads_divide_hidden(r)
    raw = r.get("attention_window", 512, "any")
    layers = r.fields["num_layers"]
    if isinstance(raw, list):
        if len(raw) != layers:
            raise r.fail("attention_window", raw, f"has {len(raw)} entries for {layers} layers")
        if len(set(raw)) != 1:
            raise r.fail("attention_window", raw, "different windows per layer are not supported")
        window = raw[0]
    else:
        window = raw
    window = check(r, "attention_window", window, "count")
    if window % 2:
        raise r.fail("attention_window", window, "must be even (w / 2 keys on each side)")
    r.put("sliding_window", window, "attention_window")
    positions = r.fields["max_position_embeddings"]
    if positions is not None and positions > ROBERTA_POSITION_OFFSET:
        r.put(
            "max_position_embeddings",
            positions - ROBERTA_POSITION_OFFSET,
            "max_position_embeddings",
        )
        r.put("position_offset", ROBERTA_POSITION_OFFSET, "pad_token_id")


LONGFORMER = Record(
    "longformer",
    "LongformerConfig",
    _bert_like_keys(30522, 768, 12, 12, 3072, 512, 2, 1e-12),
    fixed={
        **ENCODER,
        **POST_LN_BLOCK,
        "position_type": "learned",
        "sparse_attention": "longformer",
        "global_attention_projections": True,
        "pooler": True,
    },
    hooks=(longformer_structure, act("hidden_act", "gelu"), dtype_hook),
)
"""LongformerModel: RoBERTa with sliding-window + global attention and global projections."""


# ---- BigBird -----------------------------------------------------------------------------------


def bigbird_structure(r: Reader) -> None:
    """BigBirdModel (modeling_big_bird.py): BERT's embeddings and post-LN blocks, q/k/v biases
    with ``use_bias`` (the output projection always has one), a pooler. ``attention_type``
    ``block_sparse`` (default) uses blocks of ``block_size`` with ``num_random_blocks``;
    ``original_full`` is plain full attention."""
    _heads_divide_hidden(r)
    r.take("attention_qkv_bias", "use_bias", True, "bool")
    kind = r.get("attention_type", "block_sparse", "str")
    if kind not in ("block_sparse", "original_full"):
        raise r.fail("attention_type", kind, "expected block_sparse or original_full")
    if r.get("is_decoder", False, "bool") or r.get("add_cross_attention", False, "bool"):
        raise r.fail("is_decoder", True, "BigBird as a decoder is not supported")
    if kind == "block_sparse":
        r.put("sparse_attention", "bigbird", "attention_type")
        r.take("sparse_block_size", "block_size", 64, "count")
        r.take("sparse_random_blocks", "num_random_blocks", 3, "count")
    else:
        r.put("sparse_attention", "none", "attention_type")
    if r.get("rescale_embeddings", False, "bool"):
        r.put("scale_embeddings", True, "rescale_embeddings")


BIG_BIRD = Record(
    "big_bird",
    "BigBirdConfig",
    _bert_like_keys(50358, 768, 12, 12, 3072, 4096, 2, 1e-12),
    fixed={**ENCODER, **POST_LN_BLOCK, "position_type": "learned", "pooler": True},
    hooks=(bigbird_structure, act("hidden_act", "gelu_new"), dtype_hook),
)
"""BigBirdModel: BERT with block-sparse attention and a pooler."""

ENCODER_RECORDS: tuple[Record, ...] = (DEBERTA_V2, MODERNBERT, LONGFORMER, BIG_BIRD)
