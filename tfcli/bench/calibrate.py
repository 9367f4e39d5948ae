"""Device calibration: sustained matmul FLOP/s, memory bandwidth, attention-kernel efficiency.

Measured once per device and dtype and cached in the user cache dir
(``$XDG_CACHE_HOME/tfcli/calibration.json``, default ``~/.cache``); ``--recalibrate`` measures
again. Predictions use only these figures and the FLOP/byte estimates, never a timing of the
point being predicted:

* matmul peak: median FLOP/s of a square matmul (2 n^3 FLOPs) large enough to be compute
  bound;
* read bandwidth: bytes of a large tensor over the time of ``sum()`` over it;
* SDPA efficiency: achieved / matmul peak of an unmasked SDPA call at a shape no sweep uses
  by default (S = 1536, 8 heads): the kernel's fraction of the matmul peak;
* first-touch write bandwidth: bytes/s of filling a fresh allocation (the OS maps and zeroes
  each page on first write: what every new S x S tensor of a naive attention pays);
* softmax rate: elements/s of a row softmax into a fresh tensor (a 4096 x 16384 matrix).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tfcli.bench.timing import synchronize, time_call

CALIBRATION_SEQ = 1536
CALIBRATION_HEADS = 8


@dataclass(frozen=True)
class Calibration:
    """What this device sustains, in FLOP/s and bytes/s."""

    device: str
    dtype: str
    threads: int
    matmul_flops_per_s: float
    read_bytes_per_s: float
    sdpa_efficiency: float
    first_touch_bytes_per_s: float
    softmax_elements_per_s: float
    head_dim: int
    measured_at: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def device_key(device: torch.device) -> str:
    """A stable name for the device: the GPU model, or the CPU and its thread count."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


def cache_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tfcli" / "calibration.json"


def measure_matmul(device: torch.device, dtype: torch.dtype, *, size: int = 2048) -> float:
    """Median FLOP/s of (size x size) @ (size x size): 2 size^3 FLOPs per call."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    samples = time_call(lambda: torch.matmul(a, b), device=device, warmup=2, repeats=7)
    return 2 * size**3 / samples.median


def measure_read_bandwidth(device: torch.device, *, megabytes: int = 512) -> float:
    """Bytes/s of reading a large fp32 tensor once (``sum``)."""
    x = torch.ones(megabytes * 2**20 // 4, device=device)
    samples = time_call(lambda: x.sum(), device=device, warmup=2, repeats=7)
    return x.numel() * 4 / samples.median


def measure_sdpa_efficiency(
    device: torch.device, dtype: torch.dtype, head_dim: int, matmul_flops_per_s: float
) -> float:
    """Achieved FLOP/s of unmasked SDPA (4 x H x S^2 x D FLOPs) over the matmul peak."""
    shape = (1, CALIBRATION_HEADS, CALIBRATION_SEQ, head_dim)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype) for _ in range(3))
    samples = time_call(
        lambda: F.scaled_dot_product_attention(q, k, v), device=device, warmup=2, repeats=5
    )
    flops = 4 * CALIBRATION_HEADS * CALIBRATION_SEQ**2 * head_dim
    return flops / samples.median / matmul_flops_per_s


def measure_first_touch(device: torch.device, *, megabytes: int = 256) -> float:
    """Bytes/s of writing a freshly allocated tensor once."""
    count = megabytes * 2**20 // 4
    samples = time_call(
        lambda: torch.empty(count, device=device).fill_(1.0), device=device, warmup=1, repeats=5
    )
    return count * 4 / samples.median


def measure_softmax(device: torch.device, dtype: torch.dtype) -> float:
    """Elements/s of ``softmax(x, -1)`` over a (4096, 16384) tensor into a new tensor."""
    x = torch.randn(4096, 16384, device=device, dtype=dtype)
    samples = time_call(
        lambda: torch.softmax(x, dim=-1, dtype=torch.float32), device=device, warmup=1, repeats=5
    )
    return x.numel() / samples.median


def _load_all() -> dict[str, dict[str, object]]:
    path = cache_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def calibrate(
    device: torch.device, dtype: torch.dtype, head_dim: int, *, recalibrate: bool = False
) -> tuple[Calibration, bool]:
    """(calibration, from_cache) for this device, dtype and head dim; measures if needed."""
    dtype_name = str(dtype).removeprefix("torch.")
    key = f"{device_key(device)}|{dtype_name}|d{head_dim}"
    cached = _load_all()
    if not recalibrate and key in cached:
        try:
            return Calibration(**cached[key]), True  # type: ignore[arg-type]
        except TypeError:
            pass
    synchronize(device)
    matmul = measure_matmul(device, dtype)
    result = Calibration(
        device=device_key(device),
        dtype=dtype_name,
        threads=torch.get_num_threads(),
        matmul_flops_per_s=matmul,
        read_bytes_per_s=measure_read_bandwidth(device),
        sdpa_efficiency=measure_sdpa_efficiency(device, dtype, head_dim, matmul),
        first_touch_bytes_per_s=measure_first_touch(device),
        softmax_elements_per_s=measure_softmax(device, dtype),
        head_dim=head_dim,
        measured_at=time.time(),
    )
    cached[key] = result.to_dict()
    try:
        path = cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cached, indent=2))
    except OSError:
        pass  # a read-only home still gets the figures, just not cached
    return result, False
