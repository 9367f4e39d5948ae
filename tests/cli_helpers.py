"""Run the CLI as a user would: a subprocess of ``python -m tfcli``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    args: tuple[str, ...] = ()


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run ``python -m tfcli ARGS`` in a subprocess; wide terminal so lines don't wrap."""
    full_env = {**os.environ, "COLUMNS": "200", "TFCLI_DEBUG": "0"}
    full_env.pop("TFCLI_SPECS_PATH", None)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "tfcli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, tuple(args))


def _strict(constant: str) -> None:
    raise ValueError(f"not strict JSON: {constant}")


def assert_error_stdout(args: tuple[str, ...] | list[str], stdout: str, line: str) -> None:
    """What a refused run writes on stdout: nothing, or under --json (given before any
    ``--``) one strict JSON object {"error": {...}} whose message is the stderr line's."""
    given = list(args[: list(args).index("--")]) if "--" in args else list(args)
    if "--json" not in given:
        assert stdout == "", f"stdout on error: {stdout[:300]}"
        return
    document = json.loads(stdout, parse_constant=_strict)
    assert set(document) == {"error"}, document
    assert document["error"]["exit_code"] == 2
    assert document["error"]["message"] in line, (document, line)


def assert_one_line_error(run: Run, *fragments: str) -> None:
    """Bad input: exit code 2, exactly one line on stderr, no traceback; nothing on stdout,
    or with --json one strict JSON error object carrying the same message."""
    assert run.code == 2, (run.code, run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert_error_stdout(run.args, run.stdout, lines[0])
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
