"""Token mixers with a fixed per-sequence state: Gated DeltaNet, Mamba-2, Mamba-1, RWKV-4.

Each mixer is ``Cls(spec)`` with ``forward(x, state=None) -> y``, x and y (B, S, h). Without a
state the whole sequence is processed from an empty history; with a ``MixerState`` the call
continues from it and leaves the state after the last token there (prefill, then one-token
steps: the cache path). The state tensors follow transformers' cache convention
(``tfcli.memory.state_shapes``): the conv state keeps the last ``K`` input columns of every
convolved channel in the model dtype, recurrent states are fp32.

The scans are O(S) in work and memory: Gated DeltaNet and Mamba-2 process chunks of
``linear_chunk_size`` / ``ssm_chunk_size`` tokens with matmuls inside a chunk and a recurrence
over chunks (the chunked forms of transformers' torch fallbacks
``torch_chunk_gated_delta_rule`` and ``mamba2_chunk_scan``); a single token takes the
recurrent step. Mamba-1 and RWKV-4 are elementwise recurrences over tokens
(``mamba_selective_scan``'s sequential loop, ``rwkv_linear_attention_cpu``).

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

    y_t = bias + sum_j w_j x_{t-K+1+j}, zeros before the first token (transformers'
    ``causal_conv1d_fn``: conv1d with K-1 zeros of left padding, cut to S) or the K stored
    columns of ``state`` (``causal_conv1d_update``). The state keeps the last K columns.
    """
    k = conv.kernel_size[0]
    history = None if state is None else state.conv
    full = F.pad(x, (k - 1, 0)) if history is None else torch.cat((history, x), dim=-1)
    if state is not None:
        state.conv = F.pad(full, (max(0, k - full.shape[-1]), 0))[..., -k:].contiguous()
    out = F.conv1d(full, conv.weight, conv.bias, groups=x.shape[1])  # (B, C, >= S)
    return out[..., -x.shape[-1] :]


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
    b, heads, s, _ = k.shape
    pad = (chunk - s % chunk) % chunk
    q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    g, beta = (F.pad(t, (0, pad)) for t in (g, beta))
    n = (s + pad) // chunk
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
    return out.reshape(b, heads, -1, out.shape[-1])[:, :, :s], state


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
    h_t = exp(dt_t a) h_{t-1} + dt_t x_t B_t^T, y_t = h_t C_t. Inside a chunk (log decays
    A_t = dt_t a, cumulative c_t): y = (C B^T * exp(c_l - c_s) [s <= l]) (dt x)
    + exp(c_l) C h_0; the chunk's state h = exp(c_L) h_0 + sum_s exp(c_L - c_s) dt_s x_s B_s^T.
    """
    b, s, heads, p = x.shape
    pad = (chunk - s % chunk) % chunk
    n = (s + pad) // chunk
    x = x * dt.unsqueeze(-1)
    log_a = dt * a  # (B, S, H)
    x, bmat, cmat = (
        F.pad(t, (0, 0, 0, 0, 0, pad)).reshape(b, n, chunk, heads, -1) for t in (x, bmat, cmat)
    )
    log_a = F.pad(log_a, (0, 0, 0, pad)).reshape(b, n, chunk, heads).permute(0, 3, 1, 2)
    cum = log_a.cumsum(dim=-1)  # (B, H, n, L)
    lower = torch.ones(chunk, chunk, dtype=torch.bool, device=x.device).tril()
    decay = (cum.unsqueeze(-1) - cum.unsqueeze(-2)).masked_fill(~lower, float("-inf")).exp()
    scores = torch.einsum("bclhn,bcshn->bhcls", cmat, bmat) * decay  # (B, H, n, L, L)
    y = torch.einsum("bhcls,bcshp->bclhp", scores, x)
    to_end = (cum[..., -1:] - cum).exp()  # (B, H, n, L)
    chunk_states = torch.einsum("bclhn,bhcl,bclhp->bchpn", bmat, to_end, x)
    total = cum[..., -1].exp()  # (B, H, n)
    starts = []
    for i in range(n):
        starts.append(state)
        state = state * total[:, :, i, None, None] + chunk_states[:, i]
    start = torch.stack(starts, dim=1)  # (B, n, H, P, N): the state entering each chunk
    y = y + torch.einsum("bclhn,bchpn,bhcl->bclhp", cmat, start, cum.exp())
    return y.reshape(b, n * chunk, heads, p)[:, :s], state


class Mamba2Mixer(nn.Module):
    """Mamba-2 (transformers Mamba2Mixer; the Mamba-2 mixers of Falcon-H1 and Granite-4.0-H).

    in_proj (h -> d gate + (d + 2 G N) conv channels + H dt); causal depthwise conv (K, bias
    with ssm_conv_bias) + SiLU over [x, B, C]; dt = softplus(dt + dt_bias), A = -exp(A_log);
    the SSD scan per head (B, C shared by the H/G heads of a group); + D x; a gated RMSNorm
    w * norm_G(y * silu(gate)) (``ssm_gated_norm``; else y * silu(gate)); out_proj (d -> h).
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
        self.norm = (
            GatedRMSNorm(
                self.inner, spec.norm_eps, group=self.inner // self.groups, gate_first=True
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


def selective_scan(
    x: Tensor, dt: Tensor, a: Tensor, bmat: Tensor, cmat: Tensor, state: Tensor
) -> tuple[Tensor, Tensor]:
    """Mamba-1's selective scan, token by token (Gu & Dao 2023, Algorithm 2; transformers'
    ``mamba_selective_scan`` sequential path): O(S) work, O(1) state.

    x, dt (B, d, S) with dt after softplus, a (d, N) negative, bmat / cmat (B, S, N), state
    (B, d, N) fp32. h_t = exp(dt_t a) h_{t-1} + dt_t B_t x_t, y_t = h_t C_t -> y (B, d, S).
    """
    decay = torch.exp(a[None, :, None, :] * dt[..., None])  # (B, d, S, N)
    inputs = dt[..., None] * bmat[:, None, :, :].float() * x[..., None].float()
    outputs = []
    for t in range(x.shape[-1]):
        state = decay[:, :, t] * state + inputs[:, :, t]
        outputs.append(torch.matmul(state.to(x.dtype), cmat[:, t, :, None].to(x.dtype))[..., 0])
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


STATE_MIXER_CLASSES: dict[str, type[nn.Module]] = {
    "gated_deltanet": GatedDeltaNet,
    "mamba2": Mamba2Mixer,
    "mamba": Mamba1Mixer,
    "rwkv": RWKVMixer,
}
"""``LayerPlan.mixer`` -> the module the built-in model builds for it."""
