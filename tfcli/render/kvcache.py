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
    print_table,
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
    weights_dtype_is_default: bool = True
    reserve_label: str | None = None


def per_token_formula(spec: ModelSpec, cache: KVCache) -> str:
    """The per-token-per-layer formula with the numbers put in."""
    bits = dtype_bits(cache.dtype)
    if spec.is_mla:
        return (
            f"(kv_lora_rank + qk_rope_head_dim) x bytes = ({spec.kv_lora_rank} + "
            f"{spec.qk_rope_head_dim}) x {bits / 8:g} = {cache.bytes_per_token_per_layer:,} B"
        )
    heads: int | str = spec.kv_heads
    if cache.tp > 1:
        heads = f"max(1, {spec.kv_heads} // tp {cache.tp})"
    return (
        f"2 x kv_heads x head_dim x bytes = 2 x {heads} x {spec.resolved_head_dim} x "
        f"{bits / 8:g} = {cache.bytes_per_token_per_layer:,} B"
    )


def rule_note(spec: ModelSpec, cache: KVCache) -> str:
    """Which sliding-window / paging rule the figures follow, in words (empty if irrelevant)."""
    sliding = "sliding" in spec.layer_kinds and spec.sliding_window is not None
    w = int(spec.sliding_window or 0)
    if cache.block_size is not None:
        text = (
            f"paged cache (vLLM v1): each sequence takes whole blocks of {cache.block_size} "
            "tokens per layer"
        )
        if sliding:
            text += (
                f"; a sliding layer keeps the blocks covering the last w = {w} tokens "
                f"(blocks wholly before the window are freed): {-(-w // cache.block_size)} "
                "blocks, or one more when the window straddles a block boundary"
            )
        return text
    if not sliding:
        return ""
    if cache.rule == "window":
        return (
            f"sliding-window rule 'window': a sliding layer holds at most w = {w} tokens, the "
            "keys the newest token attends (itself included), as vLLM allocates; transformers' "
            "DynamicSlidingWindowLayer keeps w - 1 between calls (--sliding-rule transformers)"
        )
    return (
        f"sliding-window rule 'transformers': a sliding layer holds at most w - 1 = {w - 1} "
        "tokens between calls, as transformers' DynamicSlidingWindowLayer does (the next token "
        "makes w while it attends)"
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
    print_table(table)
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
    own = next((v for v in view.variants if v.is_this_model), view.variants[0])
    table = make_table(
        f"What if: other attention, same seq {view.cache.seq:,}",
        ["attention", "kv heads", "per token per layer", "total", "vs this model"],
    )
    for variant in view.variants:
        ratio = variant.total_bytes / own.total_bytes if own.total_bytes else float("nan")
        label = variant.label + (" (this model)" if variant.is_this_model else "")
        if view.spec.is_mla and not variant.is_this_model:
            label += " (decompressed K/V)"
        table.add_row(
            label,
            str(variant.kv_heads),
            format_int(variant.bytes_per_token_per_layer) + " B",
            format_bytes(variant.total_bytes),
            f"{ratio:.3g}x",
        )
    print_table(table)


def _print_fit(view: KVCacheView) -> None:
    fit = view.fit
    if fit is None:
        return
    table = make_table(f"Fit in {view.budget_label}", ["", "value"])
    table.add_row("budget", format_bytes(fit.budget_bytes))
    per_device = " per device (1/tp)" if view.cache.tp > 1 else ""
    dtype_source = " (the spec's dtype)" if view.weights_dtype_is_default else ""
    table.add_row(
        f"weights, {view.weights_dtype}{dtype_source}{per_device}", format_bytes(fit.weights_bytes)
    )
    table.add_row(
        f"reserve for activations and runtime ({view.reserve_label})",
        format_bytes(fit.reserve_bytes),
    )
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
                format_int(fit.max_seq_for_batch) + " tokens"
                if fit.max_seq_for_batch
                else "none (not even 1 token)"
            )
        )
        table.add_row(f"longest context at batch {view.cache.batch}", seq_text, style="bold")
        table.add_row(
            f"largest batch at {view.cache.seq:,} tokens",
            format_int(fit.max_batch_for_seq) if fit.max_batch_for_seq else "none (not even 1)",
            style="bold",
        )
    print_table(table)


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
        "sliding_window": spec.sliding_window,
        "sliding_rule": cache.rule,
        "rule_note": rule_note(spec, cache) or None,
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
            {
                "attention": v.label,
                "kv_heads": v.kv_heads,
                "is_this_model": v.is_this_model,
                "bytes_per_token_per_layer": v.bytes_per_token_per_layer,
                "total_bytes": v.total_bytes,
            }
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
            "reserve_rule": view.reserve_label,
            "available_bytes": fit.available_bytes,
            "weights_fit": fit.weights_fit,
            "max_seq_for_batch": fit.max_seq_for_batch,
            "max_batch_for_seq": fit.max_batch_for_seq,
            "unbounded_seq": fit.unbounded_seq,
        }
    return doc


def print_kvcache_json(view: KVCacheView) -> None:
    print_json(kvcache_document(view))
