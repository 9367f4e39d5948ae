"""View of ``tfcli bench``: progress bar, measured-vs-predicted tables, summary, JSON, plot."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tfcli.errors import BenchError
from tfcli.render.common import (
    format_bytes,
    format_flops,
    format_flops_per_second,
    format_percent,
    format_seconds,
    make_table,
    print_json,
    print_note,
    print_warning,
    stderr_console,
    stdout_console,
)

if TYPE_CHECKING:  # the bench types live beside torch; the view only reads their fields
    from tfcli.bench.run import BenchResult, PointResult, Summary

NOISY_PROBE_SPREAD = 0.25
"""A probe spread above this (25%) marks a run as shared with other work."""


@contextlib.contextmanager
def bench_progress(total: int, *, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A Rich progress bar on stderr; yields ``advance(label)`` (a no-op when ``quiet``)."""
    if quiet:
        yield lambda _label: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
    )
    with progress:
        task = progress.add_task("starting", total=total)
        first = [True]

        def advance(label: str) -> None:
            if not first[0]:
                progress.advance(task)
            first[0] = False
            progress.update(task, description=label)

        yield advance
        progress.update(task, completed=total)


def _err(point: PointResult) -> str:
    error = point.core_error
    return "-" if error is None else f"{100 * error:+.0f}%"


def print_bench(result: BenchResult, summary: Summary, *, plot: Path | None) -> None:
    s, cal = result.settings, result.calibration
    spec = s.spec
    stdout_console.print(
        f"[bold]tfcli bench {spec.name}[/bold] on {cal.device} ({cal.dtype}, "
        f"{cal.threads} threads), {s.layers} layer(s) at full width, batch {s.batch}",
        highlight=False,
    )
    origin = "cached" if result.calibration_cached else "measured now"
    stdout_console.print(
        f"calibration ({origin}): matmul {format_flops_per_second(cal.matmul_flops_per_s)}, "
        f"read bandwidth {cal.read_bytes_per_s / 1e9:.1f} GB/s, SDPA at "
        f"{format_percent(cal.sdpa_efficiency)} of matmul peak (S=1536, 8 heads, d={cal.head_dim})",
        markup=False,
    )
    if s.mode == "decode":
        _print_decode(result)
    else:
        _print_points(result)
        _print_summary(result, summary)
    probe = [p.core.probe_spread for p in result.points if p.core is not None]
    if probe and max(probe) > NOISY_PROBE_SPREAD:
        print_warning(
            f"the noise probe varied by up to {format_percent(max(probe))}: another process "
            "shared the device, timings are noisy"
        )
    if result.interrupted:
        print_warning("interrupted: the figures above are what was measured before Ctrl-C")
    if plot is not None:
        print_note(f"plot written to {plot}")
    if s.mode == "decode":
        print_note(
            "step = one token through the first layer (projections, attention over the cached "
            "keys, MLP); predicted = max(bytes read / calibrated read bandwidth, FLOPs / matmul "
            "peak): weights of the layer (active experts for MoE) + its KV cache; medians over "
            "repeats; error = (predicted - measured) / measured."
        )
        return
    print_note(
        "core = softmax(QK^T)V only; sublayer = + q/k/v/o projections; block = + norms and MLP. "
        "Predicted = executed FLOPs / (calibrated peak x kernel efficiency) for SDPA; for naive "
        "FLOPs / peak + the fresh S x S scores at first-touch bandwidth + in-place passes + "
        "softmax at its calibrated rate; medians over repeats; error = "
        "(predicted - measured) / measured; memory = peak growth during one core call (IEC)."
    )


def _print_points(result: BenchResult) -> None:
    table = make_table(
        "Attention on this device (per layer)",
        [
            "seq",
            "backend",
            "core",
            "± IQR",
            "predicted",
            "error",
            "sublayer",
            "block",
            "est. FLOPs",
            "achieved",
            "of peak",
            "peak mem",
            "est. mem",
        ],
        right_align_from=2,
    )
    peak = result.calibration.matmul_flops_per_s
    for p in result.points:
        if p.core is None:
            table.add_row(f"{p.seq:,}", p.backend, f"skipped: {p.skipped}", *[""] * 10)
            continue
        achieved = p.executed_core_flops / p.core.median
        table.add_row(
            f"{p.seq:,}",
            p.backend,
            format_seconds(p.core.median),
            format_seconds(p.core.iqr),
            format_seconds(p.predicted_core_seconds),
            _err(p),
            format_seconds(p.sublayer.median) if p.sublayer else "-",
            format_seconds(p.block.median) if p.block else "-",
            format_flops(p.estimated_core_flops),
            format_flops_per_second(achieved),
            format_percent(achieved / peak),
            format_bytes(p.measured_peak_bytes) if p.measured_peak_bytes is not None else "n/a",
            format_bytes(p.estimated_peak_bytes),
        )
    stdout_console.print(table)


def _fmt(value: float | None, pattern: str) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else pattern.format(value)
    )


def _print_summary(result: BenchResult, summary: Summary) -> None:
    table = make_table("Summary", ["", "measured", "theory"])
    lengths = "all lengths" if summary.fit_all_lengths else f"seq >= {summary.fit_from_seq}"
    for backend, exponent in summary.attention_exponent.items():
        table.add_row(
            f"attention-core exponent, {backend} (time ~ seq^k, {lengths})",
            _fmt(exponent, "{:.2f}"),
            "2 (s^2 pairs)",
        )
    table.add_row(
        "projection exponent (sublayer - core)", _fmt(summary.projection_exponent, "{:.2f}"), "1"
    )
    for backend, error in summary.median_abs_error.items():
        table.add_row(
            f"median |error| of predicted core time, {backend} ({lengths})",
            _fmt(None if error is None else 100 * error, "{:.1f}%"),
            "",
        )
    if result.causal_saving is not None:
        table.add_row(
            f"causal saving (SDPA no-mask / causal) at {max(result.settings.seqs):,}",
            f"{result.causal_saving:.2f}x",
            _fmt(result.predicted_causal_saving, "{:.2f}x (kernel blocks)"),
        )
    table.add_row(
        "naive / SDPA core time at the longest length",
        _fmt(summary.naive_sdpa_time_ratio, "{:.2f}x"),
        "",
    )
    table.add_row(
        "naive / SDPA peak memory at the longest length",
        _fmt(summary.naive_sdpa_memory_ratio, "{:.1f}x"),
        "O(s^2) vs O(s)",
    )
    table.add_row(
        "naive measured memory vs estimate (longest length)",
        _fmt(
            None if summary.naive_memory_error is None else 100 * summary.naive_memory_error,
            "{:+.1f}%",
        ),
        "",
    )
    stdout_console.print(table)


def _print_decode(result: BenchResult) -> None:
    table = make_table(
        "Decode: one token after a cached context (per layer)",
        ["context", "step", "± IQR", "predicted", "error", "KV read", "weights read", "bound"],
    )
    cal = result.calibration
    for d in result.decode:
        if d.step is None:
            table.add_row(f"{d.context:,}", f"skipped: {d.skipped}", *[""] * 6)
            continue
        memory_time = (d.kv_bytes + d.weight_bytes) / cal.read_bytes_per_s
        bound = "memory" if memory_time >= d.flops / cal.matmul_flops_per_s else "compute"
        error = (d.predicted_seconds - d.step.median) / d.step.median
        table.add_row(
            f"{d.context:,}",
            format_seconds(d.step.median),
            format_seconds(d.step.iqr),
            format_seconds(d.predicted_seconds),
            f"{100 * error:+.0f}%",
            format_bytes(d.kv_bytes),
            format_bytes(d.weight_bytes),
            bound,
        )
    stdout_console.print(table)


def bench_document(result: BenchResult, summary: Summary) -> dict[str, Any]:
    """JSON of ``tfcli bench --json``: every figure, units in the key names."""
    s, cal = result.settings, result.calibration
    points = []
    for p in result.points:
        entry: dict[str, Any] = {
            "seq": p.seq,
            "backend": p.backend,
            "causal": p.causal,
            "skipped": p.skipped,
            "estimated_peak_bytes": p.estimated_peak_bytes,
        }
        if p.core is not None:
            entry |= {
                "core_seconds_median": p.core.median,
                "core_seconds_iqr": p.core.iqr,
                "core_seconds_samples": p.core.seconds,
                "probe_spread_fraction": p.core.probe_spread,
                "predicted_core_seconds": p.predicted_core_seconds,
                "core_error_fraction": p.core_error,
                "estimated_core_flops": p.estimated_core_flops,
                "executed_core_flops": p.executed_core_flops,
                "achieved_flops_per_s": p.executed_core_flops / p.core.median,
                "fraction_of_peak": p.executed_core_flops / p.core.median / cal.matmul_flops_per_s,
                "measured_peak_bytes": p.measured_peak_bytes,
                "predicted_sublayer_seconds": p.predicted_sublayer_seconds,
                "predicted_block_seconds": p.predicted_block_seconds,
            }
            if p.sublayer is not None:
                entry["sublayer_seconds_median"] = p.sublayer.median
            if p.block is not None:
                entry["block_seconds_median"] = p.block.median
        points.append(entry)
    return {
        "model": s.spec.name,
        "device": cal.device,
        "dtype": cal.dtype,
        "threads": cal.threads,
        "layers": s.layers,
        "batch": s.batch,
        "mode": s.mode,
        "interrupted": result.interrupted,
        "calibration": {
            "matmul_flops_per_s": cal.matmul_flops_per_s,
            "read_bytes_per_s": cal.read_bytes_per_s,
            "sdpa_efficiency_fraction": cal.sdpa_efficiency,
            "cached": result.calibration_cached,
        },
        "points": points,
        "decode": [
            {
                "context": d.context,
                "step_seconds_median": d.step.median if d.step else None,
                "predicted_seconds": d.predicted_seconds,
                "kv_bytes": d.kv_bytes,
                "weight_bytes": d.weight_bytes,
                "flops": d.flops,
                "skipped": d.skipped,
            }
            for d in result.decode
        ],
        "summary": {
            "attention_exponent": summary.attention_exponent,
            "projection_exponent": summary.projection_exponent,
            "median_abs_error_fraction": summary.median_abs_error,
            "causal_saving_measured": result.causal_saving,
            "causal_saving_predicted": result.predicted_causal_saving,
            "naive_sdpa_time_ratio": summary.naive_sdpa_time_ratio,
            "naive_sdpa_memory_ratio": summary.naive_sdpa_memory_ratio,
            "naive_memory_error_fraction": summary.naive_memory_error,
            "fit_from_seq": summary.fit_from_seq,
            "fit_used_all_lengths": summary.fit_all_lengths,
        },
    }


def print_bench_json(result: BenchResult, summary: Summary) -> None:
    print_json(bench_document(result, summary))


def write_plot(result: BenchResult, path: Path) -> None:
    """Log-log measured (points) and predicted (lines) core time vs length, per backend."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("--plot needs matplotlib", hint="pip install 'tfcli[plot]'") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for backend in result.settings.backends:
        points = [p for p in result.points if p.backend == backend and p.core is not None]
        if not points:
            continue
        seqs = [p.seq for p in points]
        line = ax.plot(
            seqs, [p.predicted_core_seconds for p in points], "-", label=f"{backend} predicted"
        )
        ax.plot(
            seqs,
            [p.core.median for p in points],  # type: ignore[union-attr]
            "o",
            color=line[0].get_color(),
            label=f"{backend} measured",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length")
    ax.set_ylabel("attention-core time (s)")
    ax.set_title(f"{result.settings.spec.name} on {result.calibration.device}")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as err:
        raise BenchError(f"cannot write {path}: {err}") from None
    finally:
        plt.close(fig)
