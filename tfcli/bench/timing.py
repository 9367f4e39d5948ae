"""Timing: warm-up, repeats, median and spread, device synchronisation, a noise probe.

On CUDA each sample is bracketed by CUDA events and the device is synchronised before the
clock is read; on the CPU ``time.perf_counter`` brackets the call. Each sample is followed
by a short fixed matmul (the probe): when another process shares the cores the probe's rate
drops, so a noisy run shows up in the probe spread instead of silently in the results.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

PROBE_SIZE = 384
"""The probe multiplies two PROBE_SIZE^2 fp32 matrices: 2 x 384^3 = 113 MFLOP, ~1 ms here."""


def synchronize(device: torch.device) -> None:
    """Wait for queued work (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Samples:
    """Wall-clock seconds of repeated calls, with a probe rate (FLOP/s) after each."""

    seconds: list[float] = field(default_factory=list)
    probe_flops_per_s: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def iqr(self) -> float:
        """Interquartile range (0 with fewer than 4 samples: then the min-max range)."""
        if len(self.seconds) < 4:
            return max(self.seconds) - min(self.seconds)
        q = statistics.quantiles(self.seconds, n=4)
        return q[2] - q[0]

    @property
    def probe_spread(self) -> float:
        """(max - min) / median of the probe rates: 0 on a quiet machine."""
        if len(self.probe_flops_per_s) < 2:
            return 0.0
        rates = self.probe_flops_per_s
        return (max(rates) - min(rates)) / statistics.median(rates)


class Probe:
    """A fixed small matmul timed after each sample to expose machine noise."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.a = torch.randn(PROBE_SIZE, PROBE_SIZE, device=device)
        self.b = torch.randn(PROBE_SIZE, PROBE_SIZE, device=device)

    def rate(self) -> float:
        synchronize(self.device)
        start = time.perf_counter()
        torch.matmul(self.a, self.b)
        synchronize(self.device)
        return 2 * PROBE_SIZE**3 / max(time.perf_counter() - start, 1e-9)


def time_call(
    fn: Callable[[], object],
    *,
    device: torch.device,
    warmup: int,
    repeats: int,
    probe: Probe | None = None,
) -> Samples:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed samples."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = Samples()
    for _ in range(max(repeats, 1)):
        if device.type == "cuda":
            start_event = torch.cuda.Event(enable_timing=True)
            end_event = torch.cuda.Event(enable_timing=True)
            start_event.record()
            fn()
            end_event.record()
            torch.cuda.synchronize(device)
            samples.seconds.append(start_event.elapsed_time(end_event) / 1e3)
        else:
            start = time.perf_counter()
            fn()
            samples.seconds.append(time.perf_counter() - start)
        if probe is not None:
            samples.probe_flops_per_s.append(probe.rate())
    return samples
