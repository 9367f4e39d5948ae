"""Startup benchmark: whole-process time of the estimate commands vs ``import torch``.

Run:  python benchmarks/startup.py [--repeats 7]

Each command runs as a fresh process (``python -m tfcli ...``), as a user would start it;
the figure is the median wall time over the repeats, with the min-max spread. The target
(issue 3/4): median under 0.4 s and at least 8x faster than ``python -c "import torch"``.
One untimed run of each command first writes the bytecode caches, as an installed package has.
This is a benchmark, not a test: timings are never asserted in the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS: list[list[str]] = [
    ["-m", "tfcli", "params", "llama-3-8b"],
    ["-m", "tfcli", "flops", "llama-3-8b", "--seq", "131072"],
    ["-m", "tfcli", "kvcache", "llama-2-70b", "--seq", "131072"],
    ["-m", "tfcli", "compare", "llama-3-8b", "mistral-7b"],
]
BASELINE = ["-c", "import torch"]
FLOOR = ["-c", "import typer, rich, yaml"]
"""What any typer + rich + yaml CLI pays; issue 13 asks for at most 1.5x this."""


def wall_times(args: list[str], repeats: int) -> list[float]:
    """Wall-clock seconds of ``python ARGS`` run ``repeats`` times (output discarded)."""
    env = {**os.environ, "COLUMNS": "120"}
    # Bytecode caching on, as in a normal install (pip compiles .pyc files; some sandboxes
    # export PYTHONDONTWRITEBYTECODE, which would recompile every module on every start).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, *args], capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.decode()[-500:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    opts = parser.parse_args()
    for args in COMMANDS:  # warm the file cache and write the .pyc files
        wall_times(args, 1)
    torch_times = wall_times(BASELINE, opts.repeats)
    torch_median = statistics.median(torch_times)
    print(f"{'command':<50} {'median s':>9} {'min':>7} {'max':>7} {'vs torch':>9}")
    print(
        f"{'python -c import torch':<50} {torch_median:9.3f} "
        f"{min(torch_times):7.3f} {max(torch_times):7.3f} {'1.0x':>9}"
    )
    floor_times = wall_times(FLOOR, opts.repeats)
    floor_median = statistics.median(floor_times)
    print(
        f"{'python -c import typer, rich, yaml':<50} {floor_median:9.3f} "
        f"{min(floor_times):7.3f} {max(floor_times):7.3f}"
    )
    worst = 0.0
    for args in COMMANDS:
        times = wall_times(args, opts.repeats)
        median = statistics.median(times)
        worst = max(worst, median)
        label = "tfcli " + " ".join(args[2:])
        print(
            f"{label:<50} {median:9.3f} {min(times):7.3f} {max(times):7.3f} "
            f"{torch_median / median:8.1f}x"
        )
    verdict = "meets" if worst < 0.4 and torch_median / worst >= 8 else "misses"
    print(
        f"slowest median {worst:.3f} s; target: < 0.4 s and >= 8x faster than import torch: "
        f"{verdict}; {worst / floor_median:.2f}x import typer, rich, yaml (issue 13: <= 1.5x)"
    )


if __name__ == "__main__":
    main()
