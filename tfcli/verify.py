"""``--verify``: count the real transformers model of the same config on the meta device.

This is oracle 1 of DESIGN.md section 5 offered to users: ``transformers`` builds the model
class for the config with ``torch.device("meta")`` (no memory is allocated) and
``sum(p.numel() for p in model.parameters())`` counts it, tied weights once. torch and
transformers are imported only inside these functions.

Never runs code named by a config: ``auto_map`` (and the keys that point at a code
repository) are dropped, every transformers call gets ``trust_remote_code=False``, and while
transformers runs stdin is empty and stdout goes to stderr, so nothing can prompt or write
into ``--json``. Whatever transformers raises becomes one LoadError line.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tfcli.errors import LoadError, TfcliError, clip
from tfcli.loaders import LoadedModel, read_json
from tfcli.spec import ModelSpec

T = TypeVar("T")

REMOTE_CODE_KEYS = ("auto_map", "custom_pipelines", "_name_or_path", "name_or_path")
"""config.json keys that name code to import or a repository to fetch it from."""

AUTO_CLASS_BY_ARCHITECTURE = {
    "decoder": "AutoModelForCausalLM",
    "encoder": "AutoModel",
    "encoder-decoder": "AutoModelForSeq2SeqLM",
}
"""Which transformers auto class tfcli's counts correspond to (see tfcli.loaders)."""


def without_remote_code(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config dict without the keys that point transformers at custom code."""
    return {k: v for k, v in data.items() if k not in REMOTE_CODE_KEYS}


@contextlib.contextmanager
def sealed_stdio() -> Iterator[None]:
    """While transformers runs: stdin reads as empty (``input()`` fails at once instead of
    prompting) and stdout goes to stderr (``--json`` stays one JSON document)."""
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO("")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdin = saved_stdin


def call_transformers(what: str, call: Callable[[], T]) -> T:
    """Run ``call`` sealed; any exception of transformers becomes one LoadError naming
    ``what`` (KeyError for a yarn rope_scaling without a factor, ZeroDivisionError for zero
    heads, ValueError for a bad key, EOFError for a prompt that could not be answered)."""
    try:
        with sealed_stdio():
            return call()
    except TfcliError:
        raise
    except Exception as err:
        detail = clip(str(err), 200) or "no details"
        raise LoadError(
            f"transformers cannot {what}: {type(err).__name__}: {detail}",
            hint="the config.json is probably inconsistent; fix the key it names",
        ) from None


def _read_config(config_path: str | Path) -> dict[str, Any]:
    """The raw config.json, read with the loaders' limits (regular file, size, numbers)."""
    data = read_json(Path(config_path))
    if not isinstance(data, dict):
        raise LoadError(f"{config_path}: not a JSON object")
    return data


def _config_dict(ref: str, loaded: LoadedModel) -> dict[str, Any]:
    """The raw config.json behind ``loaded``, or one exported from its spec."""
    if loaded.config_path is not None:
        return _read_config(loaded.config_path)
    from tfcli.hf_export import hf_config_dict_from_spec

    return hf_config_dict_from_spec(loaded.spec)


def _import_transformers() -> Any:
    try:
        import torch  # noqa: F401  (only checking that it is installed)
        import transformers
    except ImportError:
        raise TfcliError(
            "--verify needs torch and transformers",
            hint="pip install 'tfcli[hf,bench]'",
        ) from None
    return transformers


def _build_config(transformers: Any, data: dict[str, Any], ref: str) -> tuple[str, Any]:
    """(model_type, transformers config) from a config dict stripped of remote code."""
    clean = without_remote_code(data)
    model_type = clean.pop("model_type", None)
    if not isinstance(model_type, str):
        raise LoadError(f"{ref}: config has no model_type, cannot build the transformers model")
    if model_type not in transformers.CONFIG_MAPPING:
        raise LoadError(f"transformers does not know model_type {clip(model_type)!r}")
    config = call_transformers(
        f"read this {clip(model_type, 60)} config",
        lambda: transformers.AutoConfig.for_model(model_type, **clean),
    )
    for key in REMOTE_CODE_KEYS[:2]:  # a config class may set them itself
        if getattr(config, key, None) is not None:
            setattr(config, key, None)
    return model_type, config


def transformers_param_count(ref: str, loaded: LoadedModel) -> int:
    """Parameters of the transformers model built from ``loaded``'s config on the meta device."""
    transformers = _import_transformers()
    model_type, config = _build_config(transformers, _config_dict(ref, loaded), ref)
    auto = getattr(transformers, AUTO_CLASS_BY_ARCHITECTURE[loaded.spec.architecture])
    return call_transformers(f"build the {model_type} model", lambda: _meta_count(auto, config))


def count_config_file(config_path: str) -> tuple[str, int]:
    """(model_type, parameters) of any config.json transformers knows, built on the meta
    device as a causal LM (else as a base model): for model types tfcli has no mapping for."""
    transformers = _import_transformers()
    model_type, config = _build_config(transformers, _read_config(config_path), config_path)

    def count() -> int:
        try:
            return _meta_count(transformers.AutoModelForCausalLM, config)
        except ValueError:  # not a causal LM (an encoder, a vision model): the base model
            return _meta_count(transformers.AutoModel, config)

    return model_type, call_transformers(f"build the {model_type} model", count)


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


def _meta_count(auto: Any, config: Any) -> int:
    """Build ``auto.from_config(config)`` on the meta device, never trusting remote code."""
    import torch

    with torch.device("meta"):
        model = auto.from_config(config, trust_remote_code=False)
    return sum(p.numel() for p in model.parameters())
