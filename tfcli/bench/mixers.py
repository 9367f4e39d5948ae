"""``tfcli bench MODEL --mixers ...``: how each kind of token mixer scales, measured.

One layer's mixer of each kind (``tfcli.bench.mixer_specs``) is built at the model's width
with random weights and timed over the lengths: the whole mixer (x -> out: projections,
sequence mixing, output projection) and, for the attention kinds, its core alone
(softmax(QK^T)V: full through SDPA ``is_causal``, sliding and chunked through the banded
cores of ``tfcli.bench.local_attention``, which skip the masked work). Linear (Gated DeltaNet)
and Mamba-2 / Mamba-1 are ``tfcli.bench.state_mixers``' layers.

Predictions come from tfcli's own estimates and the device calibration only
(``tfcli.bench.calibrate``), never from a timing of the point predicted:

* attention core: the pairs the kernel executes (full: ``work.executed_pairs``, the CPU
  flash kernel's key-block skipping; sliding: ``sliding_executed_pairs``; chunked: the same
  per chunk) x 2 H (d_qk + d_v) FLOPs (``work.core_flops``) / (matmul peak x SDPA
  efficiency; the masked efficiency for the sliding core, which passes a band mask);
* mixer: + the mixer's projection FLOPs (``tfcli.flops.forward_flops``, the layer's
  ``projections``) / matmul peak; a state mixer: (projections + scan FLOPs, the reference
  chunked scans of ``tfcli.flops``) / matmul peak;
* both: + the aten operators one call dispatches (``opcount.count_ops``) x the calibrated
  per-operator overhead; a state mixer also + the bytes its elementwise operators move
  (gates, decays, cumulative sums, pads and copies: inputs read, outputs written, counted on
  the call by ``opcount.count_step``) / read bandwidth. The scans' small batched matmuls
  (64-row chunks) and triangular solves run well below the matmul peak (profiled: ~13
  GFLOP/s against 175 for Gated DeltaNet's at 512 tokens), so a state mixer's prediction
  stays a lower bound.

Timing: ``repeats`` samples after warm-up, each followed by the noise probe; a point whose
samples were mostly contended (the probe below half its calibrated rate) takes up to
``repeats`` more (``time_uncontended``). Exponents, per-step slopes and crossovers use each
point's fastest sample (noise only ever adds time); tables and errors the median.

Memory: the peak the allocator holds during one mixer call beyond what it held before
(``tfcli.bench.allocations``; never the RSS). A point whose extrapolated need (the previous
length's measured peak, scaled linearly: every kind here holds O(S) memory) does not fit in
free memory is skipped (``--force`` runs it); an allocation failure is that point's
``skipped`` reason. Ctrl-C keeps every point measured so far.
"""

from __future__ import annotations

import gc
import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tfcli.bench.allocations import peak_bytes
from tfcli.bench.calibrate import Calibration, load_average
from tfcli.bench.local_attention import local_attention
from tfcli.bench.mixer_specs import (
    SPEC_KIND,
    MixerFlops,
    MixerKind,
    chunk_lengths,
    kind_spec,
    mixer_flops,
    sliding_executed_pairs,
)
from tfcli.bench.model import AttentionSettings, SelfAttention, Transformer
from tfcli.bench.opcount import count_ops, count_step
from tfcli.bench.run import fit_exponent
from tfcli.bench.settings import BenchSettings, fit_problem
from tfcli.bench.support import missing_features
from tfcli.bench.timing import Probe, Samples, time_call
from tfcli.bench.work import core_flops, executed_pairs
from tfcli.errors import BenchError
from tfcli.spec import ModelSpec

ALLOCATION_ERRORS = (RuntimeError, MemoryError)
FIT_FROM = 1024
"""Exponents are fitted over lengths >= this (windowed kinds: >= 2 x window), when two
lengths qualify; otherwise over every length."""
NOISE_NOTE = (
    "timings on a shared machine are noisy: other processes take cores and scheduler slices "
    "(~8 ms), which inflates single samples; the noise probe after each sample shows how "
    "much, contended points take extra samples, and the exponents use each point's fastest "
    "sample; --threads 1 suffers far less from other work on the cores"
)


CONTENDED_PROBE_FRACTION = 0.5
"""A sample whose following noise probe ran below half its calibrated rate was contended."""


def time_uncontended(
    fn: Callable[[], object],
    *,
    device: torch.device,
    warmup: int,
    repeats: int,
    probe: Probe,
    calibrated_probe: float,
) -> Samples:
    """``time_call``, then up to ``repeats`` extra samples while fewer than ``repeats`` of
    them were followed by an uncontended probe (>= CONTENDED_PROBE_FRACTION of its
    calibrated rate): on a shared machine a point then keeps enough undisturbed samples for
    the fastest-sample fits. Every sample is kept (medians and spreads include the
    contended ones)."""
    samples = time_call(fn, device=device, warmup=warmup, repeats=repeats, probe=probe)

    def quiet() -> int:
        floor = CONTENDED_PROBE_FRACTION * calibrated_probe
        return sum(rate >= floor for rate in samples.probe_flops_per_s)

    for _ in range(repeats):
        if quiet() >= repeats:
            break
        more = time_call(fn, device=device, warmup=0, repeats=1, probe=probe)
        samples.seconds += more.seconds
        samples.probe_flops_per_s += more.probe_flops_per_s
    return samples


# ---- the layers ----------------------------------------------------------------------------


class AttentionMixer(nn.Module):
    """The built-in self-attention (``tfcli.bench.model.SelfAttention``: projections, q/k
    norms, RoPE) with the core of a ``--mixers`` attention kind."""

    def __init__(self, spec: ModelSpec, kind: MixerKind) -> None:
        super().__init__()
        self.kind = kind
        self.attention = SelfAttention(
            spec,
            0,
            causal=True,
            window=None,
            rope=Transformer._rope(spec),
            settings=AttentionSettings("sdpa"),
        )

    def core(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return local_attention(
            q, k, v, kind=self.kind.name, window=self.kind.window, scale=self.attention.scale
        )

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        q, k, v = self.attention.project_qkv(x, positions)
        return self.attention.project_out(self.core(q, k, v))


def state_class(kind: MixerKind) -> type[nn.Module]:
    """The state mixer class of ``kind``: ``tfcli.bench.state_mixers.STATE_MIXER_CLASSES``
    of its layer type (``SPEC_KIND``), built as ``Cls(spec)``, forward (B, S, h) -> (B, S, h);
    a one-line BenchError for a kind that has no built layer."""
    from tfcli.bench.state_mixers import STATE_MIXER_CLASSES

    found = STATE_MIXER_CLASSES.get(SPEC_KIND[kind.name])
    if found is None:
        raise BenchError(f"--mixers {kind.name}: the bench builds no {kind.name} layer yet")
    return found


def check_kind(spec: ModelSpec, kind: MixerKind, layer_spec: ModelSpec) -> None:
    """Refuse (BenchError, one line) a kind the bench cannot build for this model."""
    if kind.is_attention:
        if spec.is_mla:
            raise BenchError(
                f"--mixers {kind.label}: {spec.name} uses latent attention (MLA); --mixers "
                "times standard multi-head / grouped attention only"
            )
        built_here = ("chunked attention",)  # local_attention's chunked core
        missing = [
            m
            for m in missing_features(layer_spec)
            if not m.endswith(" layers") and m not in built_here
        ]
        if missing:
            raise BenchError(
                f"--mixers {kind.label}: the built-in attention does not build "
                f"{', '.join(missing)} yet, which {spec.name} has"
            )
    else:
        state_class(kind)


def build_mixer(layer_spec: ModelSpec, kind: MixerKind, settings: BenchSettings) -> nn.Module:
    """One mixer layer of ``kind`` on the device, in the dtype, in eval mode."""
    with torch.device(settings.device):
        module = (
            AttentionMixer(layer_spec, kind) if kind.is_attention else state_class(kind)(layer_spec)  # type: ignore[call-arg]
        )
    return module.to(dtype=settings.dtype).eval()


# ---- results -----------------------------------------------------------------------------------


@dataclass
class MixerPoint:
    """One (kind, length) measurement with its estimates."""

    kind: str
    seq: int
    estimated: MixerFlops
    executed_core_flops: int = 0
    """Attention kinds: the core FLOPs the kernel executes (what its time follows)."""
    predicted_mixer_seconds: float = 0.0
    predicted_core_seconds: float | None = None
    operators: int = 0
    """Aten operators one mixer call dispatches."""
    elementwise_bytes: int = 0
    """Bytes a state mixer's non-matmul operators read and write in one call (0: attention
    kinds, whose core is one SDPA call)."""
    mixer: Samples | None = None
    core: Samples | None = None
    measured_peak_bytes: int | None = None
    skipped: str | None = None

    @property
    def error(self) -> float | None:
        """(predicted - measured) / measured of the median mixer time."""
        if self.mixer is None:
            return None
        return (self.predicted_mixer_seconds - self.mixer.median) / self.mixer.median

    @property
    def core_error(self) -> float | None:
        if self.core is None or self.predicted_core_seconds is None:
            return None
        return (self.predicted_core_seconds - self.core.median) / self.core.median

    @property
    def scaling(self) -> Samples | None:
        """The samples the exponent is fitted on: the core for attention kinds (the
        projections are O(S) and would hide the S^2 at short lengths), the whole mixer for
        state kinds (all of it is O(S))."""
        return self.core if self.core is not None else self.mixer

    @property
    def predicted_scaling(self) -> float:
        if self.predicted_core_seconds is not None:
            return self.predicted_core_seconds
        return self.predicted_mixer_seconds


@dataclass
class MixerResult:
    settings: BenchSettings
    kinds: tuple[MixerKind, ...]
    layer_specs: dict[str, ModelSpec]
    calibration: Calibration
    calibration_cached: bool
    points: list[MixerPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the reader must know: widths chosen for a kind the model does not have."""
    interrupted: bool = False
    load_average_start: float | None = None
    load_average_end: float | None = None

    def probe_rates(self) -> list[float]:
        rates: list[float] = []
        for p in self.points:
            for samples in (p.mixer, p.core):
                if samples is not None:
                    rates.extend(samples.probe_flops_per_s)
        return rates


# ---- predictions ---------------------------------------------------------------------------


def executed_core_pairs(kind: MixerKind, seq: int, device: torch.device) -> int:
    """Pairs per head the kind's core computes (module docstring)."""
    if kind.name == "sliding" and kind.window is not None:
        return sliding_executed_pairs(seq, kind.window)
    lengths = chunk_lengths(seq, kind.window) if kind.name == "chunked" and kind.window else [seq]
    counts: dict[int, int] = {}
    for length in lengths:
        counts[length] = counts.get(length, 0) + 1
    return sum(
        n * executed_pairs(length, kernel="flash", causal=True, masked=False, device=device)
        for length, n in counts.items()
    )


def predict(
    kind: MixerKind,
    layer_spec: ModelSpec,
    seq: int,
    batch: int,
    cal: Calibration,
    device: torch.device,
    operators: int = 0,
    elementwise_bytes: int = 0,
) -> tuple[MixerFlops, int, float, float | None]:
    """(estimated FLOPs, executed core FLOPs, predicted mixer seconds, predicted core
    seconds or None) of one point, from the estimates, the call's counted operators and
    elementwise bytes, and the calibration only."""
    flops = mixer_flops(layer_spec, seq, batch)
    overhead = operators * cal.op_overhead_seconds
    peak = cal.matmul_flops_per_s
    if not kind.is_attention:
        streamed = elementwise_bytes / cal.read_bytes_per_s
        return flops, 0, (flops.projections + flops.scan) / peak + streamed + overhead, None
    executed = core_flops(layer_spec, batch, executed_core_pairs(kind, seq, device))
    efficiency = cal.sdpa_masked_efficiency if kind.name == "sliding" else cal.sdpa_efficiency
    core = executed / (peak * efficiency)
    return flops, executed, core + flops.projections / peak + overhead, core + overhead


# ---- the sweep -------------------------------------------------------------------------------


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _measure(
    module: nn.Module,
    kind: MixerKind,
    point: MixerPoint,
    settings: BenchSettings,
    cal: Calibration,
    layer_spec: ModelSpec,
    probe: Probe,
) -> None:
    device, seq = settings.device, point.seq
    x = torch.randn(
        settings.batch, seq, layer_spec.hidden_size, device=device, dtype=settings.dtype
    )
    positions = torch.arange(seq, device=device)

    def mixer() -> object:
        return module(x, positions) if kind.is_attention else module(x)

    with torch.no_grad():
        point.measured_peak_bytes = peak_bytes(mixer, device)  # the first warm-up call
        counted = count_step(mixer, (), [] if kind.is_attention else [module])  # the second
        point.operators, point.elementwise_bytes = counted.operators, counted.elementwise_bytes
        _, _, point.predicted_mixer_seconds, _ = predict(
            kind,
            layer_spec,
            seq,
            settings.batch,
            cal,
            device,
            point.operators,
            point.elementwise_bytes,
        )
        point.mixer = time_uncontended(
            mixer,
            device=device,
            warmup=max(0, settings.warmup - 2),
            repeats=settings.repeats,
            probe=probe,
            calibrated_probe=cal.probe_flops_per_s,
        )
        if isinstance(module, AttentionMixer):
            q, k, v = module.attention.project_qkv(x, positions)

            def core() -> object:
                return module.core(q, k, v)

            core_ops = count_ops(core)  # also its warm-up
            _, _, _, point.predicted_core_seconds = predict(
                kind, layer_spec, seq, settings.batch, cal, device, core_ops
            )
            point.core = time_uncontended(
                core,
                device=device,
                warmup=0,
                repeats=settings.repeats,
                probe=probe,
                calibrated_probe=cal.probe_flops_per_s,
            )


def plan_points(
    result: MixerResult, kind: MixerKind, seq: int, previous: MixerPoint | None
) -> MixerPoint:
    """The point's estimates before anything is allocated, and whether it fits: the previous
    length's measured peak scaled by seq / previous seq (O(S) memory)."""
    s = result.settings
    layer_spec = result.layer_specs[kind.name]
    flops, executed, mixer_seconds, core_seconds = predict(
        kind, layer_spec, seq, s.batch, result.calibration, s.device
    )
    point = MixerPoint(
        kind=kind.name,
        seq=seq,
        estimated=flops,
        executed_core_flops=executed,
        predicted_mixer_seconds=mixer_seconds,
        predicted_core_seconds=core_seconds,
    )
    if previous is not None and previous.measured_peak_bytes:
        need = previous.measured_peak_bytes * seq // previous.seq
        point.skipped = fit_problem(need, s)
    return point


def run_mixers(
    settings: BenchSettings,
    kinds: tuple[MixerKind, ...],
    calibration: Calibration,
    calibration_cached: bool,
    *,
    on_step: Callable[[str], None] | None = None,
) -> MixerResult:
    """Build one layer of each kind and sweep the lengths (each length over every kind, so an
    interrupted run compares the kinds at the lengths it reached); Ctrl-C keeps what was
    measured."""
    notify = on_step or (lambda _label: None)
    spec = settings.spec
    layer_specs: dict[str, ModelSpec] = {}
    notes: list[str] = []
    for kind in kinds:
        layer_spec, note = kind_spec(spec, kind)
        check_kind(spec, kind, layer_spec)
        layer_specs[kind.name] = layer_spec
        if note:
            notes.append(note)
    result = MixerResult(settings, kinds, layer_specs, calibration, calibration_cached)
    result.notes += notes
    torch.manual_seed(0)
    modules: dict[str, nn.Module] = {}
    try:
        for kind in kinds:
            modules[kind.name] = build_mixer(layer_specs[kind.name], kind, settings)
    except ALLOCATION_ERRORS as err:
        raise BenchError(f"cannot build the {kind.label} layer: {err}".splitlines()[0]) from None
    probe = Probe(settings.device)
    result.load_average_start = load_average()
    last: dict[str, MixerPoint] = {}
    try:
        for seq in settings.seqs:
            for kind in kinds:
                notify(f"{kind.label} seq {seq:,}")
                point = plan_points(result, kind, seq, last.get(kind.name))
                result.points.append(point)
                if point.skipped is not None:
                    continue
                try:
                    _measure(
                        modules[kind.name],
                        kind,
                        point,
                        settings,
                        result.calibration,
                        layer_specs[kind.name],
                        probe,
                    )
                    last[kind.name] = point
                except ALLOCATION_ERRORS as err:
                    point.mixer = point.core = None
                    point.measured_peak_bytes = None
                    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                    point.skipped = f"allocation failed: {first[:160]}"
                    _release(settings.device)
    except KeyboardInterrupt:
        result.interrupted = True
    result.load_average_end = load_average()
    return result


# ---- summary -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crossover:
    """Where a kind becomes cheaper than full attention (mixer time): ``seq`` interpolated
    (log-log) between the bracketing lengths, or a ``status``: ``crosses`` (seq set),
    ``always`` (cheaper at every length compared), ``never`` (not within them), ``n/a``
    (full attention was not timed, or no common length)."""

    status: str
    seq: float | None = None


@dataclass(frozen=True)
class KindSummary:
    exponent: float | None
    """Slope of log(time) vs log(seq) of the sequence-mixing part (``MixerPoint.scaling``),
    fitted on each point's fastest sample: noise on a shared machine only ever adds time, so
    the fastest sample is the least disturbed (the calibration's rule); exponents, slopes
    and crossovers use it, the tables and errors the median."""
    exponent_of: str
    """``core`` (attention kinds) or ``mixer`` (state kinds)."""
    predicted_exponent: float | None
    mixer_exponent: float | None
    fit_lengths: tuple[int, ...]
    median_abs_error: float | None
    """Median |predicted - measured| / measured of the mixer time over every length."""
    core_median_abs_error: float | None
    peak_bytes: int | None
    """Measured peak of one mixer call at the longest length that ran."""
    peak_seq: int | None
    overtakes_full: Crossover
    predicted_overtakes_full: Crossover
    local_exponents: tuple[tuple[int, float], ...]
    """(seq, slope from the previous length) of the scaling series: 2 -> 1 shows a window."""


@dataclass(frozen=True)
class MixerSummary:
    kinds: dict[str, KindSummary]
    probe_median_fraction: float | None
    probe_min_fraction: float | None
    max_spread: float | None
    noise_note: str


def fit_lengths(kind: MixerKind, seqs: list[int]) -> list[int]:
    """Lengths an exponent is fitted over: >= FIT_FROM (>= 2 x window for sliding and chunked,
    where the window bounds the work) when two qualify, else every length."""
    start = max(FIT_FROM, 2 * kind.window) if kind.window else FIT_FROM
    long = [s for s in seqs if s >= start]
    return long if len(long) >= 2 else list(seqs)


def crossover(lengths: list[int], kind_times: list[float], full_times: list[float]) -> Crossover:
    """Where ``kind_times`` drops below ``full_times`` for good (``Crossover``)."""
    if not lengths:
        return Crossover("n/a")
    ratios = [k / f for k, f in zip(kind_times, full_times, strict=True)]
    if ratios[-1] >= 1:
        return Crossover("never")
    i = len(ratios) - 1
    while i > 0 and ratios[i - 1] < 1:
        i -= 1
    if i == 0:
        return Crossover("always")
    x0, x1 = math.log(lengths[i - 1]), math.log(lengths[i])
    y0, y1 = math.log(ratios[i - 1]), math.log(ratios[i])
    x = x0 + (0 - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x1
    return Crossover("crosses", math.exp(x))


PREDICTED_CROSSOVER_LIMIT = 2**22
"""The predicted crossover is searched up to this length (4M tokens)."""
PREDICTED_CROSSOVER_FROM = 16


def predicted_crossover(result: MixerResult, kind: MixerKind, full: MixerKind) -> Crossover:
    """The FLOP model's crossover (predicted mixer times without the operator term, which is
    only counted at the lengths timed), with ``crossover``'s meaning: over the powers of two
    from 16 to the limit, the last length where the kind is not cheaper, then the exact
    length by bisection up to the next power."""
    s = result.settings

    def ratio(seq: int) -> float:
        def seconds(k: MixerKind) -> float:
            layer = result.layer_specs[k.name]
            return predict(k, layer, seq, s.batch, result.calibration, s.device)[2]

        return seconds(kind) / seconds(full)

    grid = []
    seq = PREDICTED_CROSSOVER_FROM
    while seq <= PREDICTED_CROSSOVER_LIMIT:
        grid.append(seq)
        seq *= 2
    ratios = [ratio(n) for n in grid]
    if ratios[-1] >= 1:
        return Crossover("never")
    last = max((i for i, r in enumerate(ratios) if r >= 1), default=None)
    if last is None:
        return Crossover("always")
    low, high = grid[last], grid[last + 1]
    while high - low > max(1, low // 1000):  # 0.1% is enough
        mid = (low + high) // 2
        low, high = (mid, high) if ratio(mid) >= 1 else (low, mid)
    return Crossover("crosses", float(high))


def summarize_mixers(result: MixerResult) -> MixerSummary:
    """Exponents, errors, peaks and crossovers per kind, and the noise figures."""
    done = [p for p in result.points if p.mixer is not None]
    full = next((k for k in result.kinds if k.name == "full"), None)
    full_times = {p.seq: p.mixer.best for p in done if p.kind == "full" and p.mixer}
    kinds: dict[str, KindSummary] = {}
    for kind in result.kinds:
        points = sorted((p for p in done if p.kind == kind.name), key=lambda p: p.seq)
        lengths = fit_lengths(kind, [p.seq for p in points])
        fitted = [p for p in points if p.seq in lengths]
        series = [p.scaling.best for p in fitted if p.scaling is not None]
        mixer_series = [p.mixer.best for p in fitted if p.mixer is not None]
        errors = [abs(p.error) for p in points if p.error is not None]
        core_errors = [abs(p.core_error) for p in points if p.core_error is not None]
        longest = points[-1] if points else None
        common = [p for p in points if p.seq in full_times]
        if full is None or kind.name == "full":
            measured_cross = predicted_cross = Crossover("n/a")
        else:
            measured_cross = crossover(
                [p.seq for p in common],
                [p.mixer.best for p in common if p.mixer is not None],
                [full_times[p.seq] for p in common],
            )
            predicted_cross = predicted_crossover(result, kind, full)
        local = tuple(
            (b.seq, slope)
            for a, b in itertools.pairwise(points)
            if a.scaling is not None and b.scaling is not None
            for slope in [fit_exponent([a.seq, b.seq], [a.scaling.best, b.scaling.best])]
            if slope is not None
        )
        kinds[kind.name] = KindSummary(
            exponent=fit_exponent(lengths, series) if len(series) == len(lengths) else None,
            exponent_of="core" if kind.is_attention else "mixer",
            predicted_exponent=fit_exponent(lengths, [p.predicted_scaling for p in fitted]),
            mixer_exponent=fit_exponent(lengths, mixer_series),
            fit_lengths=tuple(lengths),
            median_abs_error=statistics.median(errors) if errors else None,
            core_median_abs_error=statistics.median(core_errors) if core_errors else None,
            peak_bytes=longest.measured_peak_bytes if longest else None,
            peak_seq=longest.seq if longest else None,
            overtakes_full=measured_cross,
            predicted_overtakes_full=predicted_cross,
            local_exponents=local,
        )
    rates = result.probe_rates()
    calibrated = result.calibration.probe_flops_per_s
    spreads = [p.mixer.spread for p in done if p.mixer is not None and len(p.mixer.seconds) > 1]
    return MixerSummary(
        kinds=kinds,
        probe_median_fraction=statistics.median(rates) / calibrated if rates else None,
        probe_min_fraction=min(rates) / calibrated if rates else None,
        max_spread=max(spreads) if spreads else None,
        noise_note=NOISE_NOTE,
    )
