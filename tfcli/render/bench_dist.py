"""View of ``tfcli bench --dist``: numerics, step time, collectives and memory against the
estimates (rank 0 only)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.table import Table

from tfcli.render.common import format_bytes, format_int, format_seconds, print_note, stdout_console


def print_dist_json(doc: dict[str, Any]) -> None:
    """One strict JSON document on stdout."""
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def print_dist(doc: dict[str, Any]) -> None:
    console = stdout_console
    console.print(
        f"[bold]{doc['model']}[/bold] · {doc['mode']}={doc['world_size']} on {doc['backend']} · "
        f"{doc['layers']} layer(s) · batch {doc['batch']} · seq {doc['seq']:,}",
        highlight=False,
    )
    table = Table(title="measured against tfcli's estimates", title_justify="left")
    table.add_column("quantity")
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("estimated", justify="right", no_wrap=True)
    table.add_row("max abs diff vs unsharded", f"{doc['max_abs_diff']:.2e}", "<= 1e-05 (fp32)")
    table.add_row("step time (median)", format_seconds(doc["step_seconds"]), "")
    kinds = sorted(set(doc["collectives"]) | set(doc["predicted_collectives"]))
    for kind in kinds:
        got = doc["collectives"].get(kind, {"count": 0, "bytes": 0})
        want = doc["predicted_collectives"].get(kind, {"count": 0, "bytes": 0})
        table.add_row(
            f"{kind} per step",
            f"{format_int(got['count'])} x, {format_bytes(got['bytes'])}",
            f"{format_int(want['count'])} x, {format_bytes(want['bytes'])}",
        )
    table.add_row(
        "peak memory per rank",
        format_bytes(doc["memory_peak_bytes"]),
        format_bytes(doc["predicted_memory_peak_bytes"]),
    )
    console.print(table)
    for note in doc["notes"]:
        print_note(note)
