"""One JSON vocabulary for every command, built from the result dataclasses.

Each function here turns one result type into a dict; every command's document is assembled
from them, so a quantity has the same key wherever it appears (``total_params`` in
``models``, ``params`` and ``compare``; ``bytes_per_token`` and ``total_bytes`` for a KV cache
in ``kvcache`` and ``compare``). Raw numbers only (integers stay integers); the unit is in the
key (``_bytes``, ``_flops``, ``_seconds``, ``_per_s``); counts and FLOPs are SI, memory is
bytes. ``tests/test_json_schema.py`` pins the keys of each command's document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfcli.render.common import term_document

if TYPE_CHECKING:  # the result types, for annotations only: importing this module stays cheap
    from tfcli.flops import DecodeCost, FlopCount, LayerFlops
    from tfcli.hardware import Hardware
    from tfcli.memory import AttentionVariant, Fit, KVCache
    from tfcli.params import LayerParams, ParamCount
    from tfcli.roofline import Roofline, ServingTime
    from tfcli.spec import ModelSpec


def model_fields(spec: ModelSpec, origin: str | None = None) -> dict[str, Any]:
    """Who the figures are about: name, family, architecture, attention kind, trained context."""
    doc: dict[str, Any] = {"model": spec.name}
    if origin is not None:
        doc["origin"] = origin
    doc.update(
        {
            "family": spec.family,
            "architecture": spec.architecture,
            "attention_kind": spec.attention_kind,
            "max_position_embeddings": spec.max_position_embeddings,
        }
    )
    if spec.uncounted:
        doc["not_counted"] = spec.uncounted
    return doc


def param_totals(counts: ParamCount) -> dict[str, Any]:
    """``total_params`` and ``active_params`` (MoE: per token; otherwise equal)."""
    return {"total_params": counts.total, "active_params": counts.active}


def _positions(layer: LayerParams | LayerFlops) -> dict[str, Any]:
    """Where a group of identical layers sits: first index, count, stride (None: irregular)."""
    return {"index": layer.index, "count": layer.count, "stride": layer.stride}


def layer_params(layer: LayerParams) -> dict[str, Any]:
    """One group of ``count`` identical layers (first at ``index``, every ``stride``)."""
    return {
        **_positions(layer),
        "stack": layer.stack,
        "kind": layer.kind,
        "attention_params": layer.attention,
        "cross_attention_params": layer.cross_attention,
        "mlp_params": layer.mlp,
        "mlp_active_params": layer.mlp_active,
        "norm_params": layer.norms,
        "total_params": layer.total,
        "active_params": layer.active,
    }


def param_count(counts: ParamCount) -> dict[str, Any]:
    """A whole ``ParamCount``: totals, components, per layer and the formulas."""
    return {
        **param_totals(counts),
        "components_params": dict(counts.components),
        "active_components_params": dict(counts.active_components),
        "layers": [layer_params(layer) for layer in counts.groups],
        "terms": [term_document(t) for t in counts.terms],
    }


def layer_flops(layer: LayerFlops) -> dict[str, Any]:
    """One group of ``count`` identical layers (first at ``index``, every ``stride``)."""
    return {
        **_positions(layer),
        "stack": layer.stack,
        "kind": layer.kind,
        "pairs_per_sequence": layer.pairs,
        "projection_flops": layer.projections,
        "attention_flops": layer.attention,
        "scan_flops": layer.scan,
        "cross_attention_flops": layer.cross_attention,
        "mlp_flops": layer.mlp,
        "moe": layer.moe,
        "total_flops": layer.total,
    }


def flop_totals(count: FlopCount) -> dict[str, Any]:
    """The shape of a pass and its headline FLOPs (what a sweep row carries)."""
    return {
        "seq": count.seq,
        "batch": count.batch,
        "context": count.context,
        "encoder_seq": count.encoder_seq or None,
        "attention_convention": count.attention_convention,
        "forward_flops": count.total,
        "attention_flops": count.attention_flops,
        "attention_share": count.attention_share,
    }


def flop_count(count: FlopCount) -> dict[str, Any]:
    """A whole ``FlopCount``: totals, components, per layer, elementwise and formulas."""
    return {
        **flop_totals(count),
        "logits": count.logits,
        "components_flops": dict(count.components),
        "elementwise_flops_approx": count.elementwise,
        "layers": [layer_flops(layer) for layer in count.groups],
        "terms": [term_document(t) for t in count.terms],
    }


def decode_cost(decode: DecodeCost) -> dict[str, Any]:
    return {
        "context": decode.with_cache.context,
        "with_cache_flops": decode.with_cache.total,
        "without_cache_flops": decode.without_cache.total,
        "saving_factor": decode.saving,
    }


def hardware(device: Hardware, dtype: str) -> dict[str, Any]:
    """The device: dense peak for ``dtype`` (and the sparse one), memory, bandwidth, source."""
    return {
        "hardware": device.name,
        "dtype": dtype,
        "peak_flops_per_s": device.peak_for(dtype),
        "sparse_peak_flops_per_s": device.sparse_peak_for(dtype),
        "memory_bytes": device.memory_bytes,
        "bandwidth_bytes_per_s": device.bandwidth_bytes_per_s or None,
        "source": device.source,
    }


def roofline(r: Roofline) -> dict[str, Any]:
    return {
        "hardware": r.hardware,
        "dtype": r.dtype,
        "what": r.what,
        "flops": r.flops,
        "bytes_moved": r.bytes_moved,
        "bytes_parts": dict(r.bytes_parts),
        "peak_flops_per_s": r.peak_flops_per_s,
        "bandwidth_bytes_per_s": r.bandwidth_bytes_per_s or None,
        "mfu": r.mfu,
        "mbu": r.mbu,
        "compute_seconds": r.compute_seconds,
        "memory_seconds": r.memory_seconds,
        "seconds": r.seconds,
        "intensity_flops_per_byte": r.intensity,
        "ridge_flops_per_byte": r.ridge_intensity,
        "bound": r.bound,
    }


def serving(s: ServingTime) -> dict[str, Any]:
    """TTFT, TPOT and throughput (key names contain ``ttft`` and ``tpot``)."""
    return {
        "ttft_seconds": s.ttft_seconds,
        "ttft_bound": s.prefill.bound,
        "tpot_seconds": s.tpot_seconds,
        "tpot_bound": s.decode.bound,
        "output_tokens_per_s": s.output_tokens_per_s,
        "prefill_tokens_per_s": s.prefill_tokens_per_s,
        "compute_only": s.compute_only,
        "mfu": s.prefill.mfu,
        "mbu": s.prefill.mbu,
    }


def kv_totals(cache: KVCache) -> dict[str, Any]:
    """The headline KV-cache figures (what ``compare`` and a sweep row carry)."""
    return {
        "seq": cache.seq,
        "batch": cache.batch,
        "dtype": cache.dtype,
        "bytes_per_token": cache.bytes_per_token,
        "total_bytes": cache.total_bytes,
    }


def kv_cache(cache: KVCache) -> dict[str, Any]:
    """A whole ``KVCache``."""
    return {
        **kv_totals(cache),
        "tp": cache.tp,
        "block_size": cache.block_size,
        "convention": cache.rule,
        "encoder_seq": cache.encoder_seq or None,
        "bytes_per_token_per_layer": cache.bytes_per_token_per_layer,
        "self_attention_bytes": cache.self_attention_bytes,
        "cross_attention_bytes": cache.cross_attention_bytes,
        "indexer_bytes": cache.indexer_bytes,
        "state_bytes": cache.state_bytes,
        "state_bytes_per_sequence": cache.state_bytes_per_sequence,
        "state_bytes_by_part": dict(cache.state_bytes_by_part),
        "state_breakeven_tokens": cache.breakeven_tokens,
        "layers_by_kind": dict(cache.layers_by_kind),
        "bytes_by_kind": dict(cache.bytes_by_kind),
        "runs": [
            {
                "kind": run.kind,
                "start": run.start,
                "layers": run.layers,
                "tokens_per_layer": run.tokens,
                "kv_bytes_per_token_per_layer": run.kv_bytes_per_layer,
                "state_bytes_per_layer": run.state_bytes_per_layer,
            }
            for run in cache.runs
        ],
    }


def attention_variant(v: AttentionVariant) -> dict[str, Any]:
    return {
        "attention": v.label,
        "kv_heads": v.kv_heads,
        "is_this_model": v.is_this_model,
        "bytes_per_token_per_layer": v.bytes_per_token_per_layer,
        "total_bytes": v.total_bytes,
    }


def fit(f: Fit) -> dict[str, Any]:
    return {
        "budget_bytes": f.budget_bytes,
        "weights_bytes": f.weights_bytes,
        "reserve_bytes": f.reserve_bytes,
        "available_bytes": f.available_bytes,
        "weights_fit": f.weights_fit,
        "max_seq_for_batch": f.max_seq_for_batch,
        "max_batch_for_seq": f.max_batch_for_seq,
        "unbounded_seq": f.unbounded_seq,
    }
