"""View of ``tfcli train``: memory per device, activations by layer kind, FLOPs, communication,
what fits; ``--explain`` formulas beside the anchors' (Megatron, DeepSpeed ZeRO, accelerate);
``--json`` one strict JSON document with raw integers."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from tfcli.parallel import Collective
from tfcli.render.common import (
    format_bytes,
    format_flops,
    format_int,
    format_percent,
    format_seconds,
    print_note,
    stdout_console,
)
from tfcli.render.params import describe
from tfcli.spec import ModelSpec
from tfcli.tensors import parameter_tensors
from tfcli.train import (
    ORACLE_CHECKED_FAMILIES,
    StepTime,
    TrainFit,
    TrainFlops,
    TrainMemory,
    block_saved,
    oracle_checked,
)

CONVENTIONS = (
    "memory per device in IEC units (1 GiB = 2**30 B); FLOPs in SI (1 PFLOP = 1e15), a "
    "multiply-accumulate is 2 FLOPs",
    "one steady-state step: optimizer states exist, gradients freed by "
    "zero_grad(set_to_none=True), only the loss kept (logits freed after it); dropout off",
    "precision as PyTorch does it: bf16 = model.to(bfloat16); bf16-mixed = fp32 weights, "
    "grads and AdamW states + torch.autocast(bfloat16) (no separate master copy)",
    "activations = what autograd saves, under the transformers 5 implementation profile named "
    "(sdpa / eager), checked against torch's MemTracker",
    "communication counted as the engine issues it (DTensor TP, FSDP2, DDP); bytes = the "
    "collective's buffer; the fused textbook convention beside it",
)


@dataclass(frozen=True)
class TrainView:
    """Everything ``tfcli train`` shows, computed before rendering."""

    spec: ModelSpec
    origin: str
    memory: TrainMemory
    flops: TrainFlops
    communication: list[Collective]
    time: StepTime | None
    hardware: str | None
    fit: TrainFit | None


class _Rows:
    """Rows collected first, so that every numeric column can be given the width of its
    widest cell: numeric columns are right-aligned, ``no_wrap`` and never narrower than their
    numbers, so no digit is ever cut; the label and the prose columns wrap instead."""

    def __init__(self, title: str, columns: list[str], *, prose: tuple[str, ...] = ()) -> None:
        self.title = title
        self.columns = columns
        self.prose = set(prose)
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def render(self) -> Table:
        table = Table(title=self.title, title_justify="left", header_style="bold")
        for i, column in enumerate(self.columns):
            cells = [Text.from_markup(row[i]).plain for row in self.rows if i < len(row)]
            if i == 0 or column in self.prose:
                table.add_column(column, justify="left", overflow="fold", ratio=1 if i else None)
            else:
                width = max([len(column), *(len(c) for c in cells)])
                table.add_column(column, justify="right", no_wrap=True, min_width=width)
        for row in self.rows:
            table.add_row(*row)
        return table


def _table(title: str, columns: list[str], *, prose: tuple[str, ...] = ()) -> _Rows:
    return _Rows(title, columns, prose=prose)


def setup_line(view: TrainView) -> str:
    s = view.memory.setup
    parallel = f"dp {s.dp} (zero {s.zero}) · tp {s.tp} · pp {s.pp} · ep {s.ep}"
    return (
        f"seq {s.seq:,} · micro-batch {s.micro_batch} · grad-accum {s.grad_accum} · "
        f"{s.precision} · {s.optimizer} · recompute {s.recompute} · profile "
        f"{s.attention_impl} · {parallel} = {s.devices} devices"
    )


def _memory_rows(view: TrainView) -> list[tuple[str, int, str]]:
    m = view.memory
    st = m.state
    acts = m.activations
    master_note = (
        "fp32 weights are the master copy (PyTorch AMP)"
        if m.setup.precision == "bf16-mixed"
        else "none"
    )
    rows = [
        ("parameters", st.parameters, st.parts[0].formula),
        ("gradients", st.gradients, st.parts[1].formula),
        ("optimizer states", st.optimizer_states, st.parts[2].formula),
        ("fp32 master weights", st.master_weights, master_note),
    ]
    for layer in acts.layers:
        rows.append(
            (
                f"activations: {layer.kind} layers",
                layer.total,
                f"{layer.layers} x {format_bytes(layer.bytes_per_layer)}",
            )
        )
    for part in acts.other:
        rows.append((f"activations: {part.name}", part.bytes * acts.in_flight, part.formula))
    if acts.in_flight > 1:
        rows.append(("  (micro-batches in flight)", acts.in_flight, "1F1B, first stage"))
    rows.append(
        (
            "logits + loss temporaries",
            acts.logits_bytes + acts.loss_temp_bytes,
            "alive while the loss is computed (t x V x a, + fp32 upcast)",
        )
    )
    if m.fsdp.root_bytes:
        rows.append(
            (
                "FSDP all-gather buffers",
                m.fsdp.all_gather_bytes,
                f"root {format_bytes(m.fsdp.root_bytes)} + 2 x block "
                f"{format_bytes(m.fsdp.block_bytes)}",
            )
        )
    rows.append(("buffers (RoPE inv_freq)", m.buffers_bytes, "inv_freq + original_inv_freq"))
    return rows


def print_train(view: TrainView, *, explain: bool = False) -> None:
    console = stdout_console
    m = view.memory
    console.print(f"[bold]{view.spec.name}[/bold]  ({view.origin})", highlight=False)
    console.print(describe(view.spec), highlight=False, markup=False)
    console.print(setup_line(view), highlight=False, markup=False)

    # the prose columns ("how", "textbook") need room; below 120 columns the numbers and
    # their labels get it, and --explain carries the formulas
    wide = console.width >= 120
    columns = ["item", "bytes", "IEC"] + (["how"] if wide else [])
    table = _table("memory per device", columns, prose=("how",))
    for name, value, how in _memory_rows(view):
        table.add_row(name, format_int(value), format_bytes(value), *([how] if wide else []))
    table.add_row(
        f"[bold]peak of one step[/bold] ({m.peak_phase})",
        f"[bold]{format_int(m.peak_bytes)}[/bold]",
        f"[bold]{format_bytes(m.peak_bytes)}[/bold]",
        *(["max over the phases below"] if wide else []),
    )
    console.print(table.render())

    phases = _table("step phases (per device)", ["phase", "bytes", "IEC"])
    for name, value in m.phases.items():
        phases.add_row(name, format_int(value), format_bytes(value))
    console.print(phases.render())

    sbh = m.setup.seq * m.setup.micro_batch * view.spec.hidden_size
    layers = _table(
        f"activations per layer (profile {m.setup.attention_impl}, recompute {m.setup.recompute})",
        ["kind", "layers", "bytes per layer", "per layer / (s b h)", "total"],
    )
    for layer in m.activations.layers:
        layers.add_row(
            layer.kind,
            str(layer.layers),
            format_int(layer.bytes_per_layer),
            f"{layer.bytes_per_layer / sbh:.1f}",
            format_bytes(layer.total),
        )
    console.print(layers.render())

    f = view.flops
    s = m.setup
    flops = _table("FLOPs", ["quantity", "FLOPs", "SI"])
    flops.add_row(
        "forward, one micro-batch", format_int(f.forward.total), format_flops(f.forward.total)
    )
    flops.add_row(
        f"training, one micro-batch ({f.multiplier:g} x forward)",
        format_int(f.per_micro_batch),
        format_flops(f.per_micro_batch),
    )
    flops.add_row("per step, all devices", format_int(f.per_step), format_flops(f.per_step))
    flops.add_row("per step, per device", format_int(f.per_device), format_flops(f.per_device))
    flops.add_row("tokens per step", format_int(s.tokens_per_step), "")
    if view.time is not None:
        flops.add_row(
            f"time per step on {view.hardware} (100% of peak)",
            format_seconds(view.time.seconds),
            "",
        )
        flops.add_row("MFU implied (model FLOPs / executed)", format_percent(view.time.mfu), "")
    console.print(flops.render())

    if view.communication:
        comm = _table(
            "communication per step, per device",
            ["collective", "count", "bytes", "IEC"] + (["textbook"] if wide else []),
            prose=("textbook",),
        )
        for c in view.communication:
            comm.add_row(
                f"{c.parallelism} {c.kind}",
                format_int(c.count),
                format_int(c.bytes),
                format_bytes(c.bytes),
                *([c.textbook] if wide else []),
            )
        console.print(comm.render())

    if view.fit is not None:
        fit = view.fit
        table = _table(
            f"what fits in {format_bytes(fit.budget_bytes)} per device"
            + (f" ({view.hardware})" if view.hardware else ""),
            ["knob (others as given)", "value"],
        )
        table.add_row("this step fits", "yes" if fit.fits else "no")
        table.add_row("largest micro-batch", _or_none(fit.max_micro_batch))
        table.add_row("longest sequence", _or_none(fit.max_seq))
        table.add_row(
            f"smallest dp (zero {s.zero})",
            _or_none(fit.min_dp) if s.zero or fit.min_dp == 1 else "dp does not shard at zero 0",
        )
        console.print(table.render())
    if explain:
        print_explain(view)
    if not oracle_checked(view.spec):
        print_note(
            f"activations of the {view.spec.family} family follow the shared per-op rules; the "
            f"MemTracker tests check {', '.join(ORACLE_CHECKED_FAMILIES)} so far"
        )
    for line in CONVENTIONS:
        print_note(line)


def _or_none(value: int | None) -> str:
    return "does not fit" if value is None else format_int(value)


def anchors(view: TrainView) -> dict[str, str]:
    """The anchors' formulas with the numbers put in, beside ours (where they differ)."""
    spec, m = view.spec, view.memory
    s = m.setup
    h, heads, seq, b = spec.hidden_size, spec.num_heads, s.seq, s.micro_batch
    megatron = seq * b * h * (34 + 5 * heads * seq / h)
    kind, moe = spec.layer_kinds[0], spec.moe_layer_flags[0]
    no_recompute = dataclasses.replace(s, recompute="none")
    ours = sum(p.bytes for p in block_saved(spec, no_recompute, kind=kind, moe=moe))
    n = max(1, s.dp)
    total = sum(t.numel for t in parameter_tensors(spec))
    out = {
        "Megatron (2205.05198 eq. 2)": (
            f"activations per layer, 16-bit, no recompute: s b h (34 + 5 a s / h) = {seq} x "
            f"{b} x {h} x (34 + 5 x {heads} x {seq} / {h}) = {megatron:,.0f} B; ours "
            f"{ours:,} B ({ours / max(1, seq * b * h):.1f} s b h) for {spec.name}'s first layer "
            f"kind under {s.precision} / {s.attention_impl}, recompute none (Megatron fuses "
            "q/k/v, keeps the dropout masks and counts LayerNorm inputs "
            "in 16-bit; transformers keeps fp32 norm internals and separate projections)"
        ),
        "DeepSpeed ZeRO-2": (
            f"code 2P + 18P/N, docs 4P + 16P/N, paper 2P + 14P/N with P = {total:,} params, "
            f"N = {n}: {2 * total + 18 * total // n:,} / {4 * total + 16 * total // n:,} / "
            f"{2 * total + 14 * total // n:,} B (no activations); ours (states only, per "
            f"device) {m.state.parameters + m.state.gradients + m.state.optimizer_states:,} B"
        ),
        "accelerate estimate-memory": (
            "the largest of {model, gradients, optimizer, step}, not their sum: "
            f"{max(m.state.parameters, m.state.gradients, m.state.optimizer_states):,} B; "
            f"ours peaks at {m.peak_bytes:,} B in phase '{m.peak_phase}'"
        ),
    }
    return out


def print_explain(view: TrainView) -> None:
    console = stdout_console
    m = view.memory
    table = _table("formulas (numbers put in)", ["item", "formula"], prose=("formula",))
    for part in m.state.parts:
        table.add_row(part.name, part.formula)
    for layer in m.activations.layers:
        for part in layer.parts:
            table.add_row(f"{layer.kind}: {part.name}", f"{part.formula} = {part.bytes:,} B")
    for part in m.activations.other:
        table.add_row(part.name, f"{part.formula} = {part.bytes:,} B")
    for c in view.communication:
        table.add_row(f"{c.parallelism} {c.kind}", c.formula)
    f = view.flops
    table.add_row(
        "training FLOPs",
        f"{f.multiplier:g} x forward = {f.per_micro_batch:,} per micro-batch; x "
        f"{m.setup.grad_accum} grad-accum x {m.setup.dp} dp = {f.per_step:,} per step",
    )
    for name, text in anchors(view).items():
        table.add_row(name, text)
    console.print(table.render())


def train_document(view: TrainView) -> dict[str, Any]:
    """The JSON document: raw integers, no formatting."""
    m = view.memory
    s = m.setup
    acts = m.activations
    doc: dict[str, Any] = {
        "model": view.spec.name,
        "origin": view.origin,
        "setup": {
            "seq": s.seq,
            "micro_batch": s.micro_batch,
            "grad_accum": s.grad_accum,
            "precision": s.precision,
            "optimizer": s.optimizer,
            "recompute": s.recompute,
            "attention_impl": s.attention_impl,
            "dp": s.dp,
            "zero": s.zero,
            "tp": s.tp,
            "pp": s.pp,
            "ep": s.ep,
            "devices": s.devices,
        },
        "memory": {
            "parameters_bytes": m.state.parameters,
            "gradients_bytes": m.state.gradients,
            "optimizer_states_bytes": m.state.optimizer_states,
            "master_weights_bytes": m.state.master_weights,
            "parameter_tensors": m.state.parameter_tensors,
            "activations_bytes": acts.total,
            "activations_by_layer_kind": [
                {
                    "kind": layer.kind,
                    "layers": layer.layers,
                    "bytes_per_layer": layer.bytes_per_layer,
                    "bytes": layer.total,
                    "parts": {p.name: p.bytes for p in layer.parts},
                }
                for layer in acts.layers
            ],
            "activations_other": {p.name: p.bytes for p in acts.other},
            "micro_batches_in_flight": acts.in_flight,
            "logits_bytes": acts.logits_bytes,
            "loss_temporaries_bytes": acts.loss_temp_bytes,
            "fsdp_all_gather_bytes": m.fsdp.all_gather_bytes,
            "fsdp_root_unsharded_bytes": m.fsdp.root_bytes,
            "buffers_bytes": m.buffers_bytes,
            "phases_bytes": dict(m.phases),
            "peak_bytes": m.peak_bytes,
            "peak_phase": m.peak_phase,
        },
        "flops": {
            "forward_per_micro_batch": view.flops.forward.total,
            "per_micro_batch": view.flops.per_micro_batch,
            "multiplier": view.flops.multiplier,
            "per_step": view.flops.per_step,
            "per_device": view.flops.per_device,
            "recompute_flops": view.flops.recompute_flops,
            "tokens_per_step": s.tokens_per_step,
        },
        "communication": [
            {
                "parallelism": c.parallelism,
                "kind": c.kind,
                "count": c.count,
                "bytes": c.bytes,
                "textbook": c.textbook,
            }
            for c in view.communication
        ],
        "conventions": list(CONVENTIONS),
        "oracle_checked": oracle_checked(view.spec),
    }
    if view.time is not None:
        doc["time"] = {
            "hardware": view.hardware,
            "step_seconds": view.time.seconds,
            "peak_flops_per_s": view.time.peak_flops_per_s,
            "mfu": view.time.mfu,
        }
    if view.fit is not None:
        doc["fit"] = {
            "budget_bytes": view.fit.budget_bytes,
            "fits": view.fit.fits,
            "max_micro_batch": view.fit.max_micro_batch,
            "max_seq": view.fit.max_seq,
            "min_dp": view.fit.min_dp,
        }
    return doc


def print_train_json(view: TrainView) -> None:
    """One strict JSON document on stdout (``allow_nan=False``)."""
    sys.stdout.write(json.dumps(train_document(view), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()
