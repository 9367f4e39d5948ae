"""Memory: KV cache, weights, attention working sets, and what fits in a memory budget.

Conventions (DESIGN.md section 4):

* Standard attention caches, per layer and token, one key and one value vector per KV head:
  ``2 x kv_heads x head_dim x bytes`` (the factor 2 is K and V).
* Multi-head latent attention (DeepSeek-V2 paper, section 2.1.3; DeepSeek-V3) caches the
  compressed latent ``c_kv`` (kv_lora_rank) and the shared RoPE key (qk_rope_head_dim):
  ``(kv_lora_rank + qk_rope_head_dim) x bytes``, no factor 2.
* A sliding-window layer holds at most ``w`` tokens (rule ``"window"``: the keys the next
  query attends, itself included, as vLLM allocates). transformers' DynamicSlidingWindowLayer
  (cache_utils.py) keeps ``w - 1`` between steps and appends the new token before attending:
  rule ``"transformers"`` counts that.
* An encoder-only model has no KV cache. An encoder-decoder caches decoder self-attention
  (grows with the decoder length) and cross-attention K/V (sized by the encoder length).
* Sizes are exact integers of bytes: ``ceil(elements x bits / 8)`` per tensor row, so int4
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
from tfcli.spec import ModelSpec
from tfcli.units import dtype_bits

SLIDING_RULES = ("window", "transformers")


def _bytes(elements: int, dtype: str) -> int:
    """Bytes of ``elements`` values of ``dtype``: ceil(elements x bits / 8)."""
    return math.ceil(elements * dtype_bits(dtype) / 8)


def kv_heads_per_device(spec: ModelSpec, tp: int) -> int:
    """KV heads one tensor-parallel rank holds: kv_heads / tp, or 1 (replicated) if tp > kv_heads.

    Megatron-LM and vLLM split KV heads across ranks; with more ranks than KV heads each rank
    keeps a replica of one head (vLLM ``num_kv_heads = max(1, total_kv_heads // tp_size)``).
    """
    if tp < 1:
        raise UsageError(f"--tp must be a positive integer, got {tp}")
    return max(1, math.ceil(spec.kv_heads / tp))


def kv_elements_per_token(spec: ModelSpec, *, tp: int = 1) -> int:
    """Cached values per token per attention layer (one device).

    Standard: ``2 x kv_heads x head_dim`` (K and V). MLA: ``kv_lora_rank + qk_rope_head_dim``
    (the latent and the decoupled RoPE key, DeepSeek-V2 eq. 9-10), replicated on every rank.
    """
    if spec.is_mla:
        return int(spec.kv_lora_rank or 0) + int(spec.qk_rope_head_dim or 0)
    return 2 * kv_heads_per_device(spec, tp) * spec.resolved_head_dim


def kv_bytes_per_token_per_layer(spec: ModelSpec, dtype: str = "bf16", *, tp: int = 1) -> int:
    """Bytes one token occupies in one attention layer's cache: elements x bits / 8."""
    return _bytes(kv_elements_per_token(spec, tp=tp), dtype)


def cached_tokens(
    kind: str, seq: int, window: int | None, *, rule: str = "window", block_size: int | None = None
) -> int:
    """Tokens one layer keeps for a sequence of ``seq`` tokens.

    full: ``seq``; sliding: ``min(seq, w)`` (rule "window") or ``min(seq, w - 1)`` (rule
    "transformers", what DynamicSlidingWindowLayer holds between steps). With paged
    allocation (vLLM ``block_size``) the count rounds up to whole blocks.
    """
    if rule not in SLIDING_RULES:
        raise UsageError(
            f"unknown sliding-window rule {rule!r}; use one of {', '.join(SLIDING_RULES)}"
        )
    tokens = seq
    if kind == "sliding" and window is not None:
        cap = window if rule == "window" else window - 1
        tokens = min(seq, cap)
    if block_size is not None:
        if block_size < 1:
            raise UsageError(f"--block-size must be a positive integer, got {block_size}")
        tokens = math.ceil(tokens / block_size) * block_size
    return tokens


@dataclass(frozen=True)
class KVCache:
    """A KV-cache size broken down; all figures in bytes, for ``batch`` sequences."""

    seq: int
    batch: int
    dtype: str
    bytes_per_token_per_layer: int
    """One token, one self-attention layer."""
    bytes_per_token: int
    """One token across all self-attention layers, before any sliding-window cap."""
    self_attention_bytes: int
    cross_attention_bytes: int
    layers_by_kind: dict[str, int]
    """Number of cached layers of each kind (full, sliding, cross)."""
    bytes_by_kind: dict[str, int]
    per_layer_bytes: tuple[int, ...]
    rule: str
    tp: int
    block_size: int | None
    encoder_seq: int

    @property
    def total_bytes(self) -> int:
        return self.self_attention_bytes + self.cross_attention_bytes


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
) -> KVCache:
    """The KV cache of ``batch`` sequences of ``seq`` tokens, by layer and kind.

    total = sum over decoder layers of ``batch x cached_tokens(layer) x bytes_per_token_layer``
    plus, for encoder-decoder models, ``num_layers x batch x encoder_seq x 2 x kv_heads x
    head_dim x bytes`` of cross-attention K/V (computed once from the encoder output).
    Encoder-only models cache nothing.
    """
    _check_positive("--seq", seq)
    _check_positive("--batch", batch)
    per_token_layer = kv_bytes_per_token_per_layer(spec, dtype, tp=tp)
    enc_seq = seq if encoder_seq is None else encoder_seq
    _check_positive("--encoder-seq", enc_seq)
    if spec.architecture == "encoder":
        return KVCache(seq, batch, dtype, 0, 0, 0, 0, {}, {}, (), rule, tp, block_size, enc_seq)
    per_layer = tuple(
        batch
        * cached_tokens(kind, seq, spec.sliding_window, rule=rule, block_size=block_size)
        * per_token_layer
        for kind in spec.layer_kinds
    )
    layers_by_kind: dict[str, int] = {}
    bytes_by_kind: dict[str, int] = {}
    for kind, nbytes in zip(spec.layer_kinds, per_layer, strict=True):
        layers_by_kind[kind] = layers_by_kind.get(kind, 0) + 1
        bytes_by_kind[kind] = bytes_by_kind.get(kind, 0) + nbytes
    cross = 0
    if spec.architecture == "encoder-decoder":
        enc_tokens = cached_tokens("full", enc_seq, None, block_size=block_size)
        cross = spec.num_layers * batch * enc_tokens * per_token_layer
        layers_by_kind["cross"] = spec.num_layers
        bytes_by_kind["cross"] = cross
    return KVCache(
        seq=seq,
        batch=batch,
        dtype=dtype,
        bytes_per_token_per_layer=per_token_layer,
        bytes_per_token=per_token_layer * spec.num_layers,
        self_attention_bytes=sum(per_layer),
        cross_attention_bytes=cross,
        layers_by_kind=layers_by_kind,
        bytes_by_kind=bytes_by_kind,
        per_layer_bytes=per_layer,
        rule=rule,
        tp=tp,
        block_size=block_size,
        encoder_seq=enc_seq,
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
    """Total KV-cache bytes (all layers, self + cross attention); see ``kv_cache``."""
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

    def kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AttentionVariant:
    """The same model with another KV-head count: what MHA, GQA or MQA would cache."""

    label: str
    kv_heads: int
    total_bytes: int


def attention_variants(spec: ModelSpec, seq: int, layout: CacheLayout) -> list[AttentionVariant]:
    """KV cache of ``spec`` as MHA (kv_heads = heads), as itself (GQA/MLA) and as MQA (1 head).

    Only the KV-head count changes (``spec.replace(num_kv_heads=...)``); MLA models show the
    latent cache beside the MHA cache their attention decompresses to.
    """
    variants: list[AttentionVariant] = []
    seen: set[tuple[str, int]] = set()
    candidates = [("MHA", spec.num_heads), (spec.attention_kind, spec.kv_heads), ("MQA", 1)]
    for label, heads in candidates:
        if spec.is_mla and label != "MLA":
            variant = spec.replace(
                kv_lora_rank=None,
                q_lora_rank=None,
                qk_nope_head_dim=None,
                qk_rope_head_dim=None,
                v_head_dim=None,
                head_dim=spec.qk_head_dim,
                num_kv_heads=heads,
            )
        else:
            variant = spec.replace(num_kv_heads=heads) if not spec.is_mla else spec
        key = (variant.attention_kind, heads if not spec.is_mla or label != "MLA" else -1)
        if key in seen:
            continue
        seen.add(key)
        total = kv_cache_bytes(variant, seq, **layout.kwargs())
        variants.append(AttentionVariant(variant.attention_kind, heads, total))
    return variants


def naive_attention_score_bytes(
    spec: ModelSpec, seq: int, *, batch: int = 1, dtype: str = "fp32", context: int = 0
) -> int:
    """The score matrix one layer of a naive attention materialises: B x H x S_q x S_k x bytes.

    A naive implementation (explicit QK^T, mask, softmax, AV) holds the full (s, s) scores
    per head, whatever the mask; softmax produces a second tensor of the same size unless done
    in place. FlashAttention (Dao et al. 2022) never materialises it.
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


def weight_bytes(total_params: int, dtype: str) -> int:
    """Bytes of the weights: ceil(params x bits / 8)."""
    return _bytes(total_params, dtype)


# ---- what fits in a budget ------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """Answer of the fit solver; ``None`` where nothing fits."""

    budget_bytes: int
    weights_bytes: int
    reserve_bytes: int
    available_bytes: int
    """budget - weights - reserve (negative when the weights alone do not fit)."""
    max_seq_for_batch: int | None
    max_batch_for_seq: int | None
    unbounded_seq: bool
    """True when the cache stops growing (every layer sliding) so any context fits."""

    @property
    def weights_fit(self) -> bool:
        return self.available_bytes > 0


def _largest(fits: Callable[[int], bool], limit: int) -> int | None:
    """Largest n in [1, limit] with fits(n) (fits monotone decreasing), or None."""
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
) -> Fit:
    """Longest context for ``batch`` and largest batch for ``seq`` that fit in the budget.

    available = budget - weights - reserve; a configuration fits when its KV cache
    (``kv_cache_bytes``) is at most ``available``. The cache is monotone in both context and
    batch (linear in batch), so a binary search over context and a division over batch are
    exact.
    """
    available = budget_bytes - weights_bytes_ - reserve_bytes

    def cache(s: int, b: int) -> int:
        return kv_cache_bytes(
            spec,
            s,
            batch=b,
            dtype=dtype,
            encoder_seq=encoder_seq,
            tp=tp,
            block_size=block_size,
            rule=rule,
        )

    if available <= 0 or spec.architecture == "encoder":
        return Fit(budget_bytes, weights_bytes_, reserve_bytes, available, None, None, False)
    max_seq = _largest(lambda s: cache(s, batch) <= available, SEQ_SEARCH_LIMIT)
    per_sequence = cache(seq, 1)
    max_batch = available // per_sequence if per_sequence else None
    unbounded = max_seq == SEQ_SEARCH_LIMIT
    return Fit(
        budget_bytes,
        weights_bytes_,
        reserve_bytes,
        available,
        max_seq,
        max_batch if max_batch else None,
        unbounded,
    )


def _check_positive(option: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{option} must be a positive integer, got {value}")
