"""Memory: KV cache, weights, attention working sets, and what fits in a memory budget.

Conventions (DESIGN.md section 4):

* Standard attention caches, per layer and token, one key and one value vector per KV head:
  ``2 x kv_heads x head_dim x bytes`` (the factor 2 is K and V).
* Multi-head latent attention (DeepSeek-V2 paper, arXiv:2405.04434, section 2.1.2-2.1.3;
  DeepSeek-V3) caches the compressed latent ``c_kv`` (kv_lora_rank) and the shared RoPE key
  (qk_rope_head_dim): ``(kv_lora_rank + qk_rope_head_dim) x bytes``, no factor 2.
* Sliding-window layers. tfcli's default rule, ``"window"``, counts what a layer must hold
  while the newest token attends: the last ``w`` keys, that token included (``min(s, w)``).
  With ``block_size`` it follows vLLM v1's paged cache (``SlidingWindowManager``): blocks lying
  wholly before the window are freed, so a layer holds the blocks that cover positions
  ``[s - w, s - 1]``: ``ceil(s / B) - (s - w) // B`` blocks, one more than ``ceil(w / B)``
  when the window straddles a block boundary. Rule ``"transformers"`` counts what
  transformers 5's ``DynamicSlidingWindowLayer`` (cache_utils.py) keeps between forward
  calls: the last ``w - 1`` tokens ("Only cache the last `self.sliding_window - 1` tokens";
  the next token makes ``w`` while it attends).
* An encoder-only model has no KV cache. An encoder-decoder caches decoder self-attention
  (grows with the decoder length) and cross-attention K/V (sized by the encoder length).
* Tensor parallelism (``tp``): KV heads are split across ranks, or replicated when there are
  more ranks than KV heads (vLLM ``num_kv_heads = max(1, total_kv_heads // tp)``); the MLA
  latent is replicated on every rank (it is not per head).
* Sizes are exact integers of bytes: ``ceil(elements x bits / 8)`` per token row, so int4
  packs two values per byte.

Only the standard library is imported here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfcli.errors import UsageError
from tfcli.plan import LayerPlan, groups_by_value
from tfcli.spec import ModelSpec
from tfcli.units import dtype_bits

SLIDING_RULES = ("transformers", "vllm", "window")
"""Cache conventions (``cached_tokens``, ``state_shapes``): ``transformers`` (the oracle:
w - 1 tokens kept, fp32 recurrent states, K conv columns), ``vllm`` (w - 1 + batched tokens +
one block, states in the cache dtype, K - 1 conv columns), ``window`` (w tokens: the keys the
newest token attends; vLLM v0-style block freeing with a block size)."""
CONVENTIONS = ("transformers", "vllm")
"""The conventions ``tfcli kvcache --convention`` offers."""

DEFAULT_RESERVE_FRACTION = 0.10
"""Share of a budget the fit solver keeps back by default for activations, the runtime
(CUDA context, allocator) and fragmentation: a stated assumption, not a measurement."""


def _bytes(elements: int, dtype: str) -> int:
    """Bytes of ``elements`` values of ``dtype``: ceil(elements x bits / 8)."""
    return math.ceil(elements * dtype_bits(dtype) / 8)


def _check_positive(option: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{option} must be a positive integer, got {value}")


# ---- per token, per layer -------------------------------------------------------------------


def kv_heads_per_device(spec: ModelSpec, tp: int) -> int:
    """KV heads one tensor-parallel rank holds: ``max(1, kv_heads // tp)``.

    Megatron-LM and vLLM shard attention by heads: query heads must divide evenly
    (``num_heads % tp == 0``) and KV heads must either divide across ranks
    (``kv_heads % tp == 0``) or be replicated, one per rank (``tp % kv_heads == 0``); vLLM's
    ``QKVParallelLinear`` refuses anything else, and so does tfcli.
    """
    _check_positive("--tp", tp)
    kv = spec.kv_heads
    if spec.num_heads % tp:
        raise UsageError(
            f"--tp {tp} does not divide the {spec.num_heads} attention heads of {spec.name} "
            "(tensor parallelism shards heads evenly, as vLLM and Megatron-LM require)"
        )
    if not spec.is_mla and kv % tp and tp % kv:
        raise UsageError(
            f"--tp {tp} neither divides nor is a multiple of the {kv} KV heads of {spec.name} "
            "(vLLM splits KV heads evenly or replicates them)"
        )
    return max(1, kv // tp)


def standard_kv_elements_per_token(spec: ModelSpec, *, tp: int = 1) -> int:
    """K and V values one token caches in one standard attention layer, on one device.

    ``2 x kv_heads_per_device x head_dim`` (MHA: kv_heads = heads; GQA: fewer; MQA: 1).
    """
    return 2 * kv_heads_per_device(spec, tp) * spec.resolved_head_dim


def mla_latent_elements_per_token(spec: ModelSpec) -> int:
    """Values one token caches in one MLA layer: ``kv_lora_rank + qk_rope_head_dim``.

    DeepSeek-V2 paper, eq. 9-10 and section 2.1.3: only the compressed KV latent ``c_kv`` and
    the decoupled RoPE key ``k_rope`` (shared by every head) are cached; per-head keys and
    values are re-derived from the latent by ``W_UK``/``W_UV``. No factor 2. The latent is
    the output of transformers' ``kv_a_proj_with_mqa`` (width kv_lora_rank + qk_rope_head_dim).
    Replicated on every tensor-parallel rank.
    """
    return int(spec.kv_lora_rank or 0) + int(spec.qk_rope_head_dim or 0)


def mla_decompressed_elements_per_token(spec: ModelSpec, *, tp: int = 1) -> int:
    """Values one token would take if an MLA layer cached its decompressed per-head K and V.

    ``heads_per_device x (qk_nope_head_dim + qk_rope_head_dim + v_head_dim)``: keys of width
    ``qk_head_dim`` and values of width ``v_head_dim`` for every head (transformers'
    ``DeepseekV3Attention.expand_kv`` output). What MLA saves; what an implementation without
    latent caching (e.g. plain MHA kernels over expanded K/V) would hold.
    """
    kv_heads_per_device(spec, tp)  # validates tp: it divides num_heads
    return spec.num_heads // tp * (spec.qk_head_dim + spec.value_head_dim)


def kv_elements_per_token(spec: ModelSpec, *, tp: int = 1) -> int:
    """Cached values per token per self-attention layer on one device: MLA latent or K+V."""
    if spec.is_mla:
        kv_heads_per_device(spec, tp)  # validates tp
        return mla_latent_elements_per_token(spec)
    return standard_kv_elements_per_token(spec, tp=tp)


def kv_bytes_per_token_per_layer(spec: ModelSpec, dtype: str = "bf16", *, tp: int = 1) -> int:
    """Bytes one token occupies in one self-attention layer's cache: ceil(elements x bits / 8).

    Standard: ``2 x kv_heads x head_dim x bytes``; MLA: ``(kv_lora_rank + qk_rope_head_dim) x
    bytes``.
    """
    return _bytes(kv_elements_per_token(spec, tp=tp), dtype)


# ---- tokens held per layer ------------------------------------------------------------------

DEFAULT_BATCHED_TOKENS = 2048
"""vLLM's ``max_num_batched_tokens`` assumed by the vllm convention (its default for online
serving with chunked prefill); a sliding or chunked layer holds that headroom."""


def _blocks(tokens: int, block_size: int) -> int:
    return -(-tokens // block_size)


def cached_tokens(
    kind: str,
    seq: int,
    window: int | None,
    *,
    rule: str = "window",
    block_size: int | None = None,
    peak: bool = False,
    batched_tokens: int = DEFAULT_BATCHED_TOKENS,
) -> int:
    """Token slots one attention layer holds for a sequence of ``seq`` tokens.

    ``kind`` is ``full``, ``sliding`` (window w) or ``chunked`` (chunk c, passed as
    ``window``). A full layer holds ``seq`` (paged: ``B x ceil(seq / B)``).

    * rule ``"transformers"`` (the oracle): what transformers 5's
      ``DynamicSlidingWindowLayer`` keeps between forward calls, for sliding and chunked
      layers alike: the last ``w - 1`` tokens, ``min(seq, w - 1)`` (cache_utils.py: "Only
      cache the last `self.sliding_window - 1` tokens"; for ``w = 1`` its slice ``[-w + 1:]``
      keeps every token, mirrored here). No paging.
    * rule ``"vllm"``: vLLM v1's allocation (vllm/v1/kv_cache_interface.py): a sliding layer
      holds the last ``w - 1`` tokens plus the ``batched_tokens`` of a scheduling step, in
      whole blocks, plus one block because the window need not start at a block boundary:
      ``B x (ceil(min(seq, w - 1 + T) / B) + 1)`` (never more than the full layer); a chunked
      layer ``B x ceil(min(seq, c + T) / B)`` (``ChunkedLocalAttentionSpec``). Block size B
      defaults to 16.
    * rule ``"window"``: the keys the newest token attends, itself included, ``min(seq, w)``;
      with ``block_size``, vLLM v1's ``SlidingWindowManager`` block freeing at this length:
      ``B x (ceil(seq / B) - (seq - w) // B)`` (one block more than ``ceil(w / B)`` when the
      window straddles a boundary); ``peak`` gives the most held at any length up to ``seq``:
      ``B x ceil(min(seq, w + B - 1) / B)``.
    """
    if rule not in SLIDING_RULES:
        raise UsageError(
            f"unknown cache convention {rule!r}; use one of {', '.join(SLIDING_RULES)}"
        )
    if block_size is not None:
        _check_positive("block size", block_size)
        if rule == "transformers":
            raise UsageError(
                "a block size models vLLM's paged cache; the transformers convention has no "
                "blocks (use the vllm convention)"
            )
    bounded = kind in ("sliding", "chunked") and window is not None
    if rule == "transformers":
        if bounded and window is not None and window > 1:
            return min(seq, window - 1)
        return seq
    if rule == "vllm":
        b = block_size or 16
        full = b * _blocks(seq, b)
        if not bounded or window is None:
            return full
        if kind == "chunked":
            return b * _blocks(min(seq, window + batched_tokens), b)
        return min(full, b * (_blocks(min(seq, window - 1 + batched_tokens), b) + 1))
    if block_size is None:
        return min(seq, window) if bounded and window is not None else seq
    if not bounded or window is None:
        return block_size * _blocks(seq, block_size)
    if peak:
        return block_size * _blocks(min(seq, window + block_size - 1), block_size)
    return block_size * (_blocks(seq, block_size) - max(0, (seq - window) // block_size))


# ---- per-sequence state of linear-attention and SSM layers ---------------------------------


@dataclass(frozen=True)
class StateShape:
    """One fixed-size per-sequence tensor of a state layer: ``elements`` in ``dtype``."""

    name: str
    elements: int
    dtype: str


def state_shapes(spec: ModelSpec, mixer: str, *, rule: str, dtype: str) -> list[StateShape]:
    """The per-sequence state one layer of ``mixer`` keeps, under a cache convention.

    transformers (5.x cache_utils ``LinearAttentionLayer``, MambaMixer, Qwen3NextGatedDeltaNet):
    the conv state keeps the last ``K`` input columns of every convolved channel, in the
    cache dtype; recurrent states are fp32 (the reference scans accumulate in fp32):
    Gated DeltaNet ``Hv x d_k x d_v``, Mamba-1 ``d_in x N``, Mamba-2 ``H x P x N``.
    RWKV-4 (RwkvModel) keeps 2 shifted-token vectors ``h`` in the cache dtype and 3 fp32
    accumulators ``h`` (num, den, max). MiniMax lightning keeps ``H x d x d`` (K^T V) in the
    cache dtype.
    vllm (vllm/v1/kv_cache_interface.py ``MambaSpec``, model_executor mamba_utils): the conv
    state keeps ``K - 1`` columns and every state is in the cache dtype.
    """
    vllm = rule == "vllm"
    state_dtype = dtype if vllm else "fp32"
    k = int(spec.conv_kernel or 0)
    conv_columns = k - 1 if vllm else k
    if mixer == "gated_deltanet":
        _, _, conv_dim = _gdn_widths(spec)
        hv = int(spec.linear_num_value_heads or 0)
        dk, dv = int(spec.linear_key_head_dim or 0), int(spec.linear_value_head_dim or 0)
        return [
            StateShape("conv", conv_dim * conv_columns, dtype),
            StateShape("recurrent", hv * dk * dv, state_dtype),
        ]
    if mixer in ("mamba", "mamba2"):
        channels = _conv_channels(spec, mixer)
        inner, n = int(spec.ssm_inner_size or 0), int(spec.ssm_state_size or 0)
        return [
            StateShape("conv", channels * conv_columns, dtype),
            StateShape("recurrent", inner * n, state_dtype),
        ]
    if mixer == "rwkv":
        h = spec.hidden_size
        return [
            StateShape("shift", 2 * h, dtype),
            StateShape("recurrent", 3 * h, "fp32" if not vllm else dtype),
        ]
    if mixer == "lightning":
        d = spec.resolved_head_dim
        return [StateShape("recurrent", spec.num_heads * d * d, dtype)]
    return []


def _gdn_widths(spec: ModelSpec) -> tuple[int, int, int]:
    from tfcli.shapes import gated_deltanet_widths

    return gated_deltanet_widths(spec)


def _conv_channels(spec: ModelSpec, mixer: str) -> int:
    from tfcli.shapes import mamba_conv_channels

    return mamba_conv_channels(spec, mixer)


def state_bytes_per_layer(
    spec: ModelSpec, plan: LayerPlan, *, rule: str, dtype: str
) -> dict[str, int]:
    """Bytes of fixed per-sequence state one layer of ``plan`` keeps, by tensor (conv,
    recurrent, ...); Falcon-H1's attention layers also keep their parallel Mamba-2 state."""
    mixers = [plan.mixer] + (["mamba2"] if plan.parallel_ssm else [])
    out: dict[str, int] = {}
    for mixer in mixers:
        for shape in state_shapes(spec, mixer, rule=rule, dtype=dtype):
            out[shape.name] = out.get(shape.name, 0) + _bytes(shape.elements, shape.dtype)
    return out


VLLM_KERNEL_BLOCK_ALIGNMENT = 16
"""The smallest block the attention kernels of vLLM's hybrid models take (FlashAttention and
FlashInfer: multiples of 16 tokens); vLLM aligns the raised block size to
``max(this, block_size)`` (vllm/platforms/interface.py ``_align_hybrid_block_size``)."""


@dataclass(frozen=True)
class UnifiedPages:
    """vLLM's one page size for a model with attention and state layers (prefix caching off,
    ``mamba_cache_mode`` none): the attention block is raised until one attention page holds
    one layer's state, and the state page is padded to the attention page."""

    block_size: int
    """Attention block size in tokens after raising."""
    state_bytes: int
    """One state layer's state before padding, per sequence."""
    page_bytes: int
    """One page: ``block_size x`` one token's K/V in one layer; a state layer takes one."""

    @property
    def padding_bytes(self) -> int:
        return self.page_bytes - self.state_bytes


def vllm_unified_pages(
    kv_page_per_token: int, state_per_layer: int, block_size: int | None
) -> UnifiedPages | None:
    """vLLM v1's page unification for hybrid attention + state models
    (vllm/platforms/interface.py ``_align_hybrid_block_size``, earlier
    model_executor/models/config.py ``HybridAttentionMambaModelConfig``), prefix caching off:

    ``align = max(16, B)``; ``B' = max(B, align x ceil(S / (align x P)))`` with ``P`` one
    token's K/V in one layer and ``S`` one layer's state (``MambaSpec.page_size_bytes``);
    the state page is padded to ``B' x P`` (``mamba_page_size_padded``), so every page of the
    one block pool has the same size. None when the model lacks either kind of layer."""
    if not kv_page_per_token or not state_per_layer:
        return None
    b = block_size or 16
    align = max(VLLM_KERNEL_BLOCK_ALIGNMENT, b)
    raised = max(b, align * _blocks(state_per_layer, align * kv_page_per_token))
    return UnifiedPages(raised, state_per_layer, raised * kv_page_per_token)


# ---- the whole cache ------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheRun:
    """``layers`` identical layers of one kind (first at ``start``, every ``stride``): tokens
    held and bytes per layer."""

    kind: str
    start: int
    layers: int
    tokens: int
    """Token slots each layer holds per sequence (0 for state layers)."""
    kv_bytes_per_layer: int
    state_bytes_per_layer: int
    stride: int | None = 1
    """Spacing of the ``layers`` layers from ``start`` (1: consecutive; None: irregular)."""


@dataclass(frozen=True)
class KVCache:
    """A KV-cache (and per-sequence state) size broken down; bytes, for ``batch`` sequences.

    ``total_bytes`` = self-attention K/V (grows with tokens, capped for sliding and chunked
    layers) + cross-attention K/V (sized by the encoder length) + the fixed per-sequence state
    of linear-attention, SSM and RWKV layers (does not grow with tokens).
    """

    seq: int
    batch: int
    dtype: str
    bytes_per_token_per_layer: int
    """One token, one self-attention layer (one device under tensor parallelism)."""
    bytes_per_token: int
    """One token across all self-attention layers, before any sliding-window cap."""
    self_attention_bytes: int
    cross_attention_bytes: int
    layers_by_kind: dict[str, int]
    """Number of cached layers of each kind (full, sliding, chunked, cross, state kinds)."""
    bytes_by_kind: dict[str, int]
    rule: str
    tp: int
    block_size: int | None
    encoder_seq: int
    state_bytes: int = 0
    """Fixed per-sequence state of every state layer, for ``batch`` sequences."""
    state_bytes_by_part: dict[str, int] = dataclasses.field(default_factory=dict)
    """State bytes by tensor (conv, recurrent, shift), for ``batch`` sequences."""
    indexer_bytes: int = 0
    """DeepSeek-V3.2's cached indexer keys (``index_head_dim`` per token and layer)."""
    runs: tuple[CacheRun, ...] = ()
    batched_tokens: int = DEFAULT_BATCHED_TOKENS
    """The vllm convention's scheduled tokens per step (headroom of sliding/chunked layers)."""
    unified_pages: UnifiedPages | None = None
    """vllm convention, attention + state layers: the raised block and padded state page."""

    @property
    def total_bytes(self) -> int:
        return (
            self.self_attention_bytes
            + self.cross_attention_bytes
            + self.state_bytes
            + self.indexer_bytes
        )

    @property
    def per_token_bytes(self) -> int:
        """What one more token adds while no sliding or chunked layer is capped: K/V of every
        attention layer (plus indexer keys); state layers add nothing."""
        return self.bytes_per_token

    @property
    def state_bytes_per_sequence(self) -> int:
        return self.state_bytes // self.batch if self.batch else 0

    @property
    def per_layer_bytes(self) -> tuple[int, ...]:
        """Self-attention bytes of each layer of the main stack, group by group (O(layers))."""
        out: list[int] = []
        for run in self.runs:
            out += [self.batch * run.tokens * run.kv_bytes_per_layer] * run.layers
        return tuple(out)

    @property
    def breakeven_tokens(self) -> int | None:
        """Tokens whose K/V equal the fixed state: "the state is worth N tokens of KV"."""
        per_sequence_token = self.bytes_per_token
        if not self.state_bytes or not per_sequence_token:
            return None
        return self.state_bytes_per_sequence // per_sequence_token


def indexer_bytes_per_token_per_layer(spec: ModelSpec, dtype: str) -> int:
    """DeepSeek-V3.2 caches one ``index_head_dim`` indexer key per token and layer
    (transformers ``DynamicIndexedLayer``), beside the MLA latent."""
    return _bytes(int(spec.index_head_dim or 0), dtype) if spec.index_num_heads else 0


def kv_cache(
    spec: ModelSpec,
    seq: int,
    *,
    batch: int = 1,
    dtype: str = "bf16",
    encoder_seq: int | None = None,
    tp: int = 1,
    block_size: int | None = None,
    rule: str = "window",
    peak: bool = False,
    batched_tokens: int = DEFAULT_BATCHED_TOKENS,
    per_token_layer: int | None = None,
) -> KVCache:
    """The KV cache and per-sequence state of ``batch`` sequences of ``seq`` tokens.

    total = sum over decoder attention layers of ``batch x cached_tokens(layer) x
    bytes_per_token_layer`` (``2 x kv_heads x head_dim x bytes``, or the MLA latent) plus, for
    encoder-decoder models, ``num_layers x batch x encoder_seq x 2 x kv_heads x head_dim x
    bytes`` of cross-attention K/V (``encoder_seq`` defaults to ``seq``), plus ``batch x``
    the fixed state of every linear-attention / SSM / RWKV layer (``state_shapes``).
    Encoder-only models cache nothing. ``peak`` counts the most a paged sliding layer holds at
    any length up to ``seq`` (see ``cached_tokens``). ``per_token_layer`` overrides the bytes
    per token and layer (what-if variants).
    """
    _check_positive("sequence length", seq)
    _check_positive("batch", batch)
    enc_seq = seq if encoder_seq is None else encoder_seq
    _check_positive("encoder sequence length", enc_seq)
    if per_token_layer is None:
        per_token_layer = kv_bytes_per_token_per_layer(spec, dtype, tp=tp)
    if spec.architecture == "encoder":
        return KVCache(seq, batch, dtype, 0, 0, 0, 0, {}, {}, rule, tp, block_size, enc_seq)
    index_token = indexer_bytes_per_token_per_layer(spec, dtype)
    layers_by_kind: dict[str, int] = {}
    bytes_by_kind: dict[str, int] = {}
    state_parts: dict[str, int] = {}
    self_bytes = state_total = indexer = attention_layers = 0
    main = "encoder" if spec.architecture == "encoder" else "decoder"
    main_groups = [(g, p) for g, p in spec.layer_groups if p.stack == main]
    layers_of = {plan: group.count for group, plan in main_groups}
    pages = None
    if rule == "vllm":
        state_pages = [
            sum(state_bytes_per_layer(spec, plan, rule=rule, dtype=dtype).values())
            for plan in layers_of
            if plan.has_state
        ]
        has_kv = any(plan.has_kv_cache for plan in layers_of)
        pages = vllm_unified_pages(
            per_token_layer if has_kv else 0, max(state_pages, default=0), block_size
        )
        if pages is not None:
            block_size = pages.block_size
    per_plan: dict[LayerPlan, tuple[int, int, int]] = {}
    for plan, count in layers_of.items():
        kind = plan.kind
        tokens = kv_layer = state_layer = 0
        if plan.has_kv_cache:
            tokens = cached_tokens(
                plan.pattern or "full",
                seq,
                plan.window,
                rule=rule,
                block_size=block_size,
                peak=peak,
                batched_tokens=batched_tokens,
            )
            kv_layer = per_token_layer
            self_bytes += count * batch * tokens * kv_layer
            indexer += count * batch * tokens * index_token
            attention_layers += count
        if plan.has_state:
            parts = state_bytes_per_layer(spec, plan, rule=rule, dtype=dtype)
            if pages is not None:
                parts["page padding"] = pages.page_bytes - sum(parts.values())
            state_layer = sum(parts.values())
            state_total += count * batch * state_layer
            for name, value in parts.items():
                state_parts[name] = state_parts.get(name, 0) + count * batch * value
        layers_by_kind[kind] = layers_by_kind.get(kind, 0) + count
        bytes_by_kind[kind] = bytes_by_kind.get(kind, 0) + count * batch * (
            tokens * (kv_layer + index_token) + state_layer
        )
        per_plan[plan] = (tokens, kv_layer, state_layer)
    grouped = groups_by_value(main_groups, lambda plan: (plan.kind, *per_plan[plan]))
    runs = [
        CacheRun(key[0], g.first, g.count, key[1], key[2], key[3], g.stride) for g, key in grouped
    ]
    cross = 0
    if spec.architecture == "encoder-decoder":
        enc_tokens = cached_tokens("full", enc_seq, None, rule=rule, block_size=block_size)
        cross = spec.num_layers * batch * enc_tokens * per_token_layer
        layers_by_kind["cross"] = spec.num_layers
        bytes_by_kind["cross"] = cross
    return KVCache(
        seq=seq,
        batch=batch,
        dtype=dtype,
        bytes_per_token_per_layer=per_token_layer if attention_layers else 0,
        bytes_per_token=(per_token_layer + index_token) * attention_layers,
        self_attention_bytes=self_bytes,
        cross_attention_bytes=cross,
        layers_by_kind=layers_by_kind,
        bytes_by_kind=bytes_by_kind,
        rule=rule,
        tp=tp,
        block_size=block_size,
        encoder_seq=enc_seq,
        state_bytes=state_total,
        state_bytes_by_part=state_parts,
        indexer_bytes=indexer,
        runs=tuple(runs),
        batched_tokens=batched_tokens,
        unified_pages=pages,
    )


def kv_cache_bytes(
    spec: ModelSpec,
    seq: int,
    *,
    batch: int = 1,
    dtype: str = "bf16",
    encoder_seq: int | None = None,
    tp: int = 1,
    block_size: int | None = None,
    rule: str = "window",
) -> int:
    """Total cache bytes (all layers, self + cross attention + state, one device); see
    ``kv_cache``."""
    return kv_cache(
        spec,
        seq,
        batch=batch,
        dtype=dtype,
        encoder_seq=encoder_seq,
        tp=tp,
        block_size=block_size,
        rule=rule,
    ).total_bytes


@dataclass(frozen=True)
class CacheLayout:
    """How a cache is laid out, beside the model and the length: the options of ``kv_cache``."""

    batch: int = 1
    dtype: str = "bf16"
    encoder_seq: int | None = None
    tp: int = 1
    block_size: int | None = None
    rule: str = "window"
    batched_tokens: int = DEFAULT_BATCHED_TOKENS

    def kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- what if: other attention ---------------------------------------------------------------


@dataclass(frozen=True)
class AttentionVariant:
    """The same model with another attention: what MHA, GQA, MQA (or MLA) would cache."""

    label: str
    kv_heads: int
    """KV heads of the variant (MLA: the query heads its latent decompresses to)."""
    bytes_per_token_per_layer: int
    total_bytes: int
    is_this_model: bool


def attention_variants(spec: ModelSpec, seq: int, layout: CacheLayout) -> list[AttentionVariant]:
    """KV cache of ``spec`` as MHA (kv_heads = heads), as itself, and as MQA (1 KV head).

    Only the attention changes; layers, windows, batch, dtype, paging and tp stay. For a
    standard model the variants are ``spec.replace(num_kv_heads=...)``. For an MLA model,
    "MHA" is its decompressed per-head K/V (``mla_decompressed_elements_per_token``: keys of
    qk_head_dim, values of v_head_dim per head) and "MQA" one such K/V head; the model's own
    row is the latent. A row equal to the model's own kind is shown once.
    """
    rows: list[AttentionVariant] = []
    own_kind = spec.attention_kind
    candidates = [("MHA", spec.num_heads), (own_kind, spec.kv_heads), ("MQA", 1)]
    for label, heads in candidates:
        if spec.is_mla and label != "MLA":
            kv_heads_per_device(spec, layout.tp)  # validates tp
            per_device = max(1, heads // layout.tp)
            per_token = _bytes(per_device * (spec.qk_head_dim + spec.value_head_dim), layout.dtype)
            kind = label
        elif spec.is_mla:
            per_token = kv_bytes_per_token_per_layer(spec, layout.dtype, tp=layout.tp)
            kind = "MLA"
        else:
            variant = spec.replace(num_kv_heads=heads)
            per_token = kv_bytes_per_token_per_layer(variant, layout.dtype, tp=layout.tp)
            kind = variant.attention_kind
        if any(r.label == kind for r in rows):
            continue
        cache = kv_cache(spec, seq, per_token_layer=per_token, **layout.kwargs())
        rows.append(AttentionVariant(kind, heads, per_token, cache.total_bytes, kind == own_kind))
    return rows


# ---- attention working memory ---------------------------------------------------------------


def naive_attention_score_bytes(
    spec: ModelSpec, seq: int, *, batch: int = 1, dtype: str = "fp32", context: int = 0
) -> int:
    """The score matrix one layer of a naive attention materialises: B x H x S_q x S_k x bytes.

    ``S_k = seq + context`` (keys already cached plus the new ones). A naive implementation
    (explicit QK^T, mask, softmax, AV) holds the full (S_q, S_k) scores per query head,
    whatever the mask; softmax produces a second tensor of the same size unless done in place.
    FlashAttention (Dao et al. 2022) never materialises it.
    """
    _check_positive("--seq", seq)
    return _bytes(batch * spec.num_heads * seq * (seq + context), dtype)


def flash_attention_working_bytes(
    spec: ModelSpec, seq: int, *, batch: int = 1, dtype: str = "fp32"
) -> int:
    """What a FlashAttention-style kernel keeps beyond Q, K, V: the output and softmax stats.

    Output O (B x H x S x d_v, in ``dtype``) plus the fp32 log-sum-exp per row (B x H x S x 4
    bytes): O(S) memory (Dao et al. 2022, Algorithm 1). Per-tile buffers live in on-chip
    memory (GPU) or a few cache-sized tiles (CPU) and are not counted.
    """
    _check_positive("--seq", seq)
    rows = batch * spec.num_heads * seq
    return _bytes(rows * spec.value_head_dim, dtype) + rows * 4


# ---- weights --------------------------------------------------------------------------------


def weight_bytes(total_params: int, dtype: str) -> int:
    """Bytes of the weights: ceil(params x bits / 8) (int4 packs two per byte). A quantized
    checkpoint's own bytes (scales, zeros, unquantized modules) are ``tfcli.quant``'s."""
    return _bytes(total_params, dtype)


def weight_bytes_per_device(total_params: int, dtype: str, tp: int = 1) -> int:
    """Weights one tensor-parallel rank holds, taken as an even split: ceil(weight_bytes / tp).

    Megatron-LM / vLLM shard every matmul weight and the (vocab-parallel) embeddings and
    replicate norms and some biases; those replicated vectors are well under 0.1% of a large
    model and are not added back.
    """
    _check_positive("--tp", tp)
    return -(-weight_bytes(total_params, dtype) // tp)


# ---- what fits in a budget ------------------------------------------------------------------


def reserve_bytes_for(budget_bytes: int, *, fraction: float | None = None, fixed: int = 0) -> int:
    """The reserve kept back from a budget: ``floor(budget x fraction) + fixed`` bytes."""
    if fraction is not None and not 0 <= fraction < 1:
        raise UsageError(f"--reserve fraction must be in [0, 1), got {fraction}")
    return int(budget_bytes * (fraction or 0.0)) + fixed


@dataclass(frozen=True)
class Fit:
    """Answer of the fit solver; ``None`` where nothing fits."""

    budget_bytes: int
    weights_bytes: int
    reserve_bytes: int
    available_bytes: int
    """budget - weights - reserve (negative or zero when the weights alone do not fit)."""
    max_seq_for_batch: int | None
    max_batch_for_seq: int | None
    unbounded_seq: bool
    """True when the cache stops growing (sliding, chunked and state layers only) so any
    context fits."""

    @property
    def weights_fit(self) -> bool:
        return self.available_bytes > 0


def _largest(fits: Callable[[int], bool], limit: int) -> int | None:
    """Largest n in [1, limit] with fits(n), for fits monotone (true then false), or None."""
    if not fits(1):
        return None
    lo, hi = 1, limit
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


SEQ_SEARCH_LIMIT = 2**40
"""Upper end of the context search (tokens); a cache that never fills reports it as unbounded."""


def solve_fit(
    spec: ModelSpec,
    *,
    budget_bytes: int,
    weights_bytes_: int,
    reserve_bytes: int,
    seq: int,
    batch: int,
    dtype: str = "bf16",
    encoder_seq: int | None = None,
    tp: int = 1,
    block_size: int | None = None,
    rule: str = "window",
    batched_tokens: int = DEFAULT_BATCHED_TOKENS,
) -> Fit:
    """Longest context for ``batch`` and largest batch for ``seq`` that fit in the budget.

    available = budget - weights - reserve. A context ``s`` fits when the cache at its peak
    while growing to ``s`` (``kv_cache(..., peak=True)``: equal to the cache at ``s`` except
    for paged sliding layers, whose block count oscillates) is at most ``available``. That
    peak is monotone in ``s`` and linear in the batch, so a binary search over the context and
    a division over the batch are exact. For encoder-decoder models ``encoder_seq`` stays
    fixed when given, and otherwise follows the context.
    """
    available = budget_bytes - weights_bytes_ - reserve_bytes

    def cache(s: int, b: int) -> int:
        return kv_cache(
            spec,
            s,
            batch=b,
            dtype=dtype,
            encoder_seq=encoder_seq,
            tp=tp,
            block_size=block_size,
            rule=rule,
            peak=True,
            batched_tokens=batched_tokens,
        ).total_bytes

    _check_positive("--seq", seq)
    _check_positive("--batch", batch)
    if available <= 0 or spec.architecture == "encoder":
        return Fit(budget_bytes, weights_bytes_, reserve_bytes, available, None, None, False)
    max_seq = _largest(lambda s: cache(s, batch) <= available, SEQ_SEARCH_LIMIT)
    per_sequence = cache(seq, 1)
    max_batch = available // per_sequence if per_sequence else None
    return Fit(
        budget_bytes,
        weights_bytes_,
        reserve_bytes,
        available,
        max_seq,
        max_batch if max_batch else None,
        max_seq == SEQ_SEARCH_LIMIT,
    )
