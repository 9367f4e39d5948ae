"""Peak memory of one call, measured at the allocator (never from the process RSS).

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus what
  was allocated before the call.
* CPU: torch's profiler with ``profile_memory=True`` records every allocation and free of
  torch's CPU allocator (operator outputs and the scratch buffers kernels allocate inside,
  e.g. the per-thread tiles of the CPU flash-attention kernel). The peak is the highest
  running sum of those signed sizes, in time order.

The RSS high-water mark cannot measure this: glibc and the OS reuse freed pages, so a call
that allocates and frees 100 MiB in a warm process can raise RSS by 0 bytes (seen on main
before: "SDPA peak 0 B" and a naive/SDPA ratio of 1,081,295x).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the duration: libkineto prints a "profiler_start" /
    "profiler_stop" line there on every profiler start and stop, which would garble the
    progress bar and the one-line error convention. Only the profiler's start and stop run
    inside this, never the measured call."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreter): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _allocation_sizes(prof: Any) -> list[tuple[int, int]]:
    """(time ns, signed bytes) of every allocator event in a finished profile, in time order.

    Reads the profiler's event tree (``kineto_results.experimental_event_tree()``, the
    source ``torch.profiler._memory_profiler`` reads too): Allocation events carry
    ``alloc_size`` (> 0 allocated, < 0 freed)."""
    from torch._C._profiler import _EventType

    found: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            found.append((int(node.start_time_ns), int(node.extra_fields.alloc_size)))
        stack.extend(node.children)
    found.sort(key=lambda item: item[0])
    return found


def running_peak(sizes: list[int]) -> int:
    """The highest running sum of signed allocation sizes (0 if it never rises): the peak
    bytes held above the level before the first event."""
    level = peak = 0
    for size in sizes:
        level += size
        peak = max(peak, level)
    return peak


def cpu_peak_bytes(fn: Callable[[], object]) -> int | None:
    """Peak bytes torch's CPU allocator held during ``fn()`` beyond what was held before;
    None when the profiler cannot record memory here (the call then runs unprofiled)."""
    try:
        from torch.profiler import ProfilerActivity, profile

        prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        with _quiet_stderr():
            prof.__enter__()
    except (RuntimeError, ImportError, AttributeError):
        fn()
        return None
    try:
        fn()
    finally:
        with _quiet_stderr():
            prof.__exit__(None, None, None)
    try:
        events = _allocation_sizes(prof)
    except (ImportError, AttributeError, RuntimeError):
        return None
    return running_peak([size for _time, size in events])


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak allocator bytes during ``fn()`` above those allocated before it (see module)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    return cpu_peak_bytes(fn)
