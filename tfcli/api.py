"""The Python API: the CLI's answers as result objects, for notebooks and scripts.

``import tfcli`` exposes these functions (imported on first use, so ``import tfcli`` stays
cheap). MODEL arguments are what the CLI takes (a shipped spec name, a spec YAML, a
config.json or its folder, a cached hub id) or an already loaded :class:`~tfcli.spec.ModelSpec`.
Errors are :class:`tfcli.errors.TfcliError` subclasses. Conventions as in the CLI: a
multiply-accumulate is 2 FLOPs, causal attention counts ``s(s+1)/2`` pairs, bytes are exact.

>>> import tfcli
>>> spec = tfcli.load("llama-3-8b", overrides={"num_kv_heads": 32})
>>> spec.num_kv_heads
32
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tfcli.errors import UsageError
from tfcli.flops import FlopCount
from tfcli.memory import Fit, KVCache
from tfcli.params import ParamCount
from tfcli.spec import ModelSpec

__all__ = ["count_params", "fit", "forward_flops", "kv_cache", "load"]


def load(
    model: str | ModelSpec,
    *,
    overrides: Mapping[str, Any] | None = None,
    specs_dirs: Sequence[str | Path] = (),
) -> ModelSpec:
    """The normalised spec of ``model``, with ``overrides`` applied (a what-if).

    >>> spec = load("mistral-7b")
    >>> (spec.num_heads, spec.num_kv_heads, spec.sliding_window)
    (32, 8, 4096)
    """
    if isinstance(model, ModelSpec):
        return model.replace(**dict(overrides)) if overrides else model
    from tfcli.loaders import load_model

    items = tuple(f"{key}={_yaml_value(value)}" for key, value in (overrides or {}).items())
    dirs = tuple(Path(d) for d in specs_dirs)
    return load_model(model, specs_dirs=dirs, overrides=items).spec


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")


def count_params(model: str | ModelSpec) -> ParamCount:
    """Parameters: ``total``, ``active`` (MoE, per token), ``components``, ``layers``.

    >>> counts = count_params("llama-3-8b")
    >>> counts.total, counts.components["token_embeddings"]
    (8030261248, 525336576)
    >>> moe = count_params("mixtral-8x7b")
    >>> moe.total, moe.active
    (46702792704, 12879925248)
    """
    from tfcli.params import count_params as _count

    return _count(load(model))


def forward_flops(
    model: str | ModelSpec, seq: int, *, batch: int = 1, attention: str = "causal"
) -> FlopCount:
    """Matmul FLOPs of one forward pass over ``batch x seq`` tokens (``total``,
    ``attention_flops``, ``attention_share``, ``components``); ``attention`` is ``causal``
    (``s(s+1)/2`` pairs) or ``full`` (``s*s``).

    >>> f = forward_flops("llama-3-8b", 131072)
    >>> f.total, round(f.attention_share, 3)
    (6470935167107072, 0.696)
    """
    from tfcli.flops import forward_flops as _forward

    _positive("seq", seq)
    _positive("batch", batch)
    return _forward(load(model), seq, batch=batch, attention=attention)


def kv_cache(model: str | ModelSpec, seq: int, *, batch: int = 1, dtype: str = "bf16") -> KVCache:
    """KV-cache bytes of ``batch`` sequences of ``seq`` tokens (``total_bytes``,
    ``bytes_per_token``, by layer kind); sliding layers hold at most their window.

    >>> kv_cache("llama-2-70b", 131072).total_bytes == 40 * 2**30
    True
    >>> kv_cache("llama-3-8b", 1).bytes_per_token
    131072
    """
    from tfcli.memory import kv_cache as _kv
    from tfcli.units import normalize_dtype

    _positive("seq", seq)
    _positive("batch", batch)
    return _kv(load(model), seq, batch=batch, dtype=normalize_dtype(dtype))


def fit(
    model: str | ModelSpec,
    *,
    hardware: str | None = None,
    budget_bytes: int | None = None,
    seq: int | None = None,
    batch: int = 1,
    dtype: str = "bf16",
    weights_dtype: str | None = None,
    reserve: float = 0.1,
) -> Fit:
    """What fits in a device's memory (``hardware``, a preset name) or in ``budget_bytes``:
    ``max_seq_for_batch`` and ``max_batch_for_seq`` after the weights and a ``reserve``
    fraction of the budget. The weights are ``weights_dtype`` when given; otherwise a
    config.json's ``quantization_config`` gives the served bytes (``tfcli.quant``), and
    without one they are bf16, the serving default. ``seq`` defaults to the trained context.

    >>> f = fit("llama-3-8b", hardware="h100", seq=8192)
    >>> f.weights_bytes, f.max_batch_for_seq
    (16060522496, 57)
    """
    from tfcli.memory import reserve_bytes_for, solve_fit, weight_bytes
    from tfcli.params import count_params as _count
    from tfcli.units import normalize_dtype

    if (hardware is None) == (budget_bytes is None):
        raise UsageError("fit needs exactly one of hardware or budget_bytes")
    if budget_bytes is not None:
        _positive("budget_bytes", budget_bytes)
        budget = budget_bytes
    else:
        from tfcli.hardware import lookup_hardware

        budget = lookup_hardware(str(hardware)).memory_bytes
    if not 0 <= reserve < 1:
        raise UsageError(f"reserve must be a fraction in [0, 1), got {reserve!r}")
    served = None
    if isinstance(model, ModelSpec):
        spec = model
    else:
        from tfcli.loaders import load_model
        from tfcli.quant import UnknownQuantization, served_weights

        loaded = load_model(model)
        spec = loaded.spec
        if weights_dtype is None and loaded.quantization is not None:
            try:
                served = served_weights(spec, loaded.quantization, where=loaded.origin)
            except UnknownQuantization:
                served = None
    length = seq if seq is not None else (spec.max_position_embeddings or 4096)
    _positive("seq", length)
    _positive("batch", batch)
    if served is not None:
        weights = served.total_bytes
    else:
        weights = weight_bytes(_count(spec).total, normalize_dtype(weights_dtype or "bf16"))
    return solve_fit(
        spec,
        budget_bytes=budget,
        weights_bytes_=weights,
        reserve_bytes=reserve_bytes_for(budget, fraction=reserve),
        seq=length,
        batch=batch,
        dtype=normalize_dtype(dtype),
    )
