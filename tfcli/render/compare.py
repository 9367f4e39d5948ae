"""View of ``tfcli compare``: one column per model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfcli.render.common import (
    format_bytes,
    format_count,
    format_flops,
    format_percent,
    make_table,
    print_json,
    print_note,
    print_table,
)
from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class ComparedModel:
    """The compared figures of one model."""

    spec: ModelSpec
    params: int
    active_params: int
    weight_bytes: int
    forward_flops: int
    attention_flops: int
    kv_bytes_per_token: int
    kv_bytes_at_seq: int

    @property
    def attention_share(self) -> float:
        return self.attention_flops / self.forward_flops if self.forward_flops else 0.0


def print_compare(
    rows: list[ComparedModel], *, seq: int, batch: int, dtype: str, attention: str
) -> None:
    table = make_table(
        f"Compared at batch {batch} x seq {seq:,} ({dtype}, {attention} attention)",
        ["", *(r.spec.name for r in rows)],
    )
    lines: list[tuple[str, Any]] = [
        ("architecture", lambda r: r.spec.architecture),
        ("attention", lambda r: r.spec.attention_kind),
        ("layers", lambda r: str(r.spec.total_layers)),
        ("params", lambda r: format_count(r.params)),
        ("active params / token", lambda r: format_count(r.active_params)),
        (f"weights ({dtype})", lambda r: format_bytes(r.weight_bytes)),
        ("forward FLOPs", lambda r: format_flops(r.forward_flops)),
        ("FLOPs / token", lambda r: format_flops(r.forward_flops / (batch * seq))),
        ("attention share", lambda r: format_percent(r.attention_share)),
        ("KV cache / token", lambda r: format_bytes(r.kv_bytes_per_token)),
        (f"KV cache at {seq:,}", lambda r: format_bytes(r.kv_bytes_at_seq)),
    ]
    for label, cell in lines:
        table.add_row(label, *(cell(r) for r in rows))
    print_table(table)
    print_note(
        "counts and FLOPs in SI units (1 B = 1e9, 1 TFLOP = 1e12; a multiply-accumulate is 2 "
        "FLOPs); memory in IEC units (1 GiB = 2**30 bytes); KV cache / token counts every "
        "layer (sliding windows cap the total, not the per-token figure: rule 'window', a "
        "sliding layer holds the last w tokens); encoder-decoder models add the cross-attention "
        "cache with as many encoder tokens as decoder tokens"
    )


def print_compare_json(
    rows: list[ComparedModel], *, seq: int, batch: int, dtype: str, attention: str
) -> None:
    print_json(
        {
            "seq": seq,
            "batch": batch,
            "dtype": dtype,
            "attention": attention,
            "models": [
                {
                    "model": r.spec.name,
                    "architecture": r.spec.architecture,
                    "attention_kind": r.spec.attention_kind,
                    "params": r.params,
                    "active_params": r.active_params,
                    "weight_bytes": r.weight_bytes,
                    "forward_flops": r.forward_flops,
                    "attention_flops": r.attention_flops,
                    "attention_share": r.attention_share,
                    "kv_bytes_per_token": r.kv_bytes_per_token,
                    "kv_bytes_at_seq": r.kv_bytes_at_seq,
                }
                for r in rows
            ],
        }
    )
