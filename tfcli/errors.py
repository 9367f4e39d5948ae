"""Errors raised by tfcli's domain code; the CLI turns each into one line and an exit code.

Domain modules raise these instead of ``assert`` or bare exceptions so that bad input never
shows a traceback (DESIGN.md section 7).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

EXIT_BAD_INPUT = 2
"""Exit code for every kind of bad user input."""

ECHO_LIMIT = 200
"""An error message echoes at most this many characters of a bad value (DESIGN.md section 7)."""
MESSAGE_LIMIT = 1000
"""A whole error message is cut to this many characters, on one line."""


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters (with the full length said), for messages.

    A 5 MB string in a spec must not become a 5 MB error line. A cut string keeps its
    closing quote.
    """
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # e.g. an int over 4,300 digits, a cyclic value
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    close = text[-1] if text[-1] in "'\"" and text[0] == text[-1] else ""
    return f"{text[:limit]}...{close} ({len(text):,} characters)"


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` itself (no quotes) cut to ``limit`` characters, with the full length said."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


_LONG_QUOTED = re.compile("'([^'\\n]{" + str(ECHO_LIMIT) + "})[^'\\n]{20,}'")
"""A quoted value longer than a ``shorten``-ed one (which may hold ECHO_LIMIT + 3)."""


def clip_quoted(message: str) -> str:
    """Cut every single-quoted value longer than ECHO_LIMIT inside ``message`` (click's usage
    errors and ``{value!r}`` echo the whole value)."""
    return _LONG_QUOTED.sub(lambda m: f"'{m.group(1)}...' (cut)", message)


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` on one line (newlines become spaces), long quoted values cut, at most
    ``limit`` characters."""
    flat = " ".join(message.split()) if "\n" in message or "\r" in message else message
    flat = clip_quoted(flat) if len(flat) > ECHO_LIMIT else flat
    return flat if len(flat) <= limit else flat[:limit] + "..."


class TfcliError(Exception):
    """Base class: a message for the user, an optional hint, and the process exit code."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.hint = one_line(hint) if hint is not None else None

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
    if len(word) > 100:  # nothing is that long; and difflib's cost grows with the word
        return None
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
