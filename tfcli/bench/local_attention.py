"""Sliding-window and chunked attention that skip the masked work: O(S x w), not O(S^2).

Both run the existing attention core (``tfcli.bench.attention``) on local key ranges:

* sliding window w (causal: row i sees keys i - w < j <= i): queries in blocks of
  b = ``sliding_block(w)`` rows; block [s, e) attends only keys [max(0, s - w + 1), e)
  through SDPA with that block's boolean band mask (``attention_mask`` with the block's
  absolute offsets). A banded computation: each block costs b x (b + w - 1) pairs at most,
  so the time grows as S (w + b), where a full S x S masked softmax grows as S^2.
* chunked c (Llama 4: row i sees the earlier keys of its own chunk): each chunk is an
  independent square causal call (SDPA ``is_causal``, whose block skipping applies inside
  the chunk): S / c calls of c x c.

The pairs each executes are ``tfcli.bench.mixer_specs.sliding_executed_pairs`` and
``chunk_lengths`` (with the kernel's own causal skipping: ``tfcli.bench.work.executed_pairs``).
Shapes as in ``tfcli.bench.attention``: q (B, H, S, D), k and v (B, KVH, S, D).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tfcli.bench.attention import attention_core, attention_mask, sdpa_attention
from tfcli.bench.mixer_specs import chunk_lengths, sliding_block, sliding_key_range


def sliding_attention(
    q: Tensor, k: Tensor, v: Tensor, *, window: int, scale: float | None = None
) -> Tensor:
    """Causal sliding-window attention, block by block over local key ranges (see module).

    A block's mask depends only on (query offset - key offset, rows, keys), so the blocks
    past the first w share one mask: it is built once per distinct shape in a call."""
    seq = q.shape[2]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    block = sliding_block(window)
    masks: dict[tuple[int, int, int], Tensor | None] = {}
    outputs = []
    for start in range(0, seq, block):
        end = min(seq, start + block)
        first, _ = sliding_key_range(start, end, window)
        key = (start - first, end - start, end - first)
        if key not in masks:
            masks[key] = attention_mask(
                end - start,
                end - first,
                causal=True,
                window=window,
                q_offset=start,
                key_offset=first,
                device=q.device,
            )
        outputs.append(
            sdpa_attention(
                q[:, :, start:end],
                k[:, :, first:end],
                v[:, :, first:end],
                scale=scale,
                causal=False,
                mask=masks[key],
            )
        )
    return torch.cat(outputs, dim=2)


def chunked_attention(
    q: Tensor, k: Tensor, v: Tensor, *, chunk: int, scale: float | None = None
) -> Tensor:
    """Chunked causal attention: one square causal core call per chunk (see module)."""
    outputs = []
    start = 0
    for length in chunk_lengths(q.shape[2], chunk):
        end = start + length
        outputs.append(
            attention_core(
                q[:, :, start:end],
                k[:, :, start:end],
                v[:, :, start:end],
                backend="sdpa",
                causal=True,
                scale=scale,
            )
        )
        start = end
    return torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]


def local_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    kind: str,
    window: int | None,
    scale: float | None = None,
) -> Tensor:
    """The attention core of a ``--mixers`` attention kind: full (SDPA, ``is_causal``),
    sliding or chunked."""
    if kind == "sliding" and window is not None:
        return sliding_attention(q, k, v, window=window, scale=scale)
    if kind == "chunked" and window is not None:
        return chunked_attention(q, k, v, chunk=window, scale=scale)
    return attention_core(q, k, v, backend="sdpa", causal=True, scale=scale)
