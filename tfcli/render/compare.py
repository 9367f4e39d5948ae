"""View of ``tfcli compare``: one column per model, the first one the baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfcli.flops import FlopCount
from tfcli.memory import KVCache
from tfcli.params import ParamCount
from tfcli.render import documents
from tfcli.render.common import (
    format_bytes,
    format_flops,
    format_int,
    format_percent,
    make_table,
    print_csv,
    print_json,
    print_note,
    print_table,
)
from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class ComparedModel:
    """The compared figures of one model (or of one model with its own what-ifs)."""

    label: str
    spec: ModelSpec
    overrides: tuple[str, ...]
    params: ParamCount
    weight_bytes: int
    forward: FlopCount
    kv_cache: KVCache | None
    """None for an encoder-only model (no KV cache)."""

    @property
    def kv_bytes_per_token(self) -> int:
        return self.kv_cache.bytes_per_token if self.kv_cache else 0

    @property
    def kv_total_bytes(self) -> int:
        return self.kv_cache.total_bytes if self.kv_cache else 0


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.3g}x" if base else "n/a"


def print_compare(
    rows: list[ComparedModel], *, seq: int, batch: int, dtype: str, attention: str
) -> None:
    table = make_table(
        f"Compared at batch {batch} x seq {seq:,} ({dtype}, {attention} attention); "
        f"ratios against {rows[0].label}",
        ["", *(r.label.replace(":", " ") for r in rows)],
    )
    base = rows[0]
    lines: list[tuple[str, Callable[[ComparedModel], str]]] = [
        ("architecture", lambda r: r.spec.architecture),
        ("attention", lambda r: r.spec.attention_kind),
        ("layers", lambda r: str(r.spec.total_layers)),
        (
            "trained context",
            lambda r: (
                format_int(r.spec.max_position_embeddings)
                if r.spec.max_position_embeddings
                else "-"
            ),
        ),
        ("params", lambda r: format_int(r.params.total)),
        ("active params / token", lambda r: format_int(r.params.active)),
        ("params vs baseline", lambda r: _ratio(r.params.total, base.params.total)),
        (f"weights ({dtype}), bytes", lambda r: format_int(r.weight_bytes)),
        (f"weights ({dtype})", lambda r: format_bytes(r.weight_bytes)),
        ("forward FLOPs", lambda r: format_int(r.forward.total)),
        ("", lambda r: format_flops(r.forward.total)),
        ("FLOPs / token", lambda r: format_flops(r.forward.total / (batch * seq))),
        ("attention FLOPs", lambda r: format_int(r.forward.attention_flops)),
        ("attention share", lambda r: format_percent(r.forward.attention_share)),
        ("FLOPs vs baseline", lambda r: _ratio(r.forward.total, base.forward.total)),
        ("KV cache / token, bytes", lambda r: format_int(r.kv_bytes_per_token)),
        (f"KV cache at {seq:,}, bytes", lambda r: format_int(r.kv_total_bytes)),
        (f"KV cache at {seq:,}", lambda r: format_bytes(r.kv_total_bytes)),
        ("KV cache vs baseline", lambda r: _ratio(r.kv_total_bytes, base.kv_total_bytes)),
    ]
    for label, cell in lines:
        table.add_row(label, *(cell(r) for r in rows))
    print_table(table)
    print_note(
        "counts and FLOPs in SI units (1 B = 1e9, 1 TFLOP = 1e12; a multiply-accumulate is 2 "
        "FLOPs); memory in IEC units (1 GiB = 2**30 bytes); KV cache / token counts every "
        "layer (sliding windows cap the total, not the per-token figure: rule 'window', a "
        "sliding layer holds the last w tokens); encoder-decoder models add the cross-attention "
        "cache with as many encoder tokens as decoder tokens; MODEL:key=value columns are "
        "what-ifs of that model"
    )


def compared_record(r: ComparedModel) -> dict[str, Any]:
    """One column as raw values (JSON ``models`` and CSV rows)."""
    return {
        "label": r.label,
        **documents.model_fields(r.spec),
        "overrides": list(r.overrides),
        **documents.param_totals(r.params),
        "weight_bytes": r.weight_bytes,
        **{
            k: v
            for k, v in documents.flop_totals(r.forward).items()
            if k in ("forward_flops", "attention_flops", "attention_share")
        },
        "kv_cache": documents.kv_totals(r.kv_cache) if r.kv_cache is not None else None,
    }


def _settings(seq: int, batch: int, dtype: str, attention: str) -> dict[str, Any]:
    return {"seq": seq, "batch": batch, "dtype": dtype, "attention_convention": attention}


def print_compare_json(
    rows: list[ComparedModel], *, seq: int, batch: int, dtype: str, attention: str
) -> None:
    print_json(
        {
            **_settings(seq, batch, dtype, attention),
            "baseline": rows[0].label,
            "models": [compared_record(r) for r in rows],
        }
    )


def print_compare_csv(
    rows: list[ComparedModel], *, seq: int, batch: int, dtype: str, attention: str
) -> None:
    records = []
    for r in rows:
        record = compared_record(r)
        cache = record.pop("kv_cache") or {}
        record["overrides"] = ";".join(r.overrides)
        record.update(_settings(seq, batch, dtype, attention))
        record["kv_bytes_per_token"] = cache.get("bytes_per_token", 0)
        record["kv_total_bytes"] = cache.get("total_bytes", 0)
        records.append(record)
    print_csv(records)
