"""The built-in transformer: one readable PyTorch model for every ModelSpec.

``build_model(spec, layers=None, device="cpu", dtype=torch.float32, backend="sdpa")`` builds
it; the spec is the only input. ``layers=`` builds fewer layers at full width (the bench times
one layer of a 70B model and extrapolates). Interface used by the bench:

* ``model.layers`` (decoder, or encoder of an encoder-only model; ``model.block(i)`` typed)
  and ``model.encoder_layers`` (encoder of an encoder-decoder): blocks with ``.attention``,
  ``.mlp`` (``MLP`` or ``MoE``), ``.norm1`` / ``.norm2`` and, in decoders of encoder-decoders,
  ``.cross_attention``;
* ``block.attention.project_qkv(x, positions) -> (q, k, v)``, ``.core(q, k, v, *, q_offset=0,
  key_offset=0, bias=None)`` and ``.project_out(o)`` run the parts separately; ``.causal``
  and ``.window`` are plain attributes the core reads on every call. MLA has the same three
  plus ``latent(x, positions) -> (q, c, k_rot)`` and ``expand(c, k_rot) -> (k, v)``;
* blocks of state-mixer layers (Gated DeltaNet, Mamba, RWKV; ``tfcli.bench.state_mixers``)
  have ``.mixer(x, state)`` instead of ``.attention`` (``.mlp`` None for pure Mamba blocks);
  Falcon-H1's attention blocks add ``.ssm``, a Mamba-2 on the same normed input;
* ``model.position_bias(stack, s_q, s_k, q_offset, device)``: the ALiBi / T5 bias the core
  needs for those position types (None otherwise);
* ``model.set_backend("naive" | "sdpa", sdpa_kernel=None)`` (kernel: flash, efficient, math,
  cudnn; CUDA only);
* ``model(input_ids, cache=None)`` returns logits (decoders, encoder-decoders given
  ``decoder_input_ids``) or the last hidden state (encoders); a ``KVCache`` makes it
  incremental (prefill, then one-token steps), its tensors being what ``tfcli kvcache``
  counts (state mixers keep their ``MixerState`` in ``cache.states``).

Shapes: B batch, S sequence, h hidden, H query heads, KVH key/value heads, D head dim."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn

from tfcli.bench.attention import attention_core
from tfcli.bench.cache import KVCache, LayerCache
from tfcli.bench.disentangled import (
    ConvLayer,
    DisentangledBias,
    RelativeEmbeddings,
    disentangled_factor,
)
from tfcli.bench.indexer import Indexer
from tfcli.bench.layers import MLP, MoE, ParameterFreeNorm, make_norm, make_qk_norm
from tfcli.bench.positions import (
    RelativeBias,
    RotaryEmbedding,
    alibi_bias,
    sinusoidal_embedding,
    yarn_mscale,
)
from tfcli.bench.state_mixers import STATE_MIXER_CLASSES, Mamba2Mixer, RWKVChannelMix
from tfcli.bench.support import check_buildable
from tfcli.plan import LayerPlan
from tfcli.spec import ModelSpec


def main_plan(spec: ModelSpec, index: int) -> LayerPlan:
    """The ``LayerPlan`` of layer ``index`` of the main stack (tfcli.plan decides), O(runs)."""
    for run in spec.main_stack_runs():
        if run.start <= index < run.stop:
            return run.plan
    raise IndexError(f"layer {index} is beyond the {spec.num_layers} layers of {spec.name}")


class AttentionSettings:
    """What the attention core of one layer needs besides q, k, v (shared, mutable backend)."""

    def __init__(self, backend: str = "sdpa", sdpa_kernel: str | None = None) -> None:
        self.backend = backend
        self.sdpa_kernel = sdpa_kernel


class SelfAttention(nn.Module):
    """MHA / GQA / MQA with optional q/k norms, RoPE, ALiBi or relative bias, sliding window.

    The 2025 features, each from its transformers modelling file:

    * q/k norms over all heads (``qk_norm_scope: all``, Olmo2Attention): one norm over the
      whole q projection (H x D) and one over k (KVH x D), before the heads are split; per-head
      weights normalised head by head (CohereAttention: ``qk_norm_weights: all`` alone);
    * ``qk_l2_norm`` (Llama4TextAttention): a parameter-free RMS norm per head after RoPE, on
      RoPE layers only;
    * attention temperature tuning on NoPE layers (Llama 4): q at position p times
      1 + scale x log(1 + floor((p + 1) / floor));
    * a chunk (Llama 4's chunked layers): queries attend the earlier keys of their own chunk;
    * attention sinks (GptOssAttention): one learned logit per head in every softmax;
    * an output gate (Qwen3NextAttention): q_proj emits [q_h, g_h] per head (2 D each) and the
      attention output is multiplied by sigmoid(g) before o_proj.
    """

    def __init__(
        self,
        spec: ModelSpec,
        index: int,
        *,
        causal: bool,
        window: int | None,
        rope: RotaryEmbedding | None,
        settings: AttentionSettings,
        cross: bool = False,
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        h, heads, kv, d = spec.hidden_size, spec.num_heads, spec.kv_heads, spec.resolved_head_dim
        self.spec, self.index, self.causal, self.window = spec, index, causal, window
        self.chunk = None if cross else chunk
        self.heads, self.kv_heads, self.head_dim = heads, kv, d
        self.gated = spec.attention_output_gate and not cross
        self.q = nn.Linear(h, heads * d * (2 if self.gated else 1), bias=spec.attention_qkv_bias)
        self.k = nn.Linear(h, kv * d, bias=spec.attention_qkv_bias)
        self.v = nn.Linear(h, kv * d, bias=spec.attention_qkv_bias)
        self.o = nn.Linear(heads * d, h, bias=spec.attention_out_bias)
        self.norm_all_heads = spec.qk_norm_scope == "all"
        self.q_norm = make_qk_norm(spec, heads) if spec.qk_norm and not cross else None
        self.k_norm = make_qk_norm(spec, kv) if spec.qk_norm and not cross else None
        self.rope = None if cross else rope
        self.cross = cross
        self.settings = settings
        self.scale = spec.attention_scale
        self.sinks = (
            nn.Parameter(torch.zeros(heads)) if spec.attention_sinks and not cross else None
        )
        self.l2_norm = (
            ParameterFreeNorm(d, spec.norm_eps, rms=True)
            if spec.qk_l2_norm and self.rope is not None
            else None
        )
        floor = spec.attention_temperature_floor
        self.temperature_floor = floor if rope is None and not cross else None
        # DeBERTa's c2p / p2c terms (tfcli.bench.disentangled); all scores / sqrt(D x factor)
        self.disentangled = None
        if spec.position_type == "disentangled" and not cross:
            self.disentangled = DisentangledBias(spec)
            self.scale = 1.0 / math.sqrt(d * disentangled_factor(spec))
        self._gate: Tensor | None = None  # the output gate of the last project_qkv

    def split_heads(self, x: Tensor, heads: int) -> Tensor:
        b, s, _ = x.shape
        return x.view(b, s, heads, self.head_dim).transpose(1, 2)  # (B, heads, S, D)

    def project_qkv(
        self, x: Tensor, positions: Tensor, memory: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """q (B, H, S, D), k and v (B, KVH, S_k, D); keys from ``memory`` for cross-attention.
        With an output gate, the gate (B, S, H x D) waits in ``_gate`` for ``project_out``."""
        source = x if memory is None else memory
        q_all, k_all = self.q(x), self.k(source)  # (B, S, H D [x 2]), (B, S, KVH D)
        if self.gated:
            b, s, _ = x.shape
            q_all, gate = q_all.view(b, s, self.heads, 2 * self.head_dim).chunk(2, dim=-1)
            q_all, self._gate = q_all.reshape(b, s, -1), gate.reshape(b, s, -1)
        if self.norm_all_heads and self.q_norm is not None and self.k_norm is not None:
            q_all, k_all = self.q_norm(q_all), self.k_norm(k_all)  # over H D and KVH D
        q = self.split_heads(q_all, self.heads)
        k = self.split_heads(k_all, self.kv_heads)
        v = self.split_heads(self.v(source), self.kv_heads)
        if not self.norm_all_heads and self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            cos, sin = self.rope.cos_sin(positions, q.dtype)  # (S, rotary_dim)
            q, k = self.rope.rotate(q, cos, sin), self.rope.rotate(k, cos, sin)
        if self.l2_norm is not None:
            q, k = self.l2_norm(q), self.l2_norm(k)
        if self.temperature_floor is not None:
            q = q * self.temperature(positions).to(q.dtype)
        return q, k, v

    def temperature(self, positions: Tensor) -> Tensor:
        """Llama 4's NoPE query scale (Llama4TextAttention, attn_temperature_tuning), (S, 1):
        1 + attn_scale x log1p(floor((p + 1) / floor_scale)) at absolute positions p."""
        assert self.temperature_floor is not None
        steps = torch.floor((positions.float() + 1.0) / self.temperature_floor)
        return (torch.log1p(steps) * self.spec.attention_temperature_scale + 1.0).unsqueeze(-1)

    def core(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        q_offset: int = 0,
        key_offset: int = 0,
        bias: Tensor | None = None,
    ) -> Tensor:
        """softmax(q k^T scale + bias) v for this layer's mask; (B, H, S, D)."""
        return attention_core(
            q,
            k,
            v,
            backend=self.settings.backend,
            causal=self.causal and not self.cross,
            window=None if self.cross else self.window,
            scale=self.scale,
            softcap=self.spec.attn_logit_softcap,
            bias=bias,
            q_offset=q_offset,
            key_offset=key_offset,
            sdpa_kernel=self.settings.sdpa_kernel,
            chunk=self.chunk,
            sinks=self.sinks,
        )

    def project_out(self, o: Tensor) -> Tensor:
        b, _, s, _ = o.shape
        out = o.transpose(1, 2).reshape(b, s, self.heads * self.head_dim)  # (B, S, H D)
        if self.gated and self._gate is not None:
            out = out * torch.sigmoid(self._gate)
            self._gate = None
        return self.o(out)  # (B, S, h)

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        *,
        bias: Tensor | None = None,
        memory: Tensor | None = None,
        cache: LayerCache | None = None,
        offset: int = 0,
        relative: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """``relative``: DeBERTa's (2k, h) relative embeddings and (S, S) position ids
        (``Transformer.relative_inputs``), required by a disentangled layer."""
        if self.cross and cache is not None and cache.first is not None:
            q = self.split_heads(self.q(x), self.heads)
            k, v = cache.first, cache.second
            assert v is not None
            return self.project_out(self.core(q, k, v, bias=bias))
        q, k, v = self.project_qkv(x, positions, memory)
        if self.disentangled is not None:
            assert relative is not None and cache is None, "DeBERTa: an encoder, no cache"
            extra = self.disentangled(q, k, *relative, self.q, self.k)  # (B, H, S, S)
            bias = extra if bias is None else bias + extra
        key_offset = 0
        if cache is not None:
            cache.append(k, v, seq_dim=2)
            assert cache.first is not None and cache.second is not None
            k, v, key_offset = cache.first, cache.second, cache.start
        if bias is not None and bias.shape[-1] != k.shape[2]:
            bias = bias[..., -k.shape[2] :]  # a sliding cache kept only the last keys
        out = self.core(q, k, v, q_offset=offset, key_offset=key_offset, bias=bias)
        if cache is not None:
            # a chunked layer keeps its last c keys: the next query's chunk lies within them
            cache.trim(seq_dim=2, window=self.window or self.chunk)
        return self.project_out(out)


def mla_softmax_scale(spec: ModelSpec) -> float:
    """DeepSeek's softmax scale: d_qk^-0.5, times mscale^2 under scaled RoPE with
    ``mscale_all_dim`` (transformers' yarn_apply_mscale)."""
    scale = spec.qk_head_dim**-0.5
    scaling = spec.rope_scaling or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind != "default" and scaling.get("mscale_all_dim"):
        mscale = yarn_mscale(float(scaling["factor"]), float(scaling["mscale_all_dim"]))
        scale *= mscale * mscale
    return scale


class LatentAttention(nn.Module):
    """Multi-head latent attention (DeepSeek-V2/V3, transformers DeepseekV3Attention).

    q = q_b(norm(q_a(x))) (or q_proj(x)); the keys and values come from a compressed latent
    c = norm(kv_a(x)[:r]) expanded by kv_b into per-head k_nope and v; the RoPE part of the key
    (kv_a(x)[r:]) is shared by all heads. The cache keeps only c and the rotated RoPE key.
    """

    def __init__(
        self,
        spec: ModelSpec,
        index: int,
        *,
        causal: bool = True,
        window: int | None = None,
        rope: RotaryEmbedding,
        settings: AttentionSettings,
    ) -> None:
        super().__init__()
        h, heads = spec.hidden_size, spec.num_heads
        self.spec, self.index, self.heads = spec, index, heads
        self.causal, self.window = causal, window
        self.rank = int(spec.kv_lora_rank or 0)
        self.nope = int(spec.qk_nope_head_dim or 0)
        self.rope_dim = int(spec.qk_rope_head_dim or 0)
        self.v_dim = spec.value_head_dim
        bias = spec.attention_qkv_bias
        if spec.q_lora_rank:
            self.q_a = nn.Linear(h, spec.q_lora_rank, bias=bias)
            self.q_a_norm = make_norm(spec, spec.q_lora_rank)
            self.q_b = nn.Linear(spec.q_lora_rank, heads * spec.qk_head_dim, bias=False)
        else:
            self.q_proj = nn.Linear(h, heads * spec.qk_head_dim, bias=False)
        self.kv_a = nn.Linear(h, self.rank + self.rope_dim, bias=bias)
        self.kv_a_norm = make_norm(spec, self.rank)
        self.kv_b = nn.Linear(self.rank, heads * (self.nope + self.v_dim), bias=False)
        self.o = nn.Linear(heads * self.v_dim, h, bias=spec.attention_out_bias)
        self.rope = rope
        self.settings = settings
        self.scale = spec.attention_scale or mla_softmax_scale(spec)
        # DeepSeek-V3.2: the lightning indexer picks the keys each query attends
        self.indexer = Indexer(spec, rope) if spec.index_num_heads else None

    def latent(self, x: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q (B, H, S, d_qk) with RoPE applied, latent c (B, S, r), RoPE key (B, 1, S, d_rope)."""
        q, c, k_rot, _ = self.latent_and_resid(x, positions)
        return q, c, k_rot

    def latent_and_resid(
        self, x: Tensor, positions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """``latent`` plus q_resid = q_a_norm(q_a(x)) (B, S, q_lora_rank), None without it."""
        b, s, _ = x.shape
        resid = self.q_a_norm(self.q_a(x)) if self.spec.q_lora_rank else None
        q = self.q_b(resid) if resid is not None else self.q_proj(x)
        q = q.view(b, s, self.heads, -1).transpose(1, 2)  # (B, H, S, nope + rope)
        q_nope, q_rot = q.split([self.nope, self.rope_dim], dim=-1)
        compressed = self.kv_a(x)  # (B, S, r + rope)
        c, k_rot = compressed.split([self.rank, self.rope_dim], dim=-1)
        c = self.kv_a_norm(c)
        k_rot = k_rot.view(b, 1, s, self.rope_dim)  # one RoPE key shared by all heads
        cos, sin = self.rope.cos_sin(positions, q.dtype)
        q_rot, k_rot = self.rope.rotate(q_rot, cos, sin), self.rope.rotate(k_rot, cos, sin)
        return torch.cat((q_nope, q_rot), dim=-1), c, k_rot, resid

    def expand(self, c: Tensor, k_rot: Tensor) -> tuple[Tensor, Tensor]:
        """Per-head keys (B, H, S, nope + rope) and values (B, H, S, d_v) from the latent."""
        b, s, _ = c.shape
        kv = self.kv_b(c).view(b, s, self.heads, self.nope + self.v_dim).transpose(1, 2)
        k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
        k = torch.cat((k_nope, k_rot.expand(-1, self.heads, -1, -1)), dim=-1)
        return k, v

    def project_qkv(self, x: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q (B, H, S, d_qk), and k (B, H, S, d_qk), v (B, H, S, d_v) expanded per head."""
        q, c, k_rot = self.latent(x, positions)
        k, v = self.expand(c, k_rot)
        return q, k, v

    def core(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        q_offset: int = 0,
        key_offset: int = 0,
        bias: Tensor | None = None,
    ) -> Tensor:
        """softmax(q k^T scale + bias) v over the expanded per-head keys; (B, H, S, d_v)."""
        return attention_core(
            q,
            k,
            v,
            backend=self.settings.backend,
            causal=self.causal,
            window=self.window,
            scale=self.scale,
            softcap=self.spec.attn_logit_softcap,
            bias=bias,
            q_offset=q_offset,
            key_offset=key_offset,
            sdpa_kernel=self.settings.sdpa_kernel,
        )

    def project_out(self, o: Tensor) -> Tensor:
        b, _, s, _ = o.shape
        return self.o(o.transpose(1, 2).reshape(b, s, self.heads * self.v_dim))  # (B, S, h)

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        *,
        bias: Tensor | None = None,
        memory: Tensor | None = None,
        cache: LayerCache | None = None,
        offset: int = 0,
    ) -> Tensor:
        q, c, k_rot, resid = self.latent_and_resid(x, positions)
        index_keys = self.indexer.keys(x, positions) if self.indexer is not None else None
        key_offset = 0
        if cache is not None:
            cache.append(c, k_rot.squeeze(1), seq_dim=1)  # latent (B, S, r), key (B, S, rope)
            assert cache.first is not None and cache.second is not None
            c, k_rot, key_offset = cache.first, cache.second.unsqueeze(1), cache.start
            if index_keys is not None:  # the indexer keys (B, S, D_I) are cached too
                index_keys = cache.append_indexer(index_keys)
        k, v = self.expand(c, k_rot)  # (B, H, S_k, d_qk), (B, H, S_k, d_v)
        if self.indexer is not None and index_keys is not None and resid is not None:
            if key_offset or self.window is not None:
                raise ValueError("the DeepSeek-V3.2 indexer runs on full, untrimmed caches")
            sparse = self.indexer.bias(x, resid, index_keys, positions)  # (B, 1, S, S_k)
            bias = sparse if bias is None else bias + sparse
        out = self.core(q, k, v, q_offset=offset, key_offset=key_offset, bias=bias)
        if cache is not None:
            cache.trim(seq_dim=1, window=self.window)
        return self.project_out(out)


class Block(nn.Module):
    """One transformer layer: attention (+ cross-attention) and MLP/MoE with its norms.

    pre-LN: x + f(norm(x)); post-LN: norm(x + f(x)); sandwich: x + norm2(f(norm1(x)));
    parallel: x + attn(n1(x)) + mlp(n1(x) or n2(x)).
    """

    def __init__(
        self,
        spec: ModelSpec,
        index: int,
        *,
        stack: str,
        rope: RotaryEmbedding | None,
        settings: AttentionSettings,
    ) -> None:
        super().__init__()
        self.spec, self.index, self.stack = spec, index, stack
        causal = stack != "encoder"
        main = stack == "decoder" or spec.architecture == "encoder"
        kind = spec.layer_kinds[index] if main else "full"
        window = spec.sliding_window if kind == "sliding" else None
        chunk = spec.attention_chunk_size if kind == "chunked" else None
        # a state mixer (Gated DeltaNet, Mamba, RWKV: tfcli.bench.state_mixers) takes the
        # attention's place; such blocks have ``.mixer`` and no ``.attention``
        self.mixer: nn.Module | None = None
        if kind in STATE_MIXER_CLASSES:  # lightning's decay depends on the layer index
            mixer_class = STATE_MIXER_CLASSES[kind]
            self.mixer = mixer_class(spec, index) if kind == "lightning" else mixer_class(spec)
        elif spec.is_mla:
            assert rope is not None
            self.attention: SelfAttention | LatentAttention = LatentAttention(
                spec, index, causal=causal, window=window, rope=rope, settings=settings
            )
        elif kind == "longformer":
            from tfcli.bench.sparse_attention import LongformerSelfAttention

            self.attention = LongformerSelfAttention(spec, index, rope=rope, settings=settings)
        else:
            self.attention = SelfAttention(
                spec, index, causal=causal, window=window, rope=rope, settings=settings, chunk=chunk
            )
        # Falcon-H1: a Mamba-2 mixer beside the attention, on the same normed input
        self.ssm = Mamba2Mixer(spec) if main and spec.parallel_ssm and self.mixer is None else None
        self.cross_attention = None
        if stack == "decoder" and spec.architecture == "encoder-decoder":
            self.cross_attention = SelfAttention(
                spec, index, causal=False, window=None, rope=None, settings=settings, cross=True
            )
            self.cross_norm = make_norm(spec)
        moe = stack == "decoder" and spec.moe_layer_flags[index]
        no_mlp = main and main_plan(spec, index).mlp == "none"  # pure Mamba, MLP-less layers
        self.mlp: nn.Module | None = (
            None if no_mlp else MoE(spec) if moe else MLP(spec, spec.intermediate_size)
        )
        if kind == "rwkv" and not moe and not no_mlp:
            self.mlp = RWKVChannelMix(spec)  # RWKV's channel mixing is its MLP
        # ModernBERT's layer 0 has no attention norm (the embedding norm serves)
        first_bare = index == 0 and main and not spec.first_layer_attention_norm
        output_norms = spec.norm_position == "output"  # OLMo-2: no input norms at all
        self.norm1 = nn.Identity() if first_bare or output_norms else make_norm(spec)
        shared_parallel = spec.parallel_residual and spec.parallel_norms == 1
        self.norm2: nn.Module | None = (
            None
            if shared_parallel or no_mlp
            else nn.Identity()
            if output_norms
            else make_norm(spec)
        )
        if spec.norm_position in ("sandwich", "output"):
            self.post_attention_norm = make_norm(spec)
            if not no_mlp:
                self.post_mlp_norm = make_norm(spec)

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        *,
        bias: Tensor | None = None,
        cross_bias: Tensor | None = None,
        memory: Tensor | None = None,
        cache: KVCache | None = None,
        offset: int = 0,
        relative: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        spec = self.spec
        decoder_cache = cache if self.stack == "decoder" else None
        if self.mixer is not None:
            mixer, m = self.mixer, spec.residual_multiplier  # Granite-4.0-H's; 1 elsewhere
            state = decoder_cache.state(self.index) if decoder_cache is not None else None
            if spec.residual_from_norm:  # MiniMax's lightning layers
                return self._from_norm(x, lambda y: mixer(y, state))
            x = x + mixer(self.norm1(x), state) * m
            if self.mlp is None:
                return x
            assert self.norm2 is not None
            if isinstance(self.mlp, RWKVChannelMix):
                return x + self.mlp(self.norm2(x), state)
            return x + self.mlp(self.norm2(x)) * m
        layer_cache = decoder_cache.layer(self.index) if decoder_cache is not None else None
        if relative is None:
            attend = lambda y: self.attention(  # noqa: E731
                y, positions, bias=bias, cache=layer_cache, offset=offset
            )
        else:  # DeBERTa (SelfAttention; LatentAttention takes no relative inputs)
            self_attention = cast(SelfAttention, self.attention)
            attend = lambda y: self_attention(  # noqa: E731
                y, positions, bias=bias, cache=layer_cache, offset=offset, relative=relative
            )
        if spec.residual_from_norm:  # MiniMax's softmax-attention layers
            return self._from_norm(x, attend)
        if self.ssm is not None:
            ssm, attention = self.ssm, attend
            state = decoder_cache.state(self.index) if decoder_cache is not None else None
            attend = lambda y: attention(y) + ssm(y, state)  # noqa: E731
        if self.mlp is None:  # a layer without an MLP: the attention sublayer only
            if spec.norm_position in ("sandwich", "output"):
                x = x + self.post_attention_norm(attend(self.norm1(x)))
            elif spec.norm_position == "post":
                x = self.norm1(x + attend(x))
            else:
                x = x + attend(self.norm1(x))
            return self._cross(x, positions, cross_bias, memory, cache, post=False)
        if spec.parallel_residual:
            h1 = self.norm1(x)
            h2 = h1 if self.norm2 is None else self.norm2(x)
            x = x + attend(h1) + self.mlp(h2)
            # no published parallel encoder-decoder: cross-attention (if any) comes after
            return self._cross(x, positions, cross_bias, memory, cache, post=False)
        if spec.norm_position == "post":
            x = self.norm1(x + attend(x))
            x = self._cross(x, positions, cross_bias, memory, cache, post=True)
            assert self.norm2 is not None
            return self.norm2(x + self.mlp(x))
        if spec.norm_position in ("sandwich", "output"):  # output: norm1, norm2 are identities
            x = x + self.post_attention_norm(attend(self.norm1(x)))
            x = self._cross(x, positions, cross_bias, memory, cache, post=False)
            assert self.norm2 is not None
            return x + self.post_mlp_norm(self.mlp(self.norm2(x)))
        m = spec.residual_multiplier  # Granite's; 1 elsewhere
        x = x + attend(self.norm1(x)) * m if m != 1.0 else x + attend(self.norm1(x))
        x = self._cross(x, positions, cross_bias, memory, cache, post=False)
        assert self.norm2 is not None
        return x + self.mlp(self.norm2(x)) * m if m != 1.0 else x + self.mlp(self.norm2(x))

    def _from_norm(self, x: Tensor, mix: Callable[[Tensor], Tensor]) -> Tensor:
        """MiniMax's block (transformers MiniMaxDecoderLayer.forward): the residual is the
        normed input, h = alpha n1(x) + beta mix(n1(x)), then
        y = mlp_alpha n2(h) + mlp_beta mlp(n2(h)); alpha/beta are the lightning factors in a
        lightning layer, the full-attention factors otherwise."""
        spec = self.spec
        if self.mixer is not None:
            alpha, beta = spec.linear_attention_alpha, spec.linear_attention_beta
        else:
            alpha, beta = spec.full_attention_alpha, spec.full_attention_beta
        normed = self.norm1(x)
        h = normed * alpha + mix(normed) * beta
        if self.mlp is None or self.norm2 is None:
            return h
        normed = self.norm2(h)
        return normed * spec.mlp_alpha + self.mlp(normed) * spec.mlp_beta

    def _cross(
        self,
        x: Tensor,
        positions: Tensor,
        bias: Tensor | None,
        memory: Tensor | None,
        cache: KVCache | None,
        *,
        post: bool,
    ) -> Tensor:
        if self.cross_attention is None:
            return x
        layer_cache = cache.cross(self.index) if cache is not None else None
        if post:
            out = self.cross_attention(x, positions, bias=bias, memory=memory, cache=layer_cache)
            return self.cross_norm(x + out)
        normed = self.cross_norm(x)
        out = self.cross_attention(normed, positions, bias=bias, memory=memory, cache=layer_cache)
        return x + out

    def fill_cross_cache(self, memory: Tensor, cache: KVCache) -> None:
        """Project the encoder output once into this layer's cross-attention K/V."""
        if self.cross_attention is None:
            return
        attn = self.cross_attention
        layer_cache = cache.cross(self.index)
        if layer_cache.first is None:
            layer_cache.first = attn.split_heads(attn.k(memory), attn.kv_heads)
            layer_cache.second = attn.split_heads(attn.v(memory), attn.kv_heads)


class Transformer(nn.Module):
    """Embeddings, the stacks of blocks, final norm(s) and the LM head (or pooler)."""

    def __init__(
        self, spec: ModelSpec, *, layers: int | None = None, backend: str = "sdpa"
    ) -> None:
        super().__init__()
        self.spec = spec
        h = spec.hidden_size
        self.settings = AttentionSettings(backend)
        self.embed = nn.Embedding(spec.vocab_size, h)
        rows = int(spec.max_position_embeddings or 0) + spec.position_offset
        stacks = 2 if spec.architecture == "encoder-decoder" else 1
        learned = spec.position_type == "learned" or (
            spec.position_type == "disentangled" and spec.position_biased_input
        )
        self.positions = nn.ModuleList(
            nn.Embedding(rows, h) for _ in range(stacks if learned else 0)
        )
        self.token_types = nn.Embedding(spec.type_vocab_size, h) if spec.type_vocab_size else None
        self.embed_norms = nn.ModuleList(
            make_norm(spec) for _ in range(stacks if spec.embedding_norm else 0)
        )
        # DeBERTa's encoder-level relative embeddings (+ norm_rel_ebd LayerNorm)
        self.relative_embeddings = (
            RelativeEmbeddings(spec)
            if spec.position_type == "disentangled" or spec.relative_embedding_norm
            else None
        )
        self.encoder_conv = ConvLayer(spec) if spec.encoder_conv_kernel else None
        self.rope = self._rope(spec)
        self.local_rope = self._rope(spec, local=True) if spec.rope_local_theta else None
        self.relative = nn.ModuleList()
        if spec.position_type == "relative":
            directions = [True, False] if stacks == 2 else [spec.architecture == "encoder"]
            self.relative = nn.ModuleList(
                RelativeBias(
                    spec.relative_attention_num_buckets,
                    spec.relative_attention_max_distance,
                    spec.num_heads,
                    bidirectional=bidirectional,
                )
                for bidirectional in directions
            )
        depth = spec.num_layers if layers is None else min(layers, spec.num_layers)
        main_stack = "encoder" if spec.architecture == "encoder" else "decoder"
        self.layers = nn.ModuleList(
            Block(
                spec,
                i,
                stack=main_stack,
                rope=self._rope_for(i, main_stack),
                settings=self.settings,
            )
            for i in range(depth)
        )
        self.encoder_layers = nn.ModuleList()
        if spec.architecture == "encoder-decoder":
            enc_depth = int(spec.num_encoder_layers or 0)
            enc_depth = enc_depth if layers is None else min(layers, enc_depth)
            self.encoder_layers = nn.ModuleList(
                Block(spec, i, stack="encoder", rope=self.rope, settings=self.settings)
                for i in range(enc_depth)
            )
        self.final_norms = nn.ModuleList(
            make_norm(spec) for _ in range(stacks if spec.final_norm else 0)
        )
        self.lm_head = None
        if spec.lm_head and not spec.tie_word_embeddings:
            self.lm_head = nn.Linear(h, spec.vocab_size, bias=spec.lm_head_bias)
        self.lm_head_bias = (
            nn.Parameter(torch.zeros(spec.vocab_size))
            if spec.lm_head and spec.tie_word_embeddings and spec.lm_head_bias
            else None
        )
        self.pooler = nn.Linear(h, h) if spec.pooler else None

    @staticmethod
    def _rope(spec: ModelSpec, *, local: bool = False) -> RotaryEmbedding | None:
        if spec.position_type != "rope":
            return None
        dim = spec.rotary_dim or (
            int(spec.qk_rope_head_dim or 0) if spec.is_mla else spec.resolved_head_dim
        )
        theta = spec.rope_local_theta if local and spec.rope_local_theta else spec.rope_theta
        scaling = None if local else spec.rope_scaling
        return RotaryEmbedding(dim, theta, interleaved=spec.rope_interleaved, scaling=scaling)

    def _rope_for(self, index: int, stack: str) -> RotaryEmbedding | None:
        main = stack == "decoder" or self.spec.architecture == "encoder"
        if main and main_plan(self.spec, index).rope == "none":
            return None  # NoPE (Llama 4's no_rope_layers, SmolLM3), or no RoPE at all
        if main and self.local_rope is not None and self.spec.layer_kinds[index] == "sliding":
            return self.local_rope
        return self.rope

    def block(self, index: int) -> Block:
        """Layer ``index`` of the main stack, typed."""
        return cast(Block, self.layers[index])

    def set_backend(self, backend: str, sdpa_kernel: str | None = None) -> None:
        """Switch every layer's attention core: "naive" or "sdpa" (and a CUDA SDPA kernel)."""
        self.settings.backend = backend
        self.settings.sdpa_kernel = sdpa_kernel

    # ---- embeddings ---------------------------------------------------------------------------

    def embed_tokens(self, ids: Tensor, offset: int, stack: int) -> Tensor:
        """Token (+ position, + type) embeddings and the embedding norm; (B, S, h)."""
        spec = self.spec
        x = self.embed(ids)
        if spec.embedding_multiplier != 1.0:  # Granite
            x = x * spec.embedding_multiplier
        if spec.scale_embeddings:
            x = x * torch.tensor(math.sqrt(spec.hidden_size), dtype=x.dtype)
        positions = torch.arange(offset, offset + ids.shape[1], device=ids.device)
        if self.positions:
            x = x + self.positions[stack](positions + spec.position_offset)
        if spec.position_type == "sinusoidal":
            x = x + sinusoidal_embedding(positions, spec.hidden_size).to(x.dtype)
        if self.token_types is not None:
            x = x + self.token_types(torch.zeros_like(ids))
        if self.embed_norms:
            x = self.embed_norms[stack](x)
        return x

    def position_bias(
        self, stack: int, s_q: int, s_k: int, q_offset: int, device: torch.device
    ) -> Tensor | None:
        """Additive (H, S_q, S_k) attention bias of stack 0 (encoder or only stack) or 1
        (decoder of an encoder-decoder): ALiBi or T5's relative bias; None otherwise."""
        spec = self.spec
        if spec.position_type == "alibi":
            return alibi_bias(spec.num_heads, s_q, s_k, q_offset, device)
        if spec.position_type == "relative":
            return self.relative[stack](s_q, s_k, q_offset)
        return None

    _bias = position_bias  # the name the bench first used

    def relative_inputs(self, seq: int, device: torch.device) -> tuple[Tensor, Tensor] | None:
        """DeBERTa's (2k, h) relative embeddings (normed) and (S, S) relative position ids
        for a self-attention over ``seq`` tokens; None without disentangled attention."""
        table = self.relative_embeddings
        if table is None or table.table is None:
            return None
        return table.rows(), table.positions(seq, device)

    # ---- stacks ---------------------------------------------------------------------------------

    def encode(self, ids: Tensor) -> Tensor:
        """The encoder stack of an encoder-decoder (or the whole encoder-only model)."""
        layers = self.encoder_layers if self.spec.architecture == "encoder-decoder" else self.layers
        x = self.embed_tokens(ids, 0, 0)
        seq = ids.shape[1]
        bias = self.position_bias(0, seq, seq, 0, ids.device)
        if self.spec.sparse_attention == "longformer":  # padded to its window, (P, P) pattern
            from tfcli.bench.sparse_attention import pad_to_window

            x, bias = pad_to_window(self.spec, x)
        elif self.spec.sparse_attention == "bigbird":  # padded to its blocks, (P, P) pattern
            from tfcli.bench.sparse_attention import bigbird_inputs

            x, bias = bigbird_inputs(self.spec, x)
        positions = torch.arange(x.shape[1], device=ids.device)
        relative = self.relative_inputs(x.shape[1], ids.device)
        embedded = x
        for i, block in enumerate(layers):
            x = block(x, positions, bias=bias, relative=relative)
            if i == 0 and self.encoder_conv is not None:  # DeBERTa-v2's ConvLayer
                x = self.encoder_conv(embedded, x)
        x = x[:, :seq]  # LongformerModel and BigBirdModel cut their padding
        return self.final_norms[0](x) if self.final_norms else x

    def decode(self, ids: Tensor, memory: Tensor | None, cache: KVCache | None) -> Tensor:
        """The decoder stack over ``ids``, attending to ``memory`` (encoder output) if any."""
        spec = self.spec
        offset = cache.length if cache is not None else 0
        stack = 1 if spec.architecture == "encoder-decoder" else 0
        x = self.embed_tokens(ids, offset, stack)
        s = ids.shape[1]
        positions = torch.arange(offset, offset + s, device=ids.device)
        bias = self.position_bias(stack, s, offset + s, offset, ids.device)
        cross_bias = None  # cross-attention has no position bias (T5's has none either)
        if cache is not None and memory is not None:
            for index in range(len(self.layers)):
                self.block(index).fill_cross_cache(memory, cache)
        for block in self.layers:
            x = block(
                x,
                positions,
                bias=bias,
                cross_bias=cross_bias,
                memory=memory,
                cache=cache,
                offset=offset,
            )
        if cache is not None:
            cache.length += s
        if self.final_norms:
            x = self.final_norms[-1](x)
        return x

    def logits(self, x: Tensor) -> Tensor:
        spec = self.spec
        if self.lm_head is not None:
            out = self.lm_head(x)
        else:
            if spec.architecture == "encoder-decoder" and spec.position_type == "relative":
                x = x * spec.hidden_size**-0.5  # T5 rescales before its tied head
            out = x @ self.embed.weight.T
            if self.lm_head_bias is not None:
                out = out + self.lm_head_bias
        if spec.logit_scale != 1.0:  # Cohere's logit_scale, Granite's 1 / logits_scaling
            out = out * spec.logit_scale
        if spec.final_logit_softcap is not None:
            cap = spec.final_logit_softcap
            out = torch.tanh(out / cap) * cap
        return out

    def forward(
        self,
        input_ids: Tensor,
        *,
        decoder_input_ids: Tensor | None = None,
        cache: KVCache | None = None,
        memory: Tensor | None = None,
    ) -> Tensor:
        """Logits (B, S, V) for decoders and encoder-decoders; last hidden state for encoders.

        With a cache, call once with the prompt (prefill), then with one new token at a time.
        For encoder-decoders pass ``decoder_input_ids`` (the encoder runs on ``input_ids``
        unless ``memory`` is given).
        """
        spec = self.spec
        if spec.architecture == "encoder":
            return self.encode(input_ids)
        if spec.architecture == "encoder-decoder":
            if memory is None:
                memory = self.encode(input_ids)
            assert decoder_input_ids is not None
            return self.logits(self.decode(decoder_input_ids, memory, cache))
        return self.logits(self.decode(input_ids, None, cache))

    def pooled(self, hidden: Tensor) -> Tensor:
        """BERT's pooler: tanh(dense(h[:, 0]))."""
        assert self.pooler is not None
        return torch.tanh(self.pooler(hidden[:, 0]))


def build_model(
    spec: ModelSpec,
    *,
    layers: int | None = None,
    device: Any = "cpu",
    dtype: torch.dtype = torch.float32,
    backend: str = "sdpa",
) -> Transformer:
    """The built-in model of ``spec`` on ``device`` in ``dtype`` (random init; ``layers`` caps
    the depth of each stack at full width). ``BenchError`` for a feature it does not build
    (``tfcli.bench.support.missing_features``)."""
    check_buildable(spec)
    with torch.device(device):
        model = Transformer(spec, layers=layers, backend=backend)
    return model.to(dtype=dtype)
