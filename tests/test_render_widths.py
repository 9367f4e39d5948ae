"""Numbers are never cut: every command's tables at 40, 80 and 200 columns and in a pipe.

Each integer of a command's ``--json`` document must appear whole (thousands separators
allowed) in its human output at every width, and no cell may be elided with an ellipsis.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli_helpers import REPO

COMMANDS: list[list[str]] = [
    ["models"],
    ["show", "gemma-2-9b", "--all"],
    ["params", "deepseek-v3"],
    ["params", "t5-base"],
    ["flops", "llama-3-8b", "--seq", "131072"],
    ["flops", "mixtral-8x7b", "--seq", "1024,8192", "--batch", "1,8"],
    ["flops", "llama-3-8b", "--mode", "decode", "--context", "8191", "--hardware", "h100"],
    ["kvcache", "gemma-2-9b", "--seq", "8192", "--hardware", "h100"],
    ["kvcache", "llama-2-70b", "--seq", "4096,131072", "--batch", "1,8"],
    ["compare", "llama-3-8b", "mistral-7b", "deepseek-v3"],
]

EXEMPT_KEYS = {
    # Inputs echoed back or positions, not results: shown as labels or not at all.
    "index",
    "tp",
    "block_size",
    # One value per layer: the views group equal layers into one row with the same value.
    "per_layer_bytes",
    "per_layer_state_bytes",
    "runs",
    # The formulas' factors: printed by --explain (test_explain_prints_every_term_factor).
    "terms",
}


SWEEP_EXEMPT_KEYS = {
    # A sweep row shows the pass's FLOPs exactly and attention as a share (the exact attention
    # FLOPs are in the single-point view, in --json and in --format csv).
    "attention_flops",
}


def _integers(value: Any, key: str = "", *, sweep: bool = False) -> Iterator[int]:
    if key in EXEMPT_KEYS or (sweep and key in SWEEP_EXEMPT_KEYS):
        return
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _integers(v, k, sweep=sweep)
    elif isinstance(value, list):
        for v in value:
            yield from _integers(v, key, sweep=sweep)


def _run(args: list[str], columns: int | None) -> str:
    env = {**os.environ, "TFCLI_DEBUG": "0"}
    env.pop("TFCLI_SPECS_PATH", None)
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    proc = subprocess.run(
        [sys.executable, "-m", "tfcli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _numbers_in(text: str) -> set[int]:
    return {int(m.replace(",", "")) for m in re.findall(r"\d[\d,]*\d|\d", text)}


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_every_json_integer_appears_whole_at_every_width(args: list[str]) -> None:
    document = json.loads(_run([*args, "--json"], 200))
    sweep = "scaling" not in document and len(document.get("points", [])) > 1
    wanted = set(_integers(document, sweep=sweep))
    for columns in (40, 80, 200, None):  # None: a pipe without COLUMNS
        text = _run(args, columns)
        assert "…" not in text, (columns, text)
        missing = wanted - _numbers_in(text)
        assert not missing, (columns, sorted(missing)[:10])
        if columns is not None:
            too_wide = [line for line in text.splitlines() if _is_table_line(line, columns)]
            assert not too_wide, (columns, too_wide[:3])


def _is_table_line(line: str, columns: int) -> bool:
    """A table line (box drawing) wider than the console: the table did not fit."""
    return len(line) > columns and any(ch in line for ch in "│┃|")


@pytest.mark.parametrize("args", [["params", "t5-base"], ["flops", "llama-3-8b"]], ids=" ".join)
def test_explain_prints_every_term_factor(args: list[str]) -> None:
    document = json.loads(_run([*args, "--json"], 200))
    wanted = {v for t in document["terms"] for _, v in t["factors"]} | {
        t["value"] for t in document["terms"]
    }
    for columns in (40, 80):
        missing = wanted - _numbers_in(_run([*args, "--explain"], columns))
        assert not missing, (columns, sorted(missing)[:10])
