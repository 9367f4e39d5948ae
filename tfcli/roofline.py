"""Roofline estimates: the time a pass needs when bound by compute or by memory bandwidth.

time = max(FLOPs / peak FLOP/s, bytes moved / bandwidth) (Williams, Waterman and Patterson,
"Roofline", CACM 2009). Arithmetic intensity = FLOPs / bytes; the bound that gives the larger
time applies. At ``mfu = mbu = 1`` these are lower bounds at 100% of the datasheet peaks; real
kernels reach a fraction, which the model FLOPs utilisation (MFU) and model bandwidth
utilisation (MBU) knobs state (``DEFAULT_MFU``, ``DEFAULT_MBU``; ``tfcli bench`` measures
them on your device).
A device without a bandwidth (``--peak-tflops`` alone) gives compute-bound times only.

Only the standard library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfcli.errors import UsageError
from tfcli.flops import DecodeCost, FlopCount, decode_flops, forward_flops, training_flops
from tfcli.hardware import Hardware
from tfcli.memory import kv_cache_bytes, weight_bytes
from tfcli.params import ParamCount
from tfcli.spec import ModelSpec

DEFAULT_MFU = 0.5
"""Model FLOPs utilisation assumed for compute-bound passes (prefill, training): about half of
the dense peak. Source: PaLM 540B trained at 46.2% MFU (Chowdhery et al. 2022, table 3);
Pope et al. 2022 ("Efficiently Scaling Transformer Inference") report up to 76% in large-batch
prefill. Change it with ``--mfu``."""

DEFAULT_MBU = 0.6
"""Model bandwidth utilisation assumed for memory-bound passes (decode): the order of what the
MosaicML/Databricks team measured for batch-1 decode ("LLM Inference Performance Engineering:
Best Practices", Databricks blog, 2023, which defines MBU, TTFT and TPOT). Change it with
``--mbu``."""

EFFICIENCY_NOTE = (
    "MFU = achieved / peak FLOP/s, default 50% (PaLM trained at 46.2%, Chowdhery et al. 2022); "
    "MBU = achieved / peak bandwidth, default 60% (the order Databricks reports for batch-1 "
    "decode, 'LLM Inference Performance Engineering', 2023); --mfu / --mbu change them"
)


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
    mfu: float = 1.0
    """Fraction of the peak FLOP/s the pass reaches (1 = the pure roofline)."""
    mbu: float = 1.0
    """Fraction of the peak bandwidth the pass reaches (1 = the pure roofline)."""

    @property
    def has_bandwidth(self) -> bool:
        """False when only a peak was given: the memory-bound time is unknown."""
        return self.bandwidth_bytes_per_s > 0

    @property
    def compute_seconds(self) -> float:
        return self.flops / (self.peak_flops_per_s * self.mfu)

    @property
    def memory_seconds(self) -> float | None:
        """bytes / (bandwidth x MBU); None without a bandwidth."""
        if not self.has_bandwidth:
            return None
        return self.bytes_moved / (self.bandwidth_bytes_per_s * self.mbu)

    @property
    def seconds(self) -> float:
        """The larger of the two times (the compute time alone without a bandwidth)."""
        memory = self.memory_seconds
        return self.compute_seconds if memory is None else max(self.compute_seconds, memory)

    @property
    def bound(self) -> str:
        """``compute``, ``memory``, or ``compute only`` when the bandwidth is unknown."""
        memory = self.memory_seconds
        if memory is None:
            return "compute only"
        return "compute" if self.compute_seconds >= memory else "memory"

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved (None when nothing is moved)."""
        return self.flops / self.bytes_moved if self.bytes_moved else None

    @property
    def ridge_intensity(self) -> float | None:
        """The device's balance point: peak / bandwidth (FLOPs per byte); None without a
        bandwidth."""
        if not self.has_bandwidth:
            return None
        return self.peak_flops_per_s / self.bandwidth_bytes_per_s


def expected_experts_touched(num_experts: int, top_k: int, tokens: int) -> float:
    """Distinct experts a MoE layer reads for ``tokens`` tokens under uniform routing:
    E x (1 - (1 - k/E)^tokens). One token reads exactly k; a large batch reads all E."""
    if num_experts <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


def weights_read_bytes(
    spec: ModelSpec,
    counts: ParamCount,
    dtype: str,
    tokens: int,
    *,
    served_bytes: int | None = None,
) -> int:
    """Weight bytes one decode step reads: every dense weight once, and for MoE layers only the
    experts the step's ``tokens`` tokens touch (``expected_experts_touched``).

    ``served_bytes``: a quantized checkpoint's weights as served (``tfcli.quant``: packed
    weights, scales, zeros, the unquantized rest) instead of ``params x dtype``; a MoE step
    reads the same share of them as of the parameters (an approximation: experts and the
    dense rest are quantized alike)."""
    routed = counts.components.get("moe.routed_experts", 0)
    params = counts.total
    if spec.is_moe and routed:
        experts = int(spec.num_experts or 0)
        per_expert = routed / experts
        touched = expected_experts_touched(experts, int(spec.num_experts_per_token or 0), tokens)
        params = counts.total - routed + round(per_expert * touched)
    if served_bytes is not None:
        return served_bytes if params == counts.total else served_bytes * params // counts.total
    return weight_bytes(params, dtype)


def prefill_roofline(
    forward: FlopCount,
    counts: ParamCount,
    device: Hardware,
    *,
    dtype: str,
    spec: ModelSpec,
    mfu: float = 1.0,
    mbu: float = 1.0,
    served_bytes: int | None = None,
) -> Roofline:
    """Prefill of ``batch x seq`` tokens: FLOPs vs reading the weights once (``served_bytes``
    for a quantized checkpoint) and writing the KV cache (``kv_cache_bytes`` at the same
    length)."""
    weights = weight_bytes(counts.total, dtype) if served_bytes is None else served_bytes
    parts = {"weights read": weights}
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
        mfu=mfu,
        mbu=mbu,
    )


def decode_roofline(
    spec: ModelSpec,
    decode: DecodeCost,
    counts: ParamCount,
    device: Hardware,
    *,
    dtype: str,
    batch: int,
    mfu: float = 1.0,
    mbu: float = 1.0,
    served_bytes: int | None = None,
) -> Roofline:
    """One decode step (one token per sequence): FLOPs vs reading the weights and the whole
    KV cache of ``context`` tokens for every sequence. Without a device bandwidth only the
    compute-bound time is known (decode is almost always memory-bound: a lower bound)."""
    step = decode.with_cache
    kv_read = kv_cache_bytes(
        spec, max(step.context, 1), batch=batch, dtype=dtype, encoder_seq=step.encoder_seq or None
    )
    parts = {
        "weights read": weights_read_bytes(spec, counts, dtype, batch, served_bytes=served_bytes),
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
        mfu=mfu,
        mbu=mbu,
    )


def training_roofline(
    forward: FlopCount,
    counts: ParamCount,
    device: Hardware,
    *,
    dtype: str,
    recompute: bool = False,
    mfu: float = 1.0,
    mbu: float = 1.0,
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
        mfu=mfu,
        mbu=mbu,
    )


# ---- serving time -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServingTime:
    """Time to first token, time per output token and throughput of serving ``batch``
    sequences of ``seq`` prompt tokens, from two rooflines.

    TTFT = the prefill of ``batch x seq`` tokens (it yields the first token's logits);
    TPOT = one decode step of ``batch`` tokens with ``seq`` cached (the step at the end of the
    prompt: later steps read a longer cache); output tokens/s = batch / TPOT. Definitions as in
    Databricks' "LLM Inference Performance Engineering: Best Practices" (2023). No queueing,
    batching overheads, communication or kernel launch latency.
    """

    seq: int
    batch: int
    prefill: Roofline
    decode: Roofline

    @property
    def ttft_seconds(self) -> float:
        return self.prefill.seconds

    @property
    def tpot_seconds(self) -> float:
        return self.decode.seconds

    @property
    def output_tokens_per_s(self) -> float:
        """Generated tokens per second over the whole batch."""
        return self.batch / self.tpot_seconds

    @property
    def prefill_tokens_per_s(self) -> float:
        """Prompt tokens per second during the prefill."""
        return self.batch * self.seq / self.ttft_seconds

    @property
    def compute_only(self) -> bool:
        """True when the device has no bandwidth: both times are compute-bound lower bounds."""
        return not self.decode.has_bandwidth


def serving_time(
    spec: ModelSpec,
    counts: ParamCount,
    device: Hardware,
    *,
    seq: int,
    batch: int,
    dtype: str,
    mfu: float = DEFAULT_MFU,
    mbu: float = DEFAULT_MBU,
    attention: str = "causal",
    encoder_seq: int | None = None,
    served_bytes: int | None = None,
) -> ServingTime:
    """TTFT, TPOT and tokens/s of ``batch`` prompts of ``seq`` tokens on ``device``
    (``served_bytes``: a quantized checkpoint's weights as served)."""
    check_efficiency(mfu, mbu)
    forward = forward_flops(
        spec, seq, batch=batch, attention=attention, logits="last", encoder_seq=encoder_seq
    )
    prefill = prefill_roofline(
        forward, counts, device, dtype=dtype, spec=spec, mfu=mfu, mbu=mbu, served_bytes=served_bytes
    )
    step = decode_flops(spec, seq, batch=batch, attention=attention, encoder_seq=encoder_seq)
    decode = decode_roofline(
        spec,
        step,
        counts,
        device,
        dtype=dtype,
        batch=batch,
        mfu=mfu,
        mbu=mbu,
        served_bytes=served_bytes,
    )
    return ServingTime(seq=seq, batch=batch, prefill=prefill, decode=decode)


def check_efficiency(mfu: float, mbu: float) -> None:
    """MFU and MBU are fractions in (0, 1]."""
    for name, value in (("MFU", mfu), ("MBU", mbu)):
        if not (0 < value <= 1):
            raise UsageError(f"{name} must be a fraction in (0, 1], got {value}")
