"""Copy a transformers model's weights into the built-in model (for the equivalence tests).

One function per family maps our parameter names to tensors of the transformers state dict
(fused projections are split: GPT-2's Conv1D ``c_attn`` is transposed, GPT-NeoX and BLOOM
interleave q/k/v per head, Falcon groups them per KV head, Phi-3 fuses qkv and gate/up, MPT
stacks q/k/v, transformers-5 MoE experts are stacked ``gate_up_proj`` / ``down_proj``
tensors). Gemma stores RMSNorm weights as ``w`` and multiplies by ``1 + w``: we store
``1 + w``. RoBERTa's position table is rolled by its 2 reserved rows; ModernBERT's fused Wqkv and Wi
are split."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from tfcli.bench.model import Transformer
from tfcli.spec import ModelSpec

StateDict = dict[str, Tensor]


def _linear(out: StateDict, ours: str, sd: StateDict, theirs: str) -> None:
    out[f"{ours}.weight"] = sd[f"{theirs}.weight"]
    if f"{theirs}.bias" in sd:
        out[f"{ours}.bias"] = sd[f"{theirs}.bias"]


def _norm(out: StateDict, ours: str, sd: StateDict, theirs: str, *, plus_one: bool = False) -> None:
    out[f"{ours}.weight"] = sd[f"{theirs}.weight"] + (1.0 if plus_one else 0.0)
    if f"{theirs}.bias" in sd:
        out[f"{ours}.bias"] = sd[f"{theirs}.bias"]


def _split_rows(
    out: StateDict, names: list[str], sd: StateDict, theirs: str, sizes: list[int]
) -> None:
    """Split a fused (sum(sizes), in) weight (and bias) by rows into ``names``."""
    for suffix in ("weight", "bias"):
        key = f"{theirs}.{suffix}"
        if key in sd:
            for name, part in zip(names, sd[key].split(sizes, dim=0), strict=True):
                out[f"{name}.{suffix}"] = part


def _experts(out: StateDict, ours: str, sd: StateDict, theirs: str) -> None:
    """transformers-5 stacked experts: gate_up_proj (E, 2f, h) = [gate; up], down_proj
    (E, h, f); ours are stacked the same way, gate and up apart."""
    gate, up = sd[f"{theirs}.gate_up_proj"].chunk(2, dim=1)  # (E, f, h) each
    out[f"{ours}.gate"], out[f"{ours}.up"] = gate, up
    out[f"{ours}.down"] = sd[f"{theirs}.down_proj"]


def _llama_mlp(out: StateDict, ours: str, sd: StateDict, theirs: str) -> None:
    _linear(out, f"{ours}.gate", sd, f"{theirs}.gate_proj")
    _linear(out, f"{ours}.up", sd, f"{theirs}.up_proj")
    _linear(out, f"{ours}.down", sd, f"{theirs}.down_proj")


def _final_norm_and_head(out: StateDict, spec: ModelSpec, sd: StateDict, norm: str) -> StateDict:
    """The final norm (``norm`` in theirs) and, unless tied, ``lm_head.weight``: the tail of
    most decoder mappings."""
    _norm(out, "final_norms.0", sd, norm)
    if not spec.tie_word_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def map_llama_family(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """llama, mistral, mixtral, qwen2(-moe), qwen3(-moe), gemma*, phi3, deepseek_v2/v3/v32."""
    out: StateDict = {"embed.weight": sd["model.embed_tokens.weight"]}
    gemma = spec.family.startswith("gemma")
    for i in range(layers):
        p, q = f"layers.{i}", f"model.layers.{i}"
        attn = f"{q}.self_attn"
        if spec.is_mla:
            if spec.q_lora_rank:
                _linear(out, f"{p}.attention.q_a", sd, f"{attn}.q_a_proj")
                _norm(out, f"{p}.attention.q_a_norm", sd, f"{attn}.q_a_layernorm")
                _linear(out, f"{p}.attention.q_b", sd, f"{attn}.q_b_proj")
            else:
                _linear(out, f"{p}.attention.q_proj", sd, f"{attn}.q_proj")
            _linear(out, f"{p}.attention.kv_a", sd, f"{attn}.kv_a_proj_with_mqa")
            _norm(out, f"{p}.attention.kv_a_norm", sd, f"{attn}.kv_a_layernorm")
            _linear(out, f"{p}.attention.kv_b", sd, f"{attn}.kv_b_proj")
            if spec.index_num_heads:  # DeepSeek-V3.2's indexer (same names on both sides)
                for name in ("wq_b", "wk", "weights_proj"):
                    _linear(out, f"{p}.attention.indexer.{name}", sd, f"{attn}.indexer.{name}")
                _norm(out, f"{p}.attention.indexer.k_norm", sd, f"{attn}.indexer.k_norm")
        elif f"{attn}.qkv_proj.weight" in sd:  # Phi-3
            q_size = spec.num_heads * spec.resolved_head_dim
            kv_size = spec.kv_heads * spec.resolved_head_dim
            names = [f"{p}.attention.{n}" for n in ("q", "k", "v")]
            _split_rows(out, names, sd, f"{attn}.qkv_proj", [q_size, kv_size, kv_size])
        else:
            for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj")):
                _linear(out, f"{p}.attention.{ours}", sd, f"{attn}.{theirs}")
        _linear(out, f"{p}.attention.o", sd, f"{attn}.o_proj")
        if spec.qk_norm:
            _norm(out, f"{p}.attention.q_norm", sd, f"{attn}.q_norm", plus_one=gemma)
            _norm(out, f"{p}.attention.k_norm", sd, f"{attn}.k_norm", plus_one=gemma)
        mlp = f"{q}.mlp"
        if spec.moe_layer_flags[i]:
            _linear(out, f"{p}.mlp.router", sd, f"{mlp}.gate")
            zeros = torch.zeros(int(spec.num_experts or 0))
            out[f"{p}.mlp.correction_bias"] = sd.get(f"{mlp}.gate.e_score_correction_bias", zeros)
            _experts(out, f"{p}.mlp.experts", sd, f"{mlp}.experts")
            for shared in ("shared_expert", "shared_experts"):
                if f"{mlp}.{shared}.up_proj.weight" in sd:
                    _llama_mlp(out, f"{p}.mlp.shared", sd, f"{mlp}.{shared}")
            if spec.shared_expert_gate:
                _linear(out, f"{p}.mlp.shared_gate", sd, f"{mlp}.shared_expert_gate")
        elif f"{mlp}.gate_up_proj.weight" in sd:  # Phi-3
            width = spec.intermediate_size
            _split_rows(
                out, [f"{p}.mlp.gate", f"{p}.mlp.up"], sd, f"{mlp}.gate_up_proj", [width, width]
            )
            _linear(out, f"{p}.mlp.down", sd, f"{mlp}.down_proj")
        else:
            _llama_mlp(out, f"{p}.mlp", sd, mlp)
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm", plus_one=gemma)
        if spec.norm_position == "sandwich":
            _norm(
                out, f"{p}.post_attention_norm", sd, f"{q}.post_attention_layernorm", plus_one=gemma
            )
            _norm(out, f"{p}.norm2", sd, f"{q}.pre_feedforward_layernorm", plus_one=gemma)
            _norm(out, f"{p}.post_mlp_norm", sd, f"{q}.post_feedforward_layernorm", plus_one=gemma)
        else:
            _norm(out, f"{p}.norm2", sd, f"{q}.post_attention_layernorm", plus_one=gemma)
    _norm(out, "final_norms.0", sd, "model.norm", plus_one=gemma)
    if not spec.tie_word_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def map_gpt2(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """GPT-2: Conv1D weights are (in, out): transpose; c_attn holds q, k, v side by side."""
    h = spec.hidden_size
    out: StateDict = {
        "embed.weight": sd["transformer.wte.weight"],
        "positions.0.weight": sd["transformer.wpe.weight"],
    }
    for i in range(layers):
        p, q = f"layers.{i}", f"transformer.h.{i}"
        for name, part in zip(
            "qkv", sd[f"{q}.attn.c_attn.weight"].t().split(h, dim=0), strict=True
        ):
            out[f"{p}.attention.{name}.weight"] = part
        for name, part in zip("qkv", sd[f"{q}.attn.c_attn.bias"].split(h), strict=True):
            out[f"{p}.attention.{name}.bias"] = part
        out[f"{p}.attention.o.weight"] = sd[f"{q}.attn.c_proj.weight"].t()
        out[f"{p}.attention.o.bias"] = sd[f"{q}.attn.c_proj.bias"]
        out[f"{p}.mlp.up.weight"] = sd[f"{q}.mlp.c_fc.weight"].t()
        out[f"{p}.mlp.up.bias"] = sd[f"{q}.mlp.c_fc.bias"]
        out[f"{p}.mlp.down.weight"] = sd[f"{q}.mlp.c_proj.weight"].t()
        out[f"{p}.mlp.down.bias"] = sd[f"{q}.mlp.c_proj.bias"]
        _norm(out, f"{p}.norm1", sd, f"{q}.ln_1")
        _norm(out, f"{p}.norm2", sd, f"{q}.ln_2")
    _norm(out, "final_norms.0", sd, "transformer.ln_f")
    return out


def _per_head_qkv(out: StateDict, p: str, sd: StateDict, theirs: str, spec: ModelSpec) -> None:
    """GPT-NeoX / BLOOM fused qkv: rows grouped per head as [q_h, k_h, v_h]."""
    heads, d = spec.num_heads, spec.resolved_head_dim
    for suffix in ("weight", "bias"):
        key = f"{theirs}.{suffix}"
        if key not in sd:
            continue
        fused = sd[key].view(heads, 3, d, *sd[key].shape[1:])  # (H, 3, D, [h])
        for j, name in enumerate("qkv"):
            out[f"{p}.attention.{name}.{suffix}"] = fused[:, j].reshape(
                heads * d, *sd[key].shape[1:]
            )


def map_gpt_neox(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    out: StateDict = {"embed.weight": sd["gpt_neox.embed_in.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"gpt_neox.layers.{i}"
        _per_head_qkv(out, p, sd, f"{q}.attention.query_key_value", spec)
        _linear(out, f"{p}.attention.o", sd, f"{q}.attention.dense")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.mlp.dense_h_to_4h")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.mlp.dense_4h_to_h")
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm")
        _norm(out, f"{p}.norm2", sd, f"{q}.post_attention_layernorm")
    _norm(out, "final_norms.0", sd, "gpt_neox.final_layer_norm")
    out["lm_head.weight"] = (
        sd["embed_out.weight"] if "embed_out.weight" in sd else sd["lm_head.weight"]
    )
    return out


def map_bloom(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    out: StateDict = {"embed.weight": sd["transformer.word_embeddings.weight"]}
    _norm(out, "embed_norms.0", sd, "transformer.word_embeddings_layernorm")
    for i in range(layers):
        p, q = f"layers.{i}", f"transformer.h.{i}"
        _per_head_qkv(out, p, sd, f"{q}.self_attention.query_key_value", spec)
        _linear(out, f"{p}.attention.o", sd, f"{q}.self_attention.dense")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.mlp.dense_h_to_4h")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.mlp.dense_4h_to_h")
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm")
        _norm(out, f"{p}.norm2", sd, f"{q}.post_attention_layernorm")
    _norm(out, "final_norms.0", sd, "transformer.ln_f")
    return out


def map_falcon(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """Falcon fused qkv: old multi-query [q (H d), k (d), v (d)]; new architecture grouped per
    KV head as [q x G, k, v]."""
    heads, kv, d = spec.num_heads, spec.kv_heads, spec.resolved_head_dim
    out: StateDict = {"embed.weight": sd["transformer.word_embeddings.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"transformer.h.{i}"
        fused = sd[f"{q}.self_attention.query_key_value.weight"]
        if spec.parallel_norms == 2 or kv not in (1, heads):
            grouped = fused.view(kv, heads // kv + 2, d, -1)  # (KVH, G + 2, D, h)
            out[f"{p}.attention.q.weight"] = grouped[:, :-2].reshape(heads * d, -1)
            out[f"{p}.attention.k.weight"] = grouped[:, -2].reshape(kv * d, -1)
            out[f"{p}.attention.v.weight"] = grouped[:, -1].reshape(kv * d, -1)
        elif kv == 1:
            names = [f"{p}.attention.{n}" for n in "qkv"]
            _split_rows(out, names, sd, f"{q}.self_attention.query_key_value", [heads * d, d, d])
        else:
            _per_head_qkv(out, p, sd, f"{q}.self_attention.query_key_value", spec)
        _linear(out, f"{p}.attention.o", sd, f"{q}.self_attention.dense")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.mlp.dense_h_to_4h")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.mlp.dense_4h_to_h")
        if spec.parallel_residual and spec.parallel_norms == 2:
            _norm(out, f"{p}.norm1", sd, f"{q}.ln_attn")
            _norm(out, f"{p}.norm2", sd, f"{q}.ln_mlp")
        else:
            _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm")
            if not spec.parallel_residual:
                _norm(out, f"{p}.norm2", sd, f"{q}.post_attention_layernorm")
    return _final_norm_and_head(out, spec, sd, "transformer.ln_f")


def map_gptj(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """GPT-J: separate q/k/v/out without bias, one LayerNorm shared by the parallel branches."""
    out: StateDict = {"embed.weight": sd["transformer.wte.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"transformer.h.{i}"
        for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "out_proj")):
            _linear(out, f"{p}.attention.{ours}", sd, f"{q}.attn.{theirs}")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.mlp.fc_in")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.mlp.fc_out")
        _norm(out, f"{p}.norm1", sd, f"{q}.ln_1")
    _norm(out, "final_norms.0", sd, "transformer.ln_f")
    _linear(out, "lm_head", sd, "lm_head")
    return out


def map_opt(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """OPT (pre-LN when do_layer_norm_before): learned positions with 2 reserved rows."""
    d = "model.decoder"
    out: StateDict = {
        "embed.weight": sd[f"{d}.embed_tokens.weight"],
        "positions.0.weight": sd[f"{d}.embed_positions.weight"],
    }
    for i in range(layers):
        p, q = f"layers.{i}", f"{d}.layers.{i}"
        for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "out_proj")):
            _linear(out, f"{p}.attention.{ours}", sd, f"{q}.self_attn.{theirs}")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.fc1")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.fc2")
        _norm(out, f"{p}.norm1", sd, f"{q}.self_attn_layer_norm")
        _norm(out, f"{p}.norm2", sd, f"{q}.final_layer_norm")
    if spec.final_norm:
        _norm(out, "final_norms.0", sd, f"{d}.final_layer_norm")
    if not spec.tie_word_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def map_mpt(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """MPT: fused Wqkv = [q; k; v] by rows, LayerNorms without bias, ALiBi."""
    h = spec.hidden_size
    out: StateDict = {"embed.weight": sd["transformer.wte.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"transformer.blocks.{i}"
        names = [f"{p}.attention.{n}" for n in "qkv"]
        _split_rows(out, names, sd, f"{q}.attn.Wqkv", [h, h, h])
        _linear(out, f"{p}.attention.o", sd, f"{q}.attn.out_proj")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.ffn.up_proj")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.ffn.down_proj")
        _norm(out, f"{p}.norm1", sd, f"{q}.norm_1")
        _norm(out, f"{p}.norm2", sd, f"{q}.norm_2")
    return _final_norm_and_head(out, spec, sd, "transformer.norm_f")


def map_bert(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """BERT and RoBERTa. RoBERTa numbers positions from padding_idx + 1 = 2 (its 514-row table
    reserves rows 0-1): rolling the table by 2 rows puts position i at our row i."""
    positions = sd["embeddings.position_embeddings.weight"]
    if spec.family == "roberta":
        positions = positions.roll(-2, dims=0)  # our row i = their row i + 2
    out: StateDict = {
        "embed.weight": sd["embeddings.word_embeddings.weight"],
        "positions.0.weight": positions,
        "token_types.weight": sd["embeddings.token_type_embeddings.weight"],
    }
    _norm(out, "embed_norms.0", sd, "embeddings.LayerNorm")
    for i in range(layers):
        p, q = f"layers.{i}", f"encoder.layer.{i}"
        for ours, theirs in (("q", "query"), ("k", "key"), ("v", "value")):
            _linear(out, f"{p}.attention.{ours}", sd, f"{q}.attention.self.{theirs}")
        _linear(out, f"{p}.attention.o", sd, f"{q}.attention.output.dense")
        _norm(out, f"{p}.norm1", sd, f"{q}.attention.output.LayerNorm")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.intermediate.dense")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.output.dense")
        _norm(out, f"{p}.norm2", sd, f"{q}.output.LayerNorm")
    if "pooler.dense.weight" in sd:
        _linear(out, "pooler", sd, "pooler.dense")
    return out


def map_longformer(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """LongformerModel: map_bert's RoBERTa layout (its positions need no roll: the spec keeps
    ``position_offset`` 2 and the whole table) plus LongformerSelfAttention's query_global,
    key_global and value_global (tfcli.bench.sparse_attention)."""
    out = map_bert(spec, sd, layers)
    for i in range(layers):
        p, q = f"layers.{i}.attention", f"encoder.layer.{i}.attention.self"
        for ours, theirs in (("q", "query"), ("k", "key"), ("v", "value")):
            _linear(out, f"{p}.{ours}_global", sd, f"{q}.{theirs}_global")
    return out


def map_big_bird(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """BigBirdModel with ``attention_type: original_full`` (block_sparse is refused:
    tfcli.bench.support): BERT's layout (map_bert) with the pooler stored as ``pooler``."""
    out = map_bert(spec, sd, layers)
    if "pooler.weight" in sd:
        _linear(out, "pooler", sd, "pooler")
    return out


def map_deberta_v2(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """DeBERTa-v2/v3: BERT's post-LN block with query_proj / key_proj / value_proj; learned
    absolute positions unless position_biased_input is false; with relative attention the
    encoder's rel_embeddings (+ its LayerNorm, norm_rel_ebd) and, without share_att_key, each
    layer's pos_key_proj (c2p) / pos_query_proj (p2c); no token types (type_vocab_size 0);
    the ConvLayer's conv and LayerNorm (encoder.conv)."""
    out: StateDict = {"embed.weight": sd["embeddings.word_embeddings.weight"]}
    if "embeddings.position_embeddings.weight" in sd:
        out["positions.0.weight"] = sd["embeddings.position_embeddings.weight"]
    if "embeddings.token_type_embeddings.weight" in sd:
        out["token_types.weight"] = sd["embeddings.token_type_embeddings.weight"]
    _norm(out, "embed_norms.0", sd, "embeddings.LayerNorm")
    if "encoder.rel_embeddings.weight" in sd:
        out["relative_embeddings.table.weight"] = sd["encoder.rel_embeddings.weight"]
    if spec.relative_embedding_norm:
        _norm(out, "relative_embeddings.norm", sd, "encoder.LayerNorm")
    if spec.encoder_conv_kernel:
        _linear(out, "encoder_conv.conv", sd, "encoder.conv.conv")
        _norm(out, "encoder_conv.norm", sd, "encoder.conv.LayerNorm")
    for i in range(layers):
        p, q = f"layers.{i}", f"encoder.layer.{i}"
        for ours in "qkv":
            theirs = {"q": "query", "k": "key", "v": "value"}[ours]
            _linear(out, f"{p}.attention.{ours}", sd, f"{q}.attention.self.{theirs}_proj")
        for ours, theirs in (("pos_k", "pos_key_proj"), ("pos_q", "pos_query_proj")):
            if f"{q}.attention.self.{theirs}.weight" in sd:
                _linear(
                    out, f"{p}.attention.disentangled.{ours}", sd, f"{q}.attention.self.{theirs}"
                )
        _linear(out, f"{p}.attention.o", sd, f"{q}.attention.output.dense")
        _norm(out, f"{p}.norm1", sd, f"{q}.attention.output.LayerNorm")
        _linear(out, f"{p}.mlp.up", sd, f"{q}.intermediate.dense")
        _linear(out, f"{p}.mlp.down", sd, f"{q}.output.dense")
        _norm(out, f"{p}.norm2", sd, f"{q}.output.LayerNorm")
    return out


def map_modernbert(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """ModernBERT: Wqkv stacks q, k, v by rows; Wi stacks the GeGLU input (activated: our
    gate) and the multiplier (our up); layer 0 has no attention norm."""
    h, f = spec.hidden_size, spec.intermediate_size
    out: StateDict = {"embed.weight": sd["embeddings.tok_embeddings.weight"]}
    _norm(out, "embed_norms.0", sd, "embeddings.norm")
    for i in range(layers):
        p, q = f"layers.{i}", f"layers.{i}"
        if f"{q}.attn_norm.weight" in sd:
            _norm(out, f"{p}.norm1", sd, f"{q}.attn_norm")
        names = [f"{p}.attention.{x}" for x in ("q", "k", "v")]
        _split_rows(out, names, sd, f"{q}.attn.Wqkv", [h, h, h])
        _linear(out, f"{p}.attention.o", sd, f"{q}.attn.Wo")
        _norm(out, f"{p}.norm2", sd, f"{q}.mlp_norm")
        _split_rows(out, [f"{p}.mlp.gate", f"{p}.mlp.up"], sd, f"{q}.mlp.Wi", [f, f])
        _linear(out, f"{p}.mlp.down", sd, f"{q}.mlp.Wo")
    _norm(out, "final_norms.0", sd, "final_norm")
    return out


def map_t5(spec: ModelSpec, sd: StateDict, layers: int, encoder_layers: int) -> StateDict:
    """T5: ``encoder_layers`` encoder blocks and ``layers`` decoder blocks (the depths may
    differ: ``num_layers`` vs ``num_decoder_layers``)."""
    out: StateDict = {"embed.weight": sd["shared.weight"]}
    out["relative.0.embedding.weight"] = sd[
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    ]
    out["relative.1.embedding.weight"] = sd[
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    ]

    def mlp(p: str, theirs: str) -> None:
        if spec.mlp_gated:
            _linear(out, f"{p}.mlp.gate", sd, f"{theirs}.wi_0")
            _linear(out, f"{p}.mlp.up", sd, f"{theirs}.wi_1")
        else:
            _linear(out, f"{p}.mlp.up", sd, f"{theirs}.wi")
        _linear(out, f"{p}.mlp.down", sd, f"{theirs}.wo")

    def attention(p: str, theirs: str) -> None:
        for name in "qkvo":
            _linear(out, f"{p}.{name}", sd, f"{theirs}.{name}")

    for i in range(encoder_layers):
        p, q = f"encoder_layers.{i}", f"encoder.block.{i}"
        attention(f"{p}.attention", f"{q}.layer.0.SelfAttention")
        _norm(out, f"{p}.norm1", sd, f"{q}.layer.0.layer_norm")
        mlp(p, f"{q}.layer.1.DenseReluDense")
        _norm(out, f"{p}.norm2", sd, f"{q}.layer.1.layer_norm")
    for i in range(layers):
        p, q = f"layers.{i}", f"decoder.block.{i}"
        attention(f"{p}.attention", f"{q}.layer.0.SelfAttention")
        _norm(out, f"{p}.norm1", sd, f"{q}.layer.0.layer_norm")
        attention(f"{p}.cross_attention", f"{q}.layer.1.EncDecAttention")
        _norm(out, f"{p}.cross_norm", sd, f"{q}.layer.1.layer_norm")
        mlp(p, f"{q}.layer.2.DenseReluDense")
        _norm(out, f"{p}.norm2", sd, f"{q}.layer.2.layer_norm")
    _norm(out, "final_norms.0", sd, "encoder.final_layer_norm")
    _norm(out, "final_norms.1", sd, "decoder.final_layer_norm")
    if not spec.tie_word_embeddings:  # T5 v1.1: its own LM head, no d_model^-0.5 rescale
        out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def map_bart(spec: ModelSpec, sd: StateDict, layers: int, encoder_layers: int) -> StateDict:
    """BART: ``encoder_layers`` encoder and ``layers`` decoder layers (distilbart-12-6 has 12
    and 6), learned positions with 2 reserved rows per stack."""
    out: StateDict = {"embed.weight": sd["model.shared.weight"]}
    for stack, name in ((0, "encoder"), (1, "decoder")):
        out[f"positions.{stack}.weight"] = sd[f"model.{name}.embed_positions.weight"]
        _norm(out, f"embed_norms.{stack}", sd, f"model.{name}.layernorm_embedding")

    def attention(p: str, theirs: str) -> None:
        for ours, their in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "out_proj")):
            _linear(out, f"{p}.{ours}", sd, f"{theirs}.{their}")

    for ours, name, depth in (
        ("encoder_layers", "encoder", encoder_layers),
        ("layers", "decoder", layers),
    ):
        for i in range(depth):
            p, q = f"{ours}.{i}", f"model.{name}.layers.{i}"
            attention(f"{p}.attention", f"{q}.self_attn")
            _norm(out, f"{p}.norm1", sd, f"{q}.self_attn_layer_norm")
            _linear(out, f"{p}.mlp.up", sd, f"{q}.fc1")
            _linear(out, f"{p}.mlp.down", sd, f"{q}.fc2")
            _norm(out, f"{p}.norm2", sd, f"{q}.final_layer_norm")
            if name == "decoder":
                attention(f"{p}.cross_attention", f"{q}.encoder_attn")
                _norm(out, f"{p}.cross_norm", sd, f"{q}.encoder_attn_layer_norm")
    return out


# ---- state-mixer families: the mixer's tensors keep transformers' names -----------------------


def _mixer(out: StateDict, ours: str, sd: StateDict, theirs: str) -> None:
    """Every tensor under ``theirs.`` (a Mamba / DeltaNet / RWKV mixer) to ``ours.``: the
    modules of tfcli.bench.state_mixers use transformers' parameter names."""
    prefix = f"{theirs}."
    for key, tensor in sd.items():
        if key.startswith(prefix):
            out[f"{ours}.{key[len(prefix) :]}"] = tensor


def _hybrid_layer(
    out: StateDict, spec: ModelSpec, i: int, sd: StateDict, q: str, mixers: dict[str, str]
) -> None:
    """The token mixer of hybrid layer ``i``: attention (q/k/v/o) or the state mixer found
    under ``q.<mixers[kind]>``."""
    p, kind = f"layers.{i}", spec.layer_kinds[i]
    if kind in mixers:
        _mixer(out, f"{p}.mixer", sd, f"{q}.{mixers[kind]}")
        return
    attn = f"{q}.self_attn"
    for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
        _linear(out, f"{p}.attention.{ours}", sd, f"{attn}.{theirs}")
    if spec.qk_norm:
        plus_one = spec.family == "qwen3_next"
        _norm(out, f"{p}.attention.q_norm", sd, f"{attn}.q_norm", plus_one=plus_one)
        _norm(out, f"{p}.attention.k_norm", sd, f"{attn}.k_norm", plus_one=plus_one)


def map_mamba(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """Mamba-1 / Mamba-2 (MambaForCausalLM, Mamba2ForCausalLM): backbone.layers.i.norm and
    .mixer, backbone.norm_f; no MLP."""
    out: StateDict = {"embed.weight": sd["backbone.embeddings.weight"]}
    for i in range(layers):
        q = f"backbone.layers.{i}"
        _mixer(out, f"layers.{i}.mixer", sd, f"{q}.mixer")
        _norm(out, f"layers.{i}.norm1", sd, f"{q}.norm")
    return _final_norm_and_head(out, spec, sd, "backbone.norm_f")


def _router_moe(out: StateDict, p: str, sd: StateDict, theirs: str, router: str) -> None:
    """A routed MoE with stacked experts; the router weight at ``theirs.router``."""
    out[f"{p}.mlp.router.weight"] = sd[f"{theirs}.{router}.weight"]
    out[f"{p}.mlp.correction_bias"] = torch.zeros(sd[f"{theirs}.{router}.weight"].shape[0])
    _experts(out, f"{p}.mlp.experts", sd, f"{theirs}.experts")


def map_jamba(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """Jamba: attention or JambaMambaMixer (``mamba``), feed_forward a gated MLP or a MoE
    (router + stacked experts); input_layernorm and pre_ff_layernorm; final_layernorm."""
    out: StateDict = {"embed.weight": sd["model.embed_tokens.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"model.layers.{i}"
        _hybrid_layer(out, spec, i, sd, q, {"mamba": "mamba"})
        if spec.moe_layer_flags[i]:
            _router_moe(out, p, sd, f"{q}.feed_forward", "router")
        else:
            _llama_mlp(out, f"{p}.mlp", sd, f"{q}.feed_forward")
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm")
        _norm(out, f"{p}.norm2", sd, f"{q}.pre_ff_layernorm")
    return _final_norm_and_head(out, spec, sd, "model.final_layernorm")


def map_falcon_h1(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """Falcon-H1: every layer has self_attn and its parallel Mamba-2 (``mamba``, our
    ``ssm``), a gated feed_forward, input_layernorm and pre_ff_layernorm; final_layernorm."""
    out: StateDict = {"embed.weight": sd["model.embed_tokens.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"model.layers.{i}"
        _hybrid_layer(out, spec, i, sd, q, {})
        _mixer(out, f"{p}.ssm", sd, f"{q}.mamba")
        _llama_mlp(out, f"{p}.mlp", sd, f"{q}.feed_forward")
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm")
        _norm(out, f"{p}.norm2", sd, f"{q}.pre_ff_layernorm")
    return _final_norm_and_head(out, spec, sd, "model.final_layernorm")


def map_granitemoehybrid(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """Granite-4.0-H: attention or Mamba-2 (``mamba``); block_sparse_moe (router + stacked
    experts) beside shared_mlp, whose input_linear stacks [gate; up] by rows."""
    out: StateDict = {"embed.weight": sd["model.embed_tokens.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"model.layers.{i}"
        _hybrid_layer(out, spec, i, sd, q, {"mamba2": "mamba"})
        shared = f"{p}.mlp.shared" if spec.moe_layer_flags[i] else f"{p}.mlp"
        if spec.moe_layer_flags[i]:
            _router_moe(out, p, sd, f"{q}.block_sparse_moe", "router")
        width = sd[f"{q}.shared_mlp.output_linear.weight"].shape[1]
        _split_rows(
            out, [f"{shared}.gate", f"{shared}.up"], sd, f"{q}.shared_mlp.input_linear", [width] * 2
        )
        _linear(out, f"{shared}.down", sd, f"{q}.shared_mlp.output_linear")
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm")
        _norm(out, f"{p}.norm2", sd, f"{q}.post_attention_layernorm")
    return _final_norm_and_head(out, spec, sd, "model.norm")


def map_qwen3_next(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """Qwen3-Next: Gated DeltaNet (``linear_attn``) or gated attention; Qwen-MoE MLPs; its
    decoder norms multiply by ``1 + w`` (stored ``1 + w`` here; the DeltaNet's gated norm is
    a plain ``w``)."""
    out: StateDict = {"embed.weight": sd["model.embed_tokens.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"model.layers.{i}"
        _hybrid_layer(out, spec, i, sd, q, {"gated_deltanet": "linear_attn"})
        mlp = f"{q}.mlp"
        if spec.moe_layer_flags[i]:
            _router_moe(out, p, sd, mlp, "gate")
            _llama_mlp(out, f"{p}.mlp.shared", sd, f"{mlp}.shared_expert")
            _linear(out, f"{p}.mlp.shared_gate", sd, f"{mlp}.shared_expert_gate")
        else:
            _llama_mlp(out, f"{p}.mlp", sd, mlp)
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm", plus_one=True)
        _norm(out, f"{p}.norm2", sd, f"{q}.post_attention_layernorm", plus_one=True)
    _norm(out, "final_norms.0", sd, "model.norm", plus_one=True)
    if not spec.tie_word_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def map_minimax(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """MiniMax: self_attn is MiniMaxLightningAttention (qkv_proj, norm, output_gate,
    out_proj; its persistent decay buffers are not copied: ours are recomputed) or softmax
    attention (q/k/v/o); mlp a MoE in every layer (gate + stacked experts);
    input_layernorm, post_attention_layernorm; model.norm."""
    out: StateDict = {"embed.weight": sd["model.embed_tokens.weight"]}
    for i in range(layers):
        p, q = f"layers.{i}", f"model.layers.{i}"
        if spec.layer_kinds[i] == "lightning":
            for name in ("qkv_proj", "output_gate", "out_proj"):
                _linear(out, f"{p}.mixer.{name}", sd, f"{q}.self_attn.{name}")
            _norm(out, f"{p}.mixer.norm", sd, f"{q}.self_attn.norm")
        else:
            _hybrid_layer(out, spec, i, sd, q, {})
        if spec.moe_layer_flags[i]:
            _router_moe(out, p, sd, f"{q}.mlp", "gate")
        else:
            _llama_mlp(out, f"{p}.mlp", sd, f"{q}.mlp")
        _norm(out, f"{p}.norm1", sd, f"{q}.input_layernorm")
        _norm(out, f"{p}.norm2", sd, f"{q}.post_attention_layernorm")
    return _final_norm_and_head(out, spec, sd, "model.norm")


def map_rwkv(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """RWKV-4: block 0's pre_ln is the embedding norm; ln1 / attention (time mixing), ln2 /
    feed_forward (channel mixing, our MLP); ln_out; the head."""
    out: StateDict = {"embed.weight": sd["rwkv.embeddings.weight"]}
    _norm(out, "embed_norms.0", sd, "rwkv.blocks.0.pre_ln")
    for i in range(layers):
        p, q = f"layers.{i}", f"rwkv.blocks.{i}"
        _mixer(out, f"{p}.mixer", sd, f"{q}.attention")
        _mixer(out, f"{p}.mlp", sd, f"{q}.feed_forward")
        _norm(out, f"{p}.norm1", sd, f"{q}.ln1")
        _norm(out, f"{p}.norm2", sd, f"{q}.ln2")
    _norm(out, "final_norms.0", sd, "rwkv.ln_out")
    if not spec.tie_word_embeddings:
        out["lm_head.weight"] = sd["head.weight"]
    return out


def _experts_2025(out: StateDict, ours: str, sd: StateDict, theirs: str, spec: ModelSpec) -> None:
    """Stacked experts of the 2025 layouts into ours (gate, up (E, f, h), down (E, h, f)):

    * gpt-oss (GptOssExperts): gate_up_proj (E, h, 2f) transposed with gate and up
      interleaved column by column (gate = [..., ::2], up = [..., 1::2]), its bias (E, 2f)
      the same way; down_proj (E, f, h) transposed, down_proj_bias (E, h);
    * Llama 4 (Llama4TextExperts): gate_up_proj (E, h, 2f) transposed, [gate | up] halves;
      down_proj (E, f, h) transposed;
    * the others (transformers-5 ``_experts``): gate_up_proj (E, 2f, h) = [gate; up].
    """
    if spec.family == "gpt_oss":
        fused = sd[f"{theirs}.gate_up_proj"]  # (E, h, 2f)
        out[f"{ours}.gate"] = fused[..., ::2].transpose(1, 2)
        out[f"{ours}.up"] = fused[..., 1::2].transpose(1, 2)
        bias = sd[f"{theirs}.gate_up_proj_bias"]  # (E, 2f)
        out[f"{ours}.gate_bias"], out[f"{ours}.up_bias"] = bias[..., ::2], bias[..., 1::2]
        out[f"{ours}.down"] = sd[f"{theirs}.down_proj"].transpose(1, 2)
        out[f"{ours}.down_bias"] = sd[f"{theirs}.down_proj_bias"]
    elif spec.family == "llama4_text":
        gate, up = sd[f"{theirs}.gate_up_proj"].chunk(2, dim=-1)  # (E, h, f) each
        out[f"{ours}.gate"], out[f"{ours}.up"] = gate.transpose(1, 2), up.transpose(1, 2)
        out[f"{ours}.down"] = sd[f"{theirs}.down_proj"].transpose(1, 2)
    else:
        _experts(out, ours, sd, theirs)


def map_decoder_2025(spec: ModelSpec, sd: StateDict, layers: int) -> StateDict:
    """gpt-oss, Llama 4 (text), OLMo / OLMo-2 / OLMoE, SmolLM3, EXAONE-4, Cohere / Cohere-2,
    Starcoder2, Granite / GraniteMoE, GLM-4.5 MoE, PhiMoE, ERNIE-4.5 MoE, Qwen3-Next's
    attention layers: Llama's names with

    * gpt-oss ``self_attn.sinks`` (H,), ``mlp.router`` (with bias), biased stacked experts;
    * Llama 4's ``feed_forward`` (``router``, ``experts``, ``shared_expert``; dense layers its
      gate/up/down);
    * OLMo-2's ``post_attention_layernorm`` / ``post_feedforward_layernorm`` on the sublayer
      outputs (no input norms) and q/k norms over all heads;
    * OLMo's non-parametric norms (nothing to copy);
    * the routing correction bias: GLM-4.5's buffer ``gate.e_score_correction_bias``,
      ERNIE-4.5's parameter ``gate.moe_statics.e_score_correction_bias`` (1, E);
    * Qwen3-Next's (1 + w) RMSNorms (stored as 1 + w, like Gemma's);
    * GraniteMoE's ``block_sparse_moe``, Starcoder2's ``mlp.c_fc`` / ``mlp.c_proj``, Cohere's
      single ``input_layernorm`` of its parallel block and per-head q/k norm weights (H, d).
    """
    out: StateDict = {"embed.weight": sd["model.embed_tokens.weight"]}
    plus_one = spec.family == "qwen3_next"
    norm = lambda ours, theirs: _norm(out, ours, sd, theirs, plus_one=plus_one)  # noqa: E731
    affine = spec.norm_affine
    for i in range(layers):
        p, q = f"layers.{i}", f"model.layers.{i}"
        attn = f"{q}.self_attn"
        for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
            _linear(out, f"{p}.attention.{ours}", sd, f"{attn}.{theirs}")
        if spec.qk_norm:
            norm(f"{p}.attention.q_norm", f"{attn}.q_norm")
            norm(f"{p}.attention.k_norm", f"{attn}.k_norm")
        if spec.attention_sinks:
            out[f"{p}.attention.sinks"] = sd[f"{attn}.sinks"]
        mlp = {"llama4_text": f"{q}.feed_forward", "granitemoe": f"{q}.block_sparse_moe"}.get(
            spec.family, f"{q}.mlp"
        )
        if spec.moe_layer_flags[i]:
            router = f"{mlp}.router" if f"{mlp}.router.weight" in sd else f"{mlp}.gate"
            _linear(out, f"{p}.mlp.router", sd, router)
            experts = int(spec.num_experts or 0)
            bias = sd.get(f"{router}.e_score_correction_bias", torch.zeros(experts))
            bias = sd.get(f"{router}.moe_statics.e_score_correction_bias", bias)
            out[f"{p}.mlp.correction_bias"] = bias.reshape(experts)
            _experts_2025(out, f"{p}.mlp.experts", sd, f"{mlp}.experts", spec)
            for shared in ("shared_expert", "shared_experts"):
                if f"{mlp}.{shared}.up_proj.weight" in sd:
                    _llama_mlp(out, f"{p}.mlp.shared", sd, f"{mlp}.{shared}")
            if spec.shared_expert_gate:
                _linear(out, f"{p}.mlp.shared_gate", sd, f"{mlp}.shared_expert_gate")
        elif f"{mlp}.up_proj.weight" in sd:
            _llama_mlp(out, f"{p}.mlp", sd, mlp)
        elif f"{mlp}.c_fc.weight" in sd:  # Starcoder2's plain MLP
            _linear(out, f"{p}.mlp.up", sd, f"{mlp}.c_fc")
            _linear(out, f"{p}.mlp.down", sd, f"{mlp}.c_proj")
        if spec.parallel_residual and affine:  # Cohere: one norm for both branches
            norm(f"{p}.norm1", f"{q}.input_layernorm")
        elif spec.norm_position == "output":
            norm(f"{p}.post_attention_norm", f"{q}.post_attention_layernorm")
            norm(f"{p}.post_mlp_norm", f"{q}.post_feedforward_layernorm")
        elif affine:
            norm(f"{p}.norm1", f"{q}.input_layernorm")
            norm(f"{p}.norm2", f"{q}.post_attention_layernorm")
    if affine:
        norm("final_norms.0", "model.norm")
    if not spec.tie_word_embeddings:
        _linear(out, "lm_head", sd, "lm_head")
    elif spec.lm_head_bias:  # ERNIE's use_bias: a bias on the tied head
        out["lm_head_bias"] = sd["lm_head.bias"]
    return out


MAPPERS: dict[str, Callable[[ModelSpec, StateDict, int], StateDict]] = {
    **{
        family: map_llama_family
        for family in (
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen2_moe",
            "qwen3",
            "qwen3_moe",
            "gemma",
            "gemma2",
            "gemma3_text",
            "phi3",
            "deepseek_v2",
            "deepseek_v3",
            "deepseek_v32",
        )
    },
    **{
        family: map_decoder_2025
        for family in (
            "gpt_oss",
            "llama4_text",
            "olmo",
            "olmo2",
            "olmoe",
            "smollm3",
            "exaone4",
            "cohere",
            "cohere2",
            "starcoder2",
            "granite",
            "granitemoe",
            "glm4_moe",
            "phimoe",
            "ernie4_5_moe",
        )
    },
    "gpt2": map_gpt2,
    "gptj": map_gptj,
    "opt": map_opt,
    "mpt": map_mpt,
    "gpt_neox": map_gpt_neox,
    "bloom": map_bloom,
    "falcon": map_falcon,
    "bert": map_bert,
    "roberta": map_bert,
    "longformer": map_longformer,
    "big_bird": map_big_bird,
    "modernbert": map_modernbert,
    "mamba": map_mamba,
    "mamba2": map_mamba,
    "jamba": map_jamba,
    "falcon_h1": map_falcon_h1,
    "granitemoehybrid": map_granitemoehybrid,
    "qwen3_next": map_qwen3_next,
    "rwkv": map_rwkv,
    "minimax": map_minimax,
    "deberta-v2": map_deberta_v2,
}
"""Single-stack families: (spec, state dict, depth) -> our state dict."""

SEQ2SEQ_MAPPERS: dict[str, Callable[[ModelSpec, StateDict, int, int], StateDict]] = {
    "t5": map_t5,
    "bart": map_bart,
}
"""Encoder-decoders: (spec, state dict, decoder depth, encoder depth) -> our state dict."""


def load_hf_weights(model: Transformer, hf_model: torch.nn.Module) -> None:
    """Copy ``hf_model``'s weights into ``model`` (same spec); every parameter must be set."""
    spec = model.spec
    sd = {k: v.detach() for k, v in hf_model.state_dict().items()}
    if spec.family in SEQ2SEQ_MAPPERS:
        mapped = SEQ2SEQ_MAPPERS[spec.family](
            spec, sd, len(model.layers), len(model.encoder_layers)
        )
    elif spec.family in MAPPERS:
        mapped = MAPPERS[spec.family](spec, sd, len(model.layers))
    else:
        raise ValueError(f"no weight mapping for family {spec.family!r}")
    expected = set(model.state_dict())
    missing = expected - set(mapped)
    unexpected = set(mapped) - expected
    if missing or unexpected:
        raise KeyError(
            f"weight mapping mismatch: missing {sorted(missing)[:8]}, "
            f"unexpected {sorted(unexpected)[:8]}"
        )
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(mapped[name].view_as(tensor))
