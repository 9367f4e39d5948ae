"""View of ``tfcli kvcache``: per token / per layer / total, variants, fit, JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfcli.hardware import Hardware
from tfcli.memory import AttentionVariant, Fit, KVCache
from tfcli.quant import ServedWeights
from tfcli.render import documents
from tfcli.render.common import (
    format_bytes,
    format_int,
    format_seconds,
    make_table,
    print_csv,
    print_json,
    print_note,
    print_table,
    stdout_console,
)
from tfcli.render.params import describe
from tfcli.roofline import EFFICIENCY_NOTE, ServingTime
from tfcli.spec import ModelSpec
from tfcli.units import dtype_bits


@dataclass(frozen=True)
class KVCachePoint:
    """One (seq, batch) combination: the cache, the fit in the budget, the serving time."""

    cache: KVCache
    fit: Fit | None = None
    serving: ServingTime | None = None


@dataclass(frozen=True)
class KVCacheView:
    """Everything ``tfcli kvcache`` shows, computed before rendering: one point, or a sweep."""

    spec: ModelSpec
    origin: str
    points: list[KVCachePoint]
    budget_label: str | None
    weights_dtype: str
    weights_dtype_is_default: bool = True
    served_weights: ServedWeights | None = None
    """A quantized checkpoint's served weights, used by the fit instead of the dtype."""
    reserve_label: str | None = None
    hardware: Hardware | None = None
    variants: list[AttentionVariant] = field(default_factory=list)

    @property
    def cache(self) -> KVCache:
        return self.points[0].cache

    @property
    def fit(self) -> Fit | None:
        return self.points[0].fit

    @property
    def trained_context(self) -> int | None:
        return self.spec.max_position_embeddings


def beyond_trained(view: KVCacheView, tokens: int | None) -> bool:
    """True when a fitted context is longer than the model was trained for."""
    trained = view.trained_context
    return bool(trained and tokens and tokens > trained)


def _weights_label(view: KVCacheView) -> str:
    if view.served_weights is not None:
        return f"{view.served_weights.label}, as served (quantization_config)"
    if view.weights_dtype_is_default:
        return f"{view.weights_dtype} (the serving default; --weights-dtype changes it)"
    return view.weights_dtype


def _quant_label(view: KVCacheView) -> str | None:
    """The quantization a fit's weight bytes come from, or None (they are ``weights_dtype``)."""
    return view.served_weights.label if view.served_weights is not None else None


def point_record(view: KVCacheView, point: KVCachePoint) -> dict[str, Any]:
    """One sweep row as raw values (JSON ``points`` and CSV share it)."""
    record = documents.kv_totals(point.cache)
    if point.fit is not None:
        fit = point.fit
        record["weights_dtype"] = view.weights_dtype
        record["weights_quantization"] = _quant_label(view)
        record["budget_bytes"] = fit.budget_bytes
        record["fits"] = fit.weights_fit and fit.available_bytes >= point.cache.total_bytes
        record["headroom_bytes"] = fit.available_bytes - point.cache.total_bytes
        record["max_seq_for_batch"] = fit.max_seq_for_batch
        record["max_batch_for_seq"] = fit.max_batch_for_seq
        record["beyond_trained_context"] = beyond_trained(view, fit.max_seq_for_batch)
    if point.serving is not None:
        record.update(documents.serving(point.serving))
    return record


def print_kvcache_sweep(view: KVCacheView) -> None:
    spec = view.spec
    stdout_console.print(f"[bold]{spec.name}[/bold]  ({view.origin})", highlight=False)
    stdout_console.print(describe(spec), highlight=False, markup=False)
    columns = ["seq", "batch", "per token", "KV cache bytes", ""]
    has_fit = any(p.fit is not None for p in view.points)
    has_serving = any(p.serving is not None for p in view.points)
    if has_fit:
        columns += ["fits", "headroom"]
    if has_serving:
        columns += ["TTFT", "TPOT", "tokens/s"]
    table = make_table(f"KV cache sweep ({view.cache.dtype})", columns, right_align_from=0)
    for p in view.points:
        c = p.cache
        row = [
            format_int(c.seq),
            format_int(c.batch),
            format_int(c.bytes_per_token),
            format_int(c.total_bytes),
            format_bytes(c.total_bytes),
        ]
        if has_fit:
            record = point_record(view, p)
            row += [
                "yes" if record.get("fits") else "no",
                format_bytes(record["headroom_bytes"]) if "headroom_bytes" in record else "",
            ]
        if has_serving and p.serving is not None:
            s = p.serving
            row += [
                format_seconds(s.ttft_seconds),
                format_seconds(s.tpot_seconds),
                f"{s.output_tokens_per_s:,.1f}",
            ]
        table.add_row(*row)
    print_table(table)
    if has_fit:
        print_note(
            f"fits = weights ({_weights_label(view)}) + reserve ({view.reserve_label}) + KV "
            f"cache within {view.budget_label}; headroom = what is left (IEC units)"
        )
    if has_serving:
        print_note(
            "TTFT = prefill of batch x seq tokens, TPOT = one decode step with seq tokens cached, "
            "tokens/s = batch / TPOT (roofline on "
            + (view.hardware.name if view.hardware else "the device")
            + f", weights in {view.weights_dtype}). "
            + EFFICIENCY_NOTE
        )
    print_note("bytes exact; memory in IEC units (1 GiB = 2**30 bytes); K and V counted")


def print_kvcache_csv(view: KVCacheView) -> None:
    print_csv([{"model": view.spec.name, **point_record(view, p)} for p in view.points])


def print_kvcache_sweep_json(view: KVCacheView) -> None:
    doc: dict[str, Any] = {
        **documents.model_fields(view.spec, view.origin),
        "has_kv_cache": view.spec.architecture != "encoder",
        "points": [point_record(view, p) for p in view.points],
    }
    if view.hardware is not None:
        doc["hardware"] = documents.hardware(view.hardware, view.weights_dtype)
    print_json(doc)


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
    """Which cache convention the figures follow, in words (empty if it changes nothing)."""
    kinds = set(cache.layers_by_kind)
    bounded = kinds & {"sliding", "chunked"}
    has_state = bool(cache.state_bytes)
    w = int(spec.sliding_window or 0)
    c = int(spec.attention_chunk_size or 0)
    parts: list[str] = []
    if cache.rule == "vllm":
        b = cache.block_size or 16
        parts.append(f"convention vllm (vllm/v1/kv_cache_interface.py): blocks of {b} tokens")
        if "sliding" in bounded:
            parts.append(
                f"a sliding layer (w = {w:,}) holds w - 1 + T = {w - 1:,} + "
                f"{cache.batched_tokens:,} batched tokens in blocks, plus one block (the "
                "window need not start at a block boundary)"
            )
        if "chunked" in bounded:
            parts.append(
                f"a chunked layer holds c + T = {c:,} + {cache.batched_tokens:,} tokens in blocks"
            )
        if has_state:
            parts.append("state in the cache dtype, conv state K - 1 columns (MambaSpec)")
        pages = cache.unified_pages
        if pages is not None:
            parts.append(
                f"one page size for every layer kind (_align_hybrid_block_size, prefix "
                f"caching off): attention blocks raised to {pages.block_size:,} tokens so a "
                f"page ({pages.page_bytes:,} B) holds one layer's state ({pages.state_bytes:,} B "
                f"+ {pages.padding_bytes:,} B padding)"
            )
    elif cache.rule == "transformers":
        parts.append("convention transformers (the oracle: transformers 5 cache_utils)")
        if "sliding" in bounded:
            parts.append(f"a sliding layer (w = {w:,}) keeps the last w - 1 = {w - 1:,} tokens")
        if "chunked" in bounded:
            parts.append(f"a chunked layer (c = {c:,}) keeps the last c - 1 = {c - 1:,} tokens")
        if has_state:
            parts.append(
                "recurrent states in fp32, conv states K columns in the cache dtype "
                "(LinearAttentionLayer)"
            )
    else:
        parts.append(
            f"rule {cache.rule}: a sliding layer holds the w = {w:,} keys the newest token attends"
        )
    if len(parts) == 1 and not (bounded or has_state or cache.block_size):
        return ""
    return "; ".join(parts)


KIND_LABELS = {
    "full": "full-attention layers",
    "sliding": "sliding-window layers",
    "chunked": "chunked-attention layers",
    "gated_deltanet": "Gated DeltaNet layers (state)",
    "lightning": "lightning-attention layers (state)",
    "mamba": "Mamba layers (state)",
    "mamba2": "Mamba-2 layers (state)",
    "rwkv": "RWKV layers (state)",
    "full+mamba2": "attention + Mamba-2 layers",
    "sliding+mamba2": "sliding attention + Mamba-2 layers",
}


def print_kvcache(view: KVCacheView) -> None:
    spec, cache = view.spec, view.cache
    stdout_console.print(f"[bold]{spec.name}[/bold]  ({view.origin})", highlight=False)
    stdout_console.print(describe(spec), highlight=False, markup=False)
    if spec.architecture == "encoder":
        stdout_console.print(
            f"{spec.name} is encoder-only: it attends bidirectionally over its input in one "
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
    attention_layers = sum(
        n for kind, n in cache.layers_by_kind.items() if kind != "cross" and _has_kv(kind)
    )
    if cache.bytes_per_token:
        table.add_row("per token per layer", format_int(cache.bytes_per_token_per_layer), "")
        table.add_row(
            f"per token, {attention_layers} attention layers"
            + (" (with indexer keys)" if cache.indexer_bytes else ""),
            format_int(cache.bytes_per_token),
            format_bytes(cache.bytes_per_token),
        )
    for kind, nbytes in cache.bytes_by_kind.items():
        layers = cache.layers_by_kind[kind]
        label = KIND_LABELS.get(kind, kind)
        if kind == "cross":
            label = "cross-attention (encoder " + format_int(cache.encoder_seq) + " tokens)"
        table.add_row(f"{label} ({layers})", format_int(nbytes), format_bytes(nbytes))
    if cache.state_bytes:
        table.add_section()
        table.add_row(
            "per-sequence state (fixed, does not grow with tokens)",
            format_int(cache.state_bytes_per_sequence),
            format_bytes(cache.state_bytes_per_sequence),
        )
        for part, nbytes in cache.state_bytes_by_part.items():
            label = part if part.endswith("padding") else f"{part} state"
            table.add_row(
                f"  {label}, batch {cache.batch}", format_int(nbytes), format_bytes(nbytes)
            )
    table.add_section()
    table.add_row(
        "total", format_int(cache.total_bytes), format_bytes(cache.total_bytes), style="bold"
    )
    print_table(table)
    if cache.bytes_per_token:
        stdout_console.print(f"per token per layer: {per_token_formula(spec, cache)}", markup=False)
    if cache.breakeven_tokens is not None:
        stdout_console.print(
            f"the fixed state equals the KV of {format_int(cache.breakeven_tokens)} tokens "
            f"({format_int(cache.state_bytes_per_sequence)} B / "
            f"{format_int(cache.bytes_per_token)} B per token)",
            markup=False,
        )
    note = rule_note(spec, cache)
    if note:
        stdout_console.print(note, markup=False)

    if view.variants:
        _print_variants(view)
    if view.fit is not None:
        _print_fit(view)
    _print_serving(view)
    print_note(
        "memory in IEC units (1 GiB = 2**30 bytes); exact integer bytes; "
        + (
            "MLA caches the compressed latent and the RoPE key, no factor 2"
            if spec.is_mla
            else "K and V counted (factor 2)"
        )
        + ("; state layers keep a fixed per-sequence state instead" if cache.state_bytes else "")
    )


def _has_kv(kind: str) -> bool:
    return kind in ("full", "sliding", "chunked") or kind.endswith("+mamba2")


def _print_variants(view: KVCacheView) -> None:
    own = next((v for v in view.variants if v.is_this_model), view.variants[0])
    table = make_table(
        f"What if: other attention, same seq {view.cache.seq:,}",
        ["attention", "kv heads", "per token per layer", "total bytes", "", "vs this model"],
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
            format_int(variant.total_bytes),
            format_bytes(variant.total_bytes),
            f"{ratio:.3g}x",
        )
    print_table(table)


def _print_fit(view: KVCacheView) -> None:
    fit = view.fit
    if fit is None:
        return
    table = make_table(f"Fit in {view.budget_label}", ["", "value"], text_columns=(1,))
    table.add_row("budget", _exact_bytes(fit.budget_bytes))
    per_device = " per device (1/tp)" if view.cache.tp > 1 else ""
    table.add_row(f"weights, {_weights_label(view)}{per_device}", _exact_bytes(fit.weights_bytes))
    table.add_row(
        f"reserve for activations and runtime ({view.reserve_label})",
        _exact_bytes(fit.reserve_bytes),
    )
    table.add_row("left for the KV cache", _exact_bytes(fit.available_bytes))
    if not fit.weights_fit:
        table.add_row(
            "verdict",
            f"the weights alone do not fit: short by {_exact_bytes(-fit.available_bytes)}",
            style="bold red",
        )
    else:
        seq_text = (
            "any length (no layer's cache grows: sliding, chunked or state layers only)"
            if fit.unbounded_seq
            else (
                format_int(fit.max_seq_for_batch) + " tokens"
                if fit.max_seq_for_batch
                else "none (not even 1 token)"
            )
        )
        if beyond_trained(view, fit.max_seq_for_batch) and view.trained_context:
            seq_text += (
                f", beyond the trained context of {format_int(view.trained_context)} "
                "(the model is not trained that far)"
            )
        table.add_row(f"longest context at batch {view.cache.batch}", seq_text, style="bold")
        headroom = fit.available_bytes - view.cache.total_bytes
        table.add_row(
            f"left after the cache of batch {view.cache.batch} x {view.cache.seq:,}",
            _exact_bytes(headroom) if headroom >= 0 else f"short by {_exact_bytes(-headroom)}",
        )
        table.add_row(
            f"largest batch at {view.cache.seq:,} tokens",
            format_int(fit.max_batch_for_seq) if fit.max_batch_for_seq else "none (not even 1)",
            style="bold",
        )
    print_table(table)


def _exact_bytes(value: int) -> str:
    """``85,899,345,920 B (80.00 GiB)``: the exact count and its IEC form."""
    return f"{format_int(value)} B ({format_bytes(value)})"


def _print_serving(view: KVCacheView) -> None:
    s = view.points[0].serving
    if s is None or view.hardware is None:
        return
    table = make_table(
        f"Serving on {view.hardware.name}: batch {s.batch} x {s.seq:,} tokens, weights "
        f"{view.weights_dtype}",
        ["", "time", "bound"],
        text_columns=(2,),
    )
    table.add_row("time to first token (TTFT)", format_seconds(s.ttft_seconds), s.prefill.bound)
    table.add_row("time per output token (TPOT)", format_seconds(s.tpot_seconds), s.decode.bound)
    table.add_row("output tokens/s (batch / TPOT)", f"{s.output_tokens_per_s:,.1f}", "")
    print_table(table)
    print_note(
        "TTFT = prefill of batch x seq tokens, TPOT = one decode step with seq tokens cached "
        "(the cache above read once per step). " + EFFICIENCY_NOTE
    )


def kvcache_document(view: KVCacheView) -> dict[str, Any]:
    """The JSON document of ``tfcli kvcache --json``: raw integers, units in key names."""
    spec, cache = view.spec, view.cache
    doc: dict[str, Any] = {
        **documents.model_fields(spec, view.origin),
        "has_kv_cache": spec.architecture != "encoder",
        **documents.kv_cache(cache),
        "encoder_seq": cache.encoder_seq if spec.architecture == "encoder-decoder" else None,
        "sliding_window": spec.sliding_window,
        "rule_note": rule_note(spec, cache) or None,
        "variants": [documents.attention_variant(v) for v in view.variants],
        "points": [point_record(view, p) for p in view.points],
    }
    if view.fit is not None:
        trained = view.trained_context
        doc["fit"] = {
            **documents.fit(view.fit),
            "weights_dtype": view.weights_dtype,
            "weights_dtype_is_default": view.weights_dtype_is_default,
            "weights_quantization": _quant_label(view),
            "reserve_rule": view.reserve_label,
            "trained_context": trained,
            "beyond_trained_context": beyond_trained(view, view.fit.max_seq_for_batch),
            "max_seq_within_trained_context": (
                min(view.fit.max_seq_for_batch, trained)
                if view.fit.max_seq_for_batch and trained
                else view.fit.max_seq_for_batch
            ),
        }
    if view.hardware is not None:
        doc["hardware"] = documents.hardware(view.hardware, view.weights_dtype)
    if view.points[0].serving is not None:
        doc["serving"] = documents.serving(view.points[0].serving)
    return doc


def print_kvcache_json(view: KVCacheView) -> None:
    print_json(kvcache_document(view))
