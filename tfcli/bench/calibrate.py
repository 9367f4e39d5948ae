"""Device calibration: sustained matmul FLOP/s, memory bandwidths, attention-kernel efficiency.

Measured once per device, dtype and head dim, and cached in the user cache dir
(``$XDG_CACHE_HOME/tfcli/calibration.json``, default ``~/.cache``); ``--recalibrate``
measures again. Predictions use only these figures and the FLOP/byte estimates, never a
timing of the point being predicted. Every probe uses shapes no sweep point uses:

* matmul peak: FLOP/s of a square (2048 x 2048) @ (2048 x 2048) matmul, 2 n^3 FLOPs;
* read bandwidth: bytes of a 512 MiB fp32 tensor over the time of ``sum()`` over it;
* GEMV bandwidth by contracted dimension K (GEMV_INNER_DIMS, 256 to 16,384): weight bytes
  over the time of ``F.linear`` of one row through 8 MiB matrices (K x 8 MiB / (K x bytes)
  rows) cycled over a GEMV_WORKING_SET_BYTES buffer, larger than a last-level cache, as a
  decode step streams its weights. What one decoded token pays per weight matrix depends on
  K: on this 2-core EPYC, 2 threads, fp32, 12 GB/s at K = 256, 17 at 896, 24 at 4,864,
  30 at 16,384 (the row length sets how much of each row's dot product is vector tail and
  reduction); a single (8192 x 8192) matrix, the figure used before, gave 28 GB/s, while
  Qwen2.5-0.5B's own matrices (K = 896 and 4,864) stream at 18;
* SDPA efficiency: achieved FLOP/s of an unmasked SDPA call (4 H S^2 D FLOPs, S = 1536,
  H = 8) over the matmul peak: the kernel's fraction of the matmul peak (DESIGN.md section 6
  measured 85-91% on 2 cores from 2K up);
* masked SDPA efficiency: the same with an additive (S x S) float mask, which the CPU flash
  kernel reads per tile and which stops it skipping blocks (sliding windows, ALiBi and
  relative biases reach SDPA this way);
* decode-attention bandwidth: KV bytes (2 KVH L D x bytes, L = DECODE_CALIBRATION_CONTEXT)
  over the time of one query per head attending to them through the built-in core (on the
  CPU the grouped kernel a decode step runs, ``tfcli.bench.attention.uses_grouped_decode``),
  at the model's own head layout (H query heads over KVH KV heads, ``decode_heads_of``),
  cycling copies of the cache over GEMV_WORKING_SET_BYTES as a deep model's layers do. The
  layout sets the rate: fp32, 2 threads, D = 64, 26-31 GB/s for MHA (8 or 16 heads), 17-20 for
  32 heads over 8, 11 for Qwen2.5-0.5B's 14 over 2 (the grouped matmul has G = H / KVH rows
  and only KVH batches to spread over the threads); one MHA figure under-predicted a
  Qwen2.5-0.5B step at 16K context by a quarter;
* first-touch write bandwidth: bytes/s of filling a fresh 256 MiB allocation (the OS maps and
  zeroes each page on first write: what every new S x S tensor of a naive attention pays);
* softmax rate: elements/s of a row softmax into a fresh tensor (a 4096 x 16384 matrix);
* per-operator overhead: seconds per dispatched operator of a width-64 generic layer
  (``tfcli.bench.opcount``), what a decode step pays thousands of times;
* the noise probe's own rate (``tfcli.bench.timing.Probe``) and the 1-minute load average,
  so a later run can tell whether the machine is as quiet as when it was calibrated.

Each figure is the FASTEST of several samples: noise on a shared machine only ever adds time,
so the fastest sample estimates the undisturbed rate. That fails when another process holds
a core throughout, so a calibration whose matmul spread is large, whose noise probe is
unstable (IQR / median of its 30 rates above NOISY_PROBE_SPREAD) or whose probe runs far
below the matmul rate is flagged ``noisy``, reported, and not cached.

The cache file is read defensively (a regular file of at most MAX_CACHE_BYTES, strict JSON
without NaN or Infinity, through the loaders' bounded readers; every field of the right type,
every rate finite and positive); an entry that fails is reported and measured again. It is
written atomically (a temporary file in the same directory, then ``os.replace``) while
holding an exclusive
``fcntl.flock`` on a lock file beside it, so concurrent benches never interleave writes or
lose each other's entries.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F

from tfcli.bench.attention import attention_core
from tfcli.bench.opcount import measure_op_overhead
from tfcli.bench.timing import Probe, iqr, synchronize, time_call
from tfcli.spec import ModelSpec

CALIBRATION_VERSION = 6
"""Bumped when the set of probes changes: older cache entries are measured again."""
CALIBRATION_SEQ = 1536
CALIBRATION_HEADS = 8
DECODE_CALIBRATION_CONTEXT = 6144
"""Cached keys of the decode-attention probe: between the usual sweep points (powers of two)."""
GEMV_INNER_DIMS = (256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384)
"""Contracted dimensions the GEMV bandwidth is measured at (``measure_gemv_curve``): steps of
4/3 and 3/2, so that interpolating in log2(K) between two of them is within ~3% of a measured
K between them (896: 16.6 GB/s measured, 17.8 interpolated from 512 and 1,024 alone)."""
GEMV_MATRIX_BYTES = 8 << 20
GEMV_WORKING_SET_BYTES = 256 << 20
"""Larger than any last-level cache the bench runs on (32 MiB here), so every matrix comes
from memory, as a decode step's weights do."""
NOISY_CALIBRATION_SPREAD = 0.10
"""A matmul spread above 10% during calibration means the machine was busy."""
NOISY_PROBE_SPREAD = 0.25
"""IQR / median of the noise probe's 30 rates: 3-17% measured on this 2-core machine at load
~1; another process holding a core makes many ~1 ms probe calls wait for an ~8 ms slice."""
MAX_CACHE_BYTES = 1 << 20
"""A calibration cache larger than this (1 MiB; one entry is ~600 bytes) is not read."""
QUIET_PROBE_RATIO = (0.5, 1.2)
"""On an idle machine the small probe matmul runs at ~90% of the large matmul's rate. When
another process holds a core, each 2-thread call waits for a scheduler slice (~8 ms here,
DESIGN.md section 6): the ~1 ms probe collapses to a few percent, or, when it caught a quiet
moment, the sustained large matmul is the one halved. Outside these bounds: busy."""


@dataclass(frozen=True)
class Calibration:
    """What this device sustains, in FLOP/s, bytes/s and elements/s."""

    device: str
    dtype: str
    threads: int
    head_dim: int
    matmul_flops_per_s: float
    read_bytes_per_s: float
    sdpa_efficiency: float
    sdpa_masked_efficiency: float
    first_touch_bytes_per_s: float
    softmax_elements_per_s: float
    gemv_bytes_per_s: tuple[float, ...]
    """Weight bytes/s of a one-row matrix product, one figure per GEMV_INNER_DIMS entry
    (``gemv_rate`` interpolates)."""
    decode_kv_bytes_per_s: float
    probe_flops_per_s: float
    decode_heads: int = CALIBRATION_HEADS
    decode_kv_heads: int = CALIBRATION_HEADS
    """The head layout (H query heads, KVH KV heads) ``decode_kv_bytes_per_s`` was measured at."""
    op_overhead_seconds: float = 4e-6
    """Fixed cost of one dispatched operator (``tfcli.bench.opcount``)."""
    matmul_spread: float = 0.0
    probe_spread: float = 0.0
    """IQR / median of the noise probe's rates during calibration."""
    load_average: float | None = None
    measured_at: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def gemv_rate(self, inner_dim: int) -> float:
        """Weight bytes/s of a GEMV contracting over ``inner_dim``: linear in log2(K) between
        the calibrated GEMV_INNER_DIMS, the end figures outside them."""
        points = list(zip(GEMV_INNER_DIMS, self.gemv_bytes_per_s, strict=True))
        if inner_dim <= points[0][0]:
            return points[0][1]
        for (k0, r0), (k1, r1) in pairwise(points):
            if inner_dim <= k1:
                t = (math.log2(inner_dim) - math.log2(k0)) / (math.log2(k1) - math.log2(k0))
                return r0 + t * (r1 - r0)
        return points[-1][1]

    @property
    def gemv_inner_dims(self) -> tuple[int, ...]:
        """The K of each ``gemv_bytes_per_s`` figure."""
        return GEMV_INNER_DIMS

    @property
    def fastest_gemv(self) -> float:
        return max(self.gemv_bytes_per_s)

    def noise_reason(self) -> str:
        """Why ``noisy`` is true, in words (empty when it is not)."""
        reasons = []
        if self.matmul_spread > NOISY_CALIBRATION_SPREAD:
            reasons.append(f"matmul spread {100 * self.matmul_spread:.0f}%")
        if self.probe_spread > NOISY_PROBE_SPREAD:
            reasons.append(f"noise probe spread {100 * self.probe_spread:.0f}%")
        low, high = QUIET_PROBE_RATIO
        ratio = self.probe_flops_per_s / self.matmul_flops_per_s
        if not low <= ratio <= high:
            reasons.append(f"probe at {100 * ratio:.0f}% of the matmul rate")
        if self.sdpa_efficiency > 1.05:
            reasons.append(f"SDPA at {100 * self.sdpa_efficiency:.0f}% of the matmul peak")
        return ", ".join(reasons)

    @property
    def noisy(self) -> bool:
        """True when the calibration ran on a busy machine: the matmul samples varied by more
        than NOISY_CALIBRATION_SPREAD, the noise probe's rates by more than
        NOISY_PROBE_SPREAD, the probe / matmul rate ratio left QUIET_PROBE_RATIO, or SDPA
        appeared faster than the matmul peak."""
        low, high = QUIET_PROBE_RATIO
        ratio = self.probe_flops_per_s / self.matmul_flops_per_s
        return (
            self.matmul_spread > NOISY_CALIBRATION_SPREAD
            or self.probe_spread > NOISY_PROBE_SPREAD
            or not low <= ratio <= high
            or self.sdpa_efficiency > 1.05  # SDPA faster than the matmul peak: peak was low
        )


def device_key(device: torch.device) -> str:
    """A stable name for the device: the GPU model, or the CPU and its thread count."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/tfcli/calibration.json`` (``~/.cache`` when unset)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tfcli" / "calibration.json"


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def measure_matmul(
    device: torch.device, dtype: torch.dtype, *, size: int = 2048
) -> tuple[float, float]:
    """(FLOP/s, spread) of (size x size) @ (size x size): 2 size^3 FLOPs per call."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    samples = time_call(lambda: torch.matmul(a, b), device=device, warmup=2, repeats=7)
    return 2 * size**3 / samples.best, samples.spread


def measure_read_bandwidth(device: torch.device, *, megabytes: int = 512) -> float:
    """Bytes/s of reading a large fp32 tensor once (``sum``)."""
    x = torch.ones(megabytes * 2**20 // 4, device=device)
    samples = time_call(lambda: x.sum(), device=device, warmup=2, repeats=7)
    return x.numel() * 4 / samples.best


def measure_gemv_rates(
    device: torch.device, dtype: torch.dtype, inner_dims: Sequence[int]
) -> tuple[float, ...]:
    """Weight bytes/s of ``F.linear`` of one row at each K of ``inner_dims`` (module
    docstring): the fastest of 5 passes over the working set's 8 MiB (rows x K) matrices,
    synthetic weights of that K only."""
    element = torch.empty((), dtype=dtype).element_size()
    buffer = torch.empty(GEMV_WORKING_SET_BYTES // element, device=device, dtype=dtype)
    buffer.normal_()
    rates = []
    for inner in inner_dims:
        rows = max(1, GEMV_MATRIX_BYTES // (inner * element))
        count = max(1, buffer.numel() // (rows * inner))
        if count * rows * inner > buffer.numel():  # one row wider than the working set
            buffer = torch.empty(rows * inner, device=device, dtype=dtype).normal_()
        matrices = buffer[: count * rows * inner].view(count, rows, inner).unbind(0)
        x = torch.randn(1, inner, device=device, dtype=dtype)

        def sweep(matrices: tuple[torch.Tensor, ...] = matrices, x: torch.Tensor = x) -> None:
            for matrix in matrices:
                F.linear(x, matrix)

        samples = time_call(sweep, device=device, warmup=1, repeats=5)
        rates.append(count * rows * inner * element / samples.best)
    return tuple(rates)


def measure_gemv_curve(device: torch.device, dtype: torch.dtype) -> tuple[float, ...]:
    """``measure_gemv_rates`` at GEMV_INNER_DIMS: the calibration's generic curve."""
    return measure_gemv_rates(device, dtype, GEMV_INNER_DIMS)


def measure_sdpa_efficiency(
    device: torch.device,
    dtype: torch.dtype,
    head_dim: int,
    matmul_flops_per_s: float,
    *,
    masked: bool = False,
) -> float:
    """Achieved FLOP/s of SDPA without a mask, or with an additive (S x S) zero mask
    (4 x H x S^2 x D FLOPs either way), over the matmul peak."""
    shape = (1, CALIBRATION_HEADS, CALIBRATION_SEQ, head_dim)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype) for _ in range(3))
    mask = (
        torch.zeros(CALIBRATION_SEQ, CALIBRATION_SEQ, device=device, dtype=dtype)
        if masked
        else None
    )
    samples = time_call(
        lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        device=device,
        warmup=2,
        repeats=5,
    )
    flops = 4 * CALIBRATION_HEADS * CALIBRATION_SEQ**2 * head_dim
    return flops / samples.best / matmul_flops_per_s


def measure_decode_attention(
    device: torch.device,
    dtype: torch.dtype,
    head_dim: int,
    heads: int = CALIBRATION_HEADS,
    kv_heads: int = CALIBRATION_HEADS,
) -> float:
    """KV bytes/s of one query per head over a (kv_heads, DECODE_CALIBRATION_CONTEXT) cache
    through the built-in core, the call a decode step makes (2 KVH L D x bytes per call),
    over copies of the cache filling GEMV_WORKING_SET_BYTES (module docstring)."""
    context = DECODE_CALIBRATION_CONTEXT
    shape = (1, kv_heads, context, head_dim)
    element = torch.empty((), dtype=dtype).element_size()
    per_layer = 2 * math.prod(shape) * element
    copies = max(1, min(64, GEMV_WORKING_SET_BYTES // per_layer))
    caches = [
        (
            torch.randn(shape, device=device, dtype=dtype),
            torch.randn(shape, device=device, dtype=dtype),
        )
        for _ in range(copies)
    ]
    q = torch.randn(1, heads, 1, head_dim, device=device, dtype=dtype)

    def steps() -> None:
        for k, v in caches:
            attention_core(q, k, v, backend="sdpa", causal=True, q_offset=context - 1)

    samples = time_call(steps, device=device, warmup=1, repeats=7)
    return copies * per_layer / samples.best


def decode_heads_of(spec: ModelSpec) -> tuple[int, int]:
    """(H, KVH) of the core a decode step runs: the spec's heads, MLA's expanded per-head
    keys and values as MHA (``tfcli.bench.decode.decode_executed_kv_bytes``)."""
    if spec.is_mla:
        return spec.num_heads, spec.num_heads
    return spec.num_heads, spec.kv_heads


def measure_first_touch(device: torch.device, *, megabytes: int = 256) -> float:
    """Bytes/s of writing a freshly allocated tensor once."""
    count = megabytes * 2**20 // 4
    samples = time_call(
        lambda: torch.empty(count, device=device).fill_(1.0), device=device, warmup=1, repeats=5
    )
    return count * 4 / samples.best


def measure_softmax(device: torch.device, dtype: torch.dtype) -> float:
    """Elements/s of ``softmax(x, -1)`` over a (4096, 16384) tensor into a new tensor."""
    x = torch.randn(4096, 16384, device=device, dtype=dtype)
    samples = time_call(
        lambda: torch.softmax(x, dim=-1, dtype=torch.float32), device=device, warmup=1, repeats=5
    )
    return x.numel() / samples.best


def measure_probe(device: torch.device) -> tuple[float, float]:
    """(fastest rate, IQR / median) of the noise probe over 30 calls: its undisturbed FLOP/s
    and how stable it was."""
    rates = Probe(device).rates(30)
    return max(rates), iqr(rates) / statistics.median(rates)


STRING_FIELDS = ("device", "dtype")
INT_FIELDS = ("threads", "head_dim", "decode_heads", "decode_kv_heads")
RATE_FIELDS = (
    "matmul_flops_per_s",
    "read_bytes_per_s",
    "sdpa_efficiency",
    "sdpa_masked_efficiency",
    "first_touch_bytes_per_s",
    "softmax_elements_per_s",
    "decode_kv_bytes_per_s",
    "probe_flops_per_s",
    "op_overhead_seconds",
)
"""Fields a prediction divides by or multiplies with: finite and > 0."""
NONNEGATIVE_FIELDS = ("matmul_spread", "probe_spread", "measured_at")


def read_cache(path: Path | None = None) -> tuple[dict[str, object], str | None]:
    """(entries, problem) of the cache file: {} and None when there is none; {} and a reason
    when it is not a regular file of at most MAX_CACHE_BYTES holding a strict JSON object
    (a symlink to /dev/zero, a FIFO, NaN, garbage), read through the loaders' bounded
    readers (``tfcli.loaders.read_text_bounded``, ``parse_json``)."""
    from tfcli.errors import TfcliError
    from tfcli.loaders import parse_json, read_text_bounded

    path = path or cache_path()
    if not path.exists() and not path.is_symlink():
        return {}, None
    try:
        data = parse_json(read_text_bounded(path, limit=MAX_CACHE_BYTES), str(path))
    except TfcliError as err:
        return {}, err.message
    if not isinstance(data, dict):
        return {}, f"{path}: it does not hold a JSON object"
    return data, None


def _load_all() -> dict[str, object]:
    """Every cached entry; a cache file that cannot be used is a warning and reads as empty."""
    from tfcli.loaders import warn

    entries, problem = read_cache()
    if problem is not None:
        warn(f"ignoring the calibration cache: {problem}; measuring again")
    return entries


def _number_problem(value: object, *, positive: bool) -> str | None:
    """Why ``value`` cannot be a calibrated figure (None when it can): not a number, not
    finite, not positive (``positive``: a prediction divides by it) or negative."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "is not a number"
    if not math.isfinite(value):
        return "is not finite"
    if positive and value <= 0:
        return "is not positive"
    if value < 0:
        return "is negative"
    return None


def validate_entry(entry: object) -> tuple[Calibration | None, str | None]:
    """(calibration, None) for a valid cache entry of this version; (None, reason) for one
    whose fields are missing, extra, of the wrong type, non-finite, or zero / negative where
    a prediction divides by them."""
    if not isinstance(entry, dict):
        return None, f"the entry is {type(entry).__name__}, not an object"
    names = {f.name for f in fields(Calibration)}
    if set(entry) != names:
        missing, extra = sorted(names - set(entry)), sorted(set(entry) - names)
        return None, f"fields differ (missing {missing[:3]}, unexpected {extra[:3]})"
    for name in STRING_FIELDS:
        if not isinstance(entry[name], str):
            return None, f"{name} = {entry[name]!r} is not a string"
    for name in INT_FIELDS:
        value = entry[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return None, f"{name} = {value!r} is not a positive integer"
    curve = entry["gemv_bytes_per_s"]
    if not isinstance(curve, (list, tuple)) or len(curve) != len(GEMV_INNER_DIMS):
        return None, f"gemv_bytes_per_s is not a list of {len(GEMV_INNER_DIMS)} rates"
    checks = [("gemv_bytes_per_s", value, True) for value in curve]
    checks += [(name, entry[name], name in RATE_FIELDS) for name in RATE_FIELDS]
    checks += [(name, entry[name], False) for name in NONNEGATIVE_FIELDS]
    if entry["load_average"] is not None:
        checks.append(("load_average", entry["load_average"], False))
    for name, value, positive in checks:
        problem = _number_problem(value, positive=positive)
        if problem is not None:
            return None, f"{name} = {value!r} {problem}"
    return Calibration(**{**entry, "gemv_bytes_per_s": tuple(curve)}), None


def _from_cache(entry: object) -> Calibration | None:
    """A valid cached entry taken on a quiet machine, else None (measure again; an invalid
    value is a warning)."""
    from tfcli.loaders import warn

    found, problem = validate_entry(entry)
    if problem is not None:
        warn(f"the cached calibration is invalid ({problem}); measuring again")
    return None if found is None or found.noisy else found


def calibration_key(
    device: torch.device,
    dtype: torch.dtype,
    head_dim: int,
    decode_heads: tuple[int, int] = (CALIBRATION_HEADS, CALIBRATION_HEADS),
) -> str:
    """Cache key: device (and threads), dtype, head dim, decode head layout, probe-set
    version."""
    dtype_name = str(dtype).removeprefix("torch.")
    heads, kv_heads = decode_heads
    return (
        f"v{CALIBRATION_VERSION}|{device_key(device)}|{dtype_name}|d{head_dim}|h{heads}kv{kv_heads}"
    )


def calibrate(
    device: torch.device,
    dtype: torch.dtype,
    head_dim: int,
    *,
    decode_heads: tuple[int, int] = (CALIBRATION_HEADS, CALIBRATION_HEADS),
    recalibrate: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[Calibration, bool]:
    """(calibration, from_cache) for this device, dtype, head dim and decode head layout
    (``decode_heads_of``); measures if needed
    (a few seconds) and stores the result in the cache file, unless it was measured on a busy
    machine (``Calibration.noisy``), which the next run measures again. A cache file or entry
    that fails validation is reported through ``warn`` and measured again."""
    from tfcli.loaders import warn as loaders_warn

    report = warn or loaders_warn
    key = calibration_key(device, dtype, head_dim, decode_heads)
    if not recalibrate:
        entries, problem = read_cache()
        if problem is not None:
            report(f"ignoring the calibration cache: {problem}; measuring again")
        if key in entries:
            found, bad = validate_entry(entries[key])
            if found is not None and not found.noisy:
                return found, True
            if bad is not None:
                report(f"calibration cache entry {key} is invalid ({bad}); measuring again")
    result = measure(device, dtype, head_dim, decode_heads)
    if not result.noisy:  # a busy machine's figures are not kept: the next run measures again
        store(key, result)
    return result, False


def calibrate_for(
    spec: ModelSpec,
    device: torch.device,
    dtype: torch.dtype,
    *,
    recalibrate: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[Calibration, bool]:
    """``calibrate`` at ``spec``'s query/key head dim and decode head layout
    (``decode_heads_of``): what every bench of a model uses."""
    return calibrate(
        device,
        dtype,
        spec.qk_head_dim,
        decode_heads=decode_heads_of(spec),
        recalibrate=recalibrate,
        warn=warn,
    )


def measure(
    device: torch.device,
    dtype: torch.dtype,
    head_dim: int,
    decode_heads: tuple[int, int] = (CALIBRATION_HEADS, CALIBRATION_HEADS),
) -> Calibration:
    """Run every probe once (see the module docstring); a few seconds."""
    synchronize(device)
    load = load_average()
    matmul, spread = measure_matmul(device, dtype)
    probe, probe_spread = measure_probe(device)
    return Calibration(
        device=device_key(device),
        dtype=str(dtype).removeprefix("torch."),
        threads=torch.get_num_threads(),
        head_dim=head_dim,
        matmul_flops_per_s=matmul,
        read_bytes_per_s=measure_read_bandwidth(device),
        sdpa_efficiency=measure_sdpa_efficiency(device, dtype, head_dim, matmul),
        sdpa_masked_efficiency=measure_sdpa_efficiency(
            device, dtype, head_dim, matmul, masked=True
        ),
        first_touch_bytes_per_s=measure_first_touch(device),
        softmax_elements_per_s=measure_softmax(device, dtype),
        gemv_bytes_per_s=measure_gemv_curve(device, dtype),
        decode_kv_bytes_per_s=measure_decode_attention(device, dtype, head_dim, *decode_heads),
        probe_flops_per_s=probe,
        decode_heads=decode_heads[0],
        decode_kv_heads=decode_heads[1],
        op_overhead_seconds=measure_op_overhead(device, dtype),
        matmul_spread=spread,
        probe_spread=probe_spread,
        load_average=load,
        measured_at=time.time(),
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl.flock`` on ``path`` (created if needed) for the duration; no lock
    where fcntl does not exist (Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def store(key: str, calibration: Calibration) -> None:
    """Write one entry into the cache file, other entries kept, under the lock and atomically
    (temporary file + ``os.replace``); entries that fail validation are dropped. A read-only
    cache dir is not an error: the figures are just measured again next time."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(path.name + ".lock")):
            entries, _problem = read_cache(path)
            kept = {k: v for k, v in entries.items() if validate_entry(v)[0] is not None}
            kept[key] = calibration.to_dict()
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(kept, handle, indent=2, allow_nan=False)
                os.replace(tmp, path)  # replaces a symlink itself, never writes through it
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except OSError:
        pass
