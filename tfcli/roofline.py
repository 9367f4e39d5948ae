"""Roofline estimates: the time a pass needs when bound by compute or by memory bandwidth.

time = max(FLOPs / peak FLOP/s, bytes moved / bandwidth) (Williams, Waterman and Patterson,
"Roofline", CACM 2009). Arithmetic intensity = FLOPs / bytes; the bound that gives the larger
time applies. These are lower bounds at 100% of the datasheet peaks: real kernels reach a
fraction (``tfcli bench`` measures it on your device).

Only the standard library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfcli.errors import UsageError
from tfcli.flops import DecodeCost, FlopCount, training_flops
from tfcli.hardware import Hardware
from tfcli.memory import kv_cache_bytes, weight_bytes
from tfcli.params import ParamCount
from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class Roofline:
    """Compute and memory times of one pass on one device (seconds), and which bound applies."""

    hardware: str
    dtype: str
    flops: int
    bytes_moved: int
    peak_flops_per_s: float
    bandwidth_bytes_per_s: float
    what: str
    bytes_parts: dict[str, int] = field(default_factory=dict)
    """What ``bytes_moved`` is made of (weights, KV cache, gradients), summing to it."""

    @property
    def compute_seconds(self) -> float:
        return self.flops / self.peak_flops_per_s

    @property
    def memory_seconds(self) -> float:
        if self.bandwidth_bytes_per_s <= 0:
            return 0.0
        return self.bytes_moved / self.bandwidth_bytes_per_s

    @property
    def seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved."""
        return self.flops / self.bytes_moved if self.bytes_moved else float("inf")

    @property
    def ridge_intensity(self) -> float:
        """The device's balance point: peak / bandwidth (FLOPs per byte)."""
        if self.bandwidth_bytes_per_s <= 0:
            return float("inf")
        return self.peak_flops_per_s / self.bandwidth_bytes_per_s


def expected_experts_touched(num_experts: int, top_k: int, tokens: int) -> float:
    """Distinct experts a MoE layer reads for ``tokens`` tokens under uniform routing:
    E x (1 - (1 - k/E)^tokens). One token reads exactly k; a large batch reads all E."""
    if num_experts <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


def weights_read_bytes(spec: ModelSpec, counts: ParamCount, dtype: str, tokens: int) -> int:
    """Weight bytes one decode step reads: every dense weight once, and for MoE layers only the
    experts the step's ``tokens`` tokens touch (``expected_experts_touched``)."""
    routed = counts.components.get("moe.routed_experts", 0)
    if not spec.is_moe or not routed:
        return weight_bytes(counts.total, dtype)
    experts = int(spec.num_experts or 0)
    per_expert = routed / experts
    touched = expected_experts_touched(experts, int(spec.num_experts_per_token or 0), tokens)
    params = counts.total - routed + round(per_expert * touched)
    return weight_bytes(params, dtype)


def prefill_roofline(
    forward: FlopCount, counts: ParamCount, device: Hardware, *, dtype: str, spec: ModelSpec
) -> Roofline:
    """Prefill of ``batch x seq`` tokens: FLOPs vs reading the weights once and writing the
    KV cache (``kv_cache_bytes`` at the same length)."""
    parts = {"weights read": weight_bytes(counts.total, dtype)}
    if spec.architecture != "encoder":
        parts["KV cache written"] = kv_cache_bytes(
            spec, forward.seq, batch=forward.batch, dtype=dtype
        )
    return Roofline(
        hardware=device.name,
        dtype=dtype,
        flops=forward.total,
        bytes_moved=sum(parts.values()),
        bytes_parts=parts,
        peak_flops_per_s=device.peak_for(dtype),
        bandwidth_bytes_per_s=device.bandwidth_bytes_per_s,
        what=f"prefill of {forward.batch} x {forward.seq:,} tokens",
    )


def decode_roofline(
    spec: ModelSpec,
    decode: DecodeCost,
    counts: ParamCount,
    device: Hardware,
    *,
    dtype: str,
    batch: int,
) -> Roofline:
    """One decode step (one token per sequence): FLOPs vs reading the weights and the whole
    KV cache of ``context`` tokens for every sequence."""
    if device.bandwidth_bytes_per_s <= 0:
        raise UsageError("decode is memory-bound: give --bandwidth (GB/s) or a --hardware preset")
    step = decode.with_cache
    kv_read = kv_cache_bytes(
        spec, max(step.context, 1), batch=batch, dtype=dtype, encoder_seq=step.encoder_seq or None
    )
    parts = {
        "weights read": weights_read_bytes(spec, counts, dtype, batch),
        "KV cache read": kv_read,
    }
    return Roofline(
        hardware=device.name,
        dtype=dtype,
        flops=step.total,
        bytes_moved=sum(parts.values()),
        bytes_parts=parts,
        peak_flops_per_s=device.peak_for(dtype),
        bandwidth_bytes_per_s=device.bandwidth_bytes_per_s,
        what=f"decode step: {batch} x 1 token after {step.context:,} cached",
    )


def training_roofline(
    forward: FlopCount,
    counts: ParamCount,
    device: Hardware,
    *,
    dtype: str,
    recompute: bool = False,
) -> Roofline:
    """One training step on ``batch x seq`` tokens: ``training_flops`` (3 x forward, 4 x with
    recomputation) vs a lower bound on traffic: the weights read in the forward and again in
    the backward, and their gradients written once (3 x weight bytes; activations, optimizer
    state and communication are not counted). Training at any real batch is compute-bound."""
    weights = weight_bytes(counts.total, dtype)
    parts = {"weights read (forward + backward)": 2 * weights, "gradients written": weights}
    return Roofline(
        hardware=device.name,
        dtype=dtype,
        flops=training_flops(forward, recompute=recompute),
        bytes_moved=sum(parts.values()),
        bytes_parts=parts,
        peak_flops_per_s=device.peak_for(dtype),
        bandwidth_bytes_per_s=device.bandwidth_bytes_per_s,
        what=f"training step on {forward.batch} x {forward.seq:,} tokens"
        + (" with recomputation" if recompute else ""),
    )
