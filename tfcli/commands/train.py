"""``tfcli train MODEL``: training memory, FLOPs and communication per device; what fits."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from tfcli.commands.options import AsTypeOpt, ExplainOpt, JsonOpt, ModelArg, SetOpt, SpecsDirOpt
from tfcli.errors import UsageError


def train(
    model: ModelArg,
    seq: Annotated[int, typer.Option("--seq", help="Tokens per sequence.")] = 2048,
    micro_batch: Annotated[
        int, typer.Option("--micro-batch", help="Sequences per micro-batch per device.")
    ] = 1,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="fp32, bf16 (model.to(bfloat16)) or bf16-mixed (fp32 weights + autocast).",
        ),
    ] = "bf16-mixed",
    optimizer: Annotated[
        str, typer.Option("--optimizer", help="adamw (2 states) or sgd (momentum).")
    ] = "adamw",
    recompute: Annotated[
        str,
        typer.Option("--recompute", help="Activation recomputation: none, selective or full."),
    ] = "none",
    attention_impl: Annotated[
        str | None,
        typer.Option(
            "--attention-impl",
            help="Implementation profile: sdpa or eager (default sdpa; eager for a model that "
            "soft-caps its attention logits, which SDPA cannot express).",
        ),
    ] = None,
    dp: Annotated[int, typer.Option("--dp", help="Data-parallel ranks.")] = 1,
    zero: Annotated[
        int,
        typer.Option("--zero", help="0 replicate, 1 shard optimizer, 2 + grads, 3 FSDP2."),
    ] = 0,
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel ranks.")] = 1,
    pp: Annotated[int, typer.Option("--pp", help="Pipeline stages.")] = 1,
    ep: Annotated[int, typer.Option("--ep", help="Expert-parallel ranks (MoE).")] = 1,
    grad_accum: Annotated[
        int, typer.Option("--grad-accum", help="Micro-batches per optimizer step.")
    ] = 1,
    budget: Annotated[
        str | None, typer.Option("--budget", help="Memory per device, e.g. 80GiB.")
    ] = None,
    hardware: Annotated[
        str | None,
        typer.Option("--hardware", help="Preset: h100, h200, a100, l4, rtx4090, mi300x."),
    ] = None,
    set_: SetOpt = None,
    specs_dir: SpecsDirOpt = None,
    as_type: AsTypeOpt = None,
    explain: ExplainOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Training memory per device (parameters, gradients, optimizer, activations, buffers,
    peak), FLOPs per step and communication per step, for DP/ZeRO/FSDP/TP/PP/EP.

    Memory in IEC units (1 GiB = 2**30 bytes); FLOPs in SI (a multiply-accumulate is 2).
    """
    from tfcli.hardware import lookup_hardware
    from tfcli.loaders import load_model
    from tfcli.parallel import communication
    from tfcli.render.common import print_warning, stderr_console
    from tfcli.render.train import TrainView, print_train, print_train_json
    from tfcli.train import (
        TrainSetup,
        check_setup,
        compute_dtype,
        step_time,
        train_fit,
        train_flops,
        train_memory,
    )
    from tfcli.units import parse_bytes

    if budget is not None and hardware is not None:
        raise UsageError("give --budget or --hardware, not both")
    setup = TrainSetup(
        seq=seq,
        micro_batch=micro_batch,
        precision=precision,
        optimizer=optimizer,
        recompute=recompute,
        attention_impl=attention_impl or "sdpa",
        dp=dp,
        zero=zero,
        tp=tp,
        pp=pp,
        ep=ep,
        grad_accum=grad_accum,
    )
    device = lookup_hardware(hardware) if hardware is not None else None
    budget_bytes = parse_bytes(budget) if budget is not None else None
    loaded = load_model(
        model, specs_dirs=tuple(specs_dir or ()), overrides=tuple(set_ or ()), as_type=as_type
    )
    spec = loaded.spec
    if attention_impl is None and spec.attn_logit_softcap is not None:
        # Gemma-2's soft-capped logits: transformers trains it with eager attention
        setup = dataclasses.replace(setup, attention_impl="eager")
        stderr_console.print(
            f"{spec.name} soft-caps its attention logits: the eager attention profile is used "
            "(SDPA cannot express the cap)",
            style="dim",
            markup=False,
        )
    check_setup(spec, setup)
    if spec.max_position_embeddings and seq > spec.max_position_embeddings:
        print_warning(
            f"{seq:,} tokens exceeds {spec.name}'s trained context of "
            f"{spec.max_position_embeddings:,} (figures are still computed)"
        )
    memory = train_memory(spec, setup)
    flops = train_flops(spec, setup)
    time = None
    if device is not None:
        time = step_time(flops, device.peak_for(compute_dtype(precision)))
        budget_bytes = device.memory_bytes
    fit = train_fit(spec, setup, budget_bytes) if budget_bytes is not None else None
    view = TrainView(
        spec=spec,
        origin=loaded.origin,
        memory=memory,
        flops=flops,
        communication=communication(spec, setup),
        time=time,
        hardware=device.name if device is not None else None,
        fit=fit,
    )
    if json_output:
        print_train_json(view)
    else:
        print_train(view, explain=explain)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
