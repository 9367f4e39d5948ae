"""tfcli: transformer parameter, FLOP and KV-cache estimates, checked against real models.

The Python API (see ``tfcli.api``): ``load``, ``count_params``, ``forward_flops``,
``kv_cache`` and ``fit``. They are imported on first use, so ``import tfcli`` (and every CLI
start) pays only for the standard library here.

>>> import tfcli
>>> tfcli.count_params("gpt2").total
124439808
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "count_params", "fit", "forward_flops", "kv_cache", "load"]

if TYPE_CHECKING:
    from tfcli.api import count_params, fit, forward_flops, kv_cache, load


def __getattr__(name: str) -> Any:
    if name in ("load", "count_params", "forward_flops", "kv_cache", "fit"):
        from tfcli import api

        return getattr(api, name)
    raise AttributeError(f"module 'tfcli' has no attribute {name!r}")
