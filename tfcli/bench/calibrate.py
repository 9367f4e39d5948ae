"""Device calibration: sustained matmul FLOP/s, memory bandwidths, attention-kernel efficiency.

Measured once per device, dtype and head dim, and cached in the user cache dir
(``$XDG_CACHE_HOME/tfcli/calibration.json``, default ``~/.cache``); ``--recalibrate``
measures again. Predictions use only these figures and the FLOP/byte estimates, never a
timing of the point being predicted. Every probe uses shapes no sweep point uses:

* matmul peak: FLOP/s of a square (2048 x 2048) @ (2048 x 2048) matmul, 2 n^3 FLOPs;
* read bandwidth: bytes of a 512 MiB fp32 tensor over the time of ``sum()`` over it;
* GEMV bandwidth: bytes of an (8192 x 8192) matrix over the time of a matrix-vector product
  (what one decoded token pays per weight matrix);
* SDPA efficiency: achieved FLOP/s of an unmasked SDPA call (4 H S^2 D FLOPs, S = 1536,
  H = 8) over the matmul peak: the kernel's fraction of the matmul peak (DESIGN.md section 6
  measured 85-91% on 2 cores from 2K up);
* masked SDPA efficiency: the same with an additive (S x S) float mask, which the CPU flash
  kernel reads per tile and which stops it skipping blocks (sliding windows, ALiBi and
  relative biases reach SDPA this way);
* SDPA decode bandwidth: KV bytes (2 H L D x bytes, H = 8 heads MHA, L = 16384) over the time
  of one query attending to them through the built-in core;
* first-touch write bandwidth: bytes/s of filling a fresh 256 MiB allocation (the OS maps and
  zeroes each page on first write: what every new S x S tensor of a naive attention pays);
* softmax rate: elements/s of a row softmax into a fresh tensor (a 4096 x 16384 matrix);
* the noise probe's own rate (``tfcli.bench.timing.Probe``) and the 1-minute load average,
  so a later run can tell whether the machine is as quiet as when it was calibrated.

Each figure is the FASTEST of several samples: noise on a shared machine only ever adds time,
so the fastest sample estimates the undisturbed rate. That fails when another process holds
a core throughout, so a calibration whose matmul spread is large or whose probe runs far
below the matmul rate is flagged ``noisy``, reported, and not cached.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from tfcli.bench.attention import attention_core
from tfcli.bench.timing import Probe, synchronize, time_call

CALIBRATION_VERSION = 3
"""Bumped when the set of probes changes: older cache entries are measured again."""
CALIBRATION_SEQ = 1536
CALIBRATION_HEADS = 8
DECODE_CALIBRATION_CONTEXT = 16384
NOISY_CALIBRATION_SPREAD = 0.10
"""A matmul spread above 10% during calibration means the machine was busy."""
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
    gemv_bytes_per_s: float
    sdpa_decode_bytes_per_s: float
    probe_flops_per_s: float
    matmul_spread: float = 0.0
    load_average: float | None = None
    measured_at: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def noisy(self) -> bool:
        """True when the calibration ran on a busy machine: the matmul samples varied by more
        than NOISY_CALIBRATION_SPREAD, the probe / matmul rate ratio left QUIET_PROBE_RATIO,
        or SDPA appeared faster than the matmul peak."""
        low, high = QUIET_PROBE_RATIO
        ratio = self.probe_flops_per_s / self.matmul_flops_per_s
        return (
            self.matmul_spread > NOISY_CALIBRATION_SPREAD
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


def measure_gemv(device: torch.device, dtype: torch.dtype, *, size: int = 8192) -> float:
    """Matrix bytes/s of (size x size) @ (size,): a decode step's weight read."""
    w = torch.randn(size, size, device=device, dtype=dtype)
    x = torch.randn(size, device=device, dtype=dtype)
    samples = time_call(lambda: torch.mv(w, x), device=device, warmup=2, repeats=7)
    return w.numel() * w.element_size() / samples.best


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


def measure_sdpa_decode(device: torch.device, dtype: torch.dtype, head_dim: int) -> float:
    """KV bytes/s of one query over an MHA cache (8 heads, 16384 keys) through the built-in
    SDPA core, the call a decode step makes: 2 H L D x bytes per call."""
    heads, context = CALIBRATION_HEADS, DECODE_CALIBRATION_CONTEXT
    q = torch.randn(1, heads, 1, head_dim, device=device, dtype=dtype)
    k = torch.randn(1, heads, context, head_dim, device=device, dtype=dtype)
    v = torch.randn(1, heads, context, head_dim, device=device, dtype=dtype)

    def step() -> object:
        return attention_core(q, k, v, backend="sdpa", causal=True, q_offset=context - 1)

    samples = time_call(step, device=device, warmup=2, repeats=7)
    return 2 * k.numel() * k.element_size() / samples.best


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


def measure_probe(device: torch.device) -> float:
    """The noise probe's fastest rate over 30 calls: its undisturbed FLOP/s."""
    return max(Probe(device).rates(30))


CACHE_MAX_BYTES = 2**20
"""A calibration cache larger than 1 MiB is not ours: it is measured again."""


def _load_all() -> dict[str, dict[str, object]]:
    """Every cached entry; an unreadable, oversized, non-regular (a symlink to /dev/zero) or
    malformed cache is a warning and reads as empty (everything is measured again)."""
    from tfcli.errors import TfcliError
    from tfcli.loaders import parse_json, read_text_bounded, warn

    path = cache_path()
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        data = parse_json(read_text_bounded(path, limit=CACHE_MAX_BYTES), str(path))
    except TfcliError as err:
        warn(f"ignoring the calibration cache: {err.message}; measuring again")
        return {}
    return data if isinstance(data, dict) else {}


def _entry_problem(entry: dict[str, object]) -> str | None:
    """Why a cached entry's values cannot be used (0, negative, a string, null, NaN), or None."""
    optional = {"load_average"}
    non_negative = {"matmul_spread", "load_average", "measured_at"}
    for f in fields(Calibration):
        value = entry[f.name]
        if f.name in ("device", "dtype"):
            if not isinstance(value, str):
                return f"{f.name}={value!r:.60}"
            continue
        if value is None and f.name in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{f.name}={value!r:.60}"
        low_ok = value >= 0 if f.name in non_negative else value > 0
        if not math.isfinite(value) or not low_ok:
            return f"{f.name}={value!r:.60}"
    return None


def _from_cache(entry: object) -> Calibration | None:
    """A cached entry with exactly this version's fields, valid values, taken on a quiet
    machine, else None (measure again; invalid values are a warning)."""
    names = {f.name for f in fields(Calibration)}
    if not isinstance(entry, dict) or set(entry) != names:
        return None
    problem = _entry_problem(entry)
    if problem is not None:
        from tfcli.loaders import warn

        warn(f"the cached calibration holds an invalid value ({problem}); measuring again")
        return None
    try:
        found = Calibration(**entry)
    except TypeError:
        return None
    return None if found.noisy else found


def calibration_key(device: torch.device, dtype: torch.dtype, head_dim: int) -> str:
    """Cache key: device (and threads), dtype, head dim, probe-set version."""
    dtype_name = str(dtype).removeprefix("torch.")
    return f"v{CALIBRATION_VERSION}|{device_key(device)}|{dtype_name}|d{head_dim}"


def calibrate(
    device: torch.device, dtype: torch.dtype, head_dim: int, *, recalibrate: bool = False
) -> tuple[Calibration, bool]:
    """(calibration, from_cache) for this device, dtype and head dim; measures if needed
    (a few seconds) and stores the result in the cache file, unless it was measured on a busy
    machine (``Calibration.noisy``), which the next run measures again."""
    key = calibration_key(device, dtype, head_dim)
    cached = _load_all()
    if not recalibrate:
        found = _from_cache(cached.get(key))
        if found is not None:
            return found, True
    synchronize(device)
    load = load_average()
    matmul, spread = measure_matmul(device, dtype)
    result = Calibration(
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
        gemv_bytes_per_s=measure_gemv(device, dtype),
        sdpa_decode_bytes_per_s=measure_sdpa_decode(device, dtype, head_dim),
        probe_flops_per_s=measure_probe(device),
        matmul_spread=spread,
        load_average=load,
        measured_at=time.time(),
    )
    if not result.noisy:  # a busy machine's figures are not kept: the next run measures again
        store(key, result)
    return result, False


def store(key: str, calibration: Calibration) -> None:
    """Write one entry into the cache file (other devices' entries kept); a read-only cache
    dir is not an error: the figures are just measured again next time."""
    entries = _load_all()
    entries[key] = calibration.to_dict()
    try:
        path = cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries, indent=2))
    except OSError:
        pass
