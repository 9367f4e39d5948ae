"""Units: dtype widths and SI/IEC constants. No string formatting lives here (see render.py).

Conventions (DESIGN.md section 4): counts and FLOPs use SI prefixes (1 B = 1e9 parameters,
1 TFLOP = 1e12 FLOPs); memory uses IEC binary prefixes (1 GiB = 2**30 bytes), labelled as such.
"""

from __future__ import annotations

import math
import re

from tfcli.errors import UsageError, did_you_mean, shorten

KIB = 2**10
MIB = 2**20
GIB = 2**30
TIB = 2**40
KB = 10**3
MB = 10**6
GB = 10**9
TB = 10**12

DTYPE_BITS: dict[str, int] = {
    "fp32": 32,
    "fp16": 16,
    "bf16": 16,
    "fp8": 8,
    "int8": 8,
    "int4": 4,
}
"""Bits per element of each storage dtype tfcli knows."""

DTYPE_ALIASES: dict[str, str] = {
    "float32": "fp32",
    "float": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "float8": "fp8",
    "float8_e4m3fn": "fp8",
    "e4m3": "fp8",
}

WEIGHT_DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp8", "int8", "int4")
"""Dtypes shown in the weight-memory table of ``tfcli params``."""


def normalize_dtype(name: str) -> str:
    """Canonical dtype name (``bfloat16`` -> ``bf16``); UsageError for an unknown one."""
    key = name.strip().lower()
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BITS:
        hint = did_you_mean(key, list(DTYPE_BITS) + list(DTYPE_ALIASES))
        raise UsageError(
            f"unknown dtype {shorten(name)}; known: {', '.join(DTYPE_BITS)}"
            + (f" ({hint})" if hint else "")
        )
    return key


def dtype_bits(name: str) -> int:
    """Bits per element of dtype ``name``."""
    return DTYPE_BITS[normalize_dtype(name)]


def bytes_for(count: int, dtype: str) -> int:
    """Bytes to store ``count`` elements of ``dtype``: ceil(count * bits / 8) (int4 packs two)."""
    return math.ceil(count * dtype_bits(dtype) / 8)


_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": KB,
    "mb": MB,
    "gb": GB,
    "tb": TB,
    "kib": KIB,
    "mib": MIB,
    "gib": GIB,
    "tib": TIB,
    "k": KIB,
    "m": MIB,
    "g": GIB,
    "t": TIB,
}

MAX_MEMORY_BYTES = 2**60
"""The largest memory size accepted (1 EiB): no device holds more."""

_SIZE_PATTERN = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]{1,4})?)\s*([A-Za-z]*)\s*")


def parse_bytes(text: str) -> int:
    """Parse a memory size such as ``80GiB``, ``80 GB``, ``24g`` or ``1e9B`` into bytes.

    ``GB`` is 1e9 bytes and ``GiB`` is 2**30; a bare ``G`` means GiB, as in most tools. The
    unit is required (``80`` alone could mean either), and the size must be positive and at
    most ``MAX_MEMORY_BYTES``.
    """
    match = _SIZE_PATTERN.fullmatch(text)
    if not match:
        raise UsageError(f"cannot parse memory size {shorten(text)}; write e.g. 80GiB, 24GB or 16g")
    number, unit = float(match.group(1)), match.group(2).lower()
    if not unit:
        raise UsageError(
            f"memory size {shorten(text)} has no unit: write {match.group(1)}GiB "
            f"(2**30 bytes) or {match.group(1)}GB (1e9 bytes)"
        )
    if unit not in _SIZE_UNITS:
        raise UsageError(
            f"unknown memory unit {shorten(match.group(2))} in {shorten(text)}; "
            "use GB, GiB, MB, MiB"
        )
    scaled = number * _SIZE_UNITS[unit]
    if not math.isfinite(scaled) or scaled > MAX_MEMORY_BYTES:
        raise UsageError(f"memory size {shorten(text)} is too large (at most 1 EiB = 2**60 B)")
    value = int(scaled)
    if value <= 0:
        raise UsageError(f"memory size must be positive, got {shorten(text)}")
    return value
