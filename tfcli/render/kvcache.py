"""View of ``tfcli kvcache``: per token / per layer / total, variants, fit, JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfcli.memory import AttentionVariant, Fit, KVCache
from tfcli.render.common import (
    format_bytes,
    format_int,
    make_table,
    print_json,
    print_note,
    stdout_console,
)
from tfcli.render.params import describe
from tfcli.spec import ModelSpec
from tfcli.units import dtype_bits


@dataclass(frozen=True)
class KVCacheView:
    """Everything ``tfcli kvcache`` shows, computed before rendering."""

    spec: ModelSpec
    origin: str
    cache: KVCache
    variants: list[AttentionVariant]
    fit: Fit | None
    budget_label: str | None
    weights_dtype: str


def per_token_formula(spec: ModelSpec, cache: KVCache) -> str:
    """The per-token-per-layer formula with the numbers put in."""
    bits = dtype_bits(cache.dtype)
    if spec.is_mla:
        return (
            f"(kv_lora_rank + qk_rope_head_dim) x bytes = ({spec.kv_lora_rank} + "
            f"{spec.qk_rope_head_dim}) x {bits / 8:g} = {cache.bytes_per_token_per_layer:,} B"
        )
    heads = spec.kv_heads if cache.tp == 1 else f"{spec.kv_heads}/tp"
    return (
        f"2 x kv_heads x head_dim x bytes = 2 x {heads} x {spec.resolved_head_dim} x "
        f"{bits / 8:g} = {cache.bytes_per_token_per_layer:,} B"
    )


def rule_note(spec: ModelSpec, cache: KVCache) -> str:
    if "sliding" not in spec.layer_kinds:
        return ""
    if cache.rule == "window":
        return (
            f"sliding layers hold at most w = {spec.sliding_window} tokens (rule 'window': the "
            "keys the next query attends, as vLLM allocates; transformers keeps w - 1 between "
            "steps: --sliding-rule transformers)"
        )
    return (
        f"sliding layers hold at most w - 1 = {int(spec.sliding_window or 1) - 1} tokens (rule "
        "'transformers', DynamicSlidingWindowLayer; the new token makes w while attending)"
    )


def print_kvcache(view: KVCacheView) -> None:
    spec, cache = view.spec, view.cache
    stdout_console.print(f"[bold]{spec.name}[/bold]  ({view.origin})", highlight=False)
    stdout_console.print(describe(spec), highlight=False, markup=False)
    if spec.architecture == "encoder":
        stdout_console.print(
            f"{spec.name} is encoder-only: it attends bidirectionally over the whole input in one "
            "pass and keeps no KV cache (0 bytes).",
            style="bold",
            markup=False,
        )
        return
    table = make_table(
        f"KV cache, {cache.dtype}, batch {cache.batch} x seq {cache.seq:,}"
        + (f", tp {cache.tp} (per device)" if cache.tp > 1 else "")
        + (f", blocks of {cache.block_size}" if cache.block_size else ""),
        ["", "bytes", ""],
    )
    table.add_row("per token per layer", format_int(cache.bytes_per_token_per_layer), "")
    table.add_row(
        f"per token, {spec.num_layers} layers",
        format_int(cache.bytes_per_token),
        format_bytes(cache.bytes_per_token),
    )
    for kind, nbytes in cache.bytes_by_kind.items():
        layers = cache.layers_by_kind[kind]
        label = {"full": "full-attention layers", "sliding": "sliding-window layers"}.get(
            kind, "cross-attention (encoder " + format_int(cache.encoder_seq) + " tokens)"
        )
        table.add_row(f"{label} ({layers})", format_int(nbytes), format_bytes(nbytes))
    table.add_section()
    table.add_row(
        "total", format_int(cache.total_bytes), format_bytes(cache.total_bytes), style="bold"
    )
    stdout_console.print(table)
    stdout_console.print(f"per token per layer: {per_token_formula(spec, cache)}", markup=False)
    note = rule_note(spec, cache)
    if note:
        stdout_console.print(note, markup=False)

    _print_variants(view)
    if view.fit is not None:
        _print_fit(view)
    print_note(
        "memory in IEC units (1 GiB = 2**30 bytes); exact integer bytes; "
        + (
            "MLA caches the compressed latent and the RoPE key, no factor 2"
            if spec.is_mla
            else "K and V counted (factor 2)"
        )
    )


def _print_variants(view: KVCacheView) -> None:
    kind = view.spec.attention_kind
    own = next((v for v in view.variants if v.label == kind), view.variants[0])
    table = make_table(
        f"What if: the same model with other attention (seq {view.cache.seq:,})",
        ["attention", "kv heads", "total", "vs this model"],
    )
    for variant in view.variants:
        ratio = variant.total_bytes / own.total_bytes if own.total_bytes else float("nan")
        table.add_row(
            variant.label, str(variant.kv_heads), format_bytes(variant.total_bytes), f"{ratio:.2f}x"
        )
    stdout_console.print(table)


def _print_fit(view: KVCacheView) -> None:
    fit = view.fit
    assert fit is not None
    table = make_table(f"Fit in {view.budget_label}", ["", "value"])
    table.add_row("budget", format_bytes(fit.budget_bytes))
    table.add_row(f"weights ({view.weights_dtype})", format_bytes(fit.weights_bytes))
    table.add_row("reserve (activations, runtime, fragmentation)", format_bytes(fit.reserve_bytes))
    table.add_row("left for the KV cache", format_bytes(max(fit.available_bytes, 0)))
    if not fit.weights_fit:
        table.add_row(
            "verdict",
            f"the weights alone do not fit: short by {format_bytes(-fit.available_bytes)}",
            style="bold red",
        )
    else:
        seq_text = (
            "any length (every layer is capped by the sliding window)"
            if fit.unbounded_seq
            else (
                format_int(fit.max_seq_for_batch) + " tokens" if fit.max_seq_for_batch else "none"
            )
        )
        table.add_row(f"longest context at batch {view.cache.batch}", seq_text, style="bold")
        table.add_row(
            f"largest batch at {view.cache.seq:,} tokens",
            format_int(fit.max_batch_for_seq) if fit.max_batch_for_seq else "none (not even 1)",
            style="bold",
        )
    stdout_console.print(table)


def kvcache_document(view: KVCacheView) -> dict[str, Any]:
    """The JSON document of ``tfcli kvcache --json``: raw integers, units in key names."""
    spec, cache = view.spec, view.cache
    doc: dict[str, Any] = {
        "model": spec.name,
        "origin": view.origin,
        "attention_kind": spec.attention_kind,
        "has_kv_cache": spec.architecture != "encoder",
        "seq": cache.seq,
        "batch": cache.batch,
        "dtype": cache.dtype,
        "tp": cache.tp,
        "block_size": cache.block_size,
        "sliding_rule": cache.rule,
        "encoder_seq": cache.encoder_seq if spec.architecture == "encoder-decoder" else None,
        "bytes_per_token_per_layer": cache.bytes_per_token_per_layer,
        "bytes_per_token": cache.bytes_per_token,
        "self_attention_bytes": cache.self_attention_bytes,
        "cross_attention_bytes": cache.cross_attention_bytes,
        "total_bytes": cache.total_bytes,
        "layers_by_kind": dict(cache.layers_by_kind),
        "bytes_by_kind": dict(cache.bytes_by_kind),
        "per_layer_bytes": list(cache.per_layer_bytes),
        "variants": [
            {"attention": v.label, "kv_heads": v.kv_heads, "total_bytes": v.total_bytes}
            for v in view.variants
        ],
    }
    if view.fit is not None:
        fit = view.fit
        doc["fit"] = {
            "budget_bytes": fit.budget_bytes,
            "weights_bytes": fit.weights_bytes,
            "weights_dtype": view.weights_dtype,
            "reserve_bytes": fit.reserve_bytes,
            "available_bytes": fit.available_bytes,
            "weights_fit": fit.weights_fit,
            "max_seq_for_batch": fit.max_seq_for_batch,
            "max_batch_for_seq": fit.max_batch_for_seq,
            "unbounded_seq": fit.unbounded_seq,
        }
    return doc


def print_kvcache_json(view: KVCacheView) -> None:
    print_json(kvcache_document(view))
