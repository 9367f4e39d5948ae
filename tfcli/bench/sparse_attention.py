"""Longformer's local + global attention (Beltagy et al. 2020, 3.1) and BigBird's block-sparse
attention in eval (Zaheer et al. 2020; ``bigbird_inputs``) for the built-in encoder.

The reference is transformers' ``LongformerModel`` and ``LongformerSelfAttention``
(models/longformer/modeling_longformer.py):

* ``_pad_to_window_size``: the input is padded to P, the next multiple of the window w, and
  every layer runs on P rows; the padding is masked as keys and cut from the output.
  Here the embedded hidden states are padded with zero rows (``pad_to_window``): the padded
  rows never reach a real token (they are masked as keys), so the real rows are the same;
* local attention: query i attends key j when ``|i - j| <= w / 2`` (one-sided window
  ``one_sided_attn_window_size = w // 2``), q scaled by ``1 / sqrt(D)``;
* global tokens (``global_attention_mask`` = 1; LongformerModel has none unless given, and
  the spec's ``global_tokens`` g makes the first g global, as tfcli.flops counts them):
  every query also attends the global keys (the band drops them so that none counts twice,
  ``remove_from_windowed_attention_mask``), with the layer's ``query`` / ``key`` / ``value``;
  the rows of the global tokens are then recomputed over every unpadded key with the
  separate ``query_global`` / ``key_global`` / ``value_global`` projections
  (``_compute_global_attn_output_from_hidden``) and overwrite the local result.

This is NOT the banded kernel: the pattern is one additive (P, P) mask (``longformer_bias``:
0 where a pair attends, -inf elsewhere) over a dense softmax, exact but O(P^2) in time and
memory where transformers' overlapping chunks cost O(P w) (``tfcli.flops.sparse_kernel_pairs``
counts those). Shapes: B batch, P padded sequence, h hidden, H heads, D head dim, g globals.

torch is imported here (bench only).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tfcli.bench.cache import LayerCache
from tfcli.bench.model import AttentionSettings, SelfAttention
from tfcli.bench.positions import RotaryEmbedding
from tfcli.spec import ModelSpec


def longformer_bias(
    spec: ModelSpec, seq: int, padded: int, *, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Additive (P, P) mask of Longformer's pattern, 0 = attends, -inf = masked.

    Real query rows (i < seq): the band ``|i - j| <= w / 2`` plus the g global keys ``j < g``,
    unpadded keys only; global rows (i < g): every unpadded key. Padded rows (i >= seq,
    discarded) see the band and the globals, padding included, so no row is empty."""
    radius = int(spec.sliding_window or 0) // 2
    g = min(spec.global_tokens, seq)
    rows = torch.arange(padded, device=device).unsqueeze(1)  # (P, 1)
    cols = torch.arange(padded, device=device).unsqueeze(0)  # (1, P)
    allowed = ((rows - cols).abs() <= radius) | (cols < g) | (rows < g)  # (P, P)
    allowed &= (cols < seq) | (rows >= seq)
    bias = torch.zeros(padded, padded, device=device, dtype=dtype)
    return bias.masked_fill_(~allowed, float("-inf"))


def pad_to_window(spec: ModelSpec, x: Tensor) -> tuple[Tensor, Tensor]:
    """Hidden states (B, S, h) padded with zero rows to (B, P, h), and the (P, P) bias."""
    seq = x.shape[1]
    padded, bias = sparse_pattern(spec, seq, device=x.device, dtype=x.dtype)
    if padded > seq:
        x = torch.cat((x, x.new_zeros(x.shape[0], padded - seq, x.shape[2])), dim=1)
    assert bias is not None
    return x, bias


def sparse_pattern(
    spec: ModelSpec, seq: int, *, device: torch.device, dtype: torch.dtype
) -> tuple[int, Tensor | None]:
    """(rows P, additive (P, P) bias) of a Longformer or BigBird encoder over ``seq`` tokens:
    what every layer's core runs on (``pad_to_window``, ``bigbird_inputs``); BigBird's
    fall-back to full attention is (seq, None)."""
    from tfcli.bench.work import sparse_pattern_masks
    from tfcli.flops import executed_length

    if not sparse_pattern_masks(spec, seq):
        return seq, None
    padded = executed_length(spec, seq, "full")  # _pad_to_window_size / _pad_to_block_size
    if spec.sparse_attention == "longformer":
        return padded, longformer_bias(spec, seq, padded, device=device, dtype=dtype)
    return padded, bigbird_bias(spec, seq, padded, device=device, dtype=dtype)


def bigbird_inputs(spec: ModelSpec, x: Tensor) -> tuple[Tensor, Tensor | None]:
    """BigBird's block-sparse attention in eval (transformers ``BigBirdModel`` and
    ``BigBirdBlockSparseAttention.bigbird_block_sparse_attention``), as (B, P, h) hidden
    states and an additive (P, P) bias for a dense softmax; ``(x, None)`` (full attention)
    when BigBirdModel falls back to ``original_full`` (``tfcli.flops.bigbird_falls_back``:
    ``s <= (5 + 2 r) b``).

    Otherwise x is padded with zero rows to P, a multiple of the block b
    (``_pad_to_block_size``; padded keys are masked, padded rows cut), and with N = P / b
    blocks, query block l attends key blocks: l = 0 and N - 1 (global) every block; l = 1
    blocks 0, 1, 2, N - 1; l = N - 2 blocks 0, N - 3, N - 2, N - 1; the others l - 1, l,
    l + 1, 0 and N - 1; and each l in 1 .. N - 2 also r "random" blocks. In eval these are
    not random: ``_bigbird_block_rand_mask`` and ``_bigbird_block_rand_mask_with_head``
    return all-zero indices ("During inference (eval) no randomness"), so the r random
    blocks are r more copies of block 0 in the same softmax. A key present c times adds
    log(c) to its logit (exp(s + log c) = c exp(s)), which is what the duplicated columns do
    to both the softmax and the weighted sum of values. transformers masks padding with a
    -10000 penalty (exp underflows to 0 in fp32 and wider), here -inf."""
    seq = x.shape[1]
    padded, bias = sparse_pattern(spec, seq, device=x.device, dtype=x.dtype)
    if padded > seq:
        x = torch.cat((x, x.new_zeros(x.shape[0], padded - seq, x.shape[2])), dim=1)
    return x, bias


def bigbird_bias(
    spec: ModelSpec, seq: int, padded: int, *, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """BigBird's eval pattern over ``padded`` rows as an additive (P, P) bias: log of the
    copies of each key block in a query block's softmax (``bigbird_inputs``), -inf where a
    block is absent or a key is padding."""
    b, r = int(spec.sparse_block_size or 1), int(spec.sparse_random_blocks or 0)
    n = padded // b
    counts = torch.zeros(n, n)  # (N, N): copies of key block j in query block l's softmax
    counts[0] = counts[n - 1] = 1.0
    for row, blocks in ((1, (0, 1, 2, n - 1)), (n - 2, (0, n - 3, n - 2, n - 1))):
        counts[row, list(blocks)] = 1.0
    for row in range(2, n - 2):
        counts[row, [row - 1, row, row + 1, 0, n - 1]] = 1.0
    counts[1 : n - 1, 0] += r  # the "random" blocks: block 0 again, r times
    dense = counts.repeat_interleave(b, dim=0).repeat_interleave(b, dim=1)  # (P, P)
    keys = torch.arange(padded).unsqueeze(0)  # (1, P)
    rows = torch.arange(padded).unsqueeze(1)  # (P, 1)
    dense = dense * ((keys < seq) | (rows >= seq))  # padded keys masked for real rows
    return dense.log().to(device=device, dtype=dtype)  # log 0 = -inf


class LongformerSelfAttention(SelfAttention):
    """SelfAttention (q, k, v, o) plus ``q_global`` / ``k_global`` / ``v_global`` (h -> H D,
    with the q/k/v bias), run on the first ``spec.global_tokens`` rows (see the module)."""

    def __init__(
        self,
        spec: ModelSpec,
        index: int,
        *,
        rope: RotaryEmbedding | None,
        settings: AttentionSettings,
    ) -> None:
        super().__init__(spec, index, causal=False, window=None, rope=rope, settings=settings)
        h, width, bias = spec.hidden_size, self.heads * self.head_dim, spec.attention_qkv_bias
        self.q_global = nn.Linear(h, width, bias=bias)
        self.k_global = nn.Linear(h, width, bias=bias)
        self.v_global = nn.Linear(h, width, bias=bias)

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
        """x (B, P, h) -> (B, P, h); ``bias`` the (P, P) pattern of ``pad_to_window`` (built
        for an unpadded x when None). No cache (Longformer is an encoder) and no relative
        inputs (those are DeBERTa's)."""
        p = x.shape[1]
        if bias is None:
            bias = longformer_bias(self.spec, p, p, device=x.device, dtype=x.dtype)
        q, k, v = self.project_qkv(x, positions)  # (B, H, P, D) each
        out = self.core(q, k, v, bias=bias)  # (B, H, P, D): band + global keys
        g = min(self.spec.global_tokens, p)
        if g:
            q_g = self.split_heads(self.q_global(x[:, :g]), self.heads)  # (B, H, g, D)
            k_g = self.split_heads(self.k_global(x), self.heads)  # (B, H, P, D)
            v_g = self.split_heads(self.v_global(x), self.heads)
            rows = self.core(q_g, k_g, v_g, bias=bias[:g])  # (B, H, g, D)
            out = torch.cat((rows, out[:, :, g:]), dim=2)
        return self.project_out(out)
