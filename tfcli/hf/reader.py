"""Typed, range-checked reading of config.json values, recording where every field came from.

A config.json key is read once, checked against its kind (a positive count, a finite float,
a boolean, one of a set of names) and turned into a spec field; a bad value raises one
``LoadError`` naming the file, the key, the value and why, before any arithmetic. A missing
key takes the transformers config class default, as ``from_pretrained`` would.

Only the standard library is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from tfcli.errors import LoadError

MAX_LAYERS = 1_000_000
"""Layers per stack: no real model comes near (the deepest have ~200)."""
MAX_SIZE = 2**31
"""Widths, vocabularies, heads, experts, windows: no real model comes near."""

_NONFINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def _show(value: Any) -> str:
    """A value as it appears in an error message, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def decode_special(value: Any) -> Any:
    """transformers writes non-finite floats as ``{"__float__": "Infinity"}`` (Mamba-2's
    time_step_limit): read them back as floats; anything else unchanged."""
    if isinstance(value, dict) and set(value) == {"__float__"} and value["__float__"] in _NONFINITE:
        return _NONFINITE[value["__float__"]]
    return value


class Reader:
    """Reads one config.json dict for one model type; collects spec fields and their origins."""

    def __init__(self, data: dict[str, Any], class_name: str, origin: str) -> None:
        self.data = data
        self.class_name = class_name
        self.origin = origin
        self.fields: dict[str, Any] = {}
        self.origins: dict[str, str] = {}

    # ---- raw access -------------------------------------------------------------------------

    def has(self, *names: str) -> bool:
        """Whether the config holds one of ``names`` with a non-null value."""
        return any(self.data.get(n) is not None for n in names)

    def present(self, names: Iterable[str]) -> str | None:
        """The first of ``names`` the config holds (a null value counts: transformers then
        sets the attribute to None rather than to its default)."""
        for name in names:
            if name in self.data:
                return name
        return None

    def fail(self, key: str, value: Any, why: str) -> LoadError:
        return LoadError(f"{self.origin}: {key}={_show(value)}: {why}")

    def raw(self, names: str | tuple[str, ...], default: Any = None) -> tuple[Any, str | None]:
        """(value, key it came from) for the first present name, else (default, None)."""
        names = (names,) if isinstance(names, str) else names
        found = self.present(names)
        if found is None:
            return default, None
        return decode_special(self.data[found]), found

    # ---- typed access -----------------------------------------------------------------------

    def get(self, names: str | tuple[str, ...], default: Any = None, kind: str = "any") -> Any:
        """The value of the first present of ``names`` (else ``default``), checked as ``kind``.

        kinds: ``count`` (integer >= 1), ``layers`` (count <= MAX_LAYERS), ``natural``
        (integer >= 0), ``int``, ``float`` (finite), ``positive`` (finite > 0), ``bool``,
        ``str``, ``list``, ``dict``, ``any``; a leading ``?`` allows null.
        """
        value, key = self.raw(names, default)
        label = key or (names if isinstance(names, str) else names[0])
        return check(self, label, value, kind)

    def put(self, field: str, value: Any, *names: str) -> None:
        """Set spec ``field`` to ``value``, derived from config keys ``names``."""
        self.fields[field] = value
        found = [n for n in names if n in self.data]
        if found:
            self.origins[field] = "config.json: " + ", ".join(found)
        elif names:
            self.origins[field] = f"{self.class_name} default ({', '.join(names)})"
        else:
            self.origins[field] = f"{self.class_name} structure"

    def take(
        self, field: str, names: str | tuple[str, ...], default: Any = None, kind: str = "any"
    ) -> Any:
        """Copy the first present of ``names`` (or the default) into ``field``; return it."""
        names = (names,) if isinstance(names, str) else names
        value = self.get(names, default, kind)
        found = self.present(names)
        self.put(field, value, *(n for n in names if n == found or found is None))
        return value


def _integer(reader: Reader, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise reader.fail(key, value, f"expected an integer, got {type(value).__name__}")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise reader.fail(key, value, "expected an integer")
    number = int(value)
    if abs(number) > MAX_SIZE * MAX_SIZE:
        raise reader.fail(key, value, "out of range")
    return number


def check(reader: Reader, key: str, value: Any, kind: str) -> Any:
    """``value`` checked as ``kind`` (see ``Reader.get``); LoadError naming ``key`` if not."""
    if kind.startswith("?"):
        if value is None:
            return None
        kind = kind[1:]
    if kind == "any":
        return value
    if value is None:
        raise reader.fail(key, value, "a value is required")
    if kind in ("count", "layers", "natural", "int"):
        number = _integer(reader, key, value)
        low = 1 if kind in ("count", "layers") else 0 if kind == "natural" else None
        if low is not None and number < low:
            raise reader.fail(key, value, f"must be >= {low}")
        high = MAX_LAYERS if kind == "layers" else MAX_SIZE
        if abs(number) > high:
            raise reader.fail(key, value, f"must be at most {high:,} (no real model comes near)")
        return number
    if kind in ("float", "positive"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise reader.fail(key, value, f"expected a number, got {type(value).__name__}")
        real = float(value)
        if not math.isfinite(real):
            raise reader.fail(key, value, "must be finite")
        if kind == "positive" and real <= 0:
            raise reader.fail(key, value, "must be positive")
        return real
    expected = {"bool": bool, "str": str, "list": list, "dict": dict}[kind]
    if not isinstance(value, expected) or (expected is list and isinstance(value, str)):
        raise reader.fail(key, value, f"expected a {kind}, got {type(value).__name__}")
    return value
