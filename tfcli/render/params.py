"""View of ``tfcli params``: components table, per-layer table, weight memory, JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfcli.params import LayerParams, ParamCount
from tfcli.render import documents
from tfcli.render.common import (
    format_bytes,
    format_count,
    format_int,
    format_percent,
    format_term,
    layer_positions,
    make_table,
    print_csv,
    print_json,
    print_note,
    print_table,
    stdout_console,
)
from tfcli.spec import ModelSpec
from tfcli.units import DTYPE_BITS, GB

if TYPE_CHECKING:
    from tfcli.quant import ServedWeights


@dataclass(frozen=True)
class ParamsView:
    """Everything ``tfcli params`` shows, computed before rendering."""

    spec: ModelSpec
    origin: str
    counts: ParamCount
    weight_bytes: dict[str, int]
    highlight_dtype: str
    transformers_total: int | None = None
    verify_note: str | None = None
    served: ServedWeights | None = None
    """The weights as the quantized checkpoint stores them (a ``quantization_config``)."""


def describe(spec: ModelSpec) -> str:
    """One line: architecture, attention kind, depth and width."""
    heads = f"{spec.num_heads} query / {spec.kv_heads} KV heads"
    if spec.is_mla:
        heads = f"{spec.num_heads} heads, latent {spec.kv_lora_rank}"
    depth = f"{spec.num_layers} layers"
    if spec.num_encoder_layers is not None:
        depth = f"{spec.num_encoder_layers} encoder + {spec.num_layers} decoder layers"
    moe = ""
    if spec.is_moe:
        moe = f" · MoE {spec.num_experts_per_token} of {spec.num_experts} experts"
        if spec.num_shared_experts:
            moe += f" + {spec.num_shared_experts} shared"
    context = (
        f" · trained context {spec.max_position_embeddings:,}"
        if spec.max_position_embeddings
        else ""
    )
    line = (
        f"{spec.architecture} · {spec.attention_kind} ({heads}) · {depth} · "
        f"hidden {spec.hidden_size}{moe}{context}"
    )
    if spec.uncounted:
        line += "\n" + uncounted_note(spec)
    return line


def uncounted_note(spec: ModelSpec) -> str:
    """The line a multimodal checkpoint gets: what the figures leave out."""
    return (
        f"language model only: {spec.uncounted} not counted "
        "(tfcli params --verify gives transformers' count of the whole checkpoint)"
    )


def print_params(view: ParamsView, *, explain: bool, per_layer: bool) -> None:
    spec, counts = view.spec, view.counts
    stdout_console.print(f"[bold]{spec.name}[/bold]  ({view.origin})", highlight=False)
    stdout_console.print(describe(spec), highlight=False, markup=False)

    columns = ["component", "parameters", "share"]
    if spec.is_moe:
        columns.append("active per token")
    table = make_table("Parameters by component", columns)
    for name, value in counts.components.items():
        row = [name, format_int(value), format_percent(value / counts.total)]
        if spec.is_moe:
            row.append(format_int(counts.active_components.get(name, 0)))
        table.add_row(*row)
    total_row = ["total", format_int(counts.total), "100.0%"]
    if spec.is_moe:
        total_row.append(format_int(counts.active))
    table.add_section()
    table.add_row(*total_row, style="bold")
    print_table(table)
    summary = f"total {format_int(counts.total)} ({format_count(counts.total)})"
    if spec.is_moe:
        summary += (
            f" · active per token {format_int(counts.active)} ({format_count(counts.active)}, "
            f"{format_percent(counts.active / counts.total)})"
        )
    if spec.tie_word_embeddings and spec.lm_head:
        summary += " · LM head tied to the token embeddings (counted once)"
    stdout_console.print(summary, highlight=False, markup=False)

    _print_layers(counts, per_layer=per_layer)
    _print_weights(view)
    if view.served is not None:
        _print_served(view.served, explain=explain)
    if view.transformers_total is not None:
        diff = counts.total - view.transformers_total
        more = "tfcli counts more" if diff > 0 else "tfcli counts fewer"
        verdict = "equal" if diff == 0 else f"differ by {format_int(diff)} ({more})"
        stdout_console.print(
            f"verify: tfcli {format_int(counts.total)} vs transformers "
            f"{format_int(view.transformers_total)} (meta device): {verdict}",
            style="green" if diff == 0 else "red",
            markup=False,
        )
        if view.verify_note:
            print_note(view.verify_note)
    if explain:
        _print_formulas(counts)
    print_note(
        "Counts in SI units (1 B = 1e9 parameters); memory in IEC units (1 GiB = 2**30 bytes) "
        "and SI GB (1e9 bytes). Weights only: no KV cache, activations or optimizer state."
    )


def _print_layers(counts: ParamCount, *, per_layer: bool) -> None:
    runs = counts.layers if per_layer else counts.groups
    has_cross = any(layer.cross_attention for layer in runs)
    has_moe = any(layer.mlp != layer.mlp_active for layer in runs)
    kinds = len({layer.kind for layer in runs}) > 1
    columns = ["layers"] + (["kind"] if kinds else []) + ["mixer"]
    if has_cross:
        columns.append("cross-attention")
    columns.append("mlp")
    if has_moe:
        columns.append("mlp active")
    columns += ["norms", "per layer"]
    if has_moe:
        columns.append("active per layer")
    table = make_table("Per layer", columns, right_align_from=2 if kinds else 1)
    for layer in runs:
        cells = [_layer_label(layer)] + ([layer.kind] if kinds else [])
        cells.append(format_int(layer.attention))
        if has_cross:
            cells.append(format_int(layer.cross_attention))
        cells.append(format_int(layer.mlp))
        if has_moe:
            cells.append(format_int(layer.mlp_active))
        cells += [format_int(layer.norms), format_int(layer.total)]
        if has_moe:
            cells.append(format_int(layer.active))
        table.add_row(*cells)
    print_table(table)


def _layer_label(layer: LayerParams) -> str:
    return layer_positions(
        layer.stack, layer.index, layer.count, layer.stride, layer.spans, layer.more_spans
    )


def _print_weights(view: ParamsView) -> None:
    table = make_table("Weight memory", ["dtype", "bits/param", "bytes", "GiB", "GB"])
    for dtype, nbytes in view.weight_bytes.items():
        style = "bold" if dtype == view.highlight_dtype else None
        table.add_row(
            dtype,
            str(DTYPE_BITS[dtype]),
            format_int(nbytes),
            format_bytes(nbytes),
            f"{nbytes / GB:,.2f} GB",
            style=style,
        )
    print_table(table)


def _print_served(served: ServedWeights, *, explain: bool) -> None:
    table = make_table(f"Weights as served: {served.label}", ["tensors", "bytes", "GiB", "share"])
    total = served.total_bytes

    def row(name: str, nbytes: int, style: str | None = None) -> None:
        share = format_percent(nbytes / total) if total else "-"
        table.add_row(name, format_int(nbytes), format_bytes(nbytes), share, style=style)

    for name, nbytes in served.parts.items():
        row(name, nbytes)
    row(f"unquantized ({served.rest_params:,} params in {served.rest_dtype})", served.rest_bytes)
    table.add_section()
    row("total", total, style="bold")
    print_table(table)
    stdout_console.print(
        f"{served.quantized_modules:,} quantized linear modules "
        f"({format_int(served.quantized_params)} params): packed weights "
        f"{format_bytes(served.packed_bytes)} + scales/zeros/indices "
        f"{format_bytes(served.overhead_bytes)} "
        f"({format_percent(served.overhead_fraction)} overhead on the packed weights)",
        highlight=False,
        markup=False,
    )
    if served.skipped:
        print_note("kept unquantized: " + ", ".join(served.skipped))
    if explain:
        formulas = make_table(
            "Served-weight formulas", ["per quantized module"], right_align_from=99
        )
        for formula in served.formulas:
            formulas.add_row(formula)
        formulas.add_row(
            f"total = packed + overhead + unquantized = {format_int(served.packed_bytes)} + "
            f"{format_int(served.overhead_bytes)} + {format_int(served.rest_bytes)} "
            f"= {format_int(total)} B"
        )
        print_table(formulas)


def served_document(served: ServedWeights) -> dict[str, Any]:
    """``served_weights`` in ``tfcli params --json``: raw integers."""
    return {
        "method": served.method,
        "label": served.label,
        "total_bytes": served.total_bytes,
        "packed_bytes": served.packed_bytes,
        "overhead_bytes": served.overhead_bytes,
        "overhead_fraction": served.overhead_fraction,
        "parts_bytes": dict(served.parts),
        "quantized_params": served.quantized_params,
        "quantized_modules": served.quantized_modules,
        "unquantized_params": served.rest_params,
        "unquantized_dtype": served.rest_dtype,
        "unquantized_bytes": served.rest_bytes,
        "kept_unquantized": list(served.skipped),
        "formulas": list(served.formulas),
    }


def _print_formulas(counts: ParamCount) -> None:
    table = make_table("Formulas", ["component", "formula"], right_align_from=99)
    for term in counts.terms:
        table.add_row(term.component, format_term(term))
    print_table(table)


def params_document(view: ParamsView) -> dict[str, Any]:
    """The JSON document of ``tfcli params --json``: raw integers, units in key names."""
    spec, counts = view.spec, view.counts
    doc: dict[str, Any] = {
        **documents.model_fields(spec, view.origin),
        **documents.param_count(counts),
        "weight_bytes": dict(view.weight_bytes),
        "conventions": {
            "tied_embeddings": "counted once",
            "weight_bytes": "ceil(params x bits / 8)",
        },
    }
    doc["served_weights"] = served_document(view.served) if view.served else None
    if view.transformers_total is not None:
        doc["transformers_total_params"] = view.transformers_total
        doc["difference"] = counts.total - view.transformers_total
        doc["difference_explained"] = view.verify_note
    return doc


def component_records(view: ParamsView) -> list[dict[str, Any]]:
    """The components table as raw values (CSV): one row per component, then the total."""
    counts = view.counts
    rows = [
        {
            "model": view.spec.name,
            "component": name,
            "params": value,
            "share": value / counts.total,
            "active_params": counts.active_components.get(name, 0),
        }
        for name, value in counts.components.items()
    ]
    rows.append(
        {
            "model": view.spec.name,
            "component": "total",
            "params": counts.total,
            "share": 1.0,
            "active_params": counts.active,
        }
    )
    return rows


def print_params_csv(view: ParamsView) -> None:
    print_csv(component_records(view))


def print_params_json(view: ParamsView) -> None:
    print_json(params_document(view))


def print_transformers_only(ref: str, model_type: str, total: int, *, json_output: bool) -> None:
    """``--verify`` on a model type tfcli cannot map: transformers' count alone."""
    if json_output:
        print_json({"model": ref, "model_type": model_type, "transformers_total_params": total})
        return
    stdout_console.print(
        f"{ref}: tfcli has no mapping for model_type {model_type!r}; transformers counts "
        f"{format_int(total)} parameters ({format_count(total)}) on the meta device",
        markup=False,
    )
