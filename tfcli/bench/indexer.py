"""DeepSeek-V3.2's lightning indexer (DeepSeek Sparse Attention): which keys each query attends.

Source: transformers ``models/deepseek_v32/modeling_deepseek_v32.py`` (``DeepseekV32Indexer`` and
``DeepseekV32Attention.forward``), the bf16/fp32 form of DeepSeek's reference (which adds a
Hadamard rotation, orthogonal so dot products are unchanged, and an FP8 scoring kernel):

* q_I = wq_b(q_resid) viewed (B, S, H_I, D_I), q_resid = q_a_norm(q_a(x)) of the MLA;
  k_I = LayerNorm(wk(x)) (B, S, D_I), one key shared by the indexer heads;
* the first ``qk_rope_head_dim`` dims of q_I and k_I take RoPE in the half-split layout
  (rotate_half), unlike the MLA's interleaved RoPE; same frequencies and YaRN factor;
* score[b, s, t] = sum_h w[b, s, h] * relu(q_I[b, s, h] . k_I[b, t] * D_I^-0.5),
  w = weights_proj(x) * H_I^-0.5;
* the causal mask is applied to the scores, the top ``min(index_topk, S_k)`` keys are kept;
  the MLA attention masks every other key (an additive ``finfo.min`` bias on top of its
  causal mask).

The cache keeps k_I (B, S, D_I): ``index_head_dim`` values per token and layer, the figure of
``tfcli.memory.indexer_bytes_per_token_per_layer``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tfcli.bench.positions import RotaryEmbedding
from tfcli.spec import ModelSpec


class Indexer(nn.Module):
    """The indexer's projections, scoring and top-k selection (as an additive bias)."""

    def __init__(self, spec: ModelSpec, rope: RotaryEmbedding) -> None:
        super().__init__()
        self.heads = int(spec.index_num_heads or 0)
        self.head_dim = int(spec.index_head_dim or 0)
        self.topk = int(spec.index_topk or 0)
        rank = int(spec.q_lora_rank or 0)
        if not rank:
            raise ValueError("the DeepSeek-V3.2 indexer reads the MLA's q_lora_rank latent")
        self.wq_b = nn.Linear(rank, self.heads * self.head_dim, bias=False)
        self.wk = nn.Linear(spec.hidden_size, self.head_dim, bias=False)
        self.k_norm = nn.LayerNorm(self.head_dim, eps=1e-6)  # transformers: eps 1e-6, affine
        self.weights_proj = nn.Linear(spec.hidden_size, self.heads, bias=False)
        self.rope = rope

    def keys(self, x: Tensor, positions: Tensor) -> Tensor:
        """Rotated indexer keys (B, S, D_I) of the new tokens: what the cache keeps."""
        k = self.k_norm(self.wk(x)).unsqueeze(1)  # (B, 1, S, D_I)
        cos, sin = self.rope.cos_sin(positions, k.dtype, interleaved=False)
        return self.rope.rotate(k, cos, sin, interleaved=False).squeeze(1)

    def bias(self, x: Tensor, q_resid: Tensor, keys: Tensor, positions: Tensor) -> Tensor:
        """Additive bias (B, 1, S_q, S_k): 0 at each query's top-k causal keys, finfo.min
        elsewhere. ``keys`` (B, S_k, D_I) are all the keys so far; ``positions`` (S_q,) are the
        queries' absolute positions (the keys sit at 0..S_k-1)."""
        b, s, _ = x.shape
        q = self.wq_b(q_resid).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        cos, sin = self.rope.cos_sin(positions, q.dtype, interleaved=False)
        q = self.rope.rotate(q, cos, sin, interleaved=False).transpose(1, 2)  # (B, S, H_I, D_I)
        scale = self.head_dim**-0.5
        k_t = keys.float().transpose(-1, -2).unsqueeze(1)  # (B, 1, D_I, S_k)
        scores = torch.relu(torch.matmul(q.float(), k_t) * scale)  # (B, S_q, H_I, S_k)
        weights = self.weights_proj(x).float() * self.heads**-0.5  # (B, S_q, H_I)
        index = torch.matmul(weights.unsqueeze(-2), scores).squeeze(-2)  # (B, S_q, S_k)
        key_pos = torch.arange(keys.shape[1], device=x.device)
        future = key_pos.unsqueeze(0) > positions.unsqueeze(1)  # (S_q, S_k)
        index = index.masked_fill(future, float("-inf"))
        chosen = index.topk(min(self.topk, keys.shape[1]), dim=-1).indices  # (B, S_q, k)
        dropped = torch.ones_like(index, dtype=torch.bool).scatter(-1, chosen, False)
        bias = torch.zeros(index.shape, dtype=x.dtype, device=x.device)
        return bias.masked_fill(dropped, torch.finfo(x.dtype).min).unsqueeze(1)
