"""Compatibility names for ``tfcli.hf`` (the declarative config.json records)."""

from __future__ import annotations

from tfcli.hf import RECORDS, SUPPORTED_MODEL_TYPES, map_hf_config

__all__ = ["MAPPERS", "SUPPORTED_MODEL_TYPES", "map_hf_config"]

MAPPERS: dict[str, tuple[str, object]] = {t: (r.config_class, r) for t, r in RECORDS.items()}
"""model_type -> (transformers config class name, record)."""
