"""Views of ``tfcli models`` and ``tfcli show``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tfcli.render.common import (
    format_count,
    format_int,
    make_table,
    print_json,
    print_note,
    print_table,
    stdout_console,
)
from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class ModelRow:
    """One line of ``tfcli models``."""

    spec: ModelSpec
    total_params: int
    active_params: int


def _context(spec: ModelSpec) -> str:
    return format_int(spec.max_position_embeddings) if spec.max_position_embeddings else "-"


def _attention(spec: ModelSpec) -> str:
    kind = spec.attention_kind
    kinds = set(spec.layer_kinds)
    if "sliding" in kinds:
        kind += " + sliding" if "full" in kinds else ", sliding"
        kind += f" {spec.sliding_window}"
    return kind


def print_models(rows: list[ModelRow]) -> None:
    """Table of known specs; params in SI units (B = 1e9)."""
    table = make_table(
        "Model specs",
        ["name", "family", "architecture", "params", "active", "context", "attention"],
        right_align_from=3,
    )
    for row in rows:
        spec = row.spec
        active = format_count(row.active_params) if spec.is_moe else "="
        table.add_row(
            spec.name,
            spec.family,
            spec.architecture,
            format_count(row.total_params),
            active,
            _context(spec),
            _attention(spec),
        )
    print_table(table)
    print_note("params in SI units (1 B = 1e9); active = parameters used per token (MoE)")


def print_models_json(rows: list[ModelRow]) -> None:
    print_json(
        {
            "models": [
                {
                    "name": r.spec.name,
                    "family": r.spec.family,
                    "architecture": r.spec.architecture,
                    "params": r.total_params,
                    "active_params": r.active_params,
                    "context": r.spec.max_position_embeddings,
                    "attention": r.spec.attention_kind,
                    "source": r.spec.source,
                }
                for r in rows
            ]
        }
    )


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
    spec: ModelSpec, origin: str, field_origins: dict[str, str], *, all_fields: bool
) -> None:
    """Every field (or every non-default one), its value and where it came from."""
    defaults = {
        f.name: f.default for f in dataclasses.fields(spec) if f.default is not dataclasses.MISSING
    }
    stdout_console.print(f"[bold]{spec.name}[/bold]  from {origin}", markup=True, highlight=False)
    table = make_table(None, ["field", "value", "origin"], right_align_from=99)
    for name in spec.to_dict():
        current = getattr(spec, name)
        if not all_fields and name in defaults and defaults[name] == current:
            continue
        table.add_row(name, _value(current), field_origins.get(name, "tfcli default"))
    print_table(table)
    derived = make_table("Derived", ["property", "value"], right_align_from=99)
    for name, value in derived_values(spec).items():
        derived.add_row(name, _value(value))
    print_table(derived)
    if not all_fields:
        print_note("fields at their default value are hidden; --all shows every field")


def print_show_json(spec: ModelSpec, origin: str, field_origins: dict[str, str]) -> None:
    print_json(
        {
            "name": spec.name,
            "origin": origin,
            "spec": spec.to_dict(),
            "field_origins": field_origins,
            "derived": {k: v for k, v in derived_values(spec).items()},
        }
    )
