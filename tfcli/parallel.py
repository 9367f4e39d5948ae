"""Communication per training step and device, counted as the engine issues it.

Each collective kind gets a count and bytes per optimizer step on one device (all
micro-batches of that device). Bytes are the size of the buffer the collective works on, as
the tests record it on a fake process group: an all-gather's output (the gathered, padded
tensor), a reduce-scatter's input (the unsharded gradients), an all-reduce's tensor, an
all-to-all's input, a point-to-point's tensor. Wire traffic per rank differs by the
algorithm's factor (ring all-reduce sends 2 (N-1)/N x bytes, all-gather and reduce-scatter
(N-1)/N x bytes).

Engines counted (the oracle for the first two is tests/test_train_parallel.py):

* tensor parallelism: DTensor ``ColwiseParallel`` on q, k, v, gate, up and
  ``RowwiseParallel`` on o and down (``torch.distributed.tensor.parallel``): per block and
  micro-batch, 2 all-reduces forward (after o and down) and one backward per column-parallel
  linear (its input's gradient is partial): 5 with separate q/k/v and gate/up (4 without a
  gate). Megatron-LM fuses q/k/v and gate/up and counts 2 + 2 per block (Shoeybi et al. 2019,
  section 3: the f and g operators); with sequence parallelism (Korthikanti et al. 2022) each
  all-reduce becomes a reduce-scatter plus an all-gather of the same total bytes.
* FSDP2 (``--zero 3``): per micro-batch, an all-gather per block and for the root in forward,
  one per block again in backward (the root stays unsharded), a reduce-scatter per block and
  for the root.
* DDP (``--zero 0``, dp > 1): the gradients all-reduced once per step, in 25 MiB buckets
  (``DistributedDataParallel(bucket_cap_mb=25)``).
* ZeRO-1/2 (DeepSpeed): gradients reduce-scattered and updated parameters all-gathered once
  per step (the ZeRO paper's 2 x params of traffic, same as an all-reduce).
* expert parallelism: per MoE layer and micro-batch, an all-to-all dispatch and combine in
  forward and again in backward, each ``top_k x tokens x hidden x a`` bytes.
* pipeline parallelism: per micro-batch, the first stage sends its output activations and
  receives their gradients: 2 point-to-point transfers of ``tokens x hidden x a``.

Only the standard library and other tfcli domain modules are imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfcli.spec import ModelSpec
from tfcli.train import (
    TrainSetup,
    compute_bytes,
    device_tensors,
    param_bytes,
    shard_group,
    shard_numel,
)

DDP_BUCKET_BYTES = 25 * 2**20
"""``torch.nn.parallel.DistributedDataParallel``'s default ``bucket_cap_mb=25``."""


@dataclass(frozen=True)
class Collective:
    """One collective kind of one parallelism: count and bytes per step on one device."""

    parallelism: str
    kind: str
    count: int
    bytes: int
    formula: str
    textbook: str = ""
    """The fused / paper convention where it differs from what the engine issues."""


def _per_stage_layers(spec: ModelSpec, setup: TrainSetup) -> int:
    return -(-spec.num_layers // setup.pp)


def tensor_parallel(spec: ModelSpec, setup: TrainSetup) -> list[Collective]:
    """DTensor TP all-reduces of one device per step: ``(2 + backward) x layers x micro-batches``,
    each ``micro_batch x seq x hidden x a`` bytes (a = activation bytes)."""
    if setup.tp == 1:
        return []
    layers = _per_stage_layers(spec, setup)
    micro = setup.grad_accum
    size = setup.tokens * spec.hidden_size * compute_bytes(setup.precision)
    colwise = 3 + (2 if spec.mlp_gated else 1)
    forward = 2 * layers * micro
    backward = colwise * layers * micro
    return [
        Collective(
            "TP",
            "all_reduce (forward)",
            forward,
            forward * size,
            f"2 x {layers} layers x {micro} micro-batches x (t x h x a = {size:,} B)",
            textbook="Megatron fused: 2 per layer",
        ),
        Collective(
            "TP",
            "all_reduce (backward)",
            backward,
            backward * size,
            f"{colwise} column-parallel inputs x {layers} layers x {micro} micro-batches x "
            f"{size:,} B",
            textbook=f"Megatron fused qkv and gate/up: 2 per layer ({2 * layers * micro} in all)",
        ),
    ]


def _fsdp_groups(spec: ModelSpec, setup: TrainSetup) -> tuple[int, list[int]]:
    """(root bytes, [block bytes]) of the all-gather buffers: each tensor padded along dim 0
    to a multiple of its shard group (``tfcli.train.shard_numel``), in the parameter dtype."""
    pbytes = param_bytes(setup.precision)
    groups: dict[str, int] = {}
    for t in device_tensors(spec, setup):
        parts = t.name.split(".")
        key = ".".join(parts[:3]) if len(parts) > 3 and parts[1] == "layers" else "root"
        gathered = shard_numel(t, setup) * shard_group(t, setup)
        groups[key] = groups.get(key, 0) + gathered * pbytes
    root = groups.pop("root", 0)
    return root, list(groups.values())


def fsdp(spec: ModelSpec, setup: TrainSetup) -> list[Collective]:
    """FSDP2 collectives per step on one rank (``--zero 3``)."""
    if setup.zero < 3 or setup.dp == 1:
        return []
    root, blocks = _fsdp_groups(spec, setup)
    micro = setup.grad_accum
    gather_count = (2 * len(blocks) + 1) * micro
    gather_bytes = (2 * sum(blocks) + root) * micro
    scatter_count = (len(blocks) + 1) * micro
    scatter_bytes = (sum(blocks) + root) * micro
    return [
        Collective(
            "FSDP",
            "all_gather",
            gather_count,
            gather_bytes,
            f"(2 x {len(blocks)} blocks + root) x {micro} micro-batches: forward and backward "
            "per block, the root once",
            textbook="ZeRO-3 paper: parameters gathered twice (forward, backward)",
        ),
        Collective(
            "FSDP",
            "reduce_scatter",
            scatter_count,
            scatter_bytes,
            f"({len(blocks)} blocks + root) x {micro} micro-batches, unsharded gradient bytes",
        ),
    ]


def data_parallel(spec: ModelSpec, setup: TrainSetup) -> list[Collective]:
    """DDP (zero 0) or ZeRO-1/2 gradient and parameter traffic per step."""
    if setup.dp == 1 or setup.zero >= 3:
        return []
    params = sum(t.numel for t in device_tensors(spec, setup))
    grads = params * param_bytes(setup.precision)
    if setup.zero == 0:
        buckets = -(-grads // DDP_BUCKET_BYTES)
        return [
            Collective(
                "DP",
                "all_reduce",
                buckets,
                grads,
                f"gradients once per step: {grads:,} B in 25 MiB buckets",
            )
        ]
    return [
        Collective("DP", "reduce_scatter", 1, grads, f"ZeRO-{setup.zero}: gradients, {grads:,} B"),
        Collective(
            "DP",
            "all_gather",
            1,
            grads,
            f"ZeRO-{setup.zero}: updated parameters after the step, {grads:,} B",
            textbook="DeepSpeed: counted per bucket (reduce_bucket_size)",
        ),
    ]


def expert_parallel(spec: ModelSpec, setup: TrainSetup) -> list[Collective]:
    """All-to-all per MoE layer and micro-batch: 2 forward (dispatch, combine) + 2 backward,
    each ``top_k x tokens x hidden x a`` bytes."""
    if setup.ep == 1 or not spec.is_moe:
        return []
    layers = sum(spec.moe_layer_flags[: _per_stage_layers(spec, setup)])
    k = int(spec.num_experts_per_token or 0)
    size = k * setup.tokens * spec.hidden_size * compute_bytes(setup.precision)
    count = 4 * layers * setup.grad_accum
    return [
        Collective(
            "EP",
            "all_to_all",
            count,
            count * size,
            f"4 x {layers} MoE layers x {setup.grad_accum} micro-batches x (k x t x h x a = "
            f"{size:,} B)",
        )
    ]


def pipeline_parallel(spec: ModelSpec, setup: TrainSetup) -> list[Collective]:
    """First stage: per micro-batch one send of activations and one receive of their grads."""
    if setup.pp == 1:
        return []
    size = setup.tokens * spec.hidden_size * compute_bytes(setup.precision)
    count = 2 * setup.grad_accum
    return [
        Collective(
            "PP",
            "send/recv",
            count,
            count * size,
            f"2 x {setup.grad_accum} micro-batches x (t x h x a = {size:,} B), first stage",
        )
    ]


def communication(spec: ModelSpec, setup: TrainSetup) -> list[Collective]:
    """Every collective of one step on one device, by parallelism and kind."""
    return (
        tensor_parallel(spec, setup)
        + fsdp(spec, setup)
        + data_parallel(spec, setup)
        + expert_parallel(spec, setup)
        + pipeline_parallel(spec, setup)
    )
