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

YAML is read only through a safe loader (libyaml's ``CSafeLoader`` when available, else
``SafeLoader``); nothing here ever runs remote code.

Input limits (DESIGN.md section 7): a MODEL file must be a regular file of at most
``MAX_FILE_BYTES`` (a FIFO or ``/dev/zero`` is refused before any read); a document may nest
``MAX_NESTING`` levels, YAML aliases may add at most ``MAX_ALIAS_NODES`` values, integers have
at most ``MAX_INT_DIGITS`` digits, and numbers are finite. Each limit names the file and why.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tfcli.errors import (
    LoadError,
    ModelNotFoundError,
    SpecError,
    UnsupportedModelTypeError,
    clip,
    did_you_mean,
    shorten,
)
from tfcli.spec import ModelSpec, coerce_field, field_names

SPEC_SUFFIXES = (".yaml", ".yml")
SPECS_PATH_ENV = "TFCLI_SPECS_PATH"

MAX_FILE_BYTES = 4 * 2**20
"""A MODEL file is at most 4 MiB (a config.json is kilobytes)."""
MAX_NESTING = 32
"""Mappings and lists nest at most this deep (real configs: under 6)."""
MAX_ALIAS_NODES = 10_000
"""Values YAML aliases may add when expanded (an alias bomb adds billions)."""
MAX_INT_DIGITS = 18
"""Integers in a MODEL file have at most 18 digits (below 1e18, inside int64)."""
MAX_HUB_ID = 96
"""The longest hub id the Hugging Face hub accepts."""

__all__ = [
    "SUPPORTED_MODEL_TYPES",  # noqa: F822 (module __getattr__)
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
    quantization: Mapping[str, Any] | None = None
    """The config.json's ``quantization_config``, as data (``tfcli.quant`` counts its bytes)."""


def __getattr__(name: str) -> Any:
    """``SUPPORTED_MODEL_TYPES`` (tfcli.hf_mappings), imported when first asked for: a
    shipped YAML spec never loads the config.json records (PEP 562)."""
    if name == "SUPPORTED_MODEL_TYPES":
        from tfcli.hf_mappings import SUPPORTED_MODEL_TYPES

        return SUPPORTED_MODEL_TYPES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- where specs live ------------------------------------------------------------------------


def shipped_specs_dir() -> Path:
    """``tfcli/model_specs`` inside an installed wheel, else ``<repo>/model_specs``."""
    packaged = resources.files("tfcli") / "model_specs"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "model_specs"


warning_handler: Callable[[str], None] | None = None
"""Where loader warnings go (``message`` without the ``warning:`` prefix); None: stderr."""
_warned: set[str] = set()


def warn(message: str) -> None:
    """One warning line on stderr, once per message and process (stale path entries, broken
    spec files): the command goes on."""
    if message in _warned:
        return
    _warned.add(message)
    if warning_handler is not None:
        warning_handler(message)
    else:
        sys.stderr.write(f"warning: {message}\n")


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False (not an exception) when it cannot be inspected."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def spec_search_path(specs_dirs: Sequence[Path] = ()) -> list[Path]:
    """Folders searched for spec names: ``--specs-dir``, ``TFCLI_SPECS_PATH``, shipped.

    A folder that does not exist (a stale entry) is a warning and is skipped.
    """
    given = [(Path(d), "--specs-dir") for d in specs_dirs]
    env = os.environ.get(SPECS_PATH_ENV, "")
    given += [(Path(p), SPECS_PATH_ENV) for p in env.split(os.pathsep) if p]
    dirs = []
    for folder, where in given:
        if _is_dir(folder):
            dirs.append(folder)
        else:
            warn(f"specs folder {shorten(str(folder))} ({where}) is not a readable folder; skipped")
    dirs.append(shipped_specs_dir())
    return dirs


def _spec_files(folder: Path) -> list[Path]:
    """Spec files (``.yaml``/``.yml`` in any case) of one folder, sorted; an unreadable folder
    is a warning and gives none."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        warn(f"specs folder {folder} cannot be read ({err.strerror or err}); skipped")
        return []
    return [p for p in entries if p.suffix.lower() in SPEC_SUFFIXES]


def shipped_specs(specs_dirs: Sequence[Path] = ()) -> list[tuple[str, Path]]:
    """(name, path) of every spec on the search path, sorted; earlier folders shadow later."""
    found: dict[str, Path] = {}
    for folder in spec_search_path(specs_dirs):
        for path in _spec_files(folder):
            if path.stem.lower() not in found:
                found[path.stem.lower()] = path
    return sorted(found.items())


# ---- reading files ---------------------------------------------------------------------------


def _file_kind(mode: int) -> str:
    """What a non-regular file is, for the message."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    for test, name in kinds:
        if test(mode):
            return name
    return "not a regular file"


def _os_error(path: Path, err: OSError) -> LoadError:
    if isinstance(err, FileNotFoundError):
        return LoadError(f"{path}: no such file")
    if isinstance(err, PermissionError):
        return LoadError(f"{path}: permission denied", hint="check the file's permissions")
    return LoadError(f"{path}: cannot read: {err.strerror or err}")


def _check_regular(path: Path, mode: int, size: int, limit: int) -> None:
    if not stat.S_ISREG(mode):
        raise LoadError(f"{path}: is {_file_kind(mode)}, not a regular file; refusing to read it")
    if size > limit:
        raise LoadError(f"{path}: is {size:,} bytes; at most {limit:,} bytes are read")


def read_bytes_bounded(path: Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; LoadError for anything else.

    The file is checked with ``stat`` before it is opened, opened non-blocking (a FIFO never
    blocks) and checked again on the open descriptor, and at most ``limit + 1`` bytes are read.
    """
    try:
        info = os.stat(path)
        _check_regular(path, info.st_mode, info.st_size, limit)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags)
        try:
            info = os.fstat(fd)
            _check_regular(path, info.st_mode, info.st_size, limit)
            chunks: list[bytes] = []
            remaining = limit + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 2**20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        finally:
            os.close(fd)
    except OSError as err:
        raise _os_error(path, err) from None
    data = b"".join(chunks)
    if len(data) > limit:
        raise LoadError(f"{path}: is larger than {limit:,} bytes, the most that is read")
    return data


def read_text_bounded(path: Path, *, limit: int = MAX_FILE_BYTES) -> str:
    """A regular UTF-8 text file of at most ``limit`` bytes (a BOM is allowed)."""
    try:
        return read_bytes_bounded(path, limit=limit).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LoadError(f"{path}: is not UTF-8 text (byte {err.start:,})") from None


_read_text = read_text_bounded


@dataclass
class _Walk:
    """State of one document check: sizes of containers seen, containers on the path."""

    origin: str
    sizes: dict[int, int] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)
    unique: int = 0

    def fail(self, why: str) -> LoadError:
        """``origin: key.path: why`` (no path for the top-level value)."""
        where = "".join(self.keys).lstrip(".")
        return LoadError(f"{self.origin}: {clip(where, 120) + ': ' if where else ''}{why}")


def _scalar_problem(value: Any) -> str | None:
    """Why a scalar cannot be a spec or config value, or None when it can."""
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, int):
        if abs(value) >= 10**MAX_INT_DIGITS:
            return f"integer is too large (more than {MAX_INT_DIGITS} digits)"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"non-finite number {value} is not allowed"
    return (
        f"a {type(value).__name__} value is not supported "
        "(use a number, string, boolean, null, list or mapping)"
    )


def _measure(value: Any, depth: int, walk: _Walk) -> int:
    """Expanded size of ``value`` (aliases counted at each use); checks types on the way."""
    if not isinstance(value, (dict, list)):
        problem = _scalar_problem(value)
        if problem is not None:
            raise walk.fail(problem)
        walk.unique += 1
        return 1
    key = id(value)
    if key in walk.active:
        raise walk.fail("refers to itself (a recursive YAML anchor)")
    if key in walk.sizes:
        return walk.sizes[key]
    if depth >= MAX_NESTING:
        raise walk.fail(f"nested more than {MAX_NESTING} levels deep")
    walk.active.add(key)
    walk.unique += 1
    total = 1
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for item_key, item in items:
        if isinstance(value, dict) and not isinstance(item_key, str):
            raise walk.fail(f"mapping keys must be strings, got {shorten(item_key)}")
        walk.keys.append(f".{item_key}" if isinstance(value, dict) else f"[{item_key}]")
        total += _measure(item, depth + 1, walk)
        walk.keys.pop()
    walk.active.discard(key)
    walk.sizes[key] = total
    return total


def check_document(data: Any, origin: str) -> None:
    """Reject a parsed document that nests too deeply, refers to itself, expands its aliases
    past MAX_ALIAS_NODES values, or holds a value that is not plain JSON (a non-finite
    number, an integer over MAX_INT_DIGITS digits, a date, bytes, a set)."""
    walk = _Walk(origin)
    expanded = _measure(data, 0, walk)
    if expanded - walk.unique > MAX_ALIAS_NODES:
        raise LoadError(
            f"{origin}: YAML aliases expand to {expanded:,} values (more than "
            f"{MAX_ALIAS_NODES:,} beyond the {walk.unique:,} written); refusing an alias bomb"
        )


_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's C safe loader when PyYAML was built with it (10x faster), else SafeLoader."""


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_PLAIN_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_PLAIN_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def _without_sexagesimal(loader: Any) -> None:
    """YAML 1.1 reads ``190:20:30`` as the base-60 integer 685,230: a spec means no such
    thing, so plain scalars with colons stay strings (as in YAML 1.2)."""
    resolvers = {
        first: [(tag, rx) for tag, rx in entries if tag not in (_INT_TAG, _FLOAT_TAG)]
        for first, entries in loader.yaml_implicit_resolvers.items()
    }
    loader.yaml_implicit_resolvers = resolvers
    loader.add_implicit_resolver(_INT_TAG, _PLAIN_INT, list("-+0123456789"))
    loader.add_implicit_resolver(_FLOAT_TAG, _PLAIN_FLOAT, list("-+0123456789."))


def make_safe_loader(base: Any) -> Any:
    """A subclass of the safe loader ``base`` (``CSafeLoader`` or ``SafeLoader``) that reports a
    tagged value that cannot be built (``!!int abc``) as a YAML error at its line instead of a
    Python exception, and reads no base-60 numbers (``_without_sexagesimal``)."""

    class Loader(base):  # type: ignore[misc, valid-type]
        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as err:
                tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
                detail = f" ({clip(str(err), 80)})" if isinstance(err, ValueError) else ""
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{tag} {shorten(node.value, 80)} is not a valid {tag.lstrip('!')}{detail}",
                    node.start_mark,
                ) from None

    _without_sexagesimal(Loader)
    return Loader


_SafeLoader = make_safe_loader(_BASE_LOADER)


def parse_yaml(text: str, origin: str) -> Any:
    """Parse YAML text safely; any error names ``origin`` (and the line when known)."""
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise LoadError(f"{origin}:{where} malformed YAML: {clip(problem, 300)}") from None
    except RecursionError:
        raise LoadError(f"{origin}: YAML nested too deeply") from None
    check_document(data, origin)
    return data


def read_yaml(path: Path) -> Any:
    """Parse a YAML spec file safely; a syntax error names the file and line."""
    return parse_yaml(read_text_bounded(path), str(path))


class _BadNumber(Exception):
    """Raised from the JSON number hooks; turned into a LoadError naming the file."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadNumber(
            f"an integer of {len(text.lstrip('-')):,} digits (at most {MAX_INT_DIGITS})"
        )
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {shorten(text, 40)} overflows to infinity")
    return value


def _json_constant(text: str) -> float:
    raise _BadNumber(f"the non-finite number {text} (JSON has no NaN or Infinity)")


def parse_json(text: str, origin: str) -> Any:
    """Parse JSON text strictly (finite numbers, bounded integers and nesting)."""
    try:
        data = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except json.JSONDecodeError as err:
        raise LoadError(
            f"{origin}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except _BadNumber as err:
        raise LoadError(f"{origin}: refusing {err}") from None
    except RecursionError:
        raise LoadError(f"{origin}: JSON nested too deeply") from None
    check_document(data, origin)
    return data


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    return parse_json(read_text_bounded(path), str(path))


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
    config: Mapping[str, Any],
    *,
    name: str,
    origin: str = "config.json",
    as_type: str | None = None,
) -> LoadedModel:
    """Translate a Hugging Face config (a config.json dict) into a spec.

    A key absent from the config takes the transformers config class default, as
    ``from_pretrained`` would (the defaults live in the records of ``tfcli.hf``).
    ``as_type`` reads it with another model_type's record (a Llama clone as ``llama``).
    """
    if not isinstance(config, Mapping):
        raise LoadError(f"{origin}: a config.json must be a JSON object")
    from tfcli.hf_mappings import map_hf_config  # only config.json pays for the records

    fields, origins = map_hf_config(dict(config), origin=origin, as_type=as_type)
    if as_type is not None:
        origin = f"{origin}, read as {as_type} (--as)"
    fields["name"] = name
    origins["name"] = "MODEL argument"
    try:
        spec = ModelSpec.from_dict(fields, origin=origin)
    except SpecError as err:
        raise SpecError(err.message, hint=err.hint) from None
    all_origins = {f: origins.get(f, "tfcli default") for f in field_names()}
    quantization = config.get("quantization_config")
    if quantization is not None and not isinstance(quantization, Mapping):
        raise SpecError(f"{origin}: quantization_config must be a JSON object")
    return LoadedModel(
        spec=spec, origin=origin, field_origins=all_origins, quantization=quantization
    )


def load_config_json(
    path: Path,
    *,
    name: str | None = None,
    origin: str | None = None,
    as_type: str | None = None,
) -> LoadedModel:
    data = read_json(path)
    stem = name or (path.parent.name if path.name == "config.json" else path.stem)
    try:
        loaded = spec_from_hf_config(
            data, name=stem, origin=origin or f"config.json {path}", as_type=as_type
        )
    except UnsupportedModelTypeError as err:
        err.config_path = str(path)
        raise
    return dataclasses.replace(loaded, config_path=path)


# ---- hub cache --------------------------------------------------------------------------------


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.lower().endswith((*SPEC_SUFFIXES, ".json"))


_HUB_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?")


def check_hub_id(ref: str) -> None:
    """An ``org/name`` the hub accepts: letters, digits, ``-``, ``_``, ``.``; neither part
    starts or ends with ``-`` or ``.``; no ``--`` or ``..``; at most 96 characters."""
    parts = ref.split("/")
    valid = (
        len(ref) <= MAX_HUB_ID
        and len(parts) == 2
        and all(_HUB_PART.fullmatch(part) for part in parts)
        and "--" not in ref
        and ".." not in ref
    )
    if not valid:
        raise ModelNotFoundError(
            f"{shorten(ref)} is not a file, a shipped spec or a valid hub id (org/name of "
            f"letters, digits, '-', '_' and '.', at most {MAX_HUB_ID} characters)",
            hint="`tfcli models` lists the shipped specs",
        )


def _cache_dir() -> str | None:
    cache_dir = os.environ.get("HF_HUB_CACHE")
    if cache_dir is None and os.environ.get("HF_HOME"):
        cache_dir = str(Path(os.environ["HF_HOME"]) / "hub")
    return cache_dir


def _check_refs_main(cache_dir: str | None, ref: str) -> None:
    """huggingface_hub reads ``refs/main`` with a plain ``open``: a FIFO there would block
    forever, so anything but a small regular file is refused first."""
    if cache_dir is None:
        from huggingface_hub import constants

        cache_dir = str(constants.HF_HUB_CACHE)
    refs_main = Path(cache_dir) / ("models--" + ref.replace("/", "--")) / "refs" / "main"
    if _exists(refs_main):
        read_bytes_bounded(refs_main, limit=2**10)


def load_hub_id(ref: str, *, as_type: str | None = None) -> LoadedModel:
    """``org/name`` from the local Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``); never
    downloads."""
    check_hub_id(ref)
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        raise LoadError(
            f"{ref!r} looks like a hub id, but huggingface_hub is not installed",
            hint="pip install huggingface_hub (a tfcli dependency), or pass a path to its "
            "config.json",
        ) from None
    cache_dir = _cache_dir()
    where = cache_dir or "the default Hugging Face cache"
    _check_refs_main(cache_dir, ref)
    try:
        found = try_to_load_from_cache(repo_id=ref, filename="config.json", cache_dir=cache_dir)
    except OSError as err:  # an unreadable refs/main, a cache folder without permission
        raise LoadError(
            f"{ref!r}: cannot read the local Hugging Face cache ({where}): "
            f"{err.strerror or shorten(str(err))}"
        ) from None
    except ValueError as err:  # huggingface_hub's HFValidationError
        raise LoadError(f"{ref!r}: not a valid hub id: {shorten(str(err), 300)}") from None
    if not isinstance(found, str):
        raise ModelNotFoundError(
            f"{ref!r} is not a shipped spec and its config.json is not in the local Hugging Face "
            f"cache ({where})",
            hint=f"download it once (hf download {ref} config.json) or pass a config.json "
            "path; `tfcli models` lists shipped specs",
        )
    path = Path(found)
    return load_config_json(path, name=ref, origin=f"hub cache {ref} ({path})", as_type=as_type)


# ---- overrides --------------------------------------------------------------------------------


def _number_or_text(text: str) -> Any:
    """'1e6' -> 1000000.0 (YAML 1.1 reads it as a string), '32' -> 32, else the text."""
    digits = text.strip().lstrip("+-")
    if digits.isdigit() and len(digits) > MAX_INT_DIGITS:
        raise SpecError(f"--set: an integer of {len(digits):,} digits is too large")
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def _override_value(key: str, text: str) -> Any:
    """The YAML scalar (or flow list/mapping) of one ``--set`` value, checked like a file."""
    if not text.strip():
        return None
    try:
        value = yaml.load(text, Loader=_SafeLoader)
    except (yaml.YAMLError, RecursionError):
        value = text
    if isinstance(value, str):
        value = _number_or_text(value)
    check_document(value, f"--set {clip(key, 60)}")
    return tuple(value) if isinstance(value, list) else value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["num_kv_heads=32", ...]`` -> typed values (YAML scalars via the safe loader)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set {shorten(item)}: write KEY=VALUE, e.g. --set num_kv_heads=8")
        value = _override_value(key, text)
        values[key] = coerce_field(key, value, origin="--set")
    return values


def _apply_overrides(loaded: LoadedModel, overrides: Sequence[str]) -> LoadedModel:
    if not overrides:
        return loaded
    changes = parse_overrides(overrides)
    resized: dict[str, tuple[str, ...]] = {}
    notes: list[str] = []
    try:
        layers = changes.get("num_layers")
        if isinstance(layers, int) and not isinstance(layers, bool) and layers > 0:
            resized, notes = loaded.spec.per_layer_resized(layers)
            resized = {k: v for k, v in resized.items() if k not in changes}
        spec = loaded.spec.replace(**resized, **changes)
    except SpecError as err:
        raise SpecError(f"--set: {err.message}", hint=err.hint) from None
    origins = dict(loaded.field_origins)
    origins.update({k: "--set" for k in changes})
    kept = [note for note in notes if note.split(":")[0] in resized]
    origins.update({k: f"--set num_layers ({note})" for k, note in zip(resized, kept, strict=True)})
    origin = loaded.origin + " with --set"
    if kept:
        origin += " (" + "; ".join(kept) + ")"
    return dataclasses.replace(loaded, spec=spec, origin=origin, field_origins=origins)


# ---- the entry point --------------------------------------------------------------------------


def _exists(path: Path) -> bool:
    """``path.exists()`` that treats a name too long or an unreadable parent as absent."""
    try:
        return path.exists() or path.is_symlink()
    except (OSError, ValueError):  # ENAMETOOLONG, EACCES on a parent, an embedded NUL
        return False


def _load_path(path: Path, as_type: str | None = None) -> LoadedModel:
    try:
        is_dir = path.is_dir()
        config = path / "config.json"
        has_config = is_dir and (config.exists() or config.is_symlink())
    except OSError as err:
        raise _os_error(path, err) from None
    if is_dir:
        if not has_config:
            raise LoadError(f"{path}: folder has no config.json")
        return load_config_json(config, name=path.name, as_type=as_type)
    suffix = path.suffix.lower()
    if suffix in SPEC_SUFFIXES:
        return load_spec_yaml(path)
    if suffix == ".json":
        return load_config_json(path, as_type=as_type)
    raise LoadError(f"{path}: expected a spec .yaml, a config.json or a folder holding one")


def load_model(
    ref: str,
    *,
    specs_dirs: Sequence[Path] = (),
    overrides: Sequence[str] = (),
    as_type: str | None = None,
) -> LoadedModel:
    """Resolve a MODEL argument to a spec (see the module docstring for the order).

    ``as_type`` reads a config.json (or cached hub id) with another model_type's record;
    a spec YAML or shipped spec has no model_type to replace, so it is refused there.
    """
    try:
        path = Path(ref).expanduser()
    except RuntimeError:  # ~user with no such user
        path = Path(ref)
    if ref and _exists(path):
        if as_type is not None and not (path.is_dir() or path.suffix.lower() == ".json"):
            raise LoadError(
                f"--as reads a config.json with another type's mapping; {clip(ref)} is a spec"
            )
        return _apply_overrides(_load_path(path, as_type), overrides)
    known = dict(shipped_specs(specs_dirs))
    if ref.lower() in known:
        if as_type is not None:
            raise LoadError(
                f"--as reads a config.json with another type's mapping; {clip(ref)} is a "
                "shipped spec"
            )
        return _apply_overrides(load_spec_yaml(known[ref.lower()]), overrides)
    if ref.lower().endswith((*SPEC_SUFFIXES, ".json")) or (
        os.sep in ref and not _looks_like_hub_id(ref)
    ):
        raise LoadError(f"{clip(ref)}: no such file")
    if _looks_like_hub_id(ref):
        return _apply_overrides(load_hub_id(ref, as_type=as_type), overrides)
    hint = did_you_mean(ref.lower(), list(known))
    raise ModelNotFoundError(
        f"unknown model {shorten(ref)}" + (f" ({hint})" if hint else ""),
        hint="`tfcli models` lists the shipped specs; a path or a cached hub id also works",
    )
