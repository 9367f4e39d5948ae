"""``tfcli bench MODEL --dist tp=N|fsdp=N``: the built-in model on torch.distributed.

Launched under torchrun (gloo on CPU, NCCL on CUDA), every rank builds the same built-in
model (same seed), keeps an unsharded copy as the reference, then

* ``tp=N``: shards each block with DTensor tensor parallelism (``ColwiseParallel`` on q, k, v,
  gate, up; ``RowwiseParallel`` on o, down; embeddings and LM head replicated) and runs
  forward + backward steps;
* ``fsdp=N``: shards each block and the root with FSDP2 ``fully_shard`` and runs training
  steps (AdamW, ``foreach=False``).

It checks numerics against the reference (max abs difference of the logits for TP, of the
loss and the updated parameters for FSDP: 1e-5 in fp32), times the steps and records the
collectives (count and buffer bytes) next to ``tfcli.parallel.communication``, and the
per-rank memory (``torch.cuda.max_memory_allocated`` on CUDA, torch's MemTracker /
FSDPMemTracker on CPU) next to ``tfcli.train.train_memory``. Rank 0 prints the result.
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.utils._python_dispatch import TorchDispatchMode

from tfcli.bench.model import Block, SelfAttention, Transformer, build_model
from tfcli.errors import BenchError, UsageError
from tfcli.parallel import communication
from tfcli.spec import ModelSpec
from tfcli.train import TrainSetup, train_memory

DIST_MODES = ("tp", "fsdp")
TOLERANCE_FP32 = 1e-5


def parse_dist(text: str) -> tuple[str, int]:
    """``tp=2`` -> ("tp", 2); ``fsdp=4`` -> ("fsdp", 4)."""
    name, sep, value = text.strip().partition("=")
    if not sep or name not in DIST_MODES or not value.isdigit() or int(value) < 1:
        raise UsageError(f"--dist takes tp=N or fsdp=N, got {text!r}")
    return name, int(value)


@dataclass
class DistResult:
    """What rank 0 reports (JSON keys: ``*_diff`` numerics, ``*_seconds`` timings)."""

    mode: str
    world: int
    backend: str
    model: str
    layers: int
    seq: int
    batch: int
    max_abs_diff: float
    step_seconds: float
    step_seconds_spread: float
    collectives: dict[str, tuple[int, int]]
    predicted_collectives: dict[str, tuple[int, int]]
    memory_peak_bytes: int
    predicted_memory_peak_bytes: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "world_size": self.world,
            "backend": self.backend,
            "model": self.model,
            "layers": self.layers,
            "seq": self.seq,
            "batch": self.batch,
            "max_abs_diff": self.max_abs_diff,
            "step_seconds": self.step_seconds,
            "step_spread_seconds": self.step_seconds_spread,
            "collectives": {k: {"count": c, "bytes": b} for k, (c, b) in self.collectives.items()},
            "predicted_collectives": {
                k: {"count": c, "bytes": b} for k, (c, b) in self.predicted_collectives.items()
            },
            "memory_peak_bytes": self.memory_peak_bytes,
            "predicted_memory_peak_bytes": self.predicted_memory_peak_bytes,
            "notes": self.notes,
        }


class CollectiveRecorder(TorchDispatchMode):
    """Records every c10d collective the engine issues: count and the bytes of its buffer
    (all-gather output, reduce-scatter input, all-reduce tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.record: dict[str, list[int]] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = str(func)
        if name.startswith(("c10d.", "_c10d_functional.")):
            kind: str | None = None
            tensor: Any = None
            if "allgather" in name or "all_gather" in name:
                kind, tensor = "all_gather", args[0]
            elif "reduce_scatter" in name:
                kind, tensor = "reduce_scatter", args[1]
            elif "allreduce" in name or "all_reduce" in name:
                kind, tensor = "all_reduce", args[0]
            if kind is not None:
                if isinstance(tensor, (list, tuple)):
                    tensor = tensor[0]
                entry = self.record.setdefault(kind, [0, 0])
                entry[0] += 1
                entry[1] += tensor.numel() * tensor.element_size()
        return func(*args, **(kwargs or {}))


def _init() -> tuple[int, int, torch.device, str]:
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        raise BenchError(
            "--dist runs under torchrun",
            hint="torchrun --standalone --nproc-per-node 2 -m tfcli bench MODEL --dist tp=2",
        )
    cuda = torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return rank, world, device, backend


def _check_spec(spec: ModelSpec, mode: str, world: int) -> None:
    if spec.architecture != "decoder" or spec.is_moe or spec.is_mla:
        raise BenchError("--dist runs dense decoder-only models (standard attention) so far")
    if mode == "tp" and (spec.attention_sinks or (spec.qk_norm and spec.qk_norm_weights == "all")):
        # per-head parameters the column-parallel projections would have to split with them
        raise BenchError(
            "--dist tp does not shard attention sinks or q/k norms over all heads yet (fsdp does)"
        )
    if mode == "tp" and (spec.num_heads % world or spec.kv_heads % world):
        raise BenchError(
            f"tp={world} must divide the {spec.num_heads} heads and {spec.kv_heads} KV heads "
            f"of {spec.name}"
        )


def _tensor_parallel(model: Transformer, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    device = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = init_device_mesh(device, (world,))
    for block in model.layers:
        assert isinstance(block, Block)
        plan: dict[str, Any] = {
            "attention.q": ColwiseParallel(),
            "attention.k": ColwiseParallel(),
            "attention.v": ColwiseParallel(),
            "attention.o": RowwiseParallel(),
            "mlp.up": ColwiseParallel(),
            "mlp.down": RowwiseParallel(),
        }
        if getattr(block.mlp, "gate", None) is not None:
            plan["mlp.gate"] = ColwiseParallel()
        parallelize_module(block, mesh, plan)
        attention = block.attention
        assert isinstance(attention, SelfAttention)
        attention.heads //= world
        attention.kv_heads //= world


def _fully_shard(model: Transformer, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = init_device_mesh(device, (world,))
    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max())


def _local(t: torch.Tensor) -> torch.Tensor:
    full = getattr(t, "full_tensor", None)
    return full() if callable(full) else t


def run_dist(
    spec: ModelSpec,
    *,
    mode: str,
    world: int,
    seq: int,
    batch: int,
    layers: int,
    dtype: torch.dtype,
    steps: int = 2,
) -> DistResult | None:
    """Run ``mode`` on ``world`` ranks; rank 0 gets the result, the other ranks None."""
    rank, actual, device, backend = _init()
    if actual != world:
        raise BenchError(f"--dist {mode}={world} but torchrun started {actual} ranks")
    _check_spec(spec, mode, world)
    truncated = spec.truncated(layers)
    torch.manual_seed(0)
    model = build_model(truncated, device=device, dtype=dtype)
    reference = copy.deepcopy(model)
    ids = torch.randint(0, spec.vocab_size, (batch, seq), device=device)
    recorder = CollectiveRecorder()
    times: list[float] = []
    notes: list[str] = []
    if mode == "tp":
        _tensor_parallel(model, world)
        captured: dict[str, torch.Tensor] = {}
        hooks = [
            reference.layers[-1].register_forward_hook(
                lambda _m, _i, out: captured.__setitem__("reference", out)
            ),
            model.layers[-1].register_forward_hook(
                lambda _m, _i, out: captured.__setitem__("sharded", out)
            ),
        ]
        expected = reference(ids)
        logits = model(ids)
        for hook in hooks:
            hook.remove()
        diff = _max_diff(_local(captured["sharded"]), captured["reference"])
        logits_diff = _max_diff(_local(logits), expected)
        notes.append(
            f"max abs diff of the sharded blocks' output; logits (after the replicated LM "
            f"head): {logits_diff:.2e}"
        )
        setup = TrainSetup(seq=seq, micro_batch=batch, precision="fp32", tp=world)
        with recorder:
            model(ids).float().pow(2).mean().backward()
        for _ in range(steps):
            start = time.perf_counter()
            model(ids).float().pow(2).mean().backward()
            _sync(device)
            times.append(time.perf_counter() - start)
        peak = _memory_peak(model, None, ids, device, fsdp=False)
        notes.append("TP step = forward + backward of mean(logits^2); LM head replicated")
    else:
        _fully_shard(model, world)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
        ref_opt = torch.optim.AdamW(reference.parameters(), lr=1e-3, foreach=False)

        # each rank trains on its own slice of one global batch; the reference sees the
        # whole batch: FSDP2 averages the gradients over ranks, so the updates must agree
        global_ids = torch.randint(0, spec.vocab_size, (world * batch, seq), device=device)
        ids = global_ids[rank * batch : (rank + 1) * batch]

        def step(m: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> torch.Tensor:
            loss = m(x).float().pow(2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.detach()

        # numerics on the gradients, not on the parameters after an AdamW step: Adam's first
        # update is ~lr x g / |g| per element, so fp32 rounding noise in a near-zero gradient
        # moves that parameter by up to lr whichever engine is right
        model(ids).float().pow(2).mean().backward()
        reference(global_ids).float().pow(2).mean().backward()
        diff = scale = 0.0
        for p, q in zip(model.parameters(), reference.parameters(), strict=True):
            if p.grad is None or q.grad is None:
                continue
            diff = max(diff, _max_diff(_local(p.grad), q.grad))
            scale = max(scale, float(q.grad.detach().abs().max()))
        notes.append(f"largest reference gradient {scale:.2e} (the scale of the diff)")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ref_opt.step()
        ref_opt.zero_grad(set_to_none=True)
        setup = TrainSetup(seq=seq, micro_batch=batch, precision="fp32", dp=world, zero=3)
        with recorder:
            step(model, optimizer, ids)
        for _ in range(steps):
            start = time.perf_counter()
            step(model, optimizer, ids)
            _sync(device)
            times.append(time.perf_counter() - start)
        peak = _memory_peak(model, optimizer, ids, device, fsdp=True)
        notes.append(
            "FSDP2 step = forward, backward, AdamW step of mean(logits^2); max abs diff of the "
            "averaged gradients against the unsharded model's on the global batch"
        )
    predicted: dict[str, tuple[int, int]] = {}
    for c in communication(truncated, setup):
        kind = "all_reduce" if c.kind.startswith("all_reduce") else c.kind
        count, size = predicted.get(kind, (0, 0))
        predicted[kind] = (count + c.count, size + c.bytes)
    notes.append(
        "predicted memory: tfcli train's transformers profile on the truncated spec; the "
        "built-in model saves different intermediates"
    )
    result = DistResult(
        mode=mode,
        world=world,
        backend=backend,
        model=spec.name,
        layers=truncated.num_layers,
        seq=seq,
        batch=batch,
        max_abs_diff=diff,
        step_seconds=statistics.median(times),
        step_seconds_spread=max(times) - min(times),
        collectives={k: (v[0], v[1]) for k, v in recorder.record.items()},
        predicted_collectives=predicted,
        memory_peak_bytes=peak,
        predicted_memory_peak_bytes=train_memory(truncated, setup).peak_bytes,
        notes=notes,
    )
    dist.barrier()
    return result if rank == 0 else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory_peak(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    ids: torch.Tensor,
    device: torch.device,
    *,
    fsdp: bool,
) -> int:
    """Peak bytes of one more step on this rank: the CUDA allocator's high-water mark, or on
    CPU torch's MemTracker (FSDPMemTracker under FSDP2)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        _one_step(model, optimizer, ids)
        return int(torch.cuda.max_memory_allocated(device))
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker: Any
    if fsdp:
        tracker = FSDPMemTracker(model, optimizer)
    else:
        tracker = MemTracker()
        tracker.track_external(model)
    with tracker:
        _one_step(model, optimizer, ids)
    return int(tracker.get_tracker_snapshot("peak")[device]["Total"])


def _one_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, ids: torch.Tensor
) -> None:
    loss = model(ids).float().pow(2).mean()
    loss.backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    else:
        model.zero_grad(set_to_none=True)


def shutdown() -> None:
    with contextlib.suppress(Exception):
        if dist.is_initialized():
            dist.destroy_process_group()
