"""Views of ``tfcli models`` and ``tfcli show``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from tfcli.render import documents
from tfcli.render.common import (
    format_int,
    make_table,
    print_csv,
    print_json,
    print_note,
    print_table,
    stdout_console,
)
from tfcli.render.tables import GridColumn
from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class ModelRow:
    """One line of ``tfcli models``."""

    spec: ModelSpec
    total_params: int
    active_params: int


def _context(spec: ModelSpec) -> str:
    return format_int(spec.max_position_embeddings) if spec.max_position_embeddings else "-"


MIXER_NAMES = {
    "gated_deltanet": "GDN",
    "lightning": "lightning",
    "mamba": "Mamba",
    "mamba2": "Mamba2",
    "rwkv": "RWKV",
}


def attention_notation(spec: ModelSpec) -> str:
    """One notation for every model: ``GQA 32/8`` (query / KV heads), ``MHA 12``, ``MQA 71/1``,
    ``MLA 128, r 512`` (heads, latent rank), then the layer kinds beyond full attention:
    ``sliding 4096`` (every layer) or ``full+sliding 4096`` (mixed), ``chunked 8192``, and the
    state mixers with their layer counts (``+ GDN 36/48``, ``Mamba2 36/40``); a pure state-space
    model is just its mixer (``Mamba 64``). See ``ATTENTION_LEGEND``."""
    counts = spec.kind_counts
    total = sum(counts.values())
    state = {k: n for k, n in counts.items() if k in MIXER_NAMES}
    attention = total - sum(state.values())
    if not attention:
        return " + ".join(f"{MIXER_NAMES[k]} {n}" for k, n in state.items())
    kind = spec.attention_kind
    if spec.is_mla:
        text = f"MLA {spec.num_heads}, r {spec.kv_lora_rank}"
    elif kind == "MHA":
        text = f"MHA {spec.num_heads}"
    else:
        text = f"{kind} {spec.num_heads}/{spec.kv_heads}"
    kinds = {k.split("+")[0] for k in counts}
    if "sliding" in kinds and spec.sliding_window is not None:
        text += (" full+sliding " if "full" in kinds else " sliding ") + str(spec.sliding_window)
    if "chunked" in kinds and spec.attention_chunk_size is not None:
        mixed = " full+chunked " if "full" in kinds else " chunked "
        text += mixed + str(spec.attention_chunk_size)
    if spec.parallel_ssm:
        text += " & Mamba2"
    for mixer, n in state.items():
        text += f" + {MIXER_NAMES[mixer]} {n}/{total}"
    if spec.sparse_attention == "longformer":
        text += f" longformer {spec.sliding_window}"
    elif spec.sparse_attention == "bigbird":
        text += f" bigbird {spec.sparse_block_size}x{spec.sparse_random_blocks}"
    if spec.position_type == "disentangled":
        text += f" disentangled {spec.relative_position_span}"
    return text


ATTENTION_LEGEND = (
    "attention: MHA H = H query and H KV heads; GQA H/K = H query heads sharing K KV heads; "
    "MQA H/1 = one KV head; MLA H, r R = H heads reading a latent of rank R (kv_lora_rank); "
    "sliding w = every layer attends the last w tokens; full+sliding w = full and sliding-window "
    "layers mixed (in an encoder: w / 2 each side); chunked c = local attention within "
    "chunks of c; "
    "+ GDN n/L = n of L layers are Gated DeltaNet (likewise lightning, Mamba, Mamba2, RWKV: "
    "fixed-state mixers); & Mamba2 = a Mamba-2 mixer beside the attention in every layer; "
    "longformer w = a window of w / 2 each side plus global tokens; bigbird bxr = blocks of b, "
    "r random per query block; disentangled k = DeBERTa's relative attention over 2k positions"
)

_ARCH = {"decoder": "decoder", "encoder": "encoder", "encoder-decoder": "enc-dec"}


def print_models(rows: list[ModelRow]) -> None:
    """Table of known specs: exact parameter counts, trained context, attention notation."""
    table = make_table(
        "Model specs",
        ["name", "family", "arch.", "params / active", "context", "attention"],
        right_align_from=3,
    )
    table.columns[5] = GridColumn("attention", "label")
    for row in rows:
        spec = row.spec
        params = format_int(row.total_params)
        if spec.is_moe:
            params += "\n" + format_int(row.active_params)
        table.add_row(
            spec.name,
            spec.family,
            _ARCH.get(spec.architecture, spec.architecture),
            params,
            _context(spec),
            attention_notation(spec),
        )
    print_table(table)
    print_note(
        "params / active: total parameters, and below them the parameters used per token "
        "(MoE only); context = max_position_embeddings in tokens; enc-dec = encoder-decoder. "
        + ATTENTION_LEGEND
    )


def print_model_types(rows: list[dict[str, str]], chosen: str) -> None:
    """``tfcli models --types``: the config.json model types and what each reads."""
    if chosen == "json":
        print_json({"model_types": rows})
        return
    if chosen == "csv":
        print_csv(rows)
        return
    table = make_table(
        f"config.json model types ({len(rows)})",
        ["model_type", "reads", "arch.", "class defaults"],
        right_align_from=99,
        text_columns=(1, 3),
    )
    for row in rows:
        table.add_row(
            row["model_type"],
            row["reads"],
            _ARCH.get(row["architecture"], row["architecture"]),
            row["defaults"],
        )
    print_table(table)
    print_note(
        "reads = the transformers config class whose defaults fill missing keys; class defaults "
        "= the attention of a config.json naming only its model_type; a clone with another "
        "model_type reads with --as TYPE. " + ATTENTION_LEGEND
    )


def model_record(row: ModelRow) -> dict[str, Any]:
    """One model as raw values (JSON and CSV)."""
    return {
        **documents.model_fields(row.spec),
        "total_params": row.total_params,
        "active_params": row.active_params,
        "attention": attention_notation(row.spec),
        "source": row.spec.source,
    }


def print_models_json(rows: list[ModelRow]) -> None:
    print_json({"models": [model_record(r) for r in rows]})


def print_models_csv(rows: list[ModelRow]) -> None:
    print_csv([model_record(r) for r in rows])


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        if len(set(value)) == 1:
            return f"{len(value)} x {value[0]}"
        return ", ".join(str(v) for v in value)
    return str(value)


def derived_values(spec: ModelSpec) -> dict[str, Any]:
    """The derived properties shown by ``tfcli show`` beside the fields."""
    return {
        "kv_heads": spec.kv_heads,
        "head_dim (resolved)": spec.resolved_head_dim,
        "attention_kind": spec.attention_kind,
        "causal": spec.is_causal,
        "layer_kinds": spec.layer_kinds,
        "moe_layers": spec.num_moe_layers,
    }


def print_show(
    spec: ModelSpec,
    origin: str,
    field_origins: dict[str, str],
    *,
    all_fields: bool,
    quantization: dict[str, Any] | None = None,
) -> None:
    """Every field (or every non-default one), its value and where it came from."""
    defaults = {
        f.name: f.default for f in dataclasses.fields(spec) if f.default is not dataclasses.MISSING
    }
    stdout_console.print(f"[bold]{spec.name}[/bold]  from {origin}", markup=True, highlight=False)
    table = make_table(None, ["field", "value", "origin"], right_align_from=99, text_columns=(1, 2))
    for name in spec.to_dict():
        current = getattr(spec, name)
        if not all_fields and name in defaults and defaults[name] == current:
            continue
        table.add_row(name, _value(current), field_origins.get(name, "tfcli default"))
    print_table(table)
    derived = make_table("Derived", ["property", "value"], right_align_from=99, text_columns=(1,))
    for name, value in derived_values(spec).items():
        derived.add_row(name, _value(value))
    print_table(derived)
    if quantization is not None:
        method = quantization.get("quant_method", "?")
        print_note(
            f"quantization_config: {method} "
            + json.dumps(quantization, sort_keys=True, default=str)[:300]
            + " (tfcli params shows the weights as served)"
        )
    if not all_fields:
        print_note("fields at their default value are hidden; --all shows every field")


def show_records(spec: ModelSpec, field_origins: dict[str, str]) -> list[dict[str, Any]]:
    """Every field as ``field, value, origin`` rows (CSV)."""
    return [
        {"field": name, "value": _value(value), "origin": field_origins.get(name, "tfcli default")}
        for name, value in spec.to_dict().items()
    ]


def print_show_csv(spec: ModelSpec, field_origins: dict[str, str]) -> None:
    print_csv(show_records(spec, field_origins))


def print_show_json(
    spec: ModelSpec,
    origin: str,
    field_origins: dict[str, str],
    quantization: dict[str, Any] | None = None,
) -> None:
    doc: dict[str, Any] = {
        "model": spec.name,
        "origin": origin,
        "spec": spec.to_dict(),
        "field_origins": field_origins,
        "derived": {k: v for k, v in derived_values(spec).items()},
    }
    if quantization is not None:
        doc["quantization_config"] = quantization
    print_json(doc)
