"""One summary line for benchmarks/gpu_check.sh: PASS only if every check passes.

usage: python benchmarks/gpu_summary.py WORK_DIR START_EPOCH_SECONDS

WORK_DIR holds ``status.txt`` (one "step exit-code" line per step) and one ``STEP.json``
(``tfcli bench --json``) per step. Checks (the CPU targets of issue 10, applied to the GPU):

* sdpa_mem: worst |measured / estimated - 1| of SDPA peak memory at seq >= 1024, <= 25%;
* naive/sdpa_mem: measured naive / SDPA memory ratio within 25% of the estimated ratio;
* exponent: least-squares slope of log(SDPA core time) on log(seq) over 4K-32K, 2 +/- 0.3;
* prefill_err: median |error| of the predicted SDPA core time, <= 25%;
* decode: median |error| of the predicted one-layer step, <= 15%; whole_*: whole tokens
  (--layers all, LM head included), <= 20%, with the measured tokens/s; decode_state: four
  Mamba layers (recurrent state, no KV cache), <= 20%;
* every step exited 0 (but the cuDNN kernel, which only some GPUs and builds have).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

KERNELS = ("flash", "efficient", "math", "cudnn")
OPTIONAL_STEPS = ("kernel_cudnn",)
"""cuDNN attention exists only on some GPUs and builds: listed under kernels= when it ran."""


def slope(lengths: list[int], seconds: list[float]) -> float:
    """Least-squares k of log(seconds) = k log(length) + c."""
    xs = [math.log(x) for x in lengths]
    ys = [math.log(y) for y in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return num / sum((x - mx) ** 2 for x in xs)


class Report:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.failed: list[str] = []

    def check(self, label: str, ok: bool, text: str) -> None:
        self.parts.append(f"{label}={text}")
        if not ok:
            self.failed.append(label)


def load(work: Path, name: str) -> dict[str, Any] | None:
    try:
        return json.loads((work / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def prefill(report: Report, doc: dict[str, Any]) -> None:
    report.parts.append("device=" + doc["device"].removeprefix("cuda:").replace(" ", "_"))
    sdpa = [p for p in doc["points"] if p["backend"] == "sdpa" and p.get("core_seconds_median")]
    ratios = [
        p["measured_peak_bytes"] / p["estimated_peak_bytes"]
        for p in sdpa
        if p["seq"] >= 1024 and p.get("measured_peak_bytes")
    ]
    worst = max((abs(r - 1) for r in ratios), default=None)
    text = "n/a" if worst is None else f"{100 * worst:.0f}%"
    report.check("sdpa_mem", worst is not None and worst <= 0.25, text)
    summary = doc["summary"]
    ratio, estimated = (
        summary.get("naive_sdpa_memory_ratio"),
        summary.get("naive_sdpa_memory_ratio_estimated"),
    )
    if ratio and estimated:
        ok = abs(ratio / estimated - 1) <= 0.25
        report.check("naive/sdpa_mem", ok, f"{ratio:.0f}x/{estimated:.0f}x")
    long = [p for p in sdpa if p["seq"] >= 4096]
    if len(long) >= 2:
        k = slope([p["seq"] for p in long], [p["core_seconds_median"] for p in long])
        report.check("exponent", abs(k - 2) <= 0.3, f"{k:.2f}")
    err = summary["median_abs_error_fraction"].get("sdpa")
    text = "n/a" if err is None else f"{100 * err:.0f}%"
    report.check("prefill_err", err is not None and err <= 0.25, text)


def decode(report: Report, name: str, doc: dict[str, Any], limit: float) -> None:
    steps = [d for d in doc["decode"] if d.get("step_error_fraction") is not None]
    if not steps:
        report.check(name, False, "n/a")
        return
    median = statistics.median(abs(d["step_error_fraction"]) for d in steps)
    text = f"{100 * median:.0f}%"
    if doc.get("whole_model"):
        text += f"({steps[0]['tokens_per_s']:.0f}tok/s@{steps[0]['context']})"
    report.check(name, median <= limit, text)


def main(work: Path, start: float) -> str:
    status = (work / "status.txt").read_text().splitlines()
    codes = dict(line.split(maxsplit=1) for line in status if line.strip())
    report = Report()
    report.failed += [
        f"{name}(exit {code})"
        for name, code in codes.items()
        if code != "0" and name not in OPTIONAL_STEPS
    ]
    doc = load(work, "prefill")
    if doc:
        prefill(report, doc)
    kernels = [k for k in KERNELS if codes.get(f"kernel_{k}") == "0"]
    report.parts.append("kernels=" + ("+".join(kernels) or "none"))
    checks = (("decode", 0.15), ("whole_llama", 0.20), ("whole_qwen", 0.20))
    for name, limit in (*checks, ("decode_state", 0.20)):
        doc = load(work, name)
        if doc:
            decode(report, name, doc, limit)
    doc = load(work, "mixers")
    if doc:
        exponents = doc.get("summary", {}).get("attention_exponent", {})
        shown = [f"{kind}:{k:.2f}" for kind, k in exponents.items() if k is not None]
        report.parts.append("mixers=" + ",".join(shown))
    verdict = "PASS" if not report.failed else "FAIL(" + ",".join(report.failed) + ")"
    elapsed = time.time() - start
    return f"gpu_check: {verdict} {' '.join(report.parts)} elapsed={elapsed:.0f}s dir={work}"


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), float(sys.argv[2])))
