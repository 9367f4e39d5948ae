"""Run the CLI in-process and judge the outcome by the bad-input contract of DESIGN.md section 7.

Every run of ``tfcli.cli.main`` must end in one of two ways:

* exit 0 with (under ``--json``) one strict JSON document on stdout: no NaN or Infinity, no
  negative count, a nonzero parameter total;
* exit 2 with exactly one non-empty line on stderr and nothing on stdout;

never a traceback (an exception escaping ``main``), and every run within ``CASE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from tests.cli_helpers import assert_error_stdout
from tfcli.cli import main

CASE_SECONDS = 5.0
"""Each case answers within 5 s (acceptance of issue 12)."""
HANG_SECONDS = 20
"""A case still running after this long is a hang: SIGALRM stops it and the test fails."""
NEGATIVE_ALLOWED = ("available_bytes", "headroom_bytes", "difference")
"""JSON keys that may be negative: memory left after the weights or the cache (the model does
not fit), and --verify's difference to transformers."""
MAPPER_FILE = "hf_mappings.py"


class Hang(Exception):
    """Raised by SIGALRM inside a case that ran past HANG_SECONDS."""


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    error: BaseException | None = None
    trace: str = ""

    @property
    def crash_site(self) -> str | None:
        """``file:line in function`` of the innermost tfcli frame of an escaped exception."""
        if self.error is None:
            return None
        frames = traceback.extract_tb(self.error.__traceback__)
        ours = [f for f in frames if "/tfcli/" in f.filename.replace("\\", "/")]
        last = (ours or frames)[-1]
        return f"{Path(last.filename).name}:{last.lineno} in {last.name}"

    @property
    def mapper_crash(self) -> bool:
        """An exception raised inside tfcli/hf_mappings.py (the lead's rewrite fixes those)."""
        site = self.crash_site
        return (
            site is not None and site.startswith(MAPPER_FILE) and not isinstance(self.error, Hang)
        )


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"still running after {HANG_SECONDS} s")


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def invoke(*argv: str, hang_seconds: int = HANG_SECONDS) -> Outcome:
    """``tfcli ARGV`` in this process, stdin empty, stdout and stderr captured; stopped by
    SIGALRM (an ``Outcome`` whose error is ``Hang``) after ``hang_seconds``."""
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    error: BaseException | None = None
    trace = ""
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO("")
    start = time.perf_counter()
    try:
        with _alarm(hang_seconds), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(argv))
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except (Exception, KeyboardInterrupt) as exc:  # a traceback: what the contract forbids
        error = exc
        trace = traceback.format_exc()
    finally:
        sys.stdin = saved_stdin
    seconds = time.perf_counter() - start
    return Outcome(tuple(argv), code, out.getvalue(), err.getvalue(), seconds, error, trace)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in JSON output")


def strict_json(text: str) -> Any:
    """Parse JSON, refusing NaN, Infinity and -Infinity (Python's json accepts them)."""
    return json.loads(text, parse_constant=_reject_constant)


def _numbers(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{path}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def _is_count(path: str) -> bool:
    leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if leaf in NEGATIVE_ALLOWED:
        return False
    words = ("params", "flops", "bytes", "tokens", "layers", "seconds", "seq", "batch")
    return any(word in path.rsplit(".", 1)[-1] for word in words) or "components" in path


def check_contract(
    outcome: Outcome, *, json_output: bool = True, max_seconds: float = CASE_SECONDS
) -> None:
    """Assert the bad-input contract (module docstring) for one run."""
    context = f"tfcli {' '.join(a[:80] for a in outcome.argv)}"
    assert outcome.error is None, f"{context}: traceback\n{outcome.trace}"
    assert outcome.seconds < max_seconds, f"{context}: took {outcome.seconds:.1f} s"
    assert "Traceback" not in outcome.stderr, f"{context}: {outcome.stderr}"
    assert outcome.code in (0, 2), f"{context}: exit {outcome.code}\n{outcome.stderr}"
    if outcome.code == 2:
        lines = [line for line in outcome.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"{context}: {len(lines)} stderr lines\n{outcome.stderr[:2000]}"
        assert lines[0].startswith("error:"), f"{context}: {lines[0][:300]}"
        assert_error_stdout(outcome.argv, outcome.stdout, lines[0])
        return
    if not json_output:
        return
    document = strict_json(outcome.stdout)
    for path, number in _numbers(document):
        if _is_count(path):
            assert number >= 0, f"{context}: negative {path} = {number}"
    if isinstance(document, dict) and "total_params" in document:
        assert document["total_params"] > 0, f"{context}: zero parameters for a valid model"
