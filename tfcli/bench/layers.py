"""Norms, MLPs and the mixture of experts of the built-in model (torch)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcli.spec import ModelSpec


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) x weight, computed in fp32 (LlamaRMSNorm, T5LayerNorm).

    Gemma's (1 + w) form is handled when its weights are copied in (w + 1 stored here).
    """

    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.float() * x32).to(dtype)


class ParameterFreeNorm(nn.Module):
    """A norm without weight or bias, computed in fp32: OLMo's non-parametric LayerNorm
    (OlmoLayerNorm: F.layer_norm(x.float(), None, None)), or the plain RMS normalisation
    x / sqrt(mean(x^2) + eps) (Llama 4's Llama4TextL2Norm of q and k)."""

    def __init__(self, width: int, eps: float, *, rms: bool) -> None:
        super().__init__()
        self.width, self.eps, self.rms = width, eps, rms

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        if self.rms:
            out = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        else:
            out = F.layer_norm(x32, (self.width,), None, None, self.eps)
        return out.to(x.dtype)


class HeadwiseNorm(nn.Module):
    """A norm over each head's ``width`` features with a weight row per head, (heads, width):
    Cohere's CohereLayerNorm((H, d)) on q (B, S, H, d) (LayerNorm in fp32: (x - mean) /
    sqrt(var + eps) x w_head, no bias), or an RMSNorm alike. Input (B, heads, S, width)."""

    def __init__(self, heads: int, width: int, eps: float, *, rms: bool) -> None:
        super().__init__()
        self.eps, self.rms = eps, rms
        self.weight = nn.Parameter(torch.ones(heads, width))

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        if not self.rms:
            x32 = x32 - x32.mean(-1, keepdim=True)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        weight = self.weight.float().unsqueeze(1)  # (heads, 1, width)
        return (weight * x32).to(x.dtype)


def make_qk_norm(spec: ModelSpec, heads: int) -> nn.Module:
    """The q (``heads`` = H) or k (KVH) norm: over each head's d features with one shared
    weight vector (``qk_norm_weights: head``), over all heads' H d features as one vector
    (``qk_norm_scope: all``, OLMo-2), or per head with a weight row per head (Cohere)."""
    d = spec.resolved_head_dim
    if spec.qk_norm_scope == "all":
        return make_norm(spec, heads * d)
    if spec.qk_norm_weights == "all":
        return HeadwiseNorm(heads, d, spec.norm_eps, rms=spec.norm_type == "rmsnorm")
    return make_norm(spec, d)


def make_norm(spec: ModelSpec, width: int | None = None) -> nn.Module:
    """The spec's norm over ``width`` (default hidden) features: LayerNorm or RMSNorm, with
    no parameters when ``norm_affine`` is off (OLMo)."""
    width = spec.hidden_size if width is None else width
    if not spec.norm_affine:
        return ParameterFreeNorm(width, spec.norm_eps, rms=spec.norm_type == "rmsnorm")
    if spec.norm_type == "rmsnorm":
        return RMSNorm(width, spec.norm_eps)
    return nn.LayerNorm(width, eps=spec.norm_eps, bias=spec.norm_bias)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def activation(name: str, x: Tensor) -> Tensor:
    """relu, gelu (erf), gelu_tanh (GPT-2's gelu_new, Gemma's gelu_pytorch_tanh), silu;
    tanh (DeBERTa's ConvLayer default)."""
    if name == "relu":
        return F.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_tanh":
        # written out as transformers' NewGELUActivation (gelu_new: GPT-2, T5's gated-gelu)
        # does; PyTorch's fused approximate="tanh" rounds differently by ~1 ulp, which an
        # untied T5 head amplifies past assert_close's fp32 tolerance.
        return 0.5 * x * (1.0 + torch.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * torch.pow(x, 3.0))))
    return F.silu(x)


class MLP(nn.Module):
    """Gated: down(act(gate(x)) * up(x)) (SwiGLU/GeGLU); plain: down(act(up(x)))."""

    def __init__(self, spec: ModelSpec, width: int) -> None:
        super().__init__()
        h, bias = spec.hidden_size, spec.mlp_bias
        self.act = spec.activation
        self.gate = nn.Linear(h, width, bias=bias) if spec.mlp_gated else None
        self.up = nn.Linear(h, width, bias=bias)
        self.down = nn.Linear(width, h, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.gate is not None:
            return self.down(activation(self.act, self.gate(x)) * self.up(x))
        return self.down(activation(self.act, self.up(x)))


def clamped_swiglu(gate: Tensor, up: Tensor, limit: float, alpha: float) -> Tensor:
    """gpt-oss's SwiGLU (GptOssExperts._apply_gate): g = min(gate, limit),
    u = clamp(up, -limit, limit), out = (u + 1) x g x sigmoid(alpha x g)."""
    gate = gate.clamp(max=limit)
    up = up.clamp(min=-limit, max=limit)
    return (up + 1) * (gate * torch.sigmoid(gate * alpha))


class Experts(nn.Module):
    """``count`` expert MLPs of ``width``, each matrix stacked over experts (as transformers 5
    and grouped-GEMM kernels store them; one parameter per matrix also builds a 256-expert
    layer in milliseconds): gate and up (E, f, h), down (E, h, f), biases (E, f) / (E, h)
    with ``expert_bias`` (gpt-oss; ERNIE's use_bias leaves its stacked experts bias-free).
    With ``swiglu_limit`` the gated activation is gpt-oss's clamped SwiGLU
    (``clamped_swiglu``)."""

    def __init__(self, spec: ModelSpec, width: int, count: int) -> None:
        super().__init__()
        h = spec.hidden_size
        self.act, self.count = spec.activation, count
        self.limit, self.alpha = spec.swiglu_limit, spec.swiglu_alpha
        self.gate = self._stack(count, width, h) if spec.mlp_gated else None
        self.up = self._stack(count, width, h)
        self.down = self._stack(count, h, width)
        bias = spec.expert_bias  # routed experts' biases (tfcli.shapes: not mlp_bias)
        zeros = lambda *shape: nn.Parameter(torch.zeros(*shape))  # noqa: E731
        self.gate_bias = zeros(count, width) if bias and spec.mlp_gated else None
        self.up_bias = zeros(count, width) if bias else None
        self.down_bias = zeros(count, h) if bias else None

    @staticmethod
    def _stack(*shape: int) -> nn.Parameter:
        """Random weights (std 0.02, the usual initializer_range): the bench needs numbers."""
        return nn.Parameter(nn.init.normal_(torch.empty(*shape), std=0.02))

    @staticmethod
    def _row(bias: Tensor | None, e: int) -> Tensor | None:
        return None if bias is None else bias[e]

    def forward(self, x: Tensor, e: int) -> Tensor:
        """Expert ``e`` on its tokens x (n, h) -> (n, h): the same matmuls as an ``MLP``."""
        up = F.linear(x, self.up[e], self._row(self.up_bias, e))  # (n, f)
        if self.gate is not None and self.limit is not None:
            gate = F.linear(x, self.gate[e], self._row(self.gate_bias, e))
            up = clamped_swiglu(gate, up, self.limit, self.alpha)
        elif self.gate is not None:
            up = activation(self.act, F.linear(x, self.gate[e], self._row(self.gate_bias, e))) * up
        else:
            up = activation(self.act, up)
        return F.linear(up, self.down[e], self._row(self.down_bias, e))  # (n, h)


def sparsemixer_route(logits: Tensor, eps: float, top_k: int) -> tuple[Tensor, Tensor]:
    """PhiMoE's sparsemixer routing at inference (transformers phimoe ``sparsemixer``, eval
    branch; Liu et al. 2024, arXiv 2409.12136): slot by slot, the best remaining expert m;
    every expert whose (m - logit) / max(|logit|, m) exceeds 2 eps is masked out; the slot's
    weight is the softmax of the unmasked logits at m; m is then removed for the next slot.
    (weights, indices), each (T, top_k); transformers' function always fills two slots."""
    remaining = logits  # (T, E)
    weights, indices = [], []
    for _ in range(top_k):
        best, index = remaining.max(dim=-1, keepdim=True)  # (T, 1)
        factor = logits.abs().clamp(min=best)
        hidden = (best - logits) / factor > 2 * eps
        gates = remaining.masked_fill(hidden, float("-inf")).softmax(dim=-1)
        weights.append(gates.gather(-1, index))
        indices.append(index)
        remaining = remaining.scatter(-1, index, float("-inf"))
    return torch.cat(weights, dim=-1), torch.cat(indices, dim=-1)


class MoE(nn.Module):
    """Top-k routed experts plus optional shared experts (Mixtral, Qwen-MoE, DeepSeek).

    Routing: scores = softmax or sigmoid of the router logits; DeepSeek-V3 adds its
    correction bias for the choice only and limits the choice to the best ``topk_groups`` of
    ``num_expert_groups`` groups (group score = sum of its top-2); the chosen scores are
    renormalised if ``norm_topk_prob`` and scaled by ``routed_scaling_factor``; PhiMoE's
    sparsemixer (``sparsemixer_route``) replaces all of that. Each expert runs only on the
    tokens routed to it (tokens x top-k expert evaluations); its output is weighted, or, for
    Llama 4 (``router_scales_input``), its input (Llama4TextMoe.forward).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        experts = int(spec.num_experts or 0)
        self.top_k = int(spec.num_experts_per_token or 0)
        self.router = nn.Linear(spec.hidden_size, experts, bias=spec.router_bias)
        if spec.router_correction_bias:  # ERNIE-4.5's moe_statics: a (frozen) parameter
            self.correction_bias = nn.Parameter(torch.zeros(experts), requires_grad=False)
        else:  # DeepSeek-V3 / GLM-4.5 e_score_correction_bias: a buffer
            self.register_buffer("correction_bias", torch.zeros(experts))
        self.experts = Experts(spec, spec.expert_width, experts)
        self.shared = MLP(spec, spec.shared_expert_width) if spec.shared_expert_width else None
        self.shared_gate = (
            nn.Linear(spec.hidden_size, 1, bias=False) if spec.shared_expert_gate else None
        )

    def route(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(weights, expert indices), each (T, top_k), for tokens x (T, h)."""
        spec = self.spec
        logits = self.router(x).float()  # (T, E)
        if spec.router_scoring == "sparsemixer":
            return sparsemixer_route(logits, spec.router_jitter_eps, self.top_k)
        sigmoid = spec.router_scoring == "sigmoid"
        scores = logits.sigmoid() if sigmoid else logits.softmax(dim=-1)
        choice = scores + self.correction_bias.float()
        if spec.num_expert_groups > 1:
            t, e = choice.shape
            grouped = choice.view(t, spec.num_expert_groups, e // spec.num_expert_groups)
            group_scores = grouped.topk(2, dim=-1).values.sum(-1)  # (T, groups)
            keep = group_scores.topk(spec.topk_groups, dim=-1).indices
            group_mask = torch.zeros_like(group_scores).scatter_(1, keep, 1.0)
            expert_mask = group_mask.unsqueeze(-1).expand_as(grouped).reshape(t, e)
            choice = choice.masked_fill(expert_mask == 0, 0.0)
        indices = choice.topk(self.top_k, dim=-1).indices  # (T, k)
        weights = scores.gather(1, indices)
        if spec.norm_topk_prob:
            # DeepSeek-V3 guards the division with 1e-20 (DeepseekV3MoE.route_tokens_to_experts)
            epsilon = 1e-20 if sigmoid else 0.0
            weights = weights / (weights.sum(-1, keepdim=True) + epsilon)
        return weights * spec.routed_scaling_factor, indices

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])  # (T, h)
        if tokens.is_meta:
            return self.forward_meta(tokens).view(shape)
        weights, indices = self.route(tokens)
        out = torch.zeros_like(tokens)
        for expert_id in indices.unique().tolist():
            rows, slot = (indices == expert_id).nonzero(as_tuple=True)
            weight = weights[rows, slot].unsqueeze(-1).to(x.dtype)  # (n, 1)
            if self.spec.router_scales_input:  # Llama 4: the expert sees w x, not x
                out.index_add_(0, rows, self.experts(tokens[rows] * weight, expert_id))
                continue
            expert_out = self.experts(tokens[rows], expert_id)  # (n, h)
            out.index_add_(0, rows, expert_out * weight)
        if self.shared is not None:
            shared = self.shared(tokens)
            if self.shared_gate is not None:
                shared = torch.sigmoid(self.shared_gate(tokens)) * shared
            out = out + shared
        return out.view(shape)

    def forward_meta(self, tokens: Tensor) -> Tensor:
        """On the meta device (FLOP counting without data) routing cannot look at values:
        every token goes to experts 0..k-1, which performs the same tokens x top-k expert
        evaluations, router and shared-expert work as any real routing."""
        self.router(tokens)
        out = sum(self.experts(tokens, e) for e in range(self.top_k))
        if self.shared is not None:
            shared = self.shared(tokens)
            if self.shared_gate is not None:
                shared = torch.sigmoid(self.shared_gate(tokens)) * shared
            out = out + shared
        return out
