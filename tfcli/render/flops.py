"""View of ``tfcli flops``: components, attention share, modes, scaling, roofline, JSON."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tfcli.flops import (
    DecodeCost,
    FlopCount,
    LayerFlops,
    ScalingRow,
    convention_label,
    kaplan_forward_flops_per_token,
    non_embedding_params,
    palm_training_flops_per_token,
    training_flops,
)
from tfcli.memory import flash_attention_working_bytes, naive_attention_score_bytes
from tfcli.params import ParamCount
from tfcli.render.common import (
    format_bytes,
    format_flops,
    format_int,
    format_percent,
    format_seconds,
    format_term,
    make_table,
    print_json,
    print_note,
    stdout_console,
    term_document,
)
from tfcli.render.params import describe
from tfcli.roofline import Roofline
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
    stdout_console.print(table)
    _print_layers(fwd.runs)
    _print_mode(view)
    _print_scaling(view)
    if view.roofline is not None:
        _print_roofline(view.roofline)
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
        f"  counted {other.attention_convention} instead: {format_percent(other.attention_share)}"
        f" (attention {format_flops(other.attention_flops)}, {view.convention_ratio:.3f}x; "
        f"total {format_flops(other.total)})",
        markup=False,
    )


def _print_layers(runs: tuple[LayerFlops, ...]) -> None:
    """One row per run of identical layers (the layer plan's runs, merged when equal)."""
    merged: list[LayerFlops] = []
    for run in runs:
        last = merged[-1] if merged else None
        if last is not None and _same(last, run) and last.index + last.count == run.index:
            merged[-1] = replace(last, count=last.count + run.count)
        else:
            merged.append(run)
    has_cross = any(layer.cross_attention for layer in merged)
    any_moe = any(layer.moe for layer in merged)
    columns = ["layers", "kind", "pairs/seq", "projections", "attention"]
    if has_cross:
        columns.append("cross-attn")
    columns += ["mlp", "per layer"]
    table = make_table("Per layer (matmul FLOPs)", columns, right_align_from=2)
    for layer in merged:
        label = f"{layer.stack} {layer.index}"
        if layer.count > 1:
            label += f"-{layer.index + layer.count - 1} ({layer.count}x)"
        kind_text = f"{layer.kind}, {'MoE' if layer.moe else 'dense'}" if any_moe else layer.kind
        row = [label, kind_text, format_int(layer.pairs), format_flops(layer.projections)]
        row.append(format_flops(layer.attention))
        if has_cross:
            row.append(format_flops(layer.cross_attention))
        row += [format_flops(layer.mlp), format_flops(layer.total)]
        table.add_row(*row)
    stdout_console.print(table)


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
        stdout_console.print(table)
        stdout_console.print(
            f"the KV cache saves {d.saving:,.1f}x the FLOPs of this token",
            style="bold",
            markup=False,
        )


def _print_scaling(view: FlopsView) -> None:
    spec, rows = view.spec, view.scaling
    table = make_table(
        "Scaling with sequence length (forward, batch "
        f"{view.forward.batch}, {view.forward.attention_convention} pairs)",
        [
            "seq",
            "total FLOPs",
            "attention FLOPs",
            "attn share",
            "rel. cost",
            "naive scores",
            "flash-style",
        ],
    )
    base = rows[0].total
    for row in rows:
        table.add_row(
            format_int(row.seq),
            format_flops(row.total),
            format_flops(row.attention),
            format_percent(row.attention_share),
            f"{row.total / base:,.1f}x",
            format_bytes(
                naive_attention_score_bytes(
                    spec, row.seq, batch=view.forward.batch, dtype=SCORES_DTYPE
                )
            ),
            format_bytes(
                flash_attention_working_bytes(
                    spec, row.seq, batch=view.forward.batch, dtype=SCORES_DTYPE
                )
            ),
        )
    stdout_console.print(table)
    print_note(
        f"rel. cost = total / total at {rows[0].seq:,}. Attention memory of one layer: naive "
        "scores = batch x heads x seq x seq x 4 B (the fp32 score matrix an eager attention "
        "materialises); flash-style = output + fp32 log-sum-exp per row (FlashAttention keeps "
        "O(seq), Dao et al. 2022); IEC units (1 GiB = 2**30 B)"
    )


def _print_roofline(r: Roofline) -> None:
    table = make_table(f"Roofline on {r.hardware} ({r.dtype})", ["", "value"])
    table.add_row("pass", r.what)
    table.add_row("FLOPs", format_flops(r.flops))
    table.add_row("peak", f"{format_flops(r.peak_flops_per_s)}/s (dense datasheet)")
    table.add_row("bandwidth", f"{r.bandwidth_bytes_per_s / 1e9:,.0f} GB/s")
    for label, value in r.bytes_parts.items():
        table.add_row(f"  {label}", format_bytes(value))
    table.add_row("bytes moved", format_bytes(r.bytes_moved))
    table.add_row("compute-bound time", format_seconds(r.compute_seconds))
    table.add_row("memory-bound time", format_seconds(r.memory_seconds))
    table.add_row("arithmetic intensity", f"{r.intensity:,.1f} FLOP/B")
    table.add_row("device ridge point", f"{r.ridge_intensity:,.1f} FLOP/B")
    table.add_row("bound", f"{r.bound}: {format_seconds(r.seconds)} at 100% of peak", style="bold")
    stdout_console.print(table)


def _print_explain(view: FlopsView) -> None:
    spec, fwd = view.spec, view.forward
    table = make_table("Formulas", ["term", "formula"], right_align_from=99)
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
    stdout_console.print(table)


def flops_document(view: FlopsView) -> dict[str, Any]:
    """The JSON document of ``tfcli flops --json``: raw integers, units in key names."""
    spec, fwd = view.spec, view.forward
    doc: dict[str, Any] = {
        "model": spec.name,
        "origin": view.origin,
        "mode": view.mode,
        "pass": _what(view),
        "seq": view.prefill.seq,
        "batch": fwd.batch,
        "encoder_seq": fwd.encoder_seq or None,
        "conventions": {
            "flop": "a multiply-accumulate is 2 FLOPs; matmul FLOPs only in totals",
            "attention": fwd.attention_convention,
            "attention_description": convention_label(spec, fwd.attention_convention),
            "logits": fwd.logits,
        },
        "forward_flops": fwd.total,
        "components_flops": dict(fwd.components),
        "attention_flops": fwd.attention_flops,
        "attention_share": fwd.attention_share,
        "elementwise_flops_approx": fwd.elementwise,
        "other_convention": {
            "attention": view.other_convention.attention_convention,
            "forward_flops": view.other_convention.total,
            "attention_flops": view.other_convention.attention_flops,
            "attention_share": view.other_convention.attention_share,
            "attention_ratio": view.convention_ratio,
        },
        "layers": [
            {
                "index": layer.index,
                "count": layer.count,
                "stack": layer.stack,
                "kind": layer.kind,
                "pairs_per_sequence": layer.pairs,
                "projection_flops": layer.projections,
                "attention_flops": layer.attention,
                "cross_attention_flops": layer.cross_attention,
                "mlp_flops": layer.mlp,
                "moe": layer.moe,
                "total_flops": layer.total,
            }
            for layer in fwd.runs
        ],
        "prefill_forward_flops": view.prefill.total,
        "train_step_flops": view.train_flops,
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
        "terms": [term_document(t) for t in fwd.terms],
    }
    if view.decode is not None:
        doc["decode"] = {
            "context": view.decode.with_cache.context,
            "with_cache_flops": view.decode.with_cache.total,
            "without_cache_flops": view.decode.without_cache.total,
            "saving_factor": view.decode.saving,
        }
    if view.roofline is not None:
        r = view.roofline
        doc["roofline"] = {
            "hardware": r.hardware,
            "dtype": r.dtype,
            "what": r.what,
            "flops": r.flops,
            "bytes_moved": r.bytes_moved,
            "peak_flops_per_s": r.peak_flops_per_s,
            "bandwidth_bytes_per_s": r.bandwidth_bytes_per_s,
            "compute_seconds": r.compute_seconds,
            "memory_seconds": r.memory_seconds,
            "seconds": r.seconds,
            "intensity_flops_per_byte": r.intensity,
            "bound": r.bound,
        }
    return doc


def print_flops_json(view: FlopsView) -> None:
    print_json(flops_document(view))
