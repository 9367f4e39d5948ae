"""``--verify``: count the real transformers model of the same config on the meta device.

This is oracle 1 of DESIGN.md section 5 offered to users: ``transformers`` builds the model
class for the config with ``torch.device("meta")`` (no memory is allocated) and
``sum(p.numel() for p in model.parameters())`` counts it, tied weights once. torch and
transformers are imported only inside these functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfcli.errors import LoadError, TfcliError
from tfcli.loaders import LoadedModel
from tfcli.spec import ModelSpec

AUTO_CLASS_BY_ARCHITECTURE = {
    "decoder": "AutoModelForCausalLM",
    "encoder": "AutoModel",
    "encoder-decoder": "AutoModelForSeq2SeqLM",
}
"""Which transformers auto class tfcli's counts correspond to (see tfcli.loaders)."""


def _config_dict(ref: str, loaded: LoadedModel) -> dict[str, Any]:
    """The raw config.json behind ``loaded``, or one exported from its spec."""
    config_path = loaded.config_path
    if config_path is not None:
        try:
            data = json.loads(Path(config_path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise LoadError(f"{config_path}: cannot read config for --verify: {err}") from None
        if not isinstance(data, dict):
            raise LoadError(f"{config_path}: not a JSON object")
        return data
    from tfcli.hf_export import hf_config_dict_from_spec

    return hf_config_dict_from_spec(loaded.spec)


def transformers_param_count(ref: str, loaded: LoadedModel) -> int:
    """Parameters of the transformers model built from ``loaded``'s config on the meta device."""
    try:
        import torch  # noqa: F401  (only checking that it is installed)
        import transformers
    except ImportError:
        raise TfcliError(
            "--verify needs torch and transformers",
            hint="pip install 'tfcli[hf,bench]'",
        ) from None
    data = _config_dict(ref, loaded)
    model_type = data.get("model_type")
    if not isinstance(model_type, str):
        raise LoadError(f"{ref}: config has no model_type, cannot build the transformers model")
    try:
        config = transformers.AutoConfig.for_model(
            model_type, **{k: v for k, v in data.items() if k != "model_type"}
        )
    except ValueError as err:
        raise LoadError(f"transformers does not know model_type {model_type!r}: {err}") from None
    return _meta_count(config, loaded.spec)


def count_config_file(config_path: str) -> tuple[str, int]:
    """(model_type, parameters) of any config.json transformers knows, built on the meta
    device as a causal LM (else as a base model): for model types tfcli has no mapping for."""
    try:
        import torch
        import transformers
    except ImportError:
        raise TfcliError(
            "--verify needs torch and transformers", hint="pip install 'tfcli[hf,bench]'"
        ) from None
    data = json.loads(Path(config_path).read_text())
    model_type = str(data.pop("model_type"))
    try:
        config = transformers.AutoConfig.for_model(model_type, **data)
    except (ValueError, KeyError) as err:
        raise LoadError(f"transformers does not know model_type {model_type!r}: {err}") from None
    with torch.device("meta"):
        try:
            model = transformers.AutoModelForCausalLM.from_config(config)
        except ValueError:
            model = transformers.AutoModel.from_config(config)
    return model_type, sum(p.numel() for p in model.parameters())


def known_difference(spec: ModelSpec, difference: int) -> str | None:
    """An explanation for a difference tfcli knows to be transformers' choice, or None."""
    untied_head = spec.vocab_size * spec.hidden_size
    if spec.family == "t5" and not spec.tie_word_embeddings and difference == untied_head:
        return (
            "transformers 5 always ties T5's LM head to the shared embeddings (T5Config), while "
            "this checkpoint ships an untied lm_head (tie_word_embeddings: false): tfcli counts "
            "the checkpoint"
        )
    return None


def _meta_count(config: Any, spec: ModelSpec) -> int:
    import torch
    import transformers

    auto = getattr(transformers, AUTO_CLASS_BY_ARCHITECTURE[spec.architecture])
    with torch.device("meta"):
        model = auto.from_config(config)
    return sum(p.numel() for p in model.parameters())
