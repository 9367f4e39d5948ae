"""MODEL argument -> ModelSpec: shipped specs, spec YAML, config.json, or a cached hub id.

Resolution order for ``ref``:

1. an existing path: ``*.yaml``/``*.yml`` (a spec, keys = ModelSpec fields), ``*.json`` (a
   Hugging Face config.json) or a directory holding ``config.json``;
2. a spec name in ``--specs-dir`` folders, ``TFCLI_SPECS_PATH`` (``os.pathsep``-separated)
   or the shipped ``model_specs/`` (case-insensitive);
3. a hub id ``org/name`` found in the local Hugging Face cache (offline; huggingface_hub is
   imported only here).

config.json files are read as JSON and translated per ``model_type`` without importing
transformers (``tfcli.hf_mappings``). What tfcli's counts correspond to: decoders are
``AutoModelForCausalLM``, encoder-only models ``AutoModel`` (with the pooler, no MLM head),
encoder-decoders ``AutoModelForSeq2SeqLM``.

YAML is read only through ``yaml.safe_load``; nothing here ever runs remote code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tfcli.errors import (
    LoadError,
    ModelNotFoundError,
    SpecError,
    UnsupportedModelTypeError,
    did_you_mean,
)
from tfcli.hf_mappings import SUPPORTED_MODEL_TYPES, map_hf_config
from tfcli.spec import ModelSpec, coerce_field, field_names

SPEC_SUFFIXES = (".yaml", ".yml")
SPECS_PATH_ENV = "TFCLI_SPECS_PATH"

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "LoadedModel",
    "load_model",
    "parse_overrides",
    "shipped_specs",
    "spec_from_hf_config",
    "spec_search_path",
]


@dataclass(frozen=True)
class LoadedModel:
    """A spec and where it, and each of its fields, came from."""

    spec: ModelSpec
    origin: str
    field_origins: dict[str, str]
    config_path: Path | None = None
    """The config.json behind the spec, when there is one (``--verify`` rebuilds from it)."""


# ---- where specs live ------------------------------------------------------------------------


def shipped_specs_dir() -> Path:
    """``tfcli/model_specs`` inside an installed wheel, else ``<repo>/model_specs``."""
    packaged = resources.files("tfcli") / "model_specs"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "model_specs"


def spec_search_path(specs_dirs: Sequence[Path] = ()) -> list[Path]:
    """Folders searched for spec names: ``--specs-dir``, ``TFCLI_SPECS_PATH``, shipped."""
    dirs = [Path(d) for d in specs_dirs]
    env = os.environ.get(SPECS_PATH_ENV, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    for d in dirs:
        if not d.is_dir():
            raise LoadError(
                f"specs folder {d} does not exist", hint=f"check --specs-dir / {SPECS_PATH_ENV}"
            )
    dirs.append(shipped_specs_dir())
    return dirs


def shipped_specs(specs_dirs: Sequence[Path] = ()) -> list[tuple[str, Path]]:
    """(name, path) of every spec on the search path, sorted; earlier folders shadow later."""
    found: dict[str, Path] = {}
    for folder in spec_search_path(specs_dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix in SPEC_SUFFIXES and path.stem.lower() not in found:
                found[path.stem.lower()] = path
    return sorted(found.items())


# ---- reading files ---------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LoadError(f"{path}: cannot read: {err}") from None


def read_yaml(path: Path) -> Any:
    """Parse a YAML file with ``yaml.safe_load``; a syntax error names the file and line."""
    try:
        return yaml.safe_load(_read_text(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise LoadError(f"{path}:{where}: malformed YAML: {problem}") from None


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise LoadError(
            f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None


# ---- spec YAML --------------------------------------------------------------------------------


def load_spec_yaml(path: Path) -> LoadedModel:
    """A spec YAML: keys are ModelSpec fields; ``name`` defaults to the file stem."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping of field: value")
    data = dict(data)
    data.setdefault("name", path.stem)
    data.setdefault("family", "custom")
    spec = ModelSpec.from_dict(data, origin=str(path))
    origins = {
        name: (f"spec file {path.name}" if name in data else "tfcli default")
        for name in field_names()
    }
    shipped = path.parent == shipped_specs_dir()
    where = f"shipped spec model_specs/{path.name}" if shipped else f"spec {path}"
    return LoadedModel(spec=spec, origin=where, field_origins=origins)


# ---- config.json ------------------------------------------------------------------------------


def spec_from_hf_config(
    config: Mapping[str, Any], *, name: str, origin: str = "config.json"
) -> LoadedModel:
    """Translate a Hugging Face config (a config.json dict) into a spec.

    A key absent from the config takes the transformers config class default, as
    ``from_pretrained`` would (the defaults live in ``tfcli.hf_mappings``).
    """
    if not isinstance(config, Mapping):
        raise LoadError(f"{origin}: a config.json must be a JSON object")
    fields, origins = map_hf_config(dict(config), origin=origin)
    fields["name"] = name
    origins["name"] = "MODEL argument"
    try:
        spec = ModelSpec.from_dict(fields, origin=origin)
    except SpecError as err:
        raise SpecError(err.message, hint=err.hint) from None
    all_origins = {f: origins.get(f, "tfcli default") for f in field_names()}
    return LoadedModel(spec=spec, origin=origin, field_origins=all_origins)


def load_config_json(
    path: Path, *, name: str | None = None, origin: str | None = None
) -> LoadedModel:
    data = read_json(path)
    stem = name or (path.parent.name if path.name == "config.json" else path.stem)
    try:
        loaded = spec_from_hf_config(data, name=stem, origin=origin or f"config.json {path}")
    except UnsupportedModelTypeError as err:
        err.config_path = str(path)
        raise
    return LoadedModel(loaded.spec, loaded.origin, loaded.field_origins, config_path=path)


# ---- hub cache --------------------------------------------------------------------------------


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.endswith((*SPEC_SUFFIXES, ".json"))


def load_hub_id(ref: str) -> LoadedModel:
    """``org/name`` from the local Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``); never
    downloads."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        raise LoadError(
            f"{ref!r} looks like a hub id, but huggingface_hub is not installed",
            hint="pip install huggingface_hub (a tfcli dependency), or pass a path to its "
            "config.json",
        ) from None
    cache_dir = os.environ.get("HF_HUB_CACHE")
    if cache_dir is None and os.environ.get("HF_HOME"):
        cache_dir = str(Path(os.environ["HF_HOME"]) / "hub")
    found = try_to_load_from_cache(repo_id=ref, filename="config.json", cache_dir=cache_dir)
    if not isinstance(found, str):
        where = cache_dir or "the default Hugging Face cache"
        raise ModelNotFoundError(
            f"{ref!r} is not a shipped spec and its config.json is not in the local Hugging Face "
            f"cache ({where})",
            hint=f"download it once (hf download {ref} config.json) or pass a config.json "
            "path; `tfcli models` lists shipped specs",
        )
    path = Path(found)
    return load_config_json(path, name=ref, origin=f"hub cache {ref} ({path})")


# ---- overrides --------------------------------------------------------------------------------


def _number_or_text(text: str) -> Any:
    """'1e6' -> 1000000.0 (YAML 1.1 reads it as a string), '32' -> 32, else the text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["num_kv_heads=32", ...]`` -> typed values (YAML scalars via ``safe_load``)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set {item!r}: write KEY=VALUE, e.g. --set num_kv_heads=8")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):
            value = _number_or_text(value)
        if isinstance(value, list):
            value = tuple(value)
        values[key] = coerce_field(key, value, origin=f"--set {key}")
    return values


def _apply_overrides(loaded: LoadedModel, overrides: Sequence[str]) -> LoadedModel:
    if not overrides:
        return loaded
    changes = parse_overrides(overrides)
    try:
        spec = loaded.spec.replace(**changes)
    except SpecError as err:
        raise SpecError(f"--set: {err.message}", hint=err.hint) from None
    origins = dict(loaded.field_origins)
    origins.update({k: "--set" for k in changes})
    return LoadedModel(spec, loaded.origin + " with --set", origins, loaded.config_path)


# ---- the entry point --------------------------------------------------------------------------


def _load_path(path: Path) -> LoadedModel:
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise LoadError(f"{path}: folder has no config.json")
        return load_config_json(config, name=path.name)
    if path.suffix in SPEC_SUFFIXES:
        return load_spec_yaml(path)
    if path.suffix == ".json":
        return load_config_json(path)
    raise LoadError(f"{path}: expected a spec .yaml, a config.json or a folder holding one")


def load_model(
    ref: str, *, specs_dirs: Sequence[Path] = (), overrides: Sequence[str] = ()
) -> LoadedModel:
    """Resolve a MODEL argument to a spec (see the module docstring for the order)."""
    path = Path(ref).expanduser()
    if path.exists():
        return _apply_overrides(_load_path(path), overrides)
    known = dict(shipped_specs(specs_dirs))
    if ref.lower() in known:
        return _apply_overrides(load_spec_yaml(known[ref.lower()]), overrides)
    if ref.endswith((*SPEC_SUFFIXES, ".json")) or (os.sep in ref and not _looks_like_hub_id(ref)):
        raise LoadError(f"{ref}: no such file")
    if _looks_like_hub_id(ref):
        return _apply_overrides(load_hub_id(ref), overrides)
    hint = did_you_mean(ref.lower(), list(known))
    raise ModelNotFoundError(
        f"unknown model {ref!r}" + (f" ({hint})" if hint else ""),
        hint="`tfcli models` lists the shipped specs; a path or a cached hub id also works",
    )
