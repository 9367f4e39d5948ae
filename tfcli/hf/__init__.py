"""Hugging Face config.json <-> ModelSpec, without importing transformers.

``map_hf_config`` reads a config.json dict through the declarative record of its
``model_type`` (``tfcli.hf.types.RECORDS``); multimodal wrappers (gemma3, llama4, mistral3,
qwen2_vl, qwen2_5_vl) are read through their ``text_config`` and say what they leave out.
``tfcli.hf.export`` is the inverse, for ``--verify``.

Only the standard library is imported here.
"""

from __future__ import annotations

from typing import Any

from tfcli.errors import LoadError, UnsupportedModelTypeError
from tfcli.hf.encoders import ENCODER_RECORDS
from tfcli.hf.modern import RECORDS_2025
from tfcli.hf.reader import Reader
from tfcli.hf.records import Record
from tfcli.hf.ssm import RECORDS_SSM
from tfcli.hf.types import RECORDS as CLASSIC_RECORDS
from tfcli.hf.types import WRAPPERS

RECORDS: dict[str, Record] = {
    **CLASSIC_RECORDS,
    **{record.model_type: record for record in (*RECORDS_2025, *RECORDS_SSM, *ENCODER_RECORDS)},
}
"""Every model_type tfcli reads, by name."""

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted((*RECORDS, *WRAPPERS)))

__all__ = ["RECORDS", "SUPPORTED_MODEL_TYPES", "WRAPPERS", "map_hf_config"]


def _unwrap(data: dict[str, Any], origin: str) -> tuple[dict[str, Any], str | None]:
    """(the language model's config, what is not counted) for a multimodal wrapper."""
    model_type = data.get("model_type")
    wrapper = WRAPPERS.get(str(model_type))
    if wrapper is None:
        return data, None
    text = data.get("text_config")
    if text is None and wrapper.flat_text:
        inner = {k: v for k, v in data.items() if k not in ("vision_config", "audio_config")}
        return {**inner, "model_type": wrapper.text_model_type}, wrapper.uncounted
    if not isinstance(text, dict):
        raise LoadError(f"{origin}: model_type {model_type!r} needs a text_config mapping")
    inner = {k: v for k, v in text.items() if k != "model_type"}
    outer_tie = data.get("tie_word_embeddings", wrapper.tie_default)
    if wrapper.tie == "outer":
        inner["tie_word_embeddings"] = outer_tie
    elif wrapper.tie == "either" and outer_tie is True:
        inner["tie_word_embeddings"] = True
    for name in ("torch_dtype", "dtype"):
        if name in data and name not in inner:
            inner[name] = data[name]
    text_type = text.get("model_type") or wrapper.text_model_type
    if text_type not in RECORDS:
        text_type = wrapper.text_model_type
    return {**inner, "model_type": text_type}, wrapper.uncounted


def map_hf_config(
    data: dict[str, Any], *, origin: str, as_type: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(spec fields, field origins) for a config.json dict; LoadError for unknown types.

    ``as_type`` reads the config with another model_type's record (``--as llama`` for the many
    Llama clones); the origins say so.
    """
    if not isinstance(data, dict):
        raise LoadError(f"{origin}: a config.json must be a JSON object")
    model_type = data.get("model_type")
    original = model_type
    if as_type is not None:
        if as_type not in RECORDS and as_type not in WRAPPERS:
            raise LoadError(
                f"--as {as_type!r} is not a model_type tfcli reads; known: "
                + ", ".join(SUPPORTED_MODEL_TYPES)
            )
        data = {**data, "model_type": as_type}
        model_type = as_type
    if not isinstance(model_type, str):
        raise LoadError(f"{origin}: no model_type key; is this a Hugging Face config.json?")
    if model_type not in RECORDS and model_type not in WRAPPERS:
        raise UnsupportedModelTypeError(
            f"{origin}: model_type {model_type!r} is not supported; supported: "
            + ", ".join(SUPPORTED_MODEL_TYPES),
            model_type=model_type,
            hint="read it as a known type with --as TYPE (e.g. --as llama), count it with "
            "transformers with --verify, or write a spec YAML",
        )
    text, uncounted = _unwrap(data, origin)
    record = RECORDS[str(text["model_type"])]
    reader = Reader(text, record.config_class, origin)
    reader.put("family", record.model_type, "model_type")
    record.read(reader)
    if uncounted:
        reader.put("uncounted", uncounted, "model_type")
    if as_type is not None:
        reader.origins["family"] = f"--as {as_type} (config.json model_type {original!r})"
    reader.fields.setdefault("source", origin)
    reader.origins.setdefault("source", "MODEL argument")
    return reader.fields, reader.origins
