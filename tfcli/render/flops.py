"""View of ``tfcli flops``: components, attention share, modes, scaling, roofline, JSON."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tfcli.flops import (
    MEGATRON_STATE_LAYERS,
    DecodeCost,
    FlopCount,
    LayerFlops,
    ScalingRow,
    convention_label,
    convention_name,
    kaplan_forward_flops_per_token,
    non_embedding_params,
    palm_training_flops_per_token,
    training_flops,
)
from tfcli.hardware import Hardware
from tfcli.memory import flash_attention_working_bytes, naive_attention_score_bytes
from tfcli.params import ParamCount
from tfcli.render import documents
from tfcli.render.common import (
    format_bytes,
    format_flops,
    format_flops_per_second,
    format_int,
    format_percent,
    format_seconds,
    format_term,
    layer_positions,
    make_table,
    print_csv,
    print_json,
    print_note,
    print_table,
    stdout_console,
)
from tfcli.render.params import describe
from tfcli.roofline import EFFICIENCY_NOTE, Roofline, ServingTime
from tfcli.spec import ModelSpec

SCORES_DTYPE = "fp32"
"""dtype of the materialised score matrix in the scaling table (softmax runs in fp32)."""


@dataclass(frozen=True)
class FlopsView:
    """Everything ``tfcli flops`` shows, computed before rendering.

    ``forward`` is the pass the mode asks about (the prefill/training forward over ``seq``, or
    the one-token decode step with a KV cache), ``other_convention`` the same pass counted with
    the other attention convention, ``prefill`` (and ``prefill_other``) the forward over
    ``seq`` (training, the prefill roofline and the published cross-checks use it).
    """

    spec: ModelSpec
    origin: str
    mode: str
    recompute: bool
    params: ParamCount
    forward: FlopCount
    other_convention: FlopCount
    prefill: FlopCount
    prefill_other: FlopCount
    decode: DecodeCost | None
    scaling: list[ScalingRow]
    roofline: Roofline | None
    point: FlopsPoint | None = None
    """The same pass as a sweep row (CSV, JSON ``points``, serving time)."""
    hardware: Hardware | None = None
    dtype: str = "bf16"

    @property
    def train_flops(self) -> int:
        return training_flops(self.prefill, recompute=self.recompute)

    @property
    def non_embedding_params(self) -> int:
        """Kaplan's N per token: active parameters (MoE: top-k and shared experts only)."""
        return non_embedding_params(self.params.active_components)

    @property
    def convention_ratio(self) -> float:
        """Attention FLOPs under the other convention / under the one in force."""
        ours = self.forward.attention_flops
        return self.other_convention.attention_flops / ours if ours else float("nan")


@dataclass(frozen=True)
class FlopsPoint:
    """One (length, batch) combination: the pass's FLOPs and, with a device, serving time."""

    count: FlopCount
    mode: str
    recompute: bool = False
    serving: ServingTime | None = None

    @property
    def length(self) -> int:
        """Prompt tokens (prefill, train) or cached tokens (decode)."""
        return self.count.context if self.mode == "decode" else self.count.seq

    @property
    def pass_flops(self) -> int:
        """FLOPs of what the mode asks about: forward, decode step, or training step."""
        if self.mode == "train":
            return training_flops(self.count, recompute=self.recompute)
        return self.count.total

    @property
    def tokens(self) -> int:
        return self.count.batch * (1 if self.mode == "decode" else self.count.seq)


@dataclass(frozen=True)
class FlopsSweepView:
    """``tfcli flops`` over several lengths and batch sizes: one row per combination."""

    spec: ModelSpec
    origin: str
    mode: str
    attention: str
    points: list[FlopsPoint]
    hardware: Hardware | None
    dtype: str
    mfu: float
    mbu: float


def point_record(point: FlopsPoint) -> dict[str, Any]:
    """One sweep row as raw values (JSON ``points`` and CSV share it)."""
    record = documents.flop_totals(point.count)
    record["mode"] = point.mode
    record["pass_flops"] = point.pass_flops
    record["flops_per_token"] = point.pass_flops / point.tokens
    if point.serving is not None:
        record.update(documents.serving(point.serving))
    return record


def _serving_cells(s: ServingTime) -> list[str]:
    only = " (compute only)" if s.compute_only else ""
    return [
        format_seconds(s.ttft_seconds) + only,
        format_seconds(s.tpot_seconds) + only,
        f"{s.output_tokens_per_s:,.1f}",
    ]


def print_flops_sweep(view: FlopsSweepView) -> None:
    spec = view.spec
    stdout_console.print(f"[bold]{spec.name}[/bold]  ({view.origin})", highlight=False)
    stdout_console.print(describe(spec), highlight=False, markup=False)
    length = "context" if view.mode == "decode" else "seq"
    what = {"prefill": "forward FLOPs", "decode": "decode-step FLOPs", "train": "train FLOPs"}
    columns = [length, "batch", what[view.mode], "attn share", "per token"]
    serving = any(p.serving is not None for p in view.points)
    if serving:
        columns += ["TTFT", "TPOT", "tokens/s"]
    table = make_table(
        f"{view.mode} sweep ({view.attention} attention pairs)", columns, right_align_from=0
    )
    for p in view.points:
        row = [
            format_int(p.length),
            format_int(p.count.batch),
            format_int(p.pass_flops),
            format_percent(p.count.attention_share),
            format_flops(p.pass_flops / p.tokens),
        ]
        if p.serving is not None:
            row += _serving_cells(p.serving)
        table.add_row(*row)
    print_table(table)
    if serving and view.hardware is not None:
        _print_serving_note(view.hardware, view.dtype, view.points)
    print_note(
        "FLOP = one multiply or one add (a multiply-accumulate is 2 FLOPs); matmul FLOPs; SI "
        "units (1 TFLOP = 1e12). Attention pairs: " + convention_label(spec, view.attention) + "."
    )


def _print_serving_note(device: Hardware, dtype: str, points: list[FlopsPoint]) -> None:
    first = next(p.serving for p in points if p.serving is not None)
    if first is None:
        return
    bandwidth = (
        f"{device.bandwidth_bytes_per_s / 1e9:,.0f} GB/s"
        if device.has_bandwidth
        else "no bandwidth given"
    )
    peak = format_flops_per_second(device.peak_for(dtype))
    print_note(
        f"serving on {device.name} ({dtype}): peak {peak} dense, {bandwidth}; TTFT = prefill "
        "of batch x seq tokens (LM head on the last position only), TPOT = one decode step with "
        "seq tokens cached, tokens/s = batch / TPOT; at MFU "
        f"{format_percent(first.prefill.mfu, 0)} and MBU {format_percent(first.prefill.mbu, 0)}. "
        + EFFICIENCY_NOTE
        + f". Source: {device.source}"
    )
    if first.compute_only:
        print_note(
            "compute only: without --bandwidth the memory-bound times are unknown; decode is "
            "almost always memory-bound, so TPOT is a lower bound"
        )


def print_flops_csv(view: FlopsSweepView) -> None:
    print_csv([{"model": view.spec.name, **point_record(p)} for p in view.points])


def print_flops_sweep_json(view: FlopsSweepView) -> None:
    doc: dict[str, Any] = {
        **documents.model_fields(view.spec, view.origin),
        "mode": view.mode,
        "conventions": _conventions(view.spec, view.attention),
        "points": [point_record(p) for p in view.points],
    }
    if view.hardware is not None:
        doc["hardware"] = documents.hardware(view.hardware, view.dtype)
    print_json(doc)


def _conventions(spec: ModelSpec, attention: str) -> dict[str, Any]:
    return {
        "flop": "a multiply-accumulate is 2 FLOPs; matmul FLOPs only in totals",
        "attention": attention,
        "attention_description": convention_label(spec, attention),
        "units": "raw counts; SI prefixes in the human view (1 TFLOP = 1e12)",
    }


def _conventions_note(view: FlopsView) -> str:
    return (
        "FLOP = one multiply or one add (a multiply-accumulate is 2 FLOPs); headline figures are "
        "matmul FLOPs; SI units (1 TFLOP = 1e12). Attention pairs: "
        + convention_label(view.spec, view.forward.attention_convention)
        + "."
    )


def _what(view: FlopsView) -> str:
    fwd = view.forward
    if view.mode == "decode":
        text = f"decode step: batch {fwd.batch} x 1 new token after {fwd.context:,} cached tokens"
    else:
        text = f"{view.mode} forward: batch {fwd.batch} x seq {fwd.seq:,}"
    if fwd.encoder_seq:
        text += f" (encoder {fwd.encoder_seq:,})"
    return text


def print_flops(view: FlopsView, *, explain: bool) -> None:
    spec, fwd = view.spec, view.forward
    stdout_console.print(f"[bold]{spec.name}[/bold]  ({view.origin})", highlight=False)
    stdout_console.print(describe(spec), highlight=False, markup=False)
    stdout_console.print(
        f"{_what(view)}; attention convention: {convention_label(spec, fwd.attention_convention)}",
        style="bold cyan",
        markup=False,
    )
    _print_headline(view)

    title = f"FLOPs by component, {_what(view)}"
    table = make_table(title, ["component", "FLOPs", "", "share"])
    for name, value in fwd.components.items():
        style = "yellow" if name.endswith((".scores", ".av")) else None
        table.add_row(
            name,
            format_int(value),
            format_flops(value),
            format_percent(value / fwd.total),
            style=style,
        )
    table.add_section()
    table.add_row(
        "matmul total", format_int(fwd.total), format_flops(fwd.total), "100.0%", style="bold"
    )
    table.add_row(
        "  of which attention (QK^T + AV)",
        format_int(fwd.attention_flops),
        format_flops(fwd.attention_flops),
        format_percent(fwd.attention_share),
        style="bold yellow",
    )
    table.add_row(
        "elementwise (approx., not in total)",
        format_int(fwd.elementwise),
        format_flops(fwd.elementwise),
        format_percent(fwd.elementwise / fwd.total),
        style="dim",
    )
    print_table(table)
    _print_layers(fwd.groups)
    _print_mode(view)
    _print_scaling(view)
    if view.roofline is not None:
        _print_roofline(view.roofline, view.hardware)
    _print_serving(view)
    if explain:
        _print_explain(view)
    print_note(_conventions_note(view))


def _print_headline(view: FlopsView) -> None:
    """The answer first: how much of this pass is attention, under both conventions."""
    fwd, other = view.forward, view.other_convention
    if view.mode == "decode":
        where = f"of the decode step after {fwd.context:,} cached tokens"
    else:
        where = f"of the forward pass at {fwd.seq:,} tokens"
    stdout_console.print(
        f"attention (QK^T + AV) is {format_percent(fwd.attention_share)} {where}: "
        f"{format_flops(fwd.attention_flops)} of {format_flops(fwd.total)} (matmul FLOPs)",
        style="bold",
        markup=False,
    )
    stdout_console.print(
        f"  counted {convention_name(view.spec, other.attention_convention)} instead: "
        f"{format_percent(other.attention_share)}"
        f" (attention {format_flops(other.attention_flops)} = {format_int(other.attention_flops)},"
        f" {view.convention_ratio:.3f}x; total {format_flops(other.total)} = "
        f"{format_int(other.total)})",
        markup=False,
    )


def _print_layers(groups: tuple[LayerFlops, ...]) -> None:
    """One row per distinct layer (``FlopCount.groups``), with where those layers sit."""
    has_cross = any(layer.cross_attention for layer in groups)
    has_scan = any(layer.scan for layer in groups)
    any_moe = any(layer.moe for layer in groups)
    columns = ["layers", "kind", "pairs/seq", "projections", "attention"]
    if has_scan:
        columns.append("scan")
    if has_cross:
        columns.append("cross-attn")
    columns += ["mlp", "per layer"]
    table = make_table("Per layer (matmul FLOPs)", columns, right_align_from=2)
    for layer in groups:
        label = layer_positions(
            layer.stack, layer.index, layer.count, layer.stride, layer.spans, layer.more_spans
        )
        kind_text = f"{layer.kind}, {'MoE' if layer.moe else 'dense'}" if any_moe else layer.kind
        row = [label, kind_text, format_int(layer.pairs), format_int(layer.projections)]
        row.append(format_int(layer.attention))
        if has_scan:
            row.append(format_int(layer.scan))
        if has_cross:
            row.append(format_int(layer.cross_attention))
        row += [format_int(layer.mlp), format_int(layer.total)]
        table.add_row(*row)
    print_table(table)


def _same(a: LayerFlops, b: LayerFlops) -> bool:
    return replace(a, index=0, count=1) == replace(b, index=0, count=1)


def _print_mode(view: FlopsView) -> None:
    if view.mode == "train":
        factor = 4 if view.recompute else 3
        tokens = view.forward.batch * view.forward.seq
        stdout_console.print(
            f"training step: {factor} x forward = {format_flops(view.train_flops)} "
            f"({format_flops(view.train_flops / tokens)} per token)"
            + (" with activation recomputation" if view.recompute else ""),
            style="bold",
            markup=False,
        )
    if view.decode is not None:
        d = view.decode
        table = make_table(
            f"Decode: one new token after {d.with_cache.context:,} tokens "
            f"(batch {d.with_cache.batch})",
            ["", "FLOPs", "", "attention share"],
        )
        for label, count in (("with KV cache", d.with_cache), ("without cache", d.without_cache)):
            table.add_row(
                label,
                format_int(count.total),
                format_flops(count.total),
                format_percent(count.attention_share),
            )
        print_table(table)
        stdout_console.print(
            f"the KV cache saves {d.saving:,.1f}x the FLOPs of this token",
            style="bold",
            markup=False,
        )


def _print_scaling(view: FlopsView) -> None:
    spec, rows = view.spec, view.scaling
    table = make_table(
        "Scaling with sequence length (forward, batch "
        f"{view.forward.batch}, "
        f"{convention_name(spec, view.forward.attention_convention)} pairs)",
        ["seq", "total FLOPs", "attention FLOPs", "attn share", "rel. cost"],
    )
    base = rows[0].total
    for row in rows:
        table.add_row(
            format_int(row.seq),
            format_int(row.total),
            format_int(row.attention),
            format_percent(row.attention_share),
            f"{row.total / base:,.1f}x",
        )
    print_table(table)
    memory = make_table(
        "Attention memory of one layer", ["seq", "naive scores", "", "flash-style", ""]
    )
    batch = view.forward.batch
    for row in rows:
        naive = naive_attention_score_bytes(spec, row.seq, batch=batch, dtype=SCORES_DTYPE)
        flash = flash_attention_working_bytes(spec, row.seq, batch=batch, dtype=SCORES_DTYPE)
        memory.add_row(
            format_int(row.seq),
            format_int(naive),
            format_bytes(naive),
            format_int(flash),
            format_bytes(flash),
        )
    print_table(memory)
    print_note(
        f"rel. cost = total / total at {rows[0].seq:,}. Attention memory in bytes: naive "
        "scores = batch x heads x seq x seq x 4 B (the fp32 score matrix an eager attention "
        "materialises); flash-style = output + fp32 log-sum-exp per row (FlashAttention keeps "
        "O(seq), Dao et al. 2022); IEC units (1 GiB = 2**30 B)"
    )


def _print_roofline(r: Roofline, device: Hardware | None) -> None:
    table = make_table(f"Roofline on {r.hardware} ({r.dtype})", ["", "value"], text_columns=(1,))
    table.add_row("pass", r.what)
    if device is not None and device.memory_bytes:
        table.add_row(
            "device memory",
            f"{format_int(device.memory_bytes)} B ({format_bytes(device.memory_bytes)})",
        )
    table.add_row("FLOPs", f"{format_int(r.flops)} ({format_flops(r.flops)})")
    table.add_row("peak", f"{format_flops_per_second(r.peak_flops_per_s)} (dense datasheet)")
    table.add_row(
        "bandwidth",
        f"{r.bandwidth_bytes_per_s / 1e9:,.0f} GB/s" if r.has_bandwidth else "not given",
    )
    for label, value in r.bytes_parts.items():
        table.add_row(f"  {label}", f"{format_int(value)} B ({format_bytes(value)})")
    table.add_row("bytes moved", f"{format_int(r.bytes_moved)} B ({format_bytes(r.bytes_moved)})")
    table.add_row(
        f"compute-bound time (MFU {format_percent(r.mfu, 0)})", format_seconds(r.compute_seconds)
    )
    memory = r.memory_seconds
    table.add_row(
        f"memory-bound time (MBU {format_percent(r.mbu, 0)})",
        format_seconds(memory) if memory is not None else "unknown (no --bandwidth)",
    )
    intensity = r.intensity
    table.add_row(
        "arithmetic intensity",
        f"{intensity:,.1f} FLOP/B" if intensity is not None else "n/a (no bytes)",
    )
    ridge = r.ridge_intensity
    table.add_row(
        "device ridge point",
        f"{ridge:,.1f} FLOP/B" if ridge is not None else "n/a (no --bandwidth)",
    )
    if r.bound == "compute only":
        verdict = f"compute-bound answer only: {format_seconds(r.seconds)} (no --bandwidth given)"
    else:
        verdict = f"{r.bound}: {format_seconds(r.seconds)}"
    table.add_row("bound", verdict, style="bold")
    print_table(table)


def _print_serving(view: FlopsView) -> None:
    point = view.point
    if point is None or point.serving is None or view.hardware is None:
        return
    s = point.serving
    table = make_table(
        f"Serving on {view.hardware.name} ({view.dtype}): batch {s.batch} x {s.seq:,} prompt "
        "tokens",
        ["", "time", "bound"],
        text_columns=(2,),
    )
    table.add_row("time to first token (TTFT)", format_seconds(s.ttft_seconds), s.prefill.bound)
    table.add_row("time per output token (TPOT)", format_seconds(s.tpot_seconds), s.decode.bound)
    table.add_row("output tokens/s (batch / TPOT)", f"{s.output_tokens_per_s:,.1f}", "")
    table.add_row("prefill tokens/s", f"{s.prefill_tokens_per_s:,.1f}", "")
    print_table(table)
    _print_serving_note(view.hardware, view.dtype, [point])


def _print_explain(view: FlopsView) -> None:
    spec, fwd = view.spec, view.forward
    table = make_table("Formulas", ["term", "formula"], right_align_from=99, text_columns=(1,))
    for term in fwd.terms:
        table.add_row(term.component, format_term(term))
    pre = view.prefill
    full = pre if pre.attention_convention == "full" else view.prefill_other
    causal = view.prefill_other if pre.attention_convention == "full" else pre
    n = view.non_embedding_params
    tokens = pre.batch * pre.seq
    d_attn = spec.num_heads * spec.qk_head_dim
    kaplan = kaplan_forward_flops_per_token(n, spec, pre.seq)
    attention_layers = sum(
        run.count for run in spec.layer_runs if run.plan.mixer in ("attention", "mla")
    )
    ours = causal.total / tokens
    table.add_row(
        "Kaplan et al. 2020",
        f"2N + 2 n_layer n_ctx d_attn = 2 x {n:,} + 2 x {attention_layers} x {pre.seq:,} x "
        f"{d_attn} = {format_flops(kaplan)} per token; tfcli causal forward over {pre.seq:,}: "
        f"{format_flops(ours)} per token (ratio {ours / kaplan:.4f}). N = active parameters "
        "outside the token/position embeddings (a tied LM head is not in 2N); the context term is "
        "causal QK^T + AV averaged over positions",
    )
    palm = palm_training_flops_per_token(n, spec, pre.seq)
    train_per_token = 3 * full.total / tokens
    table.add_row(
        "PaLM (Chowdhery et al. 2022)",
        f"6N + 12 L H Q T = 6 x {n:,} + 12 x {attention_layers} x {spec.num_heads} x "
        f"{spec.qk_head_dim} x {pre.seq:,} = {format_flops(palm)} per training token; tfcli "
        f"3 x forward, full attention: {format_flops(train_per_token)} (ratio "
        f"{train_per_token / palm:.4f}; same N; torchtitan uses this formula)",
    )
    for label, formula in _megatron_state_rows(view):
        table.add_row(label, formula)
    print_table(table)


def _megatron_state_rows(view: FlopsView) -> list[tuple[str, str]]:
    """Megatron-LM's per-layer formula for each state mixer it names, beside tfcli's count of
    the same layer's mixer (projections, conv and scan: what transformers executes)."""
    pre = view.prefill
    tokens = pre.batch * pre.seq
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for plan, layer in pre.per_plan.items():
        named = MEGATRON_STATE_LAYERS.get(plan.mixer)
        if named is None or plan.mixer in seen:
            continue
        seen.add(plan.mixer)
        label, formula = named
        theirs = formula(view.spec, tokens)
        ours = layer.projections + layer.attention + layer.scan
        rows.append(
            (
                f"Megatron-LM, {label}",
                f"megatron/training/training.py hybrid_flops: {format_flops(theirs)} per "
                f"{label} layer over {tokens:,} tokens; tfcli (transformers' reference "
                f"implementation: projections, conv and chunked scan): {format_flops(ours)} "
                f"(ratio {ours / theirs:.4f})"
                + (
                    "; Megatron fixes d_in = 2h, counts 7 t d_in N for the scan and no conv1d"
                    if plan.mixer == "mamba2"
                    else "; Megatron counts the recurrence as 4 Hv dv^2 per token, unchunked"
                ),
            )
        )
    return rows


def flops_document(view: FlopsView) -> dict[str, Any]:
    """The JSON document of ``tfcli flops --json``: raw integers, units in key names."""
    spec, fwd = view.spec, view.forward
    doc: dict[str, Any] = {
        **documents.model_fields(spec, view.origin),
        "mode": view.mode,
        "pass": _what(view),
        "conventions": {**_conventions(spec, fwd.attention_convention), "logits": fwd.logits},
        **documents.flop_count(fwd),
        "seq": view.prefill.seq,
        "other_convention": {
            "attention": view.other_convention.attention_convention,
            "forward_flops": view.other_convention.total,
            "attention_flops": view.other_convention.attention_flops,
            "attention_share": view.other_convention.attention_share,
            # null, not NaN, when no layer attends (an all-Mamba model): 0 / 0
            "attention_ratio": view.convention_ratio if view.forward.attention_flops else None,
        },
        "prefill_forward_flops": view.prefill.total,
        "recompute": view.recompute,
        "scaling": [
            {
                "seq": row.seq,
                "forward_flops": row.total,
                "attention_flops": row.attention,
                "attention_share": row.attention_share,
                "naive_score_bytes_per_layer": naive_attention_score_bytes(
                    spec, row.seq, batch=fwd.batch, dtype=SCORES_DTYPE
                ),
                "flash_working_bytes_per_layer": flash_attention_working_bytes(
                    spec, row.seq, batch=fwd.batch, dtype=SCORES_DTYPE
                ),
            }
            for row in view.scaling
        ],
    }
    if view.mode == "train":
        doc["train_step_flops"] = view.train_flops
    if view.decode is not None:
        doc["decode"] = documents.decode_cost(view.decode)
    if view.roofline is not None:
        doc["roofline"] = documents.roofline(view.roofline)
    if view.hardware is not None:
        doc["hardware"] = documents.hardware(view.hardware, view.dtype)
    if view.point is not None:
        doc["points"] = [point_record(view.point)]
        if view.point.serving is not None:
            doc["serving"] = documents.serving(view.point.serving)
    return doc


def print_flops_json(view: FlopsView) -> None:
    print_json(flops_document(view))
