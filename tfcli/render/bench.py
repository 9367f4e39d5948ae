"""View of ``tfcli bench``: progress bar, measured-vs-predicted tables, summary, JSON, plot.

Everything human goes to stdout except the progress bar and warnings (stderr); with
``--json`` stdout holds one JSON document and nothing else.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tfcli.errors import BenchError
from tfcli.render.common import (
    format_flops_per_second,
    format_percent,
    print_interrupted,
    print_json,
    print_note,
    print_table,
    print_warning,
    stderr_console,
    stdout_console,
)
from tfcli.render.tables import Grid, make_grid

if TYPE_CHECKING:  # the bench types live beside torch; the view only reads their fields
    from tfcli.bench.run import BenchResult, PointResult, Summary

NOISY_PROBE_FRACTION = 0.75
"""A median probe rate below 75% of its calibrated rate marks a run as shared with other work."""
CONTENDED_PROBE_FRACTION = 0.5
"""A point whose median probe ran below half its calibrated rate is marked '!': contended."""
NOISY_PROBE_SPREAD = 0.25
"""A probe spread above this (25%) within one point marks a run as noisy."""
PLOT_HINT = "pip install 'tfcli[plot]'"


# ---- compact formatters (three significant digits; IEC bytes, SI FLOPs) ------------------------


def _sig3(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _seconds(value: float) -> str:
    """3 significant digits: 81.2 ms, 4.52 s, 980 µs."""
    if value < 1e-3:
        return f"{_sig3(value * 1e6)} µs"
    if value < 1:
        return f"{_sig3(value * 1e3)} ms"
    return f"{_sig3(value)} s"


def _scaled(value: float, unit: str) -> str:
    """SI prefix (G = 1e9), 3 significant digits: 137 GFLOP, or 137 G with no unit."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{_sig3(value / factor)} {prefix}{unit}"
    return f"{_sig3(value)} {unit}".rstrip()


def _bytes(value: float | None) -> str:
    """IEC units (GiB = 2**30 bytes), 3 significant digits; n/a for None."""
    if value is None:
        return "n/a"
    for factor, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            return f"{_sig3(value / factor)} {unit}"
    return f"{int(value)} B"


def _pct(fraction: float | None, signed: bool = False) -> str:
    if fraction is None or math.isnan(fraction):
        return "n/a"
    return f"{100 * fraction:+.0f}%" if signed else f"{100 * fraction:.0f}%"


def _fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None or math.isnan(value) else pattern.format(value)


def _table(title: str, columns: list[str], *, left: int = 2) -> Grid:
    """A compact table (no vertical rules); the first ``left`` columns are labels, the rest
    numbers (never cut: the table stacks when it does not fit)."""
    return make_grid(title, columns, right_align_from=left, compact=True)


# ---- progress ----------------------------------------------------------------------------------


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


# ---- human view --------------------------------------------------------------------------------


def _age(seconds: float) -> str:
    if seconds < 120:
        return "just now"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _print_header(result: BenchResult, summary: Summary | None) -> None:
    s, cal = result.settings, result.calibration
    out = stdout_console
    out.print(
        f"[bold]tfcli bench {s.spec.name}[/bold] on {cal.device} ({cal.dtype}, "
        f"{cal.threads} threads), {_layers_text(result)} at full width, batch {s.batch}, "
        f"{s.repeats} repeat(s) after {s.warmup} warm-up",
        highlight=False,
    )
    origin = (
        f"cached, measured {_age(time.time() - cal.measured_at)}"
        if result.calibration_cached
        else "measured now"
    )
    load = _fmt(cal.load_average, "{:.1f}")
    gemv = (
        f"GEMV {cal.gemv_bytes_per_s[0] / 1e9:.1f} GB/s at K={cal.gemv_inner_dims[0]:,} to "
        f"{cal.gemv_bytes_per_s[-1] / 1e9:.1f} at K={cal.gemv_inner_dims[-1]:,}"
    )
    out.print(
        f"calibration ({origin}, load {load}): matmul "
        f"{format_flops_per_second(cal.matmul_flops_per_s)} (spread {_pct(cal.matmul_spread)}), "
        f"read {cal.read_bytes_per_s / 1e9:.1f} GB/s, {gemv}, "
        f"SDPA {format_percent(cal.sdpa_efficiency)} of matmul peak unmasked, "
        f"{format_percent(cal.sdpa_masked_efficiency)} with a mask (S=1536, H=8), "
        f"decode attention {cal.decode_kv_bytes_per_s / 1e9:.1f} GB/s ({cal.decode_heads} "
        f"query heads over {cal.decode_kv_heads} KV heads), first-touch "
        f"{cal.first_touch_bytes_per_s / 1e9:.1f} GB/s, softmax "
        f"{cal.softmax_elements_per_s / 1e6:.0f} M elements/s, "
        f"{cal.op_overhead_seconds * 1e6:.1f} us per operator",
        markup=False,
        soft_wrap=True,
    )
    if summary is not None:
        out.print(
            f"machine during the run: load average "
            f"{_fmt(result.load_average_start, '{:.1f}')} -> "
            f"{_fmt(result.load_average_end, '{:.1f}')}; noise probe (a 384^3 matmul after every "
            f"sample) median {_pct(summary.probe_median_fraction)}, slowest "
            f"{_pct(summary.probe_min_fraction)} of its calibrated rate "
            f"({format_flops_per_second(cal.probe_flops_per_s)})",
            markup=False,
            soft_wrap=True,
        )


def _layers_text(result: BenchResult) -> str:
    s = result.settings
    layers = min(s.layers, s.spec.num_layers)
    if s.whole_model and s.mode == "decode":
        return f"all {layers} layers + embedding and LM head"
    return f"{layers} of {s.spec.num_layers} layer(s)"


def print_bench(result: BenchResult, summary: Summary) -> None:
    """Tables and summary on stdout; noise and interruption warnings on stderr."""
    s = result.settings
    _print_header(result, summary)
    if s.mode == "decode":
        _print_decode(result)
    else:
        _print_times(result)
        _print_work(result)
        _print_summary(result, summary)
    _warn_noise(result, summary)
    if result.interrupted:
        print_interrupted("interrupted: the figures above are what was measured before Ctrl-C")
    if s.mode == "decode":
        print_note(
            "step = one token through the built layers (projections, attention over the cached "
            "keys or one recurrent step of a state mixer, MLP; with --layers all also the "
            "embedding, final norm and LM head) over a preallocated cache written in place. "
            "Predicted = each weight matrix the step reads (the experts a token uses) / the "
            "GEMV bandwidth probed at its contracted dimension (synthetic matrices, once per "
            "run) + KV bytes the kernel streams / calibrated decode-attention bandwidth at the "
            "model's head layout (on the CPU a one-query step runs a grouped matmul that reads "
            "each KV head once; 'KV read' adds MLA's expanded keys and values) + the bytes a "
            "state mixer's elementwise operators move through its states ('state': conv and "
            "recurrent states of Mamba, Gated DeltaNet, RWKV and lightning layers; counted on "
            "the step) / read bandwidth + the operators one step dispatches x the calibrated "
            "per-operator overhead; medians over repeats; error = (predicted - measured) / "
            "measured; probe = "
            "noise probe rate vs calibration."
        )
        return
    print_note(
        "core = softmax(QK^T)V only; sublayer = + q/k/v/o projections; block = + norms and MLP. "
        "Predicted from the calibration only: SDPA = executed FLOPs / (matmul peak x SDPA "
        "efficiency); naive = FLOPs / peak + fresh S x S scores at first-touch bandwidth + "
        "in-place passes at read bandwidth + softmax at its calibrated rate. Executed FLOPs "
        "follow the kernel: naive computes all S^2 pairs then masks; CPU SDPA skips only whole "
        "512-key blocks above the diagonal (DESIGN.md 6); 'FLOPs' is tfcli's causal s(s+1)/2 "
        "convention; sdpa>math / sdpa>naive: SDPA fell back to an unfused kernel. Medians "
        "over repeats; error = (predicted - measured) / measured; probe = noise probe rate vs "
        "calibration ('!' below 50%: that point was contended); memory = peak the allocator "
        "holds during one core call (profiler allocation events on CPU, max_memory_allocated "
        "on CUDA; IEC). With --layers N every time and FLOP figure is the sum over the N layers."
    )


THREADS_HINT = (
    "; on shared CPU cores --threads 1 suffers far less (every multi-threaded operator waits "
    "for all its threads to be scheduled: a decode step of thousands of operators slowed 3-4x "
    "more with 2 threads than with 1 at load ~5)"
)


def _warn_noise(result: BenchResult, summary: Summary) -> None:
    hint = (
        THREADS_HINT
        if result.settings.device.type == "cpu" and result.calibration.threads > 1
        else ""
    )
    fraction = summary.probe_median_fraction
    if fraction is not None and fraction < NOISY_PROBE_FRACTION:
        print_warning(
            f"the noise probe ran at {_pct(fraction)} of its calibrated rate: other work shared "
            "the device, measured times are inflated by about that much" + hint
        )
        return
    spreads = [p.core.probe_spread for p in result.points if p.core is not None]
    spreads += [d.step.probe_spread for d in result.decode if d.step is not None]
    if spreads and max(spreads) > NOISY_PROBE_SPREAD:
        print_warning(
            f"the noise probe varied by up to {_pct(max(spreads))} within a point: another "
            "process shared the device at times, timings are noisy" + hint
        )


def _backend_cell(point: PointResult) -> str:
    """The backend, and the kernel that really ran when it differs (sdpa>math, sdpa>naive)."""
    if point.backend == "sdpa" and point.kernel != "flash":
        return f"sdpa>{point.kernel}"
    return point.backend


def _probe_cell(rates: list[float], calibrated: float) -> str:
    if not rates:
        return "-"
    rates = sorted(rates)
    fraction = rates[len(rates) // 2] / calibrated
    return _pct(fraction) + ("!" if fraction < CONTENDED_PROBE_FRACTION else "")


def _print_times(result: BenchResult) -> None:
    table = _table(
        f"Attention time, {_layers_text(result)} (median, spread = IQR)",
        ["seq", "backend", "core", "spread", "predicted", "error", "probe", "sublayer", "block"],
    )
    calibrated = result.calibration.probe_flops_per_s
    skipped: list[str] = []
    for p in result.points:
        if p.core is None:
            table.add_row(f"{p.seq:,}", _backend_cell(p), "skipped", *[""] * 6)
            skipped.append(f"seq {p.seq:,} {_backend_cell(p)} skipped: {p.skipped}")
            continue
        table.add_row(
            f"{p.seq:,}",
            _backend_cell(p),
            _seconds(p.core.median),
            _seconds(p.core.iqr) if len(p.core.seconds) > 1 else "-",
            _seconds(p.predicted_core_seconds),
            _pct(p.core_error, signed=True),
            _probe_cell(p.core.probe_flops_per_s, calibrated),
            _seconds(p.sublayer.median) if p.sublayer else "-",
            _seconds(p.block.median) if p.block else "-",
        )
    print_table(table)
    for line in skipped:
        print_note(line)


def _print_work(result: BenchResult) -> None:
    table = _table(
        f"Work and memory, {_layers_text(result)}",
        ["seq", "backend", "FLOPs", "executed", "FLOP/s", "of peak", "peak mem", "est. mem"],
    )
    peak = result.calibration.matmul_flops_per_s
    for p in result.points:
        if p.core is None:
            table.add_row(
                f"{p.seq:,}",
                _backend_cell(p),
                _scaled(p.estimated_core_flops, ""),
                _scaled(p.executed_core_flops, ""),
                "-",
                "-",
                "-",
                _bytes(p.estimated_peak_bytes),
            )
            continue
        achieved = p.executed_core_flops / p.core.median
        table.add_row(
            f"{p.seq:,}",
            _backend_cell(p),
            _scaled(p.estimated_core_flops, ""),
            _scaled(p.executed_core_flops, ""),
            _scaled(achieved, ""),
            _pct(achieved / peak),
            _bytes(p.measured_peak_bytes),
            _bytes(p.estimated_peak_bytes),
        )
    print_table(table)


def _print_summary(result: BenchResult, summary: Summary) -> None:
    table = _table("Summary", ["", "measured", "expected"], left=1)
    fit = "all seq" if summary.fit_all_lengths else f"seq >= {summary.fit_from_seq:,}"
    for backend, exponent in summary.attention_exponent.items():
        model = summary.predicted_exponent.get(backend)
        table.add_row(
            f"core exponent k (t ~ seq^k), {backend}, {fit}",
            _fmt(exponent, "{:.2f}"),
            f"2 (model {_fmt(model, '{:.2f}')})",
        )
    table.add_row("projection exponent, sdpa", _fmt(summary.projection_exponent, "{:.2f}"), "1")
    for backend, error in summary.median_abs_error.items():
        table.add_row(f"median |error| of core, {backend}, {fit}", _pct(error), "")
    done = [p.seq for p in result.points if p.core is not None]
    longest = f"{max(done):,}" if done else "-"
    if result.causal_saving is not None:
        table.add_row(
            f"causal saving, sdpa unmasked/causal, {longest}",
            _fmt(result.causal_saving, "{:.2f}x"),
            _fmt(result.predicted_causal_saving, "{:.2f}x (key blocks)"),
        )
    table.add_row(
        f"naive / sdpa core time, {longest}", _fmt(summary.naive_sdpa_time_ratio, "{:.2f}x"), ""
    )
    table.add_row(
        f"naive / sdpa peak memory, {longest}",
        _fmt(summary.naive_sdpa_memory_ratio, "{:.1f}x"),
        _fmt(summary.naive_sdpa_memory_ratio_estimated, "{:.1f}x est."),
    )
    table.add_row(
        f"naive memory vs estimate, {longest}", _pct(summary.naive_memory_error, signed=True), ""
    )
    table.add_row("largest core spread (IQR / median)", _pct(summary.max_core_spread), "")
    print_table(table)


def _print_decode(result: BenchResult) -> None:
    whole = result.settings.whole_model
    columns = ["context", "step", "spread", "predicted", "error", "probe"]
    if whole:
        columns += ["tokens/s", "predicted"]
    columns += ["KV cache", "KV read"]
    states = any(d.state_bytes for d in result.decode)
    if states:
        columns += ["state"]
    columns += ["weights"]
    title = f"Decode: one token after a cached context, {_layers_text(result)}"
    table = _table(title, columns, left=1)
    calibrated = result.calibration.probe_flops_per_s
    skipped: list[str] = []
    for d in result.decode:
        if d.step is None:
            table.add_row(f"{d.context:,}", "skipped", *[""] * (len(columns) - 2))
            skipped.append(f"context {d.context:,} skipped: {d.skipped}")
            continue
        row = [
            f"{d.context:,}",
            _seconds(d.step.median),
            _seconds(d.step.iqr) if len(d.step.seconds) > 1 else "-",
            _seconds(d.predicted_seconds),
            _pct(d.error, signed=True),
            _probe_cell(d.step.probe_flops_per_s, calibrated),
        ]
        if whole:
            row += [_fmt(d.tokens_per_s, "{:.1f}"), _fmt(d.predicted_tokens_per_s, "{:.1f}")]
        row += [_bytes(d.kv_bytes), _bytes(d.executed_kv_bytes)]
        row += [_bytes(d.state_bytes)] if states else []
        row += [_bytes(d.weight_bytes)]
        table.add_row(*row)
    print_table(table)
    for line in skipped:
        print_note(line)
    errors = [abs(d.error) for d in result.decode if d.error is not None]
    if errors:
        stdout_console.print(
            f"median |error| of the predicted step time: {_pct(statistics.median(errors))}",
            highlight=False,
        )


# ---- JSON --------------------------------------------------------------------------------------


def _samples(prefix: str, samples: Any) -> dict[str, Any]:
    if samples is None:
        return {}
    return {
        f"{prefix}_seconds_median": samples.median,
        f"{prefix}_seconds_best": samples.best,
        f"{prefix}_seconds_iqr": samples.iqr,
        f"{prefix}_seconds_samples": samples.seconds,
        f"{prefix}_probe_flops_per_s": samples.probe_flops_per_s,
    }


def bench_document(result: BenchResult, summary: Summary) -> dict[str, Any]:
    """JSON of ``tfcli bench --json``: every figure, units in the key names."""
    s, cal = result.settings, result.calibration
    points = []
    for p in result.points:
        entry: dict[str, Any] = {
            "seq": p.seq,
            "backend": p.backend,
            "kernel": p.kernel,
            "causal": p.causal,
            "skipped": p.skipped,
            "estimated_core_flops": p.estimated_core_flops,
            "executed_core_flops": p.executed_core_flops,
            "predicted_core_seconds": p.predicted_core_seconds,
            "predicted_sublayer_seconds": p.predicted_sublayer_seconds,
            "predicted_block_seconds": p.predicted_block_seconds,
            "estimated_peak_bytes": p.estimated_peak_bytes,
            "footprint_bytes": p.footprint_bytes,
        }
        if p.core is not None:
            achieved = p.executed_core_flops / p.core.median
            entry |= {
                **_samples("core", p.core),
                "core_error_fraction": p.core_error,
                "probe_spread_fraction": p.core.probe_spread,
                "achieved_flops_per_s": achieved,
                "fraction_of_peak": achieved / cal.matmul_flops_per_s,
                "measured_peak_bytes": p.measured_peak_bytes,
                **_samples("sublayer", p.sublayer),
                **_samples("block", p.block),
            }
        points.append(entry)
    return {
        "model": s.spec.name,
        "device": cal.device,
        "dtype": cal.dtype,
        "threads": cal.threads,
        "layers": min(s.layers, s.spec.num_layers),
        "whole_model": s.whole_model,
        "sdpa_kernel": s.sdpa_kernel,
        "notes": result.notes,
        "batch": s.batch,
        "mode": s.mode,
        "repeats": s.repeats,
        "warmup": s.warmup,
        "interrupted": result.interrupted,
        "load_average_start": result.load_average_start,
        "load_average_end": result.load_average_end,
        "calibration": {
            **cal.to_dict(),
            "gemv_inner_dims": list(cal.gemv_inner_dims),
            "cached": result.calibration_cached,
        },
        "points": points,
        "decode": [
            {
                "context": d.context,
                "layers": d.layers,
                "whole_model": d.whole_model,
                "skipped": d.skipped,
                "kv_bytes": d.kv_bytes,
                "executed_kv_bytes": d.executed_kv_bytes,
                "state_bytes": d.state_bytes,
                "state_traffic_bytes": d.state_traffic_bytes,
                "weight_bytes": d.weight_bytes,
                "gemv_weight_bytes_by_inner_dim": None
                if d.weight_reads is None
                else {str(k): v for k, v in sorted(d.weight_reads.items())},
                "gemv_bytes_per_s_by_inner_dim": None
                if d.gemv_rates is None
                else {str(k): v for k, v in sorted(d.gemv_rates.items())},
                "flops": d.flops,
                "operators": d.operators,
                "predicted_seconds": d.predicted_seconds,
                **_samples("step", d.step),
                "step_error_fraction": d.error,
                "tokens_per_s": d.tokens_per_s,
                "predicted_tokens_per_s": d.predicted_tokens_per_s,
            }
            for d in result.decode
        ],
        "summary": {
            "attention_exponent": summary.attention_exponent,
            "predicted_attention_exponent": summary.predicted_exponent,
            "projection_exponent": summary.projection_exponent,
            "median_abs_error_fraction": summary.median_abs_error,
            "causal_saving_measured": result.causal_saving,
            "causal_saving_predicted": result.predicted_causal_saving,
            "naive_sdpa_time_ratio": summary.naive_sdpa_time_ratio,
            "naive_sdpa_memory_ratio": summary.naive_sdpa_memory_ratio,
            "naive_sdpa_memory_ratio_estimated": summary.naive_sdpa_memory_ratio_estimated,
            "naive_memory_error_fraction": summary.naive_memory_error,
            "fit_from_seq": summary.fit_from_seq,
            "fit_used_all_lengths": summary.fit_all_lengths,
            "probe_median_fraction_of_calibrated": summary.probe_median_fraction,
            "probe_min_fraction_of_calibrated": summary.probe_min_fraction,
            "max_core_spread_fraction": summary.max_core_spread,
        },
    }


def print_bench_json(result: BenchResult, summary: Summary) -> None:
    print_json(bench_document(result, summary))


# ---- plot --------------------------------------------------------------------------------------


def check_plot_available() -> None:
    """Fail early (before any timing) when --plot cannot be honoured."""
    if importlib.util.find_spec("matplotlib") is None:
        raise BenchError("--plot needs matplotlib, which is not installed", hint=PLOT_HINT)


def write_plot(result: BenchResult, path: Path, fmt: str = "png") -> None:
    """Log-log measured (points) and predicted (lines) core time vs length, per backend
    (decode mode: step time vs context), written after the results were printed; then one
    note on stderr saying where."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError(
            "--plot needs matplotlib, which is not installed", hint=PLOT_HINT
        ) from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: list[tuple[str, list[int], list[float], list[float]]] = []
    if result.settings.mode == "decode":
        steps = [d for d in result.decode if d.step is not None]
        series.append(
            (
                "decode step",
                [d.context for d in steps],
                [d.predicted_seconds for d in steps],
                [d.step.median for d in steps],  # type: ignore[union-attr]
            )
        )
        ax.set_xlabel("cached context (tokens)")
        ax.set_ylabel("decode step time (s)")
    else:
        for backend in result.settings.backends:
            points = [p for p in result.points if p.backend == backend and p.core is not None]
            series.append(
                (
                    backend,
                    [p.seq for p in points],
                    [p.predicted_core_seconds for p in points],
                    [p.core.median for p in points],  # type: ignore[union-attr]
                )
            )
        ax.set_xlabel("sequence length")
        ax.set_ylabel("attention-core time (s)")
    for label, xs, predicted, measured in series:
        if not xs:
            continue
        line = ax.plot(xs, predicted, "-", label=f"{label} predicted")
        ax.plot(xs, measured, "o", color=line[0].get_color(), label=f"{label} measured")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(f"{result.settings.spec.name} on {result.calibration.device}")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120, format=fmt)
    except OSError as err:
        raise BenchError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
    stderr_console.print(f"plot written to {path}", style="dim", markup=False, soft_wrap=True)
