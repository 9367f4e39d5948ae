"""Hardware presets as data: dense peak FLOP/s per dtype, memory and bandwidth, with sources.

Peaks are the vendors' dense tensor-core figures (no 2:4 structured sparsity; where a
datasheet quotes only sparse figures, dense = sparse / 2, and ``sparse_factor`` says so), in
FLOP/s; memory in bytes (HBM/GDDR capacities are binary: "80 GB" on a datasheet is 80 GiB of
HBM); bandwidth in bytes/s (SI, as vendors quote it). Real kernels reach a fraction of these
peaks: tfcli's roofline states its MFU/MBU, and ``tfcli bench`` measures the achieved fraction.

Only the standard library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tfcli.errors import UsageError, did_you_mean
from tfcli.units import GIB

TERA = 10**12


@dataclass(frozen=True)
class Hardware:
    """One accelerator: dense peaks per dtype (FLOP/s), memory (bytes), bandwidth (bytes/s)."""

    name: str
    peak_flops: dict[str, float]
    memory_bytes: int
    bandwidth_bytes_per_s: float
    source: str
    aliases: tuple[str, ...] = field(default=())
    sparse_factor: float = 2.0
    """Peak with 2:4 structured sparsity / dense peak (2 on NVIDIA and AMD parts with sparse
    tensor cores; 1 where the part has no sparsity mode). ``peak_flops`` are always dense."""

    def sparse_peak_for(self, dtype: str) -> float:
        """The datasheet's sparse peak for ``dtype`` (dense x ``sparse_factor``)."""
        return self.peak_for(dtype) * self.sparse_factor

    @property
    def has_bandwidth(self) -> bool:
        """False for a custom device given only ``--peak-tflops``: compute-bound answers only."""
        return self.bandwidth_bytes_per_s > 0

    def peak_for(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype`` (fp16 falls back to bf16 and vice versa)."""
        key = {"fp16": "bf16"}.get(dtype, dtype)
        if key not in self.peak_flops:
            raise UsageError(
                f"{self.name} has no published {dtype} peak; known: {', '.join(self.peak_flops)}"
            )
        return self.peak_flops[key]


def _tflops(**values: float) -> dict[str, float]:
    return {k: v * TERA for k, v in values.items()}


PRESETS: tuple[Hardware, ...] = (
    Hardware(
        name="H100 SXM",
        peak_flops=_tflops(fp32=66.9, tf32=494.7, bf16=989.4, fp8=1978.9, int8=1978.9),
        memory_bytes=80 * GIB,
        bandwidth_bytes_per_s=3.35e12,
        source="NVIDIA H100 Tensor Core GPU datasheet (SXM5, dense)",
        aliases=("h100", "h100-sxm", "h100sxm", "h100-sxm5"),
    ),
    Hardware(
        name="H200",
        peak_flops=_tflops(fp32=66.9, tf32=494.7, bf16=989.4, fp8=1978.9, int8=1978.9),
        memory_bytes=141 * GIB,
        bandwidth_bytes_per_s=4.8e12,
        source="NVIDIA H200 Tensor Core GPU datasheet (SXM, dense); its 141 GB is binary "
        "(nvidia-smi reports 143,771 MiB = 140.4 GiB)",
        aliases=("h200", "h200-sxm"),
    ),
    Hardware(
        name="A100 80GB",
        peak_flops=_tflops(fp32=19.5, tf32=156.0, bf16=312.0, int8=624.0),
        memory_bytes=80 * GIB,
        bandwidth_bytes_per_s=2.039e12,
        source="NVIDIA A100 Tensor Core GPU datasheet (SXM 80GB, dense)",
        aliases=("a100", "a100-80gb", "a100-sxm", "a100-80g"),
    ),
    Hardware(
        name="L4",
        peak_flops=_tflops(fp32=30.3, tf32=60.0, bf16=121.0, fp8=242.5, int8=242.5),
        memory_bytes=24 * GIB,
        bandwidth_bytes_per_s=300e9,
        source="NVIDIA L4 Tensor Core GPU datasheet (dense = half the sparsity figures)",
        aliases=("l4",),
    ),
    Hardware(
        name="RTX 4090",
        peak_flops=_tflops(fp32=82.6, tf32=82.6, bf16=165.2, fp8=330.3, int8=660.6),
        memory_bytes=24 * GIB,
        bandwidth_bytes_per_s=1008e9,
        source="NVIDIA Ada Lovelace architecture whitepaper, GeForce RTX 4090 "
        "(dense, FP32 accumulate for bf16/fp8)",
        aliases=("rtx4090", "4090", "rtx-4090"),
    ),
    Hardware(
        name="MI300X",
        peak_flops=_tflops(fp32=163.4, tf32=653.7, bf16=1307.4, fp8=2614.9, int8=2614.9),
        memory_bytes=192 * GIB,
        bandwidth_bytes_per_s=5.3e12,
        source="AMD Instinct MI300X accelerator datasheet (dense matrix)",
        aliases=("mi300x", "mi300"),
    ),
    Hardware(
        name="B200",
        peak_flops=_tflops(
            fp32=80.0, tf32=1100.0, bf16=2250.0, fp8=4500.0, int8=4500.0, fp4=9000.0
        ),
        memory_bytes=180 * GIB,
        bandwidth_bytes_per_s=8.0e12,
        source="NVIDIA HGX B200 datasheet, per GPU at 1,000 W (dense = half the sparse "
        "figures; 1,440 GB / 8 GPUs)",
        aliases=("b200", "hgx-b200"),
    ),
    Hardware(
        name="GB200",
        peak_flops=_tflops(
            fp32=90.0, tf32=1250.0, bf16=2500.0, fp8=5000.0, int8=5000.0, fp4=10000.0
        ),
        memory_bytes=186 * GIB,
        bandwidth_bytes_per_s=8.0e12,
        source="NVIDIA GB200 NVL72 datasheet, per Blackwell GPU (rack figures / 72; dense = half "
        "the sparse figures)",
        aliases=("gb200", "gb200-nvl72"),
    ),
    Hardware(
        name="H20",
        peak_flops=_tflops(fp32=44.0, tf32=74.0, bf16=148.0, fp8=296.0, int8=296.0),
        memory_bytes=96 * GIB,
        bandwidth_bytes_per_s=4.0e12,
        source="NVIDIA H20 product brief (HGX H20, dense; as published for the China market)",
        aliases=("h20",),
    ),
    Hardware(
        name="L40S",
        peak_flops=_tflops(fp32=91.6, tf32=183.0, bf16=362.05, fp8=733.0, int8=733.0),
        memory_bytes=48 * GIB,
        bandwidth_bytes_per_s=864e9,
        source="NVIDIA L40S datasheet (dense = half the sparsity figures marked *)",
        aliases=("l40s",),
    ),
    Hardware(
        name="A10G",
        peak_flops=_tflops(fp32=31.2, tf32=62.5, bf16=125.0, int8=250.0),
        memory_bytes=24 * GIB,
        bandwidth_bytes_per_s=600e9,
        source="NVIDIA A10 datasheet (dense); AWS's A10G (EC2 G5) has no NVIDIA datasheet: same "
        "GA102, 24 GB GDDR6, 600 GB/s, its sustained clocks may be lower",
        aliases=("a10g", "a10"),
    ),
    Hardware(
        name="MI325X",
        peak_flops=_tflops(fp32=163.4, tf32=653.7, bf16=1307.4, fp8=2614.9, int8=2614.9),
        memory_bytes=256 * GIB,
        bandwidth_bytes_per_s=6.0e12,
        source="AMD Instinct MI325X accelerator datasheet (dense matrix; MI300X compute with "
        "256 GB HBM3E)",
        aliases=("mi325x", "mi325"),
    ),
    Hardware(
        name="MI355X",
        peak_flops=_tflops(fp32=157.3, bf16=2516.6, fp8=5033.2, int8=5033.2, fp4=10066.3),
        memory_bytes=288 * GIB,
        bandwidth_bytes_per_s=8.0e12,
        source="AMD Instinct MI355X accelerator datasheet (dense matrix)",
        aliases=("mi355x", "mi355"),
    ),
    Hardware(
        name="Gaudi 3",
        peak_flops=_tflops(bf16=1835.0, fp8=1835.0),
        memory_bytes=128 * GIB,
        bandwidth_bytes_per_s=3.7e12,
        source="Intel Gaudi 3 AI accelerator white paper (OAM HL-325L, matrix engines; no "
        "sparsity mode)",
        aliases=("gaudi3", "gaudi-3", "hl-325l"),
        sparse_factor=1.0,
    ),
    Hardware(
        name="TPU v5e",
        peak_flops=_tflops(bf16=197.0, int8=394.0),
        memory_bytes=16 * GIB,
        bandwidth_bytes_per_s=819e9,
        source="Google Cloud TPU v5e documentation, per chip (no sparsity mode)",
        aliases=("tpu-v5e", "v5e", "tpuv5e"),
        sparse_factor=1.0,
    ),
    Hardware(
        name="TPU v5p",
        peak_flops=_tflops(bf16=459.0, int8=918.0),
        memory_bytes=95 * GIB,
        bandwidth_bytes_per_s=2765e9,
        source="Google Cloud TPU v5p documentation, per chip (no sparsity mode)",
        aliases=("tpu-v5p", "v5p", "tpuv5p"),
        sparse_factor=1.0,
    ),
    Hardware(
        name="TPU v6e",
        peak_flops=_tflops(bf16=918.0, int8=1836.0),
        memory_bytes=32 * GIB,
        bandwidth_bytes_per_s=1640e9,
        source="Google Cloud TPU v6e (Trillium) documentation, per chip (no sparsity mode)",
        aliases=("tpu-v6e", "v6e", "tpuv6e", "trillium"),
        sparse_factor=1.0,
    ),
)


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "-").replace("_", "-")


def lookup_hardware(name: str) -> Hardware:
    """The preset named ``name`` (case-insensitive, aliases allowed); UsageError otherwise."""
    wanted = _key(name)
    names: list[str] = []
    for preset in PRESETS:
        keys = {_key(preset.name), *(_key(a) for a in preset.aliases)}
        names.extend(keys)
        if wanted in keys or wanted.replace("-", "") in {k.replace("-", "") for k in keys}:
            return preset
    hint = did_you_mean(wanted, names)
    raise UsageError(
        f"unknown hardware {name!r}; presets: {', '.join(p.aliases[0] for p in PRESETS)}"
        + (f" ({hint})" if hint else ""),
        hint="or give --peak-tflops and --bandwidth",
    )


def custom_hardware(
    *, peak_tflops: float, bandwidth_gb_per_s: float | None, dtype: str, memory_bytes: int = 0
) -> Hardware:
    """A user-described device: one dtype's peak (TFLOP/s) and bandwidth (GB/s, SI)."""
    if peak_tflops <= 0:
        raise UsageError(f"--peak-tflops must be positive, got {peak_tflops}")
    if bandwidth_gb_per_s is not None and bandwidth_gb_per_s <= 0:
        raise UsageError(f"--bandwidth must be positive, got {bandwidth_gb_per_s}")
    return Hardware(
        name="custom",
        peak_flops={"bf16" if dtype == "fp16" else dtype: peak_tflops * TERA},
        memory_bytes=memory_bytes,
        bandwidth_bytes_per_s=(bandwidth_gb_per_s or 0.0) * 1e9,
        source="--peak-tflops / --bandwidth",
        sparse_factor=1.0,
    )


def resolve_hardware(
    name: str | None,
    *,
    peak_tflops: float | None = None,
    bandwidth_gb_per_s: float | None = None,
    dtype: str = "bf16",
) -> Hardware | None:
    """The device of ``--hardware`` / ``--peak-tflops`` / ``--bandwidth``, or None.

    A preset by name, with ``peak_tflops`` (for ``dtype``) or ``bandwidth_gb_per_s`` replacing
    its datasheet figures when given (e.g. a measured sustained peak); without a name, a custom
    device from the two numbers (``--peak-tflops`` is then required).
    """
    if name is None:
        if peak_tflops is None:
            if bandwidth_gb_per_s is not None:
                raise UsageError("--bandwidth needs --peak-tflops (or use --hardware NAME)")
            return None
        return custom_hardware(
            peak_tflops=peak_tflops, bandwidth_gb_per_s=bandwidth_gb_per_s, dtype=dtype
        )
    preset = lookup_hardware(name)
    if peak_tflops is None and bandwidth_gb_per_s is None:
        return preset
    peaks = dict(preset.peak_flops)
    bandwidth = preset.bandwidth_bytes_per_s
    if peak_tflops is not None:
        if peak_tflops <= 0:
            raise UsageError(f"--peak-tflops must be positive, got {peak_tflops}")
        peaks["bf16" if dtype == "fp16" else dtype] = peak_tflops * TERA
    if bandwidth_gb_per_s is not None:
        if bandwidth_gb_per_s <= 0:
            raise UsageError(f"--bandwidth must be positive, got {bandwidth_gb_per_s}")
        bandwidth = bandwidth_gb_per_s * 1e9
    return replace(
        preset,
        name=f"{preset.name} (custom peak/bandwidth)",
        peak_flops=peaks,
        bandwidth_bytes_per_s=bandwidth,
        source=preset.source + "; overridden by --peak-tflops / --bandwidth",
    )
