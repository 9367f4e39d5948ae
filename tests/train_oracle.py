"""Training-memory oracle: PyTorch's own MemTracker on a transformers model (DESIGN.md section 5,
item 5). Imports torch and transformers lazily.

One steady-state step is tracked: a first step creates the optimizer state, then
``forward -> backward -> optimizer.step() -> zero_grad(set_to_none=True)`` runs under
``MemTracker`` inside ``FakeTensorMode`` on device cpu (no real memory, no compute).

One patch makes fake mode behave as a real run does: transformers 5 looks at ``position_ids``
to detect packed sequences, and under fake tensors it cannot read them, so it assumes packing
and materialises an s x s mask (and, with a mask, copies K/V for GQA). A real run finds no
packing and uses SDPA's ``is_causal``. The oracle tells transformers what a real run finds
(``find_packed_sequence_indices -> None``); tests/test_train_oracle_fake.py checks that fake
and real runs then agree byte for byte.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measured:
    params: int
    buffers: int
    grads: int
    optimizer: int
    activations: int
    """Activation bytes alive at the end of the forward pass (loss computed)."""
    peak: int
    peak_forward: int
    peak_backward: int
    peak_optimizer: int


def _no_packing() -> Any:
    import transformers.masking_utils as mu

    original = mu.find_packed_sequence_indices

    @contextlib.contextmanager
    def patched() -> Any:
        mu.find_packed_sequence_indices = lambda position_ids: None
        try:
            yield
        finally:
            mu.find_packed_sequence_indices = original

    return patched()


def build_model(config: Any, *, impl: str, precision: str, kind: str = "causal_lm") -> Any:
    import torch
    import transformers

    auto = {
        "causal_lm": transformers.AutoModelForCausalLM,
        "base": transformers.AutoModel,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
    }[kind]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return auto.from_config(config, attn_implementation=impl, dtype=dtype)


def measure(
    config: Any,
    *,
    batch: int,
    seq: int,
    impl: str = "sdpa",
    precision: str = "fp32",
    optimizer: str = "adamw",
    recompute: str = "none",
    kind: str = "causal_lm",
    fake: bool = True,
) -> Measured:
    """MemTracker's figures for one steady-state training step of ``config``."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    cpu = torch.device("cpu")
    mode = FakeTensorMode() if fake else contextlib.nullcontext()
    with mode, _no_packing():
        model = build_model(config, impl=impl, precision=precision, kind=kind)
        if recompute == "full":
            model.gradient_checkpointing_enable()
        model.train()
        if optimizer == "adamw":
            opt = torch.optim.AdamW(model.parameters(), foreach=False)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, foreach=False)
        ids = torch.randint(0, config.vocab_size, (batch, seq))

        def forward() -> Any:
            autocast = (
                torch.autocast("cpu", dtype=torch.bfloat16)
                if precision == "bf16-mixed"
                else contextlib.nullcontext()
            )
            with autocast:
                if kind == "seq2seq":
                    return model(input_ids=ids, decoder_input_ids=ids, labels=ids).loss
                if kind == "base":
                    # an encoder has no loss of its own: sum the last hidden states and the
                    # pooler output (a sum's backward saves nothing)
                    out = model(input_ids=ids)
                    loss = out.last_hidden_state.sum()
                    if getattr(out, "pooler_output", None) is not None:
                        loss = loss + out.pooler_output.sum()
                    return loss
                return model(input_ids=ids, labels=ids).loss

        loss = forward()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del loss

        tracker = MemTracker()
        tracker.track_external(model, opt)
        phases: dict[str, int] = {}
        with tracker:
            loss = forward()
            after_forward = tracker.get_tracker_snapshot()[cpu]
            phases["forward"] = tracker.get_tracker_snapshot("peak")[cpu]["Total"]
            loss.backward()
            del loss
            phases["backward"] = tracker.get_tracker_snapshot("peak")[cpu]["Total"]
            opt.step()
            peak_snap = tracker.get_tracker_snapshot("peak")[cpu]
            step_snap = tracker.get_tracker_snapshot()[cpu]
            opt.zero_grad(set_to_none=True)
        keys = {
            str(k.value) if hasattr(k, "value") else str(k): v for k, v in after_forward.items()
        }
        step_keys = {
            str(k.value) if hasattr(k, "value") else str(k): v for k, v in step_snap.items()
        }
    return Measured(
        params=keys["Parameter"],
        buffers=keys["Buffer"],
        grads=step_keys["Gradient"],
        optimizer=keys["Optstate"],
        activations=keys["Activation"],
        peak=peak_snap["Total"],
        peak_forward=phases["forward"],
        peak_backward=phases["backward"],
        peak_optimizer=peak_snap["Total"],
    )


@dataclass(frozen=True)
class MeasuredFSDP:
    """FSDPMemTracker's per-rank figures and the collectives of one steady-state step."""

    sharded_params: int
    optimizer: int
    activations: int
    peak: int
    collectives: dict[str, tuple[int, int]]
    """Collective kind -> (count, bytes): all_gather (output buffer bytes), reduce_scatter
    (input buffer bytes), all_reduce (tensor bytes)."""


_PG_WORLD: list[int] = []


def _fake_process_group(world: int) -> Any:
    """A fake process group of ``world`` ranks in this process (rank 0), and its mesh."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.testing._internal.distributed.fake_pg import FakeStore

    if dist.is_initialized() and _PG_WORLD and _PG_WORLD[0] != world:
        dist.destroy_process_group()
        _PG_WORLD.clear()
    if not dist.is_initialized():
        dist.init_process_group("fake", rank=0, world_size=world, store=FakeStore())
        _PG_WORLD.append(world)
    return init_device_mesh("cpu", (world,))


class _CollectiveRecorder:
    """A dispatch mode recording each c10d collective and the bytes of its buffer."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        record: dict[str, list[int]] = {}
        self.record = record

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(
                self, func: Any, types: Any, args: Any = (), kwargs: Any = None
            ) -> Any:
                name = str(func)
                kind = None
                if not name.startswith(("c10d.", "_c10d_functional.")):
                    return func(*args, **(kwargs or {}))
                if "allgather" in name or "all_gather" in name:
                    kind, tensor = "all_gather", args[0]
                elif "reduce_scatter" in name:
                    kind, tensor = "reduce_scatter", args[1]
                elif "allreduce" in name or "all_reduce" in name:
                    kind, tensor = "all_reduce", args[0]
                if kind is not None:
                    if isinstance(tensor, (list, tuple)):
                        tensor = tensor[0]
                    entry = record.setdefault(kind, [0, 0])
                    entry[0] += 1
                    entry[1] += tensor.numel() * tensor.element_size()
                return func(*args, **(kwargs or {}))

        self.mode = Mode()


def measure_fsdp(
    config: Any,
    *,
    world: int,
    batch: int,
    seq: int,
    impl: str = "sdpa",
    precision: str = "fp32",
) -> MeasuredFSDP:
    """FSDP2 (``fully_shard`` on each decoder layer and on the root) on a fake ``world``-rank
    process group, under FakeTensorMode: FSDPMemTracker's rank-0 figures of one steady-state
    step, and the collectives FSDP2 issued in it."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
    from torch.distributed.fsdp import fully_shard

    mesh = _fake_process_group(world)
    cpu = torch.device("cpu")
    with FakeTensorMode(), _no_packing():
        model = build_model(config, impl=impl, precision=precision)
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), foreach=False)
        ids = torch.randint(0, config.vocab_size, (batch, seq))

        def forward() -> Any:
            autocast = (
                torch.autocast("cpu", dtype=torch.bfloat16)
                if precision == "bf16-mixed"
                else contextlib.nullcontext()
            )
            with autocast:
                return model(input_ids=ids, labels=ids).loss

        loss = forward()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del loss
        tracker = FSDPMemTracker(model, opt)
        recorder = _CollectiveRecorder()
        with recorder.mode, tracker:
            loss = forward()
            after_forward = tracker.get_tracker_snapshot()[cpu]
            loss.backward()
            del loss
            opt.step()
            opt.zero_grad(set_to_none=True)
        peak = tracker.get_tracker_snapshot("peak")[cpu]["Total"]
    named = {getattr(k, "value", str(k)): v for k, v in after_forward.items()}
    return MeasuredFSDP(
        sharded_params=named["Sharded Param"],
        optimizer=named["OptState"],
        activations=named["Activation"],
        peak=peak,
        collectives={k: (v[0], v[1]) for k, v in recorder.record.items()},
    )


def measure_tp_collectives(
    config: Any, *, world: int, batch: int, seq: int, precision: str = "fp32"
) -> dict[str, tuple[int, int]]:
    """The collectives of one forward + backward of a transformers decoder whose blocks are
    sharded with DTensor tensor parallelism (``ColwiseParallel`` on q/k/v/gate/up,
    ``RowwiseParallel`` on o/down; embeddings and LM head replicated), on a fake process
    group of ``world`` ranks under FakeTensorMode."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    mesh = _fake_process_group(world)
    plan = {
        "self_attn.q_proj": ColwiseParallel(),
        "self_attn.k_proj": ColwiseParallel(),
        "self_attn.v_proj": ColwiseParallel(),
        "self_attn.o_proj": RowwiseParallel(),
        "mlp.gate_proj": ColwiseParallel(),
        "mlp.up_proj": ColwiseParallel(),
        "mlp.down_proj": RowwiseParallel(),
    }
    with FakeTensorMode(), _no_packing():
        model = build_model(config, impl="sdpa", precision=precision)
        for layer in model.model.layers:
            layer.self_attn.num_heads = config.num_attention_heads // world
            parallelize_module(layer, mesh, plan)
        model.train()
        ids = torch.randint(0, config.vocab_size, (batch, seq))
        recorder = _CollectiveRecorder()
        with recorder.mode:
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
    return {k: (v[0], v[1]) for k, v in recorder.record.items()}
