"""Counting the aten operators a call dispatches, and what each one costs on its own.

A decode step of a small model is dominated by weight reads, but it also dispatches a few
thousand operators (2,556 for Qwen2.5-0.5B: norms, RoPE, views, the attention of each layer),
and each pays a fixed cost in Python, the dispatcher and the thread pool (~4 us on 2 CPU
threads, measured at width 64 where nothing else costs time). At ~80 ms per token that is
~13%: more than the error budget, so the prediction adds ops x per-op overhead.

``count_ops`` counts with a ``TorchDispatchMode`` (the operators that reach the backend,
after composite ones such as ``linear`` are decomposed); ``measure_op_overhead`` times a tiny
generic pre-norm layer written as nn.Modules (width 64, none of the model's shapes or code)
and divides by its own operator count, counted the same way: 3.5 us per operator against
4.1 us for the built-in model's own decode step at width 64 (2 threads, load ~2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from tfcli.bench.layers import RMSNorm
from tfcli.bench.timing import synchronize

OVERHEAD_WIDTH = 64
OVERHEAD_CALLS = 200


class _Counter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable[[], object]) -> int:
    """Aten operators dispatched by one call of ``fn`` (which runs once, slower)."""
    counter = _Counter()
    with counter, torch.no_grad():
        fn()
    return counter.count


class _TinyLayer(nn.Module):
    """A generic pre-norm layer at width 64 written as nn.Modules, as model code is: norm, a
    projection split into heads and merged back, output projection, norm, gated MLP, two
    residuals. Its cost is all per-operator overhead."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.norm = RMSNorm(width, 1e-6)
        self.q = nn.Linear(width, width)
        self.o = nn.Linear(width, width, bias=False)
        self.gate = nn.Linear(width, width, bias=False)
        self.up = nn.Linear(width, width, bias=False)
        self.down = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, w = x.shape
        heads = self.q(self.norm(x)).view(b, s, 4, w // 4).transpose(1, 2)
        x = x + self.o(heads.transpose(1, 2).reshape(b, s, w))
        h = self.norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def measure_op_overhead(device: torch.device, dtype: torch.dtype) -> float:
    """Seconds per dispatched operator of ``_TinyLayer`` (width 64: the work itself is
    negligible), the fastest of 5 batches of OVERHEAD_CALLS calls."""
    with torch.device(device):
        layer = _TinyLayer(OVERHEAD_WIDTH).to(dtype).eval()
        x = torch.randn(1, 1, OVERHEAD_WIDTH, dtype=dtype)
    ops = count_ops(lambda: layer(x))
    best = float("inf")
    with torch.no_grad():
        for _ in range(5):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(OVERHEAD_CALLS):
                layer(x)
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    return best / (OVERHEAD_CALLS * ops)
