"""Token mixers with a fixed per-sequence state: Gated DeltaNet, Mamba-2, Mamba-1, RWKV-4,
MiniMax lightning attention.

Each mixer is ``Cls(spec)`` with ``forward(x, state=None) -> y``, x and y (B, S, h). Without a
state the whole sequence is processed from an empty history; with a ``MixerState`` the call
continues from it and leaves the state after the last token there (prefill, then one-token
steps: the cache path). The state tensors follow transformers' cache convention
(``tfcli.memory.state_shapes``): the conv state keeps the last ``K`` input columns of every
convolved channel in the model dtype, recurrent states are fp32 (RWKV's shifted tokens and
lightning's K^T V stay in the model dtype).

The scans are O(S) in work and memory: Gated DeltaNet and Mamba-2 process chunks of
``linear_chunk_size`` / ``ssm_chunk_size`` tokens with matmuls inside a chunk and a recurrence
over chunks (the chunked forms of transformers' torch fallbacks
``torch_chunk_gated_delta_rule`` and ``mamba2_chunk_scan``); a single token takes the
recurrent step; lightning attention runs blocks of ``linear_chunk_size`` tokens. Mamba-1 and
RWKV-4 are elementwise recurrences over tokens (``mamba_selective_scan``'s sequential loop,
``rwkv_linear_attention_cpu``). The matmuls are the ones ``tfcli.flops`` counts for the
reference implementations (tests/test_bench_state_mixers.py checks it with FlopCounterMode).

Parameter names equal transformers' inside each mixer (``in_proj``, ``conv1d``, ``A_log``...):
the weight mapping copies them one to one.

Shapes: B batch, S tokens, h hidden; Gated DeltaNet: Hk key heads, Hv value heads, dk, dv
head dims; Mamba: d inner width, H heads of P channels (Mamba-2), N state size, G groups, K
conv width, L chunk length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcli.bench.layers import activation
from tfcli.spec import ModelSpec


@dataclass
class MixerState:
    """One layer's recurrent state between calls.

    * ``conv``: (B, C, K) the last K inputs of the causal convolution's C channels;
    * ``recurrent``: fp32; Gated DeltaNet (B, Hv, dk, dv), Mamba-2 (B, H, P, N), Mamba-1
      (B, d, N), RWKV-4 (B, 3, A): numerator, denominator and running max;
    * ``shift``: RWKV-4's previous token (B, h) of the time mixing (``shift``) and of the
      channel mixing (``shift_mlp``).
    """

    conv: Tensor | None = None
    recurrent: Tensor | None = None
    shift: Tensor | None = None
    shift_mlp: Tensor | None = None

    def nbytes(self) -> int:
        tensors = (self.conv, self.recurrent, self.shift, self.shift_mlp)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def causal_conv(x: Tensor, conv: nn.Conv1d, state: MixerState | None) -> Tensor:
    """Depthwise causal convolution of x (B, C, S) over its history -> (B, C, S).

    y_t = bias + sum_j w_j x_{t-K+1+j}. From an empty history: conv1d with K-1 zeros of
    padding on both sides, cut to the first S outputs (transformers' ``causal_conv1d_fn``; the
    S + K - 1 outputs are what ``tfcli.flops`` counts); after a stored history: the last K-1
    stored columns and x, S outputs (``causal_conv1d_update`` convolves all K stored columns
    and drops its first output; ``tfcli.flops`` counts the one column kept). The state keeps
    the last K input columns (zeros before the first token).
    """
    k, s = conv.kernel_size[0], x.shape[-1]
    history = None if state is None else state.conv
    if history is None:
        out = F.conv1d(x, conv.weight, conv.bias, padding=k - 1, groups=x.shape[1])[..., :s]
        history = x.new_zeros(*x.shape[:2], k)
    else:
        full = torch.cat((history[..., 1:], x), dim=-1)  # (B, C, K - 1 + S)
        out = F.conv1d(full, conv.weight, conv.bias, groups=x.shape[1])
    if state is not None:
        state.conv = torch.cat((history, x), dim=-1)[..., -k:].contiguous()
    return out


def depthwise_conv(channels: int, kernel: int, bias: bool) -> nn.Conv1d:
    """nn.Conv1d(C, C, K, groups=C): weight (C, 1, K), as transformers stores it."""
    return nn.Conv1d(channels, channels, kernel, groups=channels, bias=bias, padding=kernel - 1)


# ---- Gated DeltaNet ---------------------------------------------------------------------------


def l2norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """x / sqrt(sum x^2 + eps) over the last dim (FLA's l2norm, as transformers uses it)."""
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def chunk_gated_delta_rule(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor, chunk: int, state: Tensor
) -> tuple[Tensor, Tensor]:
    """The gated delta rule over S tokens in chunks of L; returns (out, final state).

    q, k (B, Hv, S, dk) already l2-normed and q scaled by dk^-0.5; v (B, Hv, S, dv); g
    (B, Hv, S) log decay; beta (B, Hv, S); state (B, Hv, dk, dv), all fp32. Per token
    (Yang et al. 2024, Gated Delta Networks, eq. 10): S_t = a_t S_{t-1} (I - b_t k_t k_t^T) +
    b_t v_t k_t^T (here stored transposed, dk x dv), o_t = S_t^T q_t with a_t = exp(g_t).
    Inside a chunk the L updates collapse into one unit-lower-triangular solve (the WY / UT
    transform; transformers' ``torch_chunk_gated_delta_rule``): T = I + tril(diag(b) K K^T
    * decay, -1), U = T^-1 (b V), W = T^-1 (b K exp(cum g)); then per chunk
    v_new = U - W S, o = (Q e^{cum g}) S + (Q K^T * decay) v_new,
    S <- S e^{g_total} + (K e^{g_total - cum g})^T v_new.
    """
    s = k.shape[2]
    pad = (chunk - s % chunk) % chunk
    q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    g, beta = (F.pad(t, (0, pad)) for t in (g, beta))
    # chunks are taken GROUP_CHUNKS at a time, the state carried between groups: the same
    # arithmetic, but the temporaries stay the size of one group (cache-resident) instead of
    # growing with the sequence (at 8K tokens they reached 1 GiB and the time went superlinear)
    span = chunk * GROUP_CHUNKS
    outs: list[Tensor] = []
    for start in range(0, s + pad, span):
        stop = min(start + span, s + pad)
        part, state = _chunk_group(
            q[:, :, start:stop],
            k[:, :, start:stop],
            v[:, :, start:stop],
            g[:, :, start:stop],
            beta[:, :, start:stop],
            chunk,
            state,
        )
        outs.append(part)
    out = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
    return out[:, :, :s], state


GROUP_CHUNKS = 16
"""Chunks of the gated delta rule computed together (the rest of the sequence waits)."""


def _chunk_group(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor, chunk: int, state: Tensor
) -> tuple[Tensor, Tensor]:
    """``chunk_gated_delta_rule`` over a whole number of chunks, from ``state``."""
    b, heads, length, _ = k.shape
    n = length // chunk
    v_beta, k_beta = v * beta.unsqueeze(-1), k * beta.unsqueeze(-1)
    q, k, k_beta, v_beta = (t.reshape(b, heads, n, chunk, -1) for t in (q, k, k_beta, v_beta))
    cum = g.reshape(b, heads, n, chunk).cumsum(dim=-1)  # (B, Hv, n, L)
    upper = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).triu(1)
    decay = (cum.unsqueeze(-1) - cum.unsqueeze(-2)).masked_fill(upper, float("-inf")).exp()
    system = (k_beta @ k.transpose(-1, -2)) * decay  # (B, Hv, n, L, L), unit diagonal implied
    intra = (q @ k.transpose(-1, -2)) * decay
    u = torch.linalg.solve_triangular(system, v_beta, upper=False, unitriangular=True)
    w = torch.linalg.solve_triangular(
        system, k_beta * cum.exp().unsqueeze(-1), upper=False, unitriangular=True
    )
    q = q * cum.exp().unsqueeze(-1)
    k = k * (cum[..., -1:] - cum).exp().unsqueeze(-1)
    total = cum[..., -1].exp()[..., None, None]  # (B, Hv, n, 1, 1)
    out = torch.zeros_like(u)
    for i in range(n):
        v_new = u[:, :, i] - w[:, :, i] @ state  # (B, Hv, L, dv)
        out[:, :, i] = q[:, :, i] @ state + intra[:, :, i] @ v_new
        state = state * total[:, :, i] + k[:, :, i].transpose(-1, -2) @ v_new
    return out.reshape(b, heads, -1, out.shape[-1]), state


def recurrent_gated_delta_step(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor, state: Tensor
) -> tuple[Tensor, Tensor]:
    """One token of the gated delta rule (transformers' ``torch_recurrent_gated_delta_rule``):
    q, k (B, Hv, dk), v (B, Hv, dv), g, beta (B, Hv), state (B, Hv, dk, dv) ->
    (o (B, Hv, dv), state). S <- a S; S <- S + k (b (v - S^T k))^T; o = S^T q."""
    state = state * g.exp()[..., None, None]
    memory = (state * k.unsqueeze(-1)).sum(dim=-2)  # S^T k: (B, Hv, dv)
    delta = (v - memory) * beta.unsqueeze(-1)
    state = state + k.unsqueeze(-1) * delta.unsqueeze(-2)
    return (state * q.unsqueeze(-1)).sum(dim=-2), state


class GatedRMSNorm(nn.Module):
    """RMSNorm over groups of ``group`` channels and a SiLU gate, in fp32.

    ``gate_first=False`` (Qwen3NextRMSNormGated): w * norm(x) * silu(z);
    ``gate_first=True`` (Mamba-2's MambaRMSNormGated, norm_before_gate=False):
    w * norm(x * silu(z)), normalised per group of d_inner / G channels.
    """

    def __init__(self, width: int, eps: float, *, group: int, gate_first: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps, self.group, self.gate_first = eps, group, gate_first

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        if self.gate_first:
            x = x * F.silu(z.float())
        grouped = x.view(*x.shape[:-1], -1, self.group)
        grouped = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        x = self.weight * grouped.view(x.shape).to(dtype)
        if not self.gate_first:
            x = x * F.silu(z.float())
        return x.to(dtype)


class GatedDeltaNet(nn.Module):
    """Gated DeltaNet (Qwen3-Next's linear-attention layers; transformers
    Qwen3NextGatedDeltaNet, Yang et al. 2024).

    in_proj_qkvz (h -> 2 Hk dk + 2 Hv dv) laid out per key head as [q, k, v (Hv/Hk heads),
    z (Hv/Hk heads)]; in_proj_ba (h -> 2 Hv) per key head as [b, a]; a causal depthwise
    conv (K, no bias) + activation over the q, k, v channels; beta = sigmoid(b), g = -exp(A_log)
    softplus(a + dt_bias); q, k l2-normed, q scaled by dk^-0.5, key heads shared by Hv/Hk
    value heads; the gated delta rule; a gated RMSNorm (dv) with silu(z); out_proj.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        h = spec.hidden_size
        self.hk, self.hv = (
            int(spec.linear_num_key_heads or 0),
            int(spec.linear_num_value_heads or 0),
        )
        self.dk, self.dv = int(spec.linear_key_head_dim or 0), int(spec.linear_value_head_dim or 0)
        self.key_dim, self.value_dim = self.hk * self.dk, self.hv * self.dv
        self.chunk = int(spec.linear_chunk_size or 64)
        self.act = spec.activation
        conv_dim = 2 * self.key_dim + self.value_dim
        self.in_proj_qkvz = nn.Linear(h, 2 * self.key_dim + 2 * self.value_dim, bias=False)
        self.in_proj_ba = nn.Linear(h, 2 * self.hv, bias=False)
        self.conv1d = depthwise_conv(conv_dim, int(spec.conv_kernel or 0), bias=False)
        self.dt_bias = nn.Parameter(torch.ones(self.hv))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.hv).uniform_(0.01, 16)))
        self.norm = GatedRMSNorm(self.dv, spec.norm_eps, group=self.dv, gate_first=False)
        self.out_proj = nn.Linear(self.value_dim, h, bias=False)

    def forward(self, x: Tensor, state: MixerState | None = None) -> Tensor:
        b, s, _ = x.shape
        per = self.hv // self.hk
        qkvz = self.in_proj_qkvz(x).view(b, s, self.hk, 2 * self.dk + 2 * per * self.dv)
        q, k, v, z = qkvz.split([self.dk, self.dk, per * self.dv, per * self.dv], dim=-1)
        beta_in, a = self.in_proj_ba(x).view(b, s, self.hk, 2 * per).split([per, per], dim=-1)
        mixed = torch.cat([t.reshape(b, s, -1) for t in (q, k, v)], dim=-1)  # (B, S, conv)
        mixed = activation(self.act, causal_conv(mixed.transpose(1, 2), self.conv1d, state))
        q, k, v = mixed.transpose(1, 2).split([self.key_dim, self.key_dim, self.value_dim], -1)
        beta = beta_in.reshape(b, s, self.hv).sigmoid()
        g = -self.A_log.float().exp() * F.softplus(a.reshape(b, s, self.hv).float() + self.dt_bias)
        # (B, S, heads, d) -> (B, Hv, S, d) in fp32; key heads repeated for their value heads
        q, k = (t.reshape(b, s, self.hk, self.dk).repeat_interleave(per, dim=2) for t in (q, k))
        q, k, v, beta, g = (
            t.transpose(1, 2).float().contiguous()
            for t in (q, k, v.reshape(b, s, self.hv, self.dv), beta, g)
        )
        q, k = l2norm(q) * self.dk**-0.5, l2norm(k)
        previous = None if state is None else state.recurrent
        if previous is None:
            previous = q.new_zeros(b, self.hv, self.dk, self.dv)
        if state is not None and state.recurrent is not None and s == 1:
            out, final = recurrent_gated_delta_step(
                q[:, :, 0], k[:, :, 0], v[:, :, 0], g[:, :, 0], beta[:, :, 0], previous
            )
            out = out.unsqueeze(2)
        else:
            out, final = chunk_gated_delta_rule(q, k, v, g, beta, self.chunk, previous)
        if state is not None:
            state.recurrent = final
        out = out.transpose(1, 2).to(x.dtype)  # (B, S, Hv, dv)
        out = self.norm(out, z.reshape(b, s, self.hv, self.dv))
        return self.out_proj(out.reshape(b, s, self.value_dim))


# ---- Mamba-2 ----------------------------------------------------------------------------------


def mamba2_chunk_scan(
    x: Tensor, dt: Tensor, a: Tensor, bmat: Tensor, cmat: Tensor, chunk: int, state: Tensor
) -> tuple[Tensor, Tensor]:
    """The Mamba-2 SSD scan in chunks of L (Dao & Gu 2024, "Transformers are SSMs", sec. 6;
    transformers' ``mamba2_chunk_scan``); returns (y without the D skip, final state).

    x (B, S, H, P), dt (B, S, H) after softplus, a (H) negative, bmat / cmat (B, S, H, N)
    (groups repeated over heads), state (B, H, P, N), all fp32. Per token
    h_t = exp(dt_t a) h_{t-1} + dt_t x_t B_t^T, y_t = h_t C_t. With log decays A_t = dt_t a
    and their running sum c_t inside each chunk: the diagonal block
    y = (C B^T * exp(c_l - c_s) [s <= l]) (dt x); each chunk's own state
    sum_s exp(c_L - c_s) dt_s x_s B_s^T; the state entering chunk z, a decayed sum over the
    earlier chunks' states (and the initial one, an (n+1)^2 einsum as the reference does);
    its read-out exp(c_l) C h_z. The same einsums as the reference, so FlopCounterMode sees
    ``tfcli.flops.mamba2_scan_flops``.
    """
    b, s, heads, p = x.shape
    pad = (chunk - s % chunk) % chunk
    n = (s + pad) // chunk
    x = x * dt.unsqueeze(-1)
    x, bmat, cmat = (
        F.pad(t, (0, 0, 0, 0, 0, pad)).reshape(b, n, chunk, heads, -1) for t in (x, bmat, cmat)
    )
    log_a = F.pad(dt * a, (0, 0, 0, pad)).reshape(b, n, chunk, heads).permute(0, 3, 1, 2)
    cum = log_a.cumsum(dim=-1)  # (B, H, n, L)
    lower = torch.ones(chunk, chunk, dtype=torch.bool, device=x.device).tril()
    decay = (cum.unsqueeze(-1) - cum.unsqueeze(-2)).masked_fill(~lower, float("-inf")).exp()
    scores = torch.einsum("bclhn,bcshn->bclsh", cmat, bmat) * decay.permute(0, 2, 3, 4, 1)
    y = torch.einsum("bclsh,bcshp->bclhp", scores, x)  # (B, n, L, H, P)
    b_decay = bmat * (cum[..., -1:] - cum).exp().permute(0, 2, 3, 1).unsqueeze(-1)
    states = torch.einsum("bclhn,bclhp->bchpn", b_decay, x)  # each chunk's own state
    states = torch.cat((state.unsqueeze(1), states), dim=1)  # (B, n + 1, H, P, N)
    ends = F.pad(cum[..., -1], (1, 0)).cumsum(dim=-1)  # (B, H, n + 1): log decay to chunk ends
    keep = torch.ones(n + 1, n + 1, dtype=torch.bool, device=x.device).tril()
    between = (ends.unsqueeze(-1) - ends.unsqueeze(-2)).masked_fill(~keep, float("-inf")).exp()
    entering = torch.einsum("bhzc,bchpn->bzhpn", between, states)  # (B, n + 1, H, P, N)
    read = torch.einsum("bclhn,bchpn->bclhp", cmat, entering[:, :-1])
    y = y + read * cum.exp().permute(0, 2, 3, 1).unsqueeze(-1)
    return y.reshape(b, n * chunk, heads, p)[:, :s], entering[:, -1]


class Mamba2Mixer(nn.Module):
    """Mamba-2 (transformers Mamba2Mixer; the Mamba-2 mixers of Falcon-H1 and Granite-4.0-H;
    Falcon-H1's mup multipliers are not in the spec: they act as 1, the class defaults).

    in_proj (h -> d gate + (d + 2 G N) conv channels + H dt); causal depthwise conv (K, bias
    with ssm_conv_bias) + SiLU over [x, B, C]; dt = softplus(dt + dt_bias), A = -exp(A_log);
    the SSD scan per head (B, C shared by the H/G heads of a group); + D x; a gated RMSNorm
    w * norm_G(y * silu(gate)) (``ssm_gated_norm``; Falcon-H1: w * norm_G(y) * silu(gate);
    else y * silu(gate)); out_proj (d -> h).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        h = spec.hidden_size
        self.inner = int(spec.ssm_inner_size or 0)
        self.heads = int(spec.ssm_num_heads or 0)
        self.head_dim = self.inner // self.heads
        self.groups, self.n = spec.ssm_groups, int(spec.ssm_state_size or 0)
        self.chunk = int(spec.ssm_chunk_size or 256)
        self.act = spec.activation
        conv_dim = self.inner + 2 * self.groups * self.n
        out_bias = spec.ssm_proj_bias if spec.ssm_out_proj_bias is None else spec.ssm_out_proj_bias
        self.in_proj = nn.Linear(h, self.inner + conv_dim + self.heads, bias=spec.ssm_proj_bias)
        self.conv1d = depthwise_conv(conv_dim, int(spec.conv_kernel or 0), spec.ssm_conv_bias)
        self.dt_bias = nn.Parameter(torch.ones(self.heads))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, self.heads + 1, dtype=torch.float32)))
        self.D = nn.Parameter(torch.ones(self.heads))
        # Falcon-H1's mixer (the spec's parallel_ssm) normalises before the gate
        # (FalconH1RMSNormGated, mamba_norm_before_gate's default); Mamba-2 gates first
        self.norm = (
            GatedRMSNorm(
                self.inner,
                spec.norm_eps,
                group=self.inner // self.groups,
                gate_first=not spec.parallel_ssm,
            )
            if spec.ssm_gated_norm
            else None
        )
        self.out_proj = nn.Linear(self.inner, h, bias=out_bias)

    def forward(self, x: Tensor, state: MixerState | None = None) -> Tensor:
        b, s, _ = x.shape
        gn = self.groups * self.n
        gate, xbc, dt = self.in_proj(x).split([self.inner, self.inner + 2 * gn, self.heads], -1)
        xbc = activation(self.act, causal_conv(xbc.transpose(1, 2), self.conv1d, state))
        xs, bmat, cmat = xbc.transpose(1, 2).split([self.inner, gn, gn], dim=-1)
        dt = F.softplus(dt + self.dt_bias)  # (B, S, H)
        a = -self.A_log.float().exp()
        xs = xs.reshape(b, s, self.heads, self.head_dim).float()
        per = self.heads // self.groups
        bmat, cmat = (
            t.reshape(b, s, self.groups, self.n).float().repeat_interleave(per, dim=2)
            for t in (bmat, cmat)
        )  # (B, S, H, N)
        previous = None if state is None else state.recurrent
        if previous is None:
            previous = xs.new_zeros(b, self.heads, self.head_dim, self.n)
        if state is not None and state.recurrent is not None and s == 1:
            dt0 = dt[:, 0].float()[..., None, None]  # (B, H, 1, 1)
            final = previous * (dt0 * a[:, None, None]).exp() + (
                dt0 * bmat[:, 0, :, None, :] * xs[:, 0, :, :, None]
            )
            y = (final @ cmat[:, 0, :, :, None]).squeeze(-1).unsqueeze(1)  # (B, 1, H, P)
        else:
            y, final = mamba2_chunk_scan(xs, dt.float(), a, bmat, cmat, self.chunk, previous)
        if state is not None:
            state.recurrent = final
        y = (y + self.D[:, None] * xs).reshape(b, s, self.inner)
        if self.norm is None:
            return self.out_proj((y * F.silu(gate.float())).to(x.dtype))
        y = self.norm(y.to(x.dtype), gate)
        return self.out_proj(y.to(x.dtype))


# ---- Mamba-1 ----------------------------------------------------------------------------------


SCAN_BLOCK = 256
"""Tokens whose discretised A and B x are materialised at once by ``selective_scan``."""


def selective_scan(
    x: Tensor, dt: Tensor, a: Tensor, bmat: Tensor, cmat: Tensor, state: Tensor
) -> tuple[Tensor, Tensor]:
    """Mamba-1's selective scan, token by token (Gu & Dao 2023, Algorithm 2; transformers'
    ``mamba_selective_scan`` sequential path): O(S) work, and memory O(SCAN_BLOCK) tokens of
    (d, N) at a time rather than the whole sequence.

    x, dt (B, d, S) with dt after softplus, a (d, N) negative, bmat / cmat (B, S, N), state
    (B, d, N) fp32. h_t = exp(dt_t a) h_{t-1} + dt_t B_t x_t, y_t = h_t C_t -> y (B, d, S).
    """
    outputs = []
    for lo in range(0, x.shape[-1], SCAN_BLOCK):
        hi = min(lo + SCAN_BLOCK, x.shape[-1])
        step = dt[..., lo:hi, None]  # (B, d, T, 1)
        decay = torch.exp(a[None, :, None, :] * step)  # (B, d, T, N)
        inputs = step * bmat[:, None, lo:hi, :].float() * x[..., lo:hi, None].float()
        for t in range(hi - lo):
            state = decay[:, :, t] * state + inputs[:, :, t]
            c = cmat[:, lo + t, :, None].to(x.dtype)  # (B, N, 1)
            outputs.append(torch.matmul(state.to(x.dtype), c)[..., 0])
    return torch.stack(outputs, dim=-1), state


class Mamba1Mixer(nn.Module):
    """Mamba-1 (transformers MambaMixer; JambaMambaMixer with ``ssm_dt_norms``).

    in_proj (h -> 2 d: x and gate z); causal depthwise conv (K) + activation over x;
    x_proj (d -> R + 2 N) gives dt, B, C (Jamba: RMSNorms over each); dt = softplus(dt_proj(dt));
    A = -exp(A_log) (d, N); the selective scan; + D x; times silu(z); out_proj (d -> h).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        h = spec.hidden_size
        self.inner, self.n = int(spec.ssm_inner_size or 0), int(spec.ssm_state_size or 0)
        self.rank = int(spec.ssm_dt_rank or 0)
        self.act = spec.activation
        out_bias = spec.ssm_proj_bias if spec.ssm_out_proj_bias is None else spec.ssm_out_proj_bias
        self.in_proj = nn.Linear(h, 2 * self.inner, bias=spec.ssm_proj_bias)
        self.conv1d = depthwise_conv(self.inner, int(spec.conv_kernel or 0), spec.ssm_conv_bias)
        self.x_proj = nn.Linear(self.inner, self.rank + 2 * self.n, bias=False)
        self.dt_proj = nn.Linear(self.rank, self.inner, bias=True)
        a = torch.arange(1, self.n + 1, dtype=torch.float32)[None, :].expand(self.inner, -1)
        self.A_log = nn.Parameter(torch.log(a).contiguous())
        self.D = nn.Parameter(torch.ones(self.inner))
        self.out_proj = nn.Linear(self.inner, h, bias=out_bias)
        self.dt_norms = spec.ssm_dt_norms
        if self.dt_norms:
            from tfcli.bench.layers import RMSNorm

            self.dt_layernorm = RMSNorm(self.rank, spec.norm_eps)
            self.b_layernorm = RMSNorm(self.n, spec.norm_eps)
            self.c_layernorm = RMSNorm(self.n, spec.norm_eps)

    def forward(self, x: Tensor, state: MixerState | None = None) -> Tensor:
        b = x.shape[0]
        xs, gate = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (B, d, S) each
        xs = activation(self.act, causal_conv(xs, self.conv1d, state))
        dt, bmat, cmat = self.x_proj(xs.transpose(1, 2)).split([self.rank, self.n, self.n], -1)
        if self.dt_norms:
            dt, bmat, cmat = self.dt_layernorm(dt), self.b_layernorm(bmat), self.c_layernorm(cmat)
        dt = F.softplus((self.dt_proj.weight @ dt.transpose(1, 2)) + self.dt_proj.bias[:, None])
        a = -self.A_log.float().exp()
        previous = None if state is None else state.recurrent
        if previous is None:
            previous = xs.new_zeros(b, self.inner, self.n, dtype=torch.float32)
        y, final = selective_scan(xs, dt, a, bmat, cmat, previous)
        if state is not None:
            state.recurrent = final
        y = (y + xs * self.D[None, :, None]) * F.silu(gate)
        return self.out_proj(y.transpose(1, 2).to(x.dtype))


# ---- RWKV-4 -----------------------------------------------------------------------------------


def token_shift(x: Tensor, previous: Tensor | None) -> Tensor:
    """x_{t-1} for each t of x (B, S, h): zeros (or ``previous`` (B, h)) before the first."""
    first = x.new_zeros(x.shape[0], 1, x.shape[2]) if previous is None else previous[:, None]
    return torch.cat((first, x[:, :-1]), dim=1)


def wkv(decay: Tensor, first: Tensor, k: Tensor, v: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
    """RWKV-4's WKV recurrence with a running max for stability (Peng et al. 2023, eq. 14-16;
    transformers' ``rwkv_linear_attention_cpu``): k, v (B, S, A); decay w = -exp(time_decay),
    first u = time_first (A); state (B, 3, A) = numerator a, denominator b, max p (fp32).
    wkv_t = (e^{p-q} a + e^{u+k_t-q} v_t) / (e^{p-q} b + e^{u+k_t-q}), q = max(p, u + k_t);
    then a, b <- e^{p+w-q'} (a, b) + e^{k_t-q'} (v_t, 1), p <- q' = max(p + w, k_t)."""
    num, den, top = state.unbind(dim=1)
    out = torch.zeros_like(k)
    for t in range(k.shape[1]):
        kt, vt = k[:, t].float(), v[:, t]
        q = torch.maximum(top, kt + first)
        e1, e2 = torch.exp(top - q), torch.exp(kt + first - q)
        out[:, t] = ((e1 * num + e2 * vt) / (e1 * den + e2)).to(out.dtype)
        q = torch.maximum(top + decay, kt)
        e1, e2 = torch.exp(top + decay - q), torch.exp(kt - q)
        num, den, top = e1 * num + e2 * vt, e1 * den + e2, q
    return out, torch.stack((num, den, top), dim=1)


class RWKVMixer(nn.Module):
    """RWKV-4 time mixing (transformers RwkvSelfAttention): k, v, r from the token mixed with
    the previous one by time_mix_*; wkv over the sequence; output(sigmoid(r) * wkv)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        h = spec.hidden_size
        a = spec.rwkv_attention_size or h
        self.time_decay = nn.Parameter(torch.zeros(a))
        self.time_first = nn.Parameter(torch.zeros(a))
        self.time_mix_key = nn.Parameter(torch.full((1, 1, h), 0.5))
        self.time_mix_value = nn.Parameter(torch.full((1, 1, h), 0.5))
        self.time_mix_receptance = nn.Parameter(torch.full((1, 1, h), 0.5))
        self.key = nn.Linear(h, a, bias=False)
        self.value = nn.Linear(h, a, bias=False)
        self.receptance = nn.Linear(h, a, bias=False)
        self.output = nn.Linear(a, h, bias=False)

    def forward(self, x: Tensor, state: MixerState | None = None) -> Tensor:
        shifted = token_shift(x, None if state is None else state.shift)
        mix = lambda m: x * m + shifted * (1 - m)  # noqa: E731
        k = self.key(mix(self.time_mix_key))
        v = self.value(mix(self.time_mix_value))
        r = torch.sigmoid(self.receptance(mix(self.time_mix_receptance)))
        previous = None if state is None else state.recurrent
        if previous is None:
            previous = torch.zeros(x.shape[0], 3, k.shape[-1], device=x.device)
            previous[:, 2] = -1e38
        out, final = wkv(-torch.exp(self.time_decay), self.time_first, k, v, previous)
        if state is not None:
            state.shift, state.recurrent = x[:, -1], final
        return self.output(r * out)


class RWKVChannelMix(nn.Module):
    """RWKV-4 channel mixing, the block's MLP (transformers RwkvFeedForward):
    sigmoid(receptance(x_r)) * value(relu(key(x_k))^2) on token-shifted mixes."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        h, f = spec.hidden_size, spec.intermediate_size
        self.time_mix_key = nn.Parameter(torch.full((1, 1, h), 0.5))
        self.time_mix_receptance = nn.Parameter(torch.full((1, 1, h), 0.5))
        self.key = nn.Linear(h, f, bias=False)
        self.receptance = nn.Linear(h, h, bias=False)
        self.value = nn.Linear(f, h, bias=False)

    def forward(self, x: Tensor, state: MixerState | None = None) -> Tensor:
        shifted = token_shift(x, None if state is None else state.shift_mlp)
        key = x * self.time_mix_key + shifted * (1 - self.time_mix_key)
        receptance = x * self.time_mix_receptance + shifted * (1 - self.time_mix_receptance)
        if state is not None:
            state.shift_mlp = x[:, -1]
        value = self.value(torch.square(torch.relu(self.key(key))))
        return torch.sigmoid(self.receptance(receptance)) * value


# ---- MiniMax lightning attention -------------------------------------------------------------


def lightning_slopes(heads: int, index: int, layers: int) -> Tensor:
    """Per-head decay rates (H, 1, 1) of lightning layer ``index`` of ``layers`` (transformers'
    MiniMaxLightningAttention.get_slope_rate: ALiBi's slopes (2^(-8/H))^(j+1), scaled by
    1 - index / (layers - 1 + 1e-5) + 1e-5)."""
    base = 1 / (2 ** (8 / heads))
    factor = 1 - index / (layers - 1 + 1e-5) + 1e-5
    return (base ** (torch.arange(heads) + 1) * factor)[:, None, None]


class LightningAttention(nn.Module):
    """MiniMax lightning attention (transformers MiniMaxLightningAttention; Qin et al. 2024,
    Lightning Attention-2): linear attention with a per-head exponential decay lambda.

    q, k, v = act(qkv_proj(x)) per head (no softmax, no positions); per token
    S_t = lambda S_{t-1} + k_t^T v_t, o_t = q_t S_t. Prefill runs blocks of b tokens: inside a
    block (Q K^T * lambda^(i-j) [j <= i]) V, plus (Q * lambda^(i+1)) S from the earlier blocks;
    S <- lambda^b S + (K * lambda^(b-1-j))^T V. Once a state exists every token takes the
    recurrent step (as transformers does with a cache). Then an RMSNorm over H d (eps 1e-6,
    MiniMaxRMSNorm's default), times sigmoid(output_gate(x)), out_proj. The state (B, H, d, d)
    stays in the model dtype. ``index`` is the layer's position (its decay depends on it).
    """

    slope: Tensor  # (H, 1, 1) buffer

    def __init__(self, spec: ModelSpec, index: int = 0) -> None:
        super().__init__()
        from tfcli.bench.layers import RMSNorm

        h, self.heads, self.d = spec.hidden_size, spec.num_heads, spec.resolved_head_dim
        inner = self.heads * self.d
        self.block = int(spec.linear_chunk_size or 256)
        self.act = spec.activation
        self.qkv_proj = nn.Linear(h, 3 * inner, bias=False)
        self.norm = RMSNorm(inner, 1e-6)
        self.output_gate = nn.Linear(h, inner, bias=False)
        self.out_proj = nn.Linear(inner, h, bias=False)
        self.register_buffer(
            "slope", lightning_slopes(self.heads, index, spec.num_layers), persistent=False
        )

    def forward(self, x: Tensor, state: MixerState | None = None) -> Tensor:
        b, s, _ = x.shape
        qkv = activation(self.act, self.qkv_proj(x)).view(b, s, self.heads, 3 * self.d)
        q, k, v = (t.transpose(1, 2) for t in qkv.split(self.d, dim=-1))  # (B, H, S, d)
        kv = None if state is None else state.recurrent
        outputs = []
        if kv is None:
            kv = v.new_zeros(b, self.heads, self.d, self.d)
            slope = self.slope.to(v.dtype)
            for lo in range(0, s, self.block):
                n = min(self.block, s - lo)
                qb, kb, vb = q[:, :, lo : lo + n], k[:, :, lo : lo + n], v[:, :, lo : lo + n]
                pos = torch.arange(1, n + 1, device=x.device, dtype=v.dtype)[:, None]  # (n, 1)
                offsets = pos - pos.T  # i - j
                diagonal = torch.exp(
                    torch.where(offsets >= 0, -slope * offsets, float("-inf"))
                )  # (H, n, n)
                intra = ((qb @ kb.transpose(-1, -2)) * diagonal) @ vb
                inter = (qb * torch.exp(-slope * pos)) @ kv
                outputs.append(inter + intra)
                to_end = torch.exp(-slope * (n - pos))  # (H, n, 1)
                kv = kv * torch.exp(-slope * n) + (kb * to_end).transpose(-1, -2) @ vb
        else:
            ratio = torch.exp(-self.slope).to(v.dtype)
            for t in range(s):
                kt, vt = k[:, :, t : t + 1], v[:, :, t : t + 1]
                kv = ratio * kv + kt.transpose(-1, -2) @ vt
                outputs.append(q[:, :, t : t + 1] @ kv)
        if state is not None:
            state.recurrent = kv
        out = torch.cat(outputs, dim=-2).transpose(1, 2).reshape(b, s, self.heads * self.d)
        out = torch.sigmoid(self.output_gate(x)) * self.norm(out)
        return self.out_proj(out)


STATE_MIXER_CLASSES: dict[str, type[nn.Module]] = {
    "gated_deltanet": GatedDeltaNet,
    "mamba2": Mamba2Mixer,
    "mamba": Mamba1Mixer,
    "rwkv": RWKVMixer,
    "lightning": LightningAttention,  # built with its layer index: Cls(spec, index)
}
"""``LayerPlan.mixer`` -> the module the built-in model builds for it."""
