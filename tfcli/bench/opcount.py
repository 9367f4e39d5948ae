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

``count_step`` counts the same way and also records the weights the call reads through
matrix products: every ``mm``/``addmm``/``bmm``/``baddbmm``/``mv``/``addmv`` operand that
lives in one of the given parameters' storage, by its contracted dimension (bytes of the
operand, a view's own elements: one expert's slice of a stacked expert tensor counts as that
slice). A decode step's GEMVs run at a bandwidth that depends on that dimension
(``tfcli.bench.calibrate.measure_gemv_curve``), so the prediction needs the split.

Inside the modules given as ``traffic_modules`` (the state mixers of a decode step) it also
adds up the bytes every other operator moves: its tensor inputs read and its output written
(a view moves nothing; an in-place operator writes what it read). A recurrent step streams
its state through several such elementwise passes (the gated delta rule's decay, S^T k,
the rank-1 update and S^T q each read or write the whole state), which no matmul count
sees.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from tfcli.bench.layers import RMSNorm
from tfcli.bench.timing import synchronize

OVERHEAD_WIDTH = 64
OVERHEAD_CALLS = 200


MATRIX_PRODUCTS: dict[str, tuple[int, int]] = {
    "mm": (0, 1),
    "addmm": (1, 2),
    "bmm": (0, 1),
    "baddbmm": (1, 2),
    "mv": (0, 1),
    "addmv": (1, 2),
}
"""aten matrix products by name: the argument positions of (left, right) operands. The
contracted dimension is the left operand's last one (``mv``/``addmv``: the matrix's last)."""


@dataclass
class StepCount:
    """What one call dispatched: its aten operators, and the parameter bytes its matrix
    products read, keyed by contracted dimension."""

    operators: int = 0
    weight_reads: Counter[int] = field(default_factory=Counter)
    elementwise_bytes: int = 0
    """Bytes the non-matmul operators inside ``traffic_modules`` read and wrote."""

    @property
    def weight_read_bytes(self) -> int:
        return sum(self.weight_reads.values())


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


class _Counter(TorchDispatchMode):
    def __init__(self, parameter_storages: set[int]) -> None:
        super().__init__()
        self.result = StepCount()
        self.parameter_storages = parameter_storages
        self.traffic_depth = 0
        """> 0 while a traffic module's forward runs."""

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.result.operators += 1
        positions = MATRIX_PRODUCTS.get(func.overloadpacket.__name__)
        if positions is not None and self.parameter_storages:
            self._record(args[positions[0]], args[positions[1]])
        out = func(*args, **(kwargs or {}))
        if self.traffic_depth and positions is None and not func.is_view:
            self.result.elementwise_bytes += _moved_bytes(func, args, kwargs, out)
        return out

    def _record(self, left: torch.Tensor, right: torch.Tensor) -> None:
        contracted = int(left.shape[-1])
        for operand in (left, right):
            if _storage_key(operand) in self.parameter_storages:
                self.result.weight_reads[contracted] += operand.numel() * operand.element_size()


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _moved_bytes(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None, out: object
) -> int:
    """Bytes one operator reads (its tensor arguments) and writes (its outputs); 0 for an
    operator that only changes an input's metadata (``squeeze_``) or returns an alias of an
    input without writing it (``_unsafe_view``, which the schema does not mark as a view)."""
    if torch.Tag.inplace_view in func.tags:  # squeeze_, transpose_: metadata only
        return 0
    inputs = _tensors(list(args)) + _tensors(list((kwargs or {}).values()))
    outputs = _tensors(out)
    storages = {_storage_key(t) for t in inputs}
    if not func._schema.is_mutable and all(_storage_key(t) in storages for t in outputs):
        return 0
    return sum(t.numel() * t.element_size() for t in inputs + outputs)


def count_step(
    fn: Callable[[], object],
    parameters: Iterable[torch.Tensor] = (),
    traffic_modules: Iterable[nn.Module] = (),
) -> StepCount:
    """Operators dispatched by one call of ``fn`` (which runs once, slower), the bytes of
    ``parameters`` its matrix products read, and the elementwise bytes moved inside
    ``traffic_modules`` (module docstring)."""
    counter = _Counter({_storage_key(p) for p in parameters})

    def enter(*_: object) -> None:
        counter.traffic_depth += 1

    def leave(*_: object) -> None:
        counter.traffic_depth -= 1

    hooks = []
    for module in traffic_modules:
        hooks += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        with counter, torch.no_grad():
            fn()
    finally:
        for hook in hooks:
            hook.remove()
    return counter.result


def count_ops(fn: Callable[[], object]) -> int:
    """Aten operators dispatched by one call of ``fn`` (which runs once, slower)."""
    return count_step(fn).operators


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
