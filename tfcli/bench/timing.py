"""Timing: warm-up, repeats, median and spread, device synchronisation, a noise probe.

On CUDA each sample is bracketed by CUDA events (``torch.cuda.Event(enable_timing=True)``)
and the device is synchronised before the elapsed time is read; on the CPU
``time.perf_counter`` brackets the call. Each sample is followed by a short fixed matmul (the
probe): when another process shares the cores the probe's rate drops, so a noisy run shows up
in the probe figures (DESIGN.md section 6: with another process on 2 cores, 2-thread calls
round up to ~8 ms scheduler slices) instead of silently in the results.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

PROBE_SIZE = 384
"""The probe multiplies two PROBE_SIZE^2 fp32 matrices: 2 x 384^3 = 113 MFLOP, ~0.7 ms here
(twice: one untimed, one timed)."""
PROBE_FLOPS = 2 * PROBE_SIZE**3


def synchronize(device: torch.device) -> None:
    """Wait for queued work (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def iqr(values: list[float]) -> float:
    """Interquartile range (Q3 - Q1, exclusive quartiles); the min-max range below 4 values."""
    if len(values) < 4:
        return max(values) - min(values)
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


@dataclass
class Samples:
    """Wall-clock seconds of repeated calls, with the probe's rate (FLOP/s) after each."""

    seconds: list[float] = field(default_factory=list)
    probe_flops_per_s: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        """The fastest sample: noise only ever adds time, so this is the undisturbed estimate."""
        return min(self.seconds)

    @property
    def iqr(self) -> float:
        """Interquartile range of the seconds (the min-max range with fewer than 4 samples)."""
        return iqr(self.seconds)

    @property
    def spread(self) -> float:
        """IQR / median: the relative spread of the samples (0 with one sample)."""
        return self.iqr / self.median if self.median > 0 else 0.0

    @property
    def probe_median(self) -> float | None:
        """Median probe rate (FLOP/s) over the samples, None without a probe."""
        return statistics.median(self.probe_flops_per_s) if self.probe_flops_per_s else None

    @property
    def probe_spread(self) -> float:
        """(max - min) / median of the probe rates: near 0 on a quiet machine."""
        if len(self.probe_flops_per_s) < 2:
            return 0.0
        rates = self.probe_flops_per_s
        return (max(rates) - min(rates)) / statistics.median(rates)


class Probe:
    """A fixed small fp32 matmul timed after each sample to expose machine noise."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.a = torch.randn(PROBE_SIZE, PROBE_SIZE, device=device)
        self.b = torch.randn(PROBE_SIZE, PROBE_SIZE, device=device)

    def rate(self) -> float:
        """FLOP/s of one probe matmul (2 x PROBE_SIZE^3 FLOPs), timed after an untimed one so
        that its operands are back in cache: after a sample that streamed gigabytes the probe
        then measures contention for the cores, not a cold cache."""
        torch.matmul(self.a, self.b)
        synchronize(self.device)
        start = time.perf_counter()
        torch.matmul(self.a, self.b)
        synchronize(self.device)
        return PROBE_FLOPS / max(time.perf_counter() - start, 1e-9)

    def rates(self, count: int) -> list[float]:
        """``count`` probe rates in a row."""
        return [self.rate() for _ in range(count)]


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call: CUDA events around it on CUDA, perf_counter on the CPU."""
    if device.type == "cuda":
        start_event = torch.cuda.Event(enable_timing=True)
        end_event = torch.cuda.Event(enable_timing=True)
        start_event.record()
        fn()
        end_event.record()
        torch.cuda.synchronize(device)
        return start_event.elapsed_time(end_event) / 1e3  # elapsed_time is in ms
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_call(
    fn: Callable[[], object],
    *,
    device: torch.device,
    warmup: int,
    repeats: int,
    probe: Probe | None = None,
) -> Samples:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` (at least 1) timed samples, each
    followed by one probe rate when a probe is given."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = Samples()
    for _ in range(max(repeats, 1)):
        samples.seconds.append(_timed(fn, device))
        if probe is not None:
            samples.probe_flops_per_s.append(probe.rate())
    return samples
