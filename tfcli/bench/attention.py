"""The attention core: softmax(Q K^T x scale + bias, masked) V, by two backends.

* ``naive``: explicit QK^T, bias, soft-capping, mask, softmax (in fp32) and AV. It
  materialises the (S_q, S_k) scores of every head: O(S^2) memory.
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` (FlashAttention-style
  kernels on CUDA and, for fp32 without a mask, on CPU: O(S) memory). On CUDA a kernel can be
  forced (flash, efficient, math, cudnn) through ``torch.nn.attention.sdpa_kernel``.

Shapes: q (B, H, S_q, D), k (B, KVH, S_k, D), v (B, KVH, S_k, Dv); H = KVH x G. Grouped-query
attention never copies K/V: the naive path views the queries as (B, KVH, G, S_q, D), SDPA gets
``enable_gqa=True``. Query ``i`` sits at absolute position ``q_offset + i`` (decode with a
cache), key ``j`` at position ``key_offset + j`` (a sliding cache that dropped old keys).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
) -> Tensor | None:
    """Boolean (S_q, S_k) mask, True where a query may attend: causal ``j <= i`` and, with a
    window ``w``, ``i - j < w`` (positions absolute). None when everything is visible."""
    if not causal and window is None:
        return None
    rows = torch.arange(s_q, device=device).unsqueeze(1) + q_offset  # (S_q, 1)
    cols = torch.arange(s_k, device=device).unsqueeze(0) + key_offset  # (1, S_k)
    allowed = torch.ones(s_q, s_k, dtype=torch.bool, device=device)
    if causal:
        allowed &= cols <= rows
    if window is not None:
        allowed &= rows - cols < window
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
) -> Tensor:
    """Explicit attention with the scores materialised; GQA by a grouped view, no K/V copy.

    Two score-sized tensors exist at the peak: the scores (scaled, biased and masked in
    place) and the softmax probabilities.
    """
    b, h, s_q, d = q.shape
    kvh = k.shape[1]
    g = h // kvh
    qg = q.view(b, kvh, g, s_q, d)  # (B, KVH, G, S_q, D)
    scores = torch.matmul(qg, k.unsqueeze(2).transpose(-1, -2))  # (B, KVH, G, S_q, S_k)
    scores = scores.view(b, h, s_q, -1).mul_(scale)  # (B, H, S_q, S_k), scaled in place
    if bias is not None:
        scores = scores.add_(bias)
    if softcap is not None:
        scores = scores.div_(softcap).tanh_().mul_(softcap)
    if mask is not None:
        scores = scores.masked_fill_(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)  # a second S x S
    pg = probs.view(b, kvh, g, s_q, -1)  # (B, KVH, G, S_q, S_k)
    out = torch.matmul(pg, v.unsqueeze(2))  # (B, KVH, G, S_q, Dv)
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
    """``F.scaled_dot_product_attention``; the plain causal case uses ``is_causal`` so the
    kernel can skip masked blocks; other masks and biases go in as an additive float mask."""
    plain_causal = causal and mask is not None and bias is None and q.shape[2] == k.shape[2]
    attn_mask: Tensor | None = None
    if bias is not None or (mask is not None and not plain_causal):
        attn_mask = (
            torch.zeros((), dtype=q.dtype, device=q.device) if bias is None else bias.to(q.dtype)
        )
        if mask is not None:
            attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
    gqa = q.shape[1] != k.shape[1]
    with sdpa_kernel_context(kernel, q.device):
        return F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            is_causal=plain_causal and attn_mask is None,
            scale=scale,
            enable_gqa=gqa,
        )


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
) -> Tensor:
    """softmax(Q K^T scale + bias) V under a causal / sliding / bidirectional mask.

    Soft-capping (Gemma-2) is not expressible in SDPA: with ``softcap`` set, the naive path
    runs whatever the backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; use {', '.join(BACKENDS)}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    mask = attention_mask(
        q.shape[2],
        k.shape[2],
        causal=causal,
        window=window,
        q_offset=q_offset,
        key_offset=key_offset,
        device=q.device,
    )
    if backend == "naive" or softcap is not None:
        return naive_attention(q, k, v, scale=scale, mask=mask, bias=bias, softcap=softcap)
    if mask is not None and q_offset == 0 and key_offset == 0 and window is None and causal:
        return sdpa_attention(
            q, k, v, scale=scale, causal=True, mask=mask, bias=bias, kernel=sdpa_kernel
        )
    return sdpa_attention(
        q, k, v, scale=scale, causal=False, mask=mask, bias=bias, kernel=sdpa_kernel
    )
