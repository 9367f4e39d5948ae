"""View of ``tfcli bench --mixers``: per-kind tables, the scaling summary, JSON and the plot.

Human output on stdout (warnings and the progress bar on stderr); with ``--json`` stdout holds
one strict JSON document. The formatters are ``tfcli.render.bench``'s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfcli.errors import BenchError
from tfcli.render.bench import (
    NOISY_PROBE_FRACTION,
    PLOT_HINT,
    THREADS_HINT,
    _age,
    _bytes,
    _fmt,
    _pct,
    _probe_cell,
    _scaled,
    _seconds,
    _table,
)
from tfcli.render.common import (
    format_flops_per_second,
    print_interrupted,
    print_json,
    print_note,
    print_table,
    print_warning,
    stderr_console,
    stdout_console,
)

if TYPE_CHECKING:  # the bench types live beside torch; the view only reads their fields
    from tfcli.bench.mixers import Crossover, MixerPoint, MixerResult, MixerSummary


def _header(result: MixerResult, summary: MixerSummary) -> None:
    s, cal = result.settings, result.calibration
    labels = ",".join(k.label for k in result.kinds)
    stdout_console.print(
        f"[bold]tfcli bench {s.spec.name} --mixers {labels}[/bold]: one layer's mixer of each "
        f"kind at hidden {s.spec.hidden_size:,}, on {cal.device} ({cal.dtype}, {cal.threads} "
        f"threads), batch {s.batch}, {s.repeats} repeat(s) after {s.warmup} warm-up",
        highlight=False,
    )
    origin = (
        f"cached, measured {_age(time.time() - cal.measured_at)}"
        if result.calibration_cached
        else "measured now"
    )
    stdout_console.print(
        f"calibration ({origin}): matmul {format_flops_per_second(cal.matmul_flops_per_s)}, "
        f"SDPA {_pct(cal.sdpa_efficiency)} of it unmasked, {_pct(cal.sdpa_masked_efficiency)} "
        f"with a mask, {cal.op_overhead_seconds * 1e6:.1f} us per operator; machine during "
        f"the run: load {_fmt(result.load_average_start, '{:.1f}')} -> "
        f"{_fmt(result.load_average_end, '{:.1f}')}, noise probe median "
        f"{_pct(summary.probe_median_fraction)}, slowest {_pct(summary.probe_min_fraction)} "
        "of its calibrated rate",
        markup=False,
        soft_wrap=True,
    )
    for note in result.notes:
        print_note(note)


def _label(result: MixerResult, name: str) -> str:
    return next(k.label for k in result.kinds if k.name == name)


def _times(result: MixerResult) -> None:
    table = _table(
        "Mixer time per length (median; spread = IQR)",
        ["kind", "seq", "mixer", "spread", "predicted", "error", "core", "predicted", "probe"],
    )
    calibrated = result.calibration.probe_flops_per_s
    skipped = []
    for kind in result.kinds:
        for p in (q for q in result.points if q.kind == kind.name):
            if p.mixer is None:
                table.add_row(kind.label, f"{p.seq:,}", "skipped", *[""] * 6)
                skipped.append(f"{kind.label} at {p.seq:,} skipped: {p.skipped}")
                continue
            table.add_row(
                kind.label,
                f"{p.seq:,}",
                _seconds(p.mixer.median),
                _seconds(p.mixer.iqr) if len(p.mixer.seconds) > 1 else "-",
                _seconds(p.predicted_mixer_seconds),
                _pct(p.error, signed=True),
                _seconds(p.core.median) if p.core else "-",
                _seconds(p.predicted_core_seconds) if p.predicted_core_seconds else "-",
                _probe_cell(p.mixer.probe_flops_per_s, calibrated),
            )
    print_table(table)
    for line in skipped:
        print_note(line)


def _work(result: MixerResult) -> None:
    table = _table(
        "Work and memory per length",
        ["kind", "seq", "FLOPs", "core exec.", "FLOP/s", "of peak", "operators", "peak mem"],
    )
    peak = result.calibration.matmul_flops_per_s
    for kind in result.kinds:
        for p in (q for q in result.points if q.kind == kind.name and q.mixer is not None):
            assert p.mixer is not None
            work = p.estimated.projections + p.estimated.scan
            work += p.executed_core_flops if kind.is_attention else 0
            achieved = work / p.mixer.median
            table.add_row(
                kind.label,
                f"{p.seq:,}",
                _scaled(p.estimated.total, ""),
                _scaled(p.executed_core_flops, "") if kind.is_attention else "-",
                _scaled(achieved, ""),
                _pct(achieved / peak),
                f"{p.operators:,}",
                _bytes(p.measured_peak_bytes),
            )
    print_table(table)


def _cross(cross: Crossover) -> str:
    if cross.status == "crosses" and cross.seq is not None:
        return f"~{cross.seq:,.0f}"
    return {"always": "at every length", "never": "not within them", "n/a": "-"}.get(
        cross.status, cross.status
    )


def _predicted_cross(cross: Crossover) -> str:
    if cross.status == "crosses" and cross.seq is not None:
        return f"~{cross.seq:,.0f}"
    return {"always": "at every length", "never": "beyond 4M", "n/a": "-"}.get(
        cross.status, cross.status
    )


def _summary(result: MixerResult, summary: MixerSummary) -> None:
    table = _table(
        "Scaling per kind (t ~ seq^k)",
        [
            "kind",
            "k",
            "model k",
            "k mixer",
            "fit over",
            "slope per step",
            "median |error|",
            "peak mem",
            "cheaper than full from",
            "predicted",
        ],
    )
    for name, k in summary.kinds.items():
        span = (
            f"{k.fit_lengths[0]:,}-{k.fit_lengths[-1]:,} ({k.exponent_of})"
            if k.fit_lengths
            else "-"
        )
        slopes = " ".join(f"{slope:.2f}" for _seq, slope in k.local_exponents) or "-"
        table.add_row(
            _label(result, name),
            _fmt(k.exponent, "{:.2f}"),
            _fmt(k.predicted_exponent, "{:.2f}"),
            _fmt(k.mixer_exponent, "{:.2f}"),
            span,
            slopes,
            _pct(k.median_abs_error),
            f"{_bytes(k.peak_bytes)} at {k.peak_seq:,}" if k.peak_seq else "-",
            _cross(k.overtakes_full),
            _predicted_cross(k.predicted_overtakes_full),
        )
    print_table(table)


NOTE = (
    "mixer = the whole token mixer of one layer (x -> out: projections, sequence mixing, "
    "output projection); core = the attention core alone (softmax(QK^T)V). full runs SDPA "
    "with is_causal; sliding runs SDPA per block of queries over its local keys with the "
    "band mask (O(S w) work, not an S x S masked softmax); chunked runs one causal SDPA per "
    "chunk; linear is Gated DeltaNet, mamba2 / mamba1 the Mamba mixers, lightning MiniMax's "
    "lightning attention, rwkv RWKV-4's time mixing (tfcli.bench.state_mixers). k = slope "
    "of log(time) vs log(seq), least squares over the lengths "
    "shown on each point's fastest sample (noise only adds time): of the core for "
    "attention kinds (the O(S) projections would hide the S^2), of "
    "the mixer for state kinds; 'slope per step' is the slope from each length to the next "
    "(a window shows as 2 falling to 1). Predicted from tfcli's estimates and the "
    "calibration only: attention core = executed pairs x 2 H (d_qk + d_v) / (matmul peak x "
    "SDPA efficiency); mixer = + projection FLOPs (state mixers: + scan FLOPs) / matmul peak; "
    "both + dispatched operators x per-operator overhead; state mixers + the bytes their "
    "elementwise operators move (counted on the call) / read bandwidth. Their chunked scans' "
    "small batched matmuls and triangular solves run well below the matmul peak: a state "
    "mixer's prediction is a lower bound. "
    "error = (predicted - measured) / measured; peak mem = the allocator's peak during one "
    "mixer call (profiler allocation events on CPU, max_memory_allocated on CUDA; IEC); "
    "'cheaper than full from' = where the mixer time falls below full attention's "
    "(log-log interpolation between the lengths timed; 'predicted': the FLOP model)."
)


def print_mixers(result: MixerResult, summary: MixerSummary) -> None:
    """Tables and summary on stdout; noise and interruption warnings on stderr."""
    _header(result, summary)
    _times(result)
    _work(result)
    _summary(result, summary)
    print_note(NOTE)
    stdout_console.print(f"noise: {summary.noise_note}", markup=False, soft_wrap=True)
    fraction = summary.probe_median_fraction
    if fraction is not None and fraction < NOISY_PROBE_FRACTION:
        print_warning(
            f"the noise probe ran at {_pct(fraction)} of its calibrated rate: other work shared "
            "the device, measured times are inflated by about that much"
            + (THREADS_HINT if result.settings.device.type == "cpu" and cal_threads(result) else "")
        )
    if result.interrupted:
        print_interrupted("interrupted: the figures above are what was measured before Ctrl-C")


def cal_threads(result: MixerResult) -> bool:
    """True when the calibration ran on more than one thread (the --threads 1 hint helps)."""
    return result.calibration.threads > 1


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


def _point(p: MixerPoint) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "seq": p.seq,
        "skipped": p.skipped,
        "estimated_projection_flops": p.estimated.projections,
        "estimated_attention_flops": p.estimated.attention,
        "estimated_scan_flops": p.estimated.scan,
        "estimated_mixer_flops": p.estimated.total,
        "executed_core_flops": p.executed_core_flops,
        "operators": p.operators,
        "elementwise_bytes": p.elementwise_bytes,
        "predicted_mixer_seconds": p.predicted_mixer_seconds,
        "predicted_core_seconds": p.predicted_core_seconds,
        **_samples("mixer", p.mixer),
        **_samples("core", p.core),
        "mixer_error_fraction": p.error,
        "core_error_fraction": p.core_error,
        "measured_peak_bytes": p.measured_peak_bytes,
    }


def _crossover(cross: Crossover) -> dict[str, Any]:
    return {"status": cross.status, "seq": cross.seq}


def mixers_document(result: MixerResult, summary: MixerSummary) -> dict[str, Any]:
    """JSON of ``tfcli bench --mixers --json``: every figure; units in the key names; each
    summary figure is keyed by kind (``summary.attention_exponent.sliding``)."""
    s, cal = result.settings, result.calibration
    kinds = summary.kinds

    def per_kind(get: Any) -> dict[str, Any]:
        return {name: get(k) for name, k in kinds.items()}

    return {
        "model": s.spec.name,
        "mode": "mixers",
        "device": cal.device,
        "dtype": cal.dtype,
        "threads": cal.threads,
        "batch": s.batch,
        "repeats": s.repeats,
        "warmup": s.warmup,
        "seqs": s.seqs,
        "interrupted": result.interrupted,
        "load_average_start": result.load_average_start,
        "load_average_end": result.load_average_end,
        "notes": result.notes,
        "calibration": {**cal.to_dict(), "cached": result.calibration_cached},
        "kinds": {
            k.name: {
                "label": k.label,
                "window": k.window,
                "layer_type": result.layer_specs[k.name].layer_kinds[0],
                "hidden_size": result.layer_specs[k.name].hidden_size,
            }
            for k in result.kinds
        },
        "points": [_point(p) for p in result.points],
        "summary": {
            "attention_exponent": per_kind(lambda k: k.exponent),
            "exponent_of": per_kind(lambda k: k.exponent_of),
            "predicted_attention_exponent": per_kind(lambda k: k.predicted_exponent),
            "mixer_exponent": per_kind(lambda k: k.mixer_exponent),
            "fit_lengths": per_kind(lambda k: list(k.fit_lengths)),
            "local_exponents": per_kind(
                lambda k: [{"seq": seq, "exponent": e} for seq, e in k.local_exponents]
            ),
            "median_abs_error_fraction": per_kind(lambda k: k.median_abs_error),
            "core_median_abs_error_fraction": per_kind(lambda k: k.core_median_abs_error),
            "peak_bytes": per_kind(lambda k: k.peak_bytes),
            "peak_bytes_seq": per_kind(lambda k: k.peak_seq),
            "overtakes_full": per_kind(lambda k: _crossover(k.overtakes_full)),
            "overtakes_full_predicted": per_kind(lambda k: _crossover(k.predicted_overtakes_full)),
            "probe_median_fraction_of_calibrated": summary.probe_median_fraction,
            "probe_min_fraction_of_calibrated": summary.probe_min_fraction,
            "max_mixer_spread_fraction": summary.max_spread,
            "noise_note": summary.noise_note,
        },
    }


def print_mixers_json(result: MixerResult, summary: MixerSummary) -> None:
    print_json(mixers_document(result, summary))


# ---- plot --------------------------------------------------------------------------------------


def write_mixers_plot(
    result: MixerResult, summary: MixerSummary, path: Path, fmt: str = "png"
) -> None:
    """Every kind on one log-log chart: measured mixer time (median, IQR error bars) and the
    prediction (dashed), with dtype, device and the noise note; then one note on stderr."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError(
            "--plot needs matplotlib, which is not installed", hint=PLOT_HINT
        ) from None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for kind in result.kinds:
        points = [p for p in result.points if p.kind == kind.name and p.mixer is not None]
        if not points:
            continue
        xs = [p.seq for p in points]
        medians, below, above = [], [], []
        for p in points:
            assert p.mixer is not None
            q1, q3 = _quartiles(p.mixer.seconds)
            medians.append(p.mixer.median)
            below.append(max(0.0, p.mixer.median - q1))
            above.append(max(0.0, q3 - p.mixer.median))
        fitted = summary.kinds[kind.name]
        k = fitted.exponent
        label = f"{kind.label} (k={k:.2f}, {fitted.exponent_of})" if k is not None else kind.label
        bars = ax.errorbar(xs, medians, yerr=[below, above], fmt="o-", capsize=3, label=label)
        ax.plot(
            xs,
            [p.predicted_mixer_seconds for p in points],
            "--",
            color=bars[0].get_color(),
            alpha=0.6,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length")
    ax.set_ylabel("one layer's mixer time (s)")
    cal = result.calibration
    ax.set_title(
        f"{result.settings.spec.name} mixers, {cal.dtype} on {cal.device}\n"
        "points: measured mixer median (bars: IQR); dashed: predicted; k: fitted exponent",
        fontsize=10,
    )
    fig.text(0.01, 0.01, "noise: " + summary.noise_note, fontsize=6, wrap=True)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    try:
        fig.savefig(path, dpi=120, format=fmt)
    except OSError as err:
        raise BenchError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
    stderr_console.print(f"plot written to {path}", style="dim", markup=False, soft_wrap=True)


def _quartiles(values: list[float]) -> tuple[float, float]:
    """(Q1, Q3), exclusive quartiles as ``timing.iqr``; min and max below 4 values."""
    import statistics

    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]
