"""Position information: RoPE, ALiBi, sinusoidal tables and T5's relative bias.

* RoPE (Su et al. 2021): per pair of dims ``i`` the angle ``pos x theta^(-2i/d)``; "half"
  layout rotates dims (i, i + d/2) (Llama, GPT-NeoX, transformers' ``rotate_half``),
  "interleaved" rotates (2i, 2i+1) (GPT-J). Only the first ``rotary_dim`` dims rotate.
  ``rope_scaling`` of type linear, llama3 or yarn rescales the frequencies (and, for YaRN,
  cos/sin) as transformers does; other types warn and stay unscaled.
* ALiBi (Press et al. 2022): head ``h`` adds ``slope_h x (j - i)``; slopes 2^(-8h/n) for a
  power-of-two head count, interleaved otherwise (BLOOM, MPT).
* Sinusoidal (Vaswani et al. 2017): sin on even dims, cos on odd dims.
* T5 relative bias (Raffel et al. 2020): log-spaced buckets of the distance, one learned
  scalar per bucket and head.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn


def _rope_kind(scaling: dict[str, Any] | None) -> str:
    """The rope_scaling type (``rope_type``, or the older ``type`` key); "default" when none."""
    scaling = scaling or {}
    return str(scaling.get("rope_type", scaling.get("type", "default")))


def yarn_mscale(factor: float, mscale: float = 1.0) -> float:
    """YaRN's attention temperature 0.1 x mscale x ln(factor) + 1 (1 when not stretched)."""
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def rope_inv_freq(dim: int, theta: float, scaling: dict[str, Any] | None) -> Tensor:
    """Inverse frequencies theta^(-2i/dim), i < dim/2, with linear, llama3 or yarn scaling
    (transformers' modeling_rope_utils, same arithmetic in fp32)."""
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    kind = _rope_kind(scaling)
    if scaling is None or kind == "default":
        return inv
    factor = float(scaling.get("factor", 1.0))
    if kind == "linear":
        return inv / factor
    if kind == "llama3":
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        low_wavelen, high_wavelen = old / low, old / high
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        return torch.where(medium, smoothed, scaled)
    if kind == "yarn":
        # YaRN (Peng et al. 2023): interpolate (divide by factor) the slow dims, keep the fast
        # ones, with a linear ramp between the dims turning beta_slow and beta_fast times.
        old = float(scaling["original_max_position_embeddings"])
        beta_fast = float(scaling.get("beta_fast") or 32)
        beta_slow = float(scaling.get("beta_slow") or 1)

        def dim_for(rotations: float) -> float:
            return dim * math.log(old / (rotations * 2 * math.pi)) / (2 * math.log(theta))

        low, high = dim_for(beta_fast), dim_for(beta_slow)
        if scaling.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        ramp = (torch.arange(dim // 2, dtype=torch.float32) - low) / max(high - low, 0.001)
        keep = 1 - ramp.clamp(0, 1)  # 1: extrapolate (keep), 0: interpolate (divide)
        return inv / factor * (1 - keep) + inv * keep
    warnings.warn(
        f"rope_scaling type {kind!r} is not implemented in the bench model: unscaled "
        "frequencies (same FLOPs and timing, different numbers)",
        stacklevel=2,
    )
    return inv


def rope_attention_factor(scaling: dict[str, Any] | None) -> float:
    """Multiplier of cos and sin: YaRN's attention_factor (mscale ratio), else 1."""
    if scaling is None or _rope_kind(scaling) != "yarn":
        return 1.0
    if scaling.get("attention_factor") is not None:
        return float(scaling["attention_factor"])
    factor = float(scaling.get("factor", 1.0))
    mscale, all_dim = scaling.get("mscale"), scaling.get("mscale_all_dim")
    if mscale and all_dim:
        return yarn_mscale(factor, float(mscale)) / yarn_mscale(factor, float(all_dim))
    return yarn_mscale(factor)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for positions, applied to the first ``rotary_dim`` dims of q and k."""

    inv_freq: Tensor

    def __init__(
        self,
        rotary_dim: int,
        theta: float,
        *,
        interleaved: bool = False,
        scaling: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.rotary_dim = rotary_dim
        self.interleaved = interleaved
        self.register_buffer(
            "inv_freq", rope_inv_freq(rotary_dim, theta, scaling), persistent=False
        )
        self.attention_factor = rope_attention_factor(scaling)

    def cos_sin(
        self, positions: Tensor, dtype: torch.dtype, *, interleaved: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        """(S, rotary_dim) cos and sin for integer ``positions`` (S,); ``interleaved``
        overrides the layout (DeepSeek-V3.2's indexer: half-split beside an interleaved MLA)."""
        freqs = positions.float().unsqueeze(1) * self.inv_freq.float().unsqueeze(0)  # (S, d/2)
        if self.interleaved if interleaved is None else interleaved:
            emb = torch.repeat_interleave(freqs, 2, dim=-1)  # (S, d): f0 f0 f1 f1 ...
        else:
            emb = torch.cat((freqs, freqs), dim=-1)  # (S, d): f0 f1 ... f0 f1 ...
        cos, sin = emb.cos() * self.attention_factor, emb.sin() * self.attention_factor
        return cos.to(dtype), sin.to(dtype)

    def rotate(
        self, x: Tensor, cos: Tensor, sin: Tensor, *, interleaved: bool | None = None
    ) -> Tensor:
        """Rotate x (B, H, S, D) by the angles; dims beyond rotary_dim pass through."""
        rot, rest = x[..., : self.rotary_dim], x[..., self.rotary_dim :]
        if self.interleaved if interleaved is None else interleaved:
            pairs = rot.unflatten(-1, (-1, 2))  # (B, H, S, d/2, 2)
            turned = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        else:
            half = rot.shape[-1] // 2
            turned = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
        return torch.cat((rot * cos + turned * sin, rest), dim=-1)


def alibi_slopes(num_heads: int) -> Tensor:
    """ALiBi slopes (Press et al. 2022; BLOOM's build_alibi_tensor): geometric 2^(-8/n) for the
    closest power of two n, the extra heads taking every other slope of 2n."""
    closest = 2 ** math.floor(math.log2(num_heads))
    base = 2.0 ** (-(2.0 ** -(math.log2(closest) - 3)))
    slopes = [base ** (i + 1) for i in range(closest)]
    if closest != num_heads:
        extra_base = 2.0 ** (-(2.0 ** -(math.log2(2 * closest) - 3)))
        extra = [extra_base ** (i + 1) for i in range(0, 2 * (num_heads - closest), 2)]
        slopes += extra
    return torch.tensor(slopes)


def alibi_bias(num_heads: int, s_q: int, s_k: int, q_offset: int, device: torch.device) -> Tensor:
    """(H, S_q, S_k) additive bias slope_h x (j - i); a per-row constant away from BLOOM's
    slope x j, which softmax ignores."""
    rows = torch.arange(s_q, device=device).unsqueeze(1) + q_offset
    cols = torch.arange(s_k, device=device).unsqueeze(0)
    distance = (cols - rows).float()  # (S_q, S_k)
    return alibi_slopes(num_heads).to(device).view(-1, 1, 1) * distance


def sinusoidal_embedding(positions: Tensor, dim: int) -> Tensor:
    """(S, dim) for integer ``positions`` (S,): sin(pos / 10000^(2i/d)) on dims 2i, cos on
    dims 2i+1; computed on the fly, so any length works and nothing is stored."""
    pos = positions.float().unsqueeze(1)  # (S, 1)
    inv = torch.exp(
        torch.arange(0, dim, 2, device=positions.device).float() * (-math.log(10000.0) / dim)
    )  # (ceil(d/2),)
    table = torch.zeros(positions.shape[0], dim, device=positions.device)
    table[:, 0::2] = torch.sin(pos * inv)
    table[:, 1::2] = torch.cos(pos * inv[: dim // 2])
    return table


def t5_bucket(relative: Tensor, *, bidirectional: bool, buckets: int, max_distance: int) -> Tensor:
    """T5's relative position bucket (transformers T5Attention._relative_position_bucket)."""
    out = torch.zeros_like(relative)
    if bidirectional:
        buckets //= 2
        out += (relative > 0).long() * buckets
        relative = relative.abs()
    else:
        relative = -torch.min(relative, torch.zeros_like(relative))
    exact = buckets // 2
    small = relative < exact
    large = (
        exact
        + (
            torch.log(relative.float() / exact) / math.log(max_distance / exact) * (buckets - exact)
        ).long()
    )
    large = torch.min(large, torch.full_like(large, buckets - 1))
    return out + torch.where(small, relative, large)


class RelativeBias(nn.Module):
    """T5's learned relative attention bias: (H, S_q, S_k) from bucketed distances."""

    def __init__(self, buckets: int, max_distance: int, heads: int, *, bidirectional: bool) -> None:
        super().__init__()
        self.buckets, self.max_distance, self.bidirectional = buckets, max_distance, bidirectional
        self.embedding = nn.Embedding(buckets, heads)

    def forward(self, s_q: int, s_k: int, q_offset: int = 0) -> Tensor:
        device = self.embedding.weight.device
        rows = torch.arange(s_q, device=device).unsqueeze(1) + q_offset
        cols = torch.arange(s_k, device=device).unsqueeze(0)
        bucket = t5_bucket(
            cols - rows,
            bidirectional=self.bidirectional,
            buckets=self.buckets,
            max_distance=self.max_distance,
        )  # (S_q, S_k)
        return self.embedding(bucket).permute(2, 0, 1)  # (H, S_q, S_k)
