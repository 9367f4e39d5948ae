"""Estimate commands must not import torch or transformers (DESIGN.md import rule)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli_helpers import REPO

PROBE = """
import sys
from tfcli.cli import main
try:
    main({args!r})
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("torch", "transformers", "huggingface_hub") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["params", "llama-3-8b"],
        ["params", "llama-3-8b", "--json"],
        ["models"],
        ["show", "llama-3-8b"],
        ["flops", "llama-3-8b", "--seq", "131072"],
        ["kvcache", "llama-2-70b", "--seq", "131072"],
        ["compare", "llama-3-8b", "mistral-7b"],
        [
            "train",
            "llama-3-8b",
            "--seq",
            "8192",
            "--micro-batch",
            "1",
            "--precision",
            "bf16-mixed",
            "--dp",
            "8",
            "--zero",
            "3",
            "--hardware",
            "h100",
        ],
    ],
    ids=lambda a: " ".join(a),
)
def test_estimate_commands_leave_torch_and_transformers_unimported(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    heavy_line = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")]
    assert heavy_line == ["HEAVY="], proc.stderr
