"""Small hand-written specs for unit tests that must not depend on loaders or shipped files."""

from __future__ import annotations

from tfcli.spec import ModelSpec


def llama_like(**changes: object) -> ModelSpec:
    """Llama-3-8B's published shape (meta-llama/Meta-Llama-3-8B config.json)."""
    base = {
        "name": "llama-like",
        "family": "llama",
        "vocab_size": 128256,
        "hidden_size": 4096,
        "num_layers": 32,
        "num_heads": 32,
        "num_kv_heads": 8,
        "intermediate_size": 14336,
        "activation": "silu",
        "mlp_gated": True,
        "norm_type": "rmsnorm",
        "tie_word_embeddings": False,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
    }
    base.update(changes)
    return ModelSpec(**base)  # type: ignore[arg-type]
