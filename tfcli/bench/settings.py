"""What a bench run is asked to do, and the device facts every part of it needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from tfcli.spec import ModelSpec

FIT_FRACTION = 0.8
"""A point runs only when its estimated footprint is below this fraction of free memory."""
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass
class BenchSettings:
    """What to run (the CLI's options, validated). ``layers`` is how many layers of the main
    stack are built and timed (``spec.num_layers`` for ``--layers all``)."""

    spec: ModelSpec
    device: torch.device
    dtype: torch.dtype
    seqs: list[int]
    batch: int = 1
    layers: int = 1
    backends: tuple[str, ...] = ("naive", "sdpa")
    mode: str = "prefill"
    contexts: list[int] = field(default_factory=list)
    repeats: int = 3
    warmup: int = 1
    causal: bool = True
    force: bool = False
    sdpa_kernel: str | None = None
    time_blocks: bool = True

    @property
    def whole_model(self) -> bool:
        """True when every layer of the main stack is built: decode then also runs the
        embedding, the final norm and the LM head (a whole token)."""
        return self.layers >= self.spec.num_layers

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES[self.dtype]


def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory: CUDA free bytes, or MemAvailable from /proc/meminfo."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def fit_problem(need: int, settings: BenchSettings) -> str | None:
    """Why ``need`` bytes should not be allocated now (unless forced), or None."""
    free = available_memory_bytes(settings.device)
    if free is None or settings.force or need <= FIT_FRACTION * free:
        return None
    return f"needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free (--force to try anyway)"
