"""Errors raised by tfcli's domain code; the CLI turns each into one line and an exit code.

Domain modules raise these instead of ``assert`` or bare exceptions so that bad input never
shows a traceback (DESIGN.md section 7).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_BAD_INPUT = 2
"""Exit code for every kind of bad user input."""


class TfcliError(Exception):
    """Base class: a message for the user, an optional hint, and the process exit code."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SpecError(TfcliError):
    """A model spec breaks an invariant or has an unknown or ill-typed key."""


class LoadError(TfcliError):
    """A MODEL argument cannot be read: missing file, bad YAML/JSON, unknown model_type."""


class UnsupportedModelTypeError(LoadError):
    """A config.json whose model_type tfcli has no mapping for (transformers may know it)."""

    def __init__(self, message: str, *, model_type: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.model_type = model_type
        self.config_path: str | None = None


class ModelNotFoundError(LoadError):
    """A MODEL name matches no shipped spec, file or cached hub id."""


class UsageError(TfcliError):
    """A command-line value is out of range or does not parse (``--seq 0``, ``--budget x``)."""


class BenchError(TfcliError):
    """The benchmark cannot run as asked (missing torch, no CUDA, would not fit in memory)."""


def did_you_mean(word: str, choices: Iterable[str], *, limit: int = 3) -> str | None:
    """Return ``"did you mean a, b?"`` for the closest ``choices`` to ``word``, or None."""
    matches = difflib.get_close_matches(word, list(choices), n=limit, cutoff=0.6)
    if not matches:
        return None
    return "did you mean " + ", ".join(repr(m) for m in matches) + "?"


EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT)."""

EXIT_OUTPUT = 1
"""Exit code when the result cannot be written (closed stdout, full disk)."""


class OutputError(TfcliError):
    """The result cannot be written: stdout closed (``>&-``), disk full (``/dev/full``), or a
    non-finite number would make the JSON invalid."""

    exit_code = EXIT_OUTPUT

    @classmethod
    def from_os_error(cls, stream: str, err: Exception) -> OutputError:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        error = cls(f"cannot write to standard {stream[3:]}put: {reason}")
        error.errno = getattr(err, "errno", None)
        return error

    errno: int | None = None
