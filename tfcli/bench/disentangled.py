"""DeBERTa-v2/v3 disentangled attention: the c2p and p2c position terms (He et al. 2021,
"DeBERTa", eq. 4; transformers modeling_deberta_v2.py ``DisentangledSelfAttention``).

The encoder keeps ``2k`` relative-position embeddings R (``rel_embeddings``, k =
``relative_position_span``), optionally LayerNorm-ed once per forward (``norm_rel_ebd``
``layer_norm``, ``DebertaV2Encoder.get_rel_embedding``). Each layer projects them: with
``share_att_key`` by its content projections (P_q = q_proj(R), P_k = k_proj(R), both, whatever
the terms), else by its own ``pos_k`` (c2p) and ``pos_q`` (p2c). With ``factor = 1 +
len(terms)`` every term is divided by sqrt(D x factor), the content scores too:

* c2p[b, h, i, j] = q_i . P_k[clamp(delta(i, j) + k, 0, 2k - 1)]
* p2c[b, h, i, j] = k_i' . P_q[clamp(-delta(j, i) + k, 0, 2k - 1)] with i' = j: K P_q^T
  (S_k, 2k) gathered at clamp(-delta + k, 0, 2k - 1), then transposed;
  delta(i, j) = bucket(i - j).

The sum is an additive (B, H, S, S) bias of the attention core (both backends take one).

Relative positions (``build_relative_position`` / ``make_log_bucket_position``): i - j,
log-bucketed beyond k / 2 when k came from ``position_buckets``
(``relative_position_bucketed``; the published DeBERTa-v3 / v2-xlarge configs set
position_buckets 256), towards ``max_position`` = max_relative_positions if >= 1, else
max_position_embeddings (``relative_bucket_max_position``); when k came from
``max_relative_positions`` alone, i - j is only clamped by the gather index above.

Shapes: B batch, S sequence, h hidden, H heads, D head dim, 2k relative rows."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tfcli.bench.layers import activation, make_norm
from tfcli.spec import ModelSpec


def log_bucket_position(relative: Tensor, buckets: int, max_position: int) -> Tensor:
    """transformers ``make_log_bucket_position``: r itself while |r| <= mid = buckets // 2,
    else sign(r) x (mid + ceil(log(|r| / mid) / log((max_position - 1) / mid) x (mid - 1)))."""
    mid = buckets // 2
    sign = torch.sign(relative)
    inside = (relative < mid) & (relative > -mid)
    magnitude = torch.where(inside, torch.tensor(mid - 1).type_as(relative), relative.abs())
    log_pos = (
        torch.ceil(
            torch.log(magnitude / mid)
            / torch.log(torch.tensor((max_position - 1) / mid))
            * (mid - 1)
        )
        + mid
    )
    return torch.where(magnitude <= mid, relative.type_as(log_pos), log_pos * sign)


def relative_positions(
    seq: int, buckets: int, max_position: int, device: torch.device | None = None
) -> Tensor:
    """(S, S) long: bucket(i - j) for query i, key j (``build_relative_position``)."""
    ids = torch.arange(seq, dtype=torch.long, device=device)
    relative = ids[:, None] - ids[None, :]  # (S, S)
    if buckets > 0 and max_position > 0:
        relative = log_bucket_position(relative, buckets, max_position)
    return relative.to(torch.long)


def disentangled_factor(spec: ModelSpec) -> int:
    """1 + the number of position terms: scores are divided by sqrt(D x factor)."""
    return 1 + len(spec.disentangled_terms or ())


class RelativeEmbeddings(nn.Module):
    """The encoder's ``rel_embeddings`` (2k, h) and, with ``norm_rel_ebd`` layer_norm, its
    LayerNorm (``DebertaV2Encoder.LayerNorm``). The norm exists whenever the spec asks
    (transformers builds it even without relative attention, and counts it)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.span = int(spec.relative_position_span or 0)
        self.buckets = self.span if spec.relative_position_bucketed else 0
        max_position = spec.relative_bucket_max_position or spec.max_position_embeddings
        self.max_position = int(max_position or 0)
        disentangled = spec.position_type == "disentangled"
        self.table = nn.Embedding(2 * self.span, spec.hidden_size) if disentangled else None
        self.norm = make_norm(spec) if spec.relative_embedding_norm else None

    def rows(self) -> Tensor:
        """The (2k, h) embeddings the layers project, normed once per forward."""
        assert self.table is not None
        table = self.table.weight
        return self.norm(table) if self.norm is not None else table

    def positions(self, seq: int, device: torch.device) -> Tensor:
        """(S, S) relative position ids of a self-attention over ``seq`` tokens."""
        return relative_positions(seq, self.buckets, self.max_position, device)


class DisentangledBias(nn.Module):
    """One layer's c2p / p2c bias; ``pos_k`` / ``pos_q`` exist without ``share_att_key``."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        h, heads, d = spec.hidden_size, spec.num_heads, spec.resolved_head_dim
        self.heads, self.head_dim = heads, d
        self.span = int(spec.relative_position_span or 0)
        self.terms = tuple(spec.disentangled_terms or ())
        self.shared = spec.share_attention_key
        self.scale = 1.0 / math.sqrt(d * disentangled_factor(spec))
        shared = self.shared
        self.pos_k = nn.Linear(h, heads * d) if "c2p" in self.terms and not shared else None
        self.pos_q = nn.Linear(h, heads * d) if "p2c" in self.terms and not shared else None

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(1, -1, self.heads, self.head_dim).transpose(1, 2)  # (1, H, 2k, D)

    def forward(
        self,
        q: Tensor,
        k: Tensor,
        rows: Tensor,
        relative: Tensor,
        q_proj: nn.Linear,
        k_proj: nn.Linear,
    ) -> Tensor:
        """(B, H, S, S) bias from q, k (B, H, S, D), ``rows`` (2k, h) and ``relative`` (S, S);
        ``q_proj`` / ``k_proj``: the layer's content projections (used with share_att_key)."""
        rows = rows.unsqueeze(0)  # (1, 2k, h): projected once, not per batch row
        pos_q: Tensor | None
        pos_k: Tensor | None
        if self.shared:
            pos_q, pos_k = self._heads(q_proj(rows)), self._heads(k_proj(rows))
        else:
            pos_k = self._heads(self.pos_k(rows)) if self.pos_k is not None else None
            pos_q = self._heads(self.pos_q(rows)) if self.pos_q is not None else None
        b, heads, s, _ = q.shape
        last = 2 * self.span - 1
        bias = torch.zeros(b, heads, s, k.shape[2], dtype=q.dtype, device=q.device)
        if "c2p" in self.terms:
            assert pos_k is not None
            c2p = torch.matmul(q, pos_k.transpose(-1, -2))  # (B, H, S, 2k)
            index = torch.clamp(relative + self.span, 0, last).expand(b, heads, -1, -1)
            bias = bias + torch.gather(c2p, -1, index) * self.scale  # (B, H, S_q, S_k)
        if "p2c" in self.terms:
            assert pos_q is not None
            p2c = torch.matmul(k, pos_q.transpose(-1, -2))  # (B, H, S_k, 2k)
            index = torch.clamp(-relative + self.span, 0, last).expand(b, heads, -1, -1)
            bias = bias + torch.gather(p2c, -1, index).transpose(-1, -2) * self.scale
        return bias


class ConvLayer(nn.Module):
    """DeBERTa-v2's ConvLayer (``conv_kernel_size`` > 0; transformers ``ConvLayer``, called by
    ``DebertaV2Encoder.forward`` after layer 0): a K-wide Conv1d over the encoder's *input*
    (the embeddings), the activation ``conv_act``, then LayerNorm(layer 0's output + that),
    which layer 1 reads. Padding (K - 1) / 2 keeps S outputs (odd K); every token is valid
    here, so transformers' input-mask multiplications are the identity.

    Shapes: embedded (B, S, h) -> conv over S with h -> h channels -> (B, S, h)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        h, k = spec.hidden_size, int(spec.encoder_conv_kernel or 1)
        self.conv = nn.Conv1d(h, h, k, padding=(k - 1) // 2)
        self.norm = make_norm(spec)
        self.act = spec.encoder_conv_activation

    def forward(self, embedded: Tensor, layer_out: Tensor) -> Tensor:
        conv = self.conv(embedded.transpose(1, 2)).transpose(1, 2)  # (B, S, h)
        return self.norm(layer_out + activation(self.act, conv))
