"""The attention core: softmax(Q K^T x scale + bias, masked) V, by two backends.

* ``naive``: explicit QK^T, bias, soft-capping, mask, softmax (in fp32) and AV. It
  materialises the (S_q, S_k) scores of every head: O(S^2) memory.
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` (FlashAttention-style
  kernels on CUDA and, for fp32 without a mask, on CPU: O(S) memory). On CUDA a kernel can be
  forced (flash, efficient, math, cudnn) through ``torch.nn.attention.sdpa_kernel``.

A one-query decode step on the CPU runs the grouped kernel (``naive_attention``: the G
queries of each KV head are the rows of one matmul, so each KV head is read once) whatever
the backend: torch 2.13's CPU SDPA streams each KV head once per query head under
``enable_gqa`` (DESIGN.md section 6: 12-27% of read bandwidth against 32-36%), and with one
query there are no S x S scores to save.

Shapes: q (B, H, S_q, D), k (B, KVH, S_k, D), v (B, KVH, S_k, Dv); H = KVH x G. Grouped-query
attention never copies K/V: the naive path views the queries as (B, KVH, G x S_q, D), SDPA gets
``enable_gqa=True``. Query ``i`` sits at absolute position ``q_offset + i`` (decode with a
cache), key ``j`` at position ``key_offset + j`` (a sliding cache that dropped old keys).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

BACKENDS = ("naive", "sdpa")
SDPA_KERNELS = ("flash", "efficient", "math", "cudnn")


def attention_mask(
    s_q: int,
    s_k: int,
    *,
    causal: bool,
    window: int | None,
    q_offset: int = 0,
    key_offset: int = 0,
    device: torch.device | None = None,
    chunk: int | None = None,
) -> Tensor | None:
    """Boolean (S_q, S_k) mask, True where a query may attend: causal ``j <= i`` and, with a
    window ``w``, ``i - j < w`` (positions absolute); bidirectional with a window (ModernBERT's
    local layers) ``|i - j| <= w // 2``; with a ``chunk`` c (Llama 4's chunked layers,
    transformers' chunked_overlay) also ``i // c == j // c``. None when everything is
    visible, e.g. a decode step whose one query sees every cached key: the kernels then run
    unmasked."""
    last_key = key_offset + s_k - 1
    causal_hides = causal and last_key > q_offset  # the first query cannot see the last key
    window_hides = window is not None and (q_offset + s_q - 1) - key_offset >= window
    if window is not None and not causal:
        reach = max(q_offset + s_q - 1 - key_offset, last_key - q_offset)
        window_hides = reach > window // 2
    # the first key and the last query in one chunk: every visible pair shares that chunk
    chunk_hides = chunk is not None and key_offset // chunk != (q_offset + s_q - 1) // chunk
    if not causal_hides and not window_hides and not chunk_hides:
        return None
    rows = torch.arange(s_q, device=device).unsqueeze(1) + q_offset  # (S_q, 1)
    cols = torch.arange(s_k, device=device).unsqueeze(0) + key_offset  # (1, S_k)
    # each condition compares a key index (1, S_k) with a per-query bound (S_q, 1), built
    # one at a time: a bool (S_q, S_k) each, never an int64 (S_q, S_k) difference (8 bytes a
    # pair: 17 bytes a pair at the peak of a bidirectional window before)
    conditions: list[Callable[[], Tensor]] = []
    if causal:
        conditions.append(lambda: cols <= rows)  # j <= i
    if window is not None and causal:
        conditions.append(lambda: cols > rows - window)  # i - j < w
    elif window is not None:
        radius = window // 2  # |i - j| <= w / 2
        conditions += [lambda: cols >= rows - radius, lambda: cols <= rows + radius]
    if chunk is not None:
        conditions.append(
            lambda: (
                torch.div(rows, chunk, rounding_mode="floor")
                == torch.div(cols, chunk, rounding_mode="floor")
            )
        )
    allowed: Tensor | None = None
    for condition in conditions:
        allowed = condition() if allowed is None else allowed.logical_and_(condition())
    assert allowed is not None
    return allowed


def naive_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scale: float,
    mask: Tensor | None,
    bias: Tensor | None = None,
    softcap: float | None = None,
    sinks: Tensor | None = None,
) -> Tensor:
    """Explicit attention with the scores materialised; GQA by a grouped view, no K/V copy.

    ``sinks`` (H,): gpt-oss's attention sinks, one learned logit per head that joins every
    row's softmax as an extra column and is dropped afterwards (transformers
    gpt_oss eager_attention_forward): p_ij = exp(s_ij) / (exp(sink_h) + sum_j exp(s_ij)),
    i.e. softmax(s)_ij x sigmoid(lse_i - sink_h), done in place on the probabilities.

    The G query heads sharing a KV head are folded into the rows of one matmul per KV head:
    q (B, KVH, G x S_q, D) @ k^T (B, KVH, D, S_k). A broadcast (B, KVH, G, S_q, D) @
    (B, KVH, 1, D, S_k) product would materialise K (and V) G times; this is a plain batched
    GEMM (for a decode step, G rows per KV head: each KV head is read once). With G = 1 it is
    the 4-D product transformers' eager attention computes, bit for bit.

    Two score-sized tensors exist at the peak: the scores (scaled, biased and masked in
    place) and the softmax probabilities.
    """
    b, h, s_q, d = q.shape
    kvh = k.shape[1]
    g = h // kvh
    qg = q.reshape(b, kvh, g * s_q, d)  # (B, KVH, G S_q, D): query head kvh x G + j
    scores = torch.matmul(qg, k.transpose(-1, -2))  # (B, KVH, G S_q, S_k)
    scores = scores.view(b, h, s_q, -1).mul_(scale)  # (B, H, S_q, S_k), scaled in place
    if bias is not None:
        scores = scores.add_(bias)
    if softcap is not None:
        scores = scores.div_(softcap).tanh_().mul_(softcap)
    if mask is not None:
        scores = scores.masked_fill_(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)  # a second S x S
    if sinks is not None:
        # the sink's share without a third S x S: each row's log-sum-exp from its largest
        # score m and largest probability exp(m - lse); then p x Z / (Z + e^sink)
        top = scores.amax(dim=-1, keepdim=True).float()  # (B, H, S_q, 1)
        lse = top - probs.amax(dim=-1, keepdim=True).log()
        probs.mul_(torch.sigmoid(lse - sinks.float().view(1, h, 1, 1)))
    probs = probs.to(q.dtype)
    out = torch.matmul(probs.view(b, kvh, g * s_q, -1), v)  # (B, KVH, G S_q, Dv)
    return out.view(b, h, s_q, v.shape[-1])


@contextlib.contextmanager
def sdpa_kernel_context(kernel: str | None, device: torch.device) -> Iterator[None]:
    """Force one SDPA kernel on CUDA (``torch.nn.attention.sdpa_kernel``); a no-op otherwise."""
    if kernel is None or device.type != "cuda":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    choice = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
    }[kernel]
    with sdpa_kernel(choice):
        yield


def sdpa_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scale: float,
    causal: bool,
    mask: Tensor | None,
    bias: Tensor | None = None,
    kernel: str | None = None,
) -> Tensor:
    """``F.scaled_dot_product_attention``. ``causal=True`` (a square causal mask starting at
    position 0) goes in as ``is_causal`` so the kernel can skip masked blocks; any other mask
    goes in as a boolean ``attn_mask`` (True = attend), a bias as an additive float mask.

    torch 2.13's CPU flash kernel takes a contiguous 2-D or 4-D mask that needs no gradient;
    a 3-D (H, S_q, S_k) bias, a strided view or one that requires grad runs SDPA's math
    fallback (profiled: 100 ms against 26 ms at H 16, S 1,024, the S x S scores
    materialised). The model's own forward passes its (H, S, S) bias as built, whose
    rounding the equivalence tests hold to transformers; the bench's timed cores get it as
    the flash kernel takes it (``tfcli.bench.run.core_bias``)."""
    attn_mask: Tensor | None = None
    if bias is not None:
        attn_mask = bias.to(q.dtype)  # (H, S_q, S_k) or broadcastable
        if mask is not None:
            attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
    elif mask is not None and not causal:
        attn_mask = mask  # (S_q, S_k) bool
    with sdpa_kernel_context(kernel, q.device):
        return F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            is_causal=causal and attn_mask is None,
            scale=scale,
            enable_gqa=q.shape[1] != k.shape[1],  # grouped K/V read in place, not repeated
        )


def sdpa_with_sinks(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    sinks: Tensor,
    *,
    scale: float,
    square_causal: bool,
    mask: Tensor | None,
    kernel: str | None = None,
) -> Tensor:
    """Attention sinks (gpt-oss) through SDPA, without materialising the scores.

    The sink of head h is one extra key every query sees with logit sink_h and a zero value
    (transformers gpt_oss eager_attention_forward: softmax over [scores, sink], sink column
    dropped). With GQA the sink cannot live in the shared key, so it lives in the query: one
    extra dim, q' = [q, sink_h / scale], k' = [k, 0], and a sink key [0, ..., 0, 1] in front
    of the keys, so that scale x q' . k_sink = sink_h; values get a zero row (and a zero dim,
    so q, k and v keep one head width, which the CPU flash kernel needs). A square causal
    call adds one dummy query in front, so that ``is_causal`` (top-left aligned) lets real
    query i see the sink and keys 0..i; its row is dropped. Extra memory: copies of q, k, v
    one dim wider, O(S D).
    """
    b, h, s_q, d = q.shape
    kvh, dv = k.shape[1], v.shape[-1]
    width = max(d, dv) + 1
    sink_dim = (sinks.to(q.dtype) / scale).view(1, h, 1, 1).expand(b, h, s_q, 1)
    q2 = torch.cat((F.pad(q, (0, width - 1 - d)), sink_dim), dim=-1)  # (B, H, S_q, W)
    k2 = F.pad(k, (0, width - d))  # (B, KVH, S_k, W): zero in the sink dim
    sink_key = k2.new_zeros(b, kvh, 1, width)
    sink_key[..., -1] = 1.0
    k2 = torch.cat((sink_key, k2), dim=2)  # (B, KVH, 1 + S_k, W)
    v2 = F.pad(v, (0, width - dv))
    v2 = torch.cat((v2.new_zeros(b, kvh, 1, width), v2), dim=2)  # (B, KVH, 1 + S_k, W)
    attn_mask: Tensor | None = None
    if square_causal:
        q2 = torch.cat((q2.new_zeros(b, h, 1, width), q2), dim=2)  # a dummy first query
    elif mask is not None:
        sees_sink = torch.ones(s_q, 1, dtype=torch.bool, device=mask.device)
        attn_mask = torch.cat((sees_sink, mask), dim=-1)  # (S_q, 1 + S_k)
    with sdpa_kernel_context(kernel, q.device):
        out = F.scaled_dot_product_attention(
            q2,
            k2,
            v2,
            attn_mask=attn_mask,
            is_causal=square_causal,
            scale=scale,
            enable_gqa=h != kvh,
        )
    if square_causal:
        out = out[:, :, 1:]
    return out[..., :dv]


def uses_grouped_decode(s_q: int, device: torch.device) -> bool:
    """True when the core runs the grouped matmul kernel for a decode step: one query per
    sequence on the CPU (see the module docstring)."""
    return s_q == 1 and device.type == "cpu"


def attention_core(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    backend: str = "sdpa",
    causal: bool,
    window: int | None = None,
    scale: float | None = None,
    softcap: float | None = None,
    bias: Tensor | None = None,
    q_offset: int = 0,
    key_offset: int = 0,
    sdpa_kernel: str | None = None,
    chunk: int | None = None,
    sinks: Tensor | None = None,
) -> Tensor:
    """softmax(Q K^T scale + bias) V under a causal / sliding / chunked / bidirectional mask.

    Soft-capping (Gemma-2) is not expressible in SDPA: with ``softcap`` set, the naive path
    runs whatever the backend; so does a one-query step on the CPU (``uses_grouped_decode``).
    Attention sinks (gpt-oss) go through SDPA as an extra key (``sdpa_with_sinks``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; use {', '.join(BACKENDS)}")
    if sdpa_kernel is not None and sdpa_kernel not in SDPA_KERNELS:
        raise ValueError(f"unknown SDPA kernel {sdpa_kernel!r}; use {', '.join(SDPA_KERNELS)}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    naive = (
        backend == "naive"
        or softcap is not None
        or (sinks is not None and bias is not None)
        or uses_grouped_decode(q.shape[2], q.device)
    )
    square_causal = (
        causal
        and window is None
        and chunk is None
        and q_offset == 0
        and key_offset == 0
        and q.shape[2] > 1
    ) and q.shape[2] == k.shape[2]
    if sinks is not None and not naive and square_causal:
        return sdpa_with_sinks(
            q, k, v, sinks, scale=scale, square_causal=square_causal, mask=None, kernel=sdpa_kernel
        )
    if square_causal and not naive and bias is None:
        # SDPA gets is_causal: building the (S, S) boolean mask would cost S^2 bytes for
        # nothing (256 MiB at 16K), which the O(S) memory figure must not include.
        return sdpa_attention(
            q, k, v, scale=scale, causal=True, mask=None, bias=None, kernel=sdpa_kernel
        )
    mask = attention_mask(
        q.shape[2],
        k.shape[2],
        causal=causal,
        window=window,
        q_offset=q_offset,
        key_offset=key_offset,
        device=q.device,
        chunk=chunk,
    )
    if naive:
        return naive_attention(
            q, k, v, scale=scale, mask=mask, bias=bias, softcap=softcap, sinks=sinks
        )
    if sinks is not None:
        return sdpa_with_sinks(
            q, k, v, sinks, scale=scale, square_causal=False, mask=mask, kernel=sdpa_kernel
        )
    return sdpa_attention(
        q, k, v, scale=scale, causal=square_causal, mask=mask, bias=bias, kernel=sdpa_kernel
    )
