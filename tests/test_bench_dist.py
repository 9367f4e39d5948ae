"""``tfcli bench --dist`` on 2 ranks under torchrun (gloo on CPU): the sharded built-in model
matches the unsharded one, and the collectives it issues equal tfcli's estimate.

Both runs use qwen2.5-0.5b's widths with a 4,096-token vocabulary (``--set vocab_size``) so
that the pair finishes in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parent.parent


def _run_torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc-per-node 2 -m tfcli bench ARGS`` (skipped without torchrun)."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    if not Path(torchrun).exists():
        pytest.skip("torchrun is not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "tfcli", "bench", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def _torchrun(*args: str) -> dict[str, object]:
    proc = _run_torchrun(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["tp=2", "fsdp=2"])
def test_dist_two_ranks_match_unsharded_and_estimates(mode: str) -> None:
    doc = _torchrun(
        "qwen2.5-0.5b", "--dist", mode, "--seq", "256", "--set", "vocab_size=4096", "--json"
    )
    assert doc["world_size"] == 2
    assert doc["backend"] == "gloo"
    diffs = {k: v for k, v in doc.items() if "diff" in k}
    assert diffs and all(isinstance(v, float) and v <= 1e-5 for v in diffs.values())
    assert any(k.endswith("_seconds") for k in doc)
    assert doc["collectives"] == doc["predicted_collectives"]
    expected = {"all_reduce"} if mode.startswith("tp") else {"all_gather", "reduce_scatter"}
    assert set(doc["collectives"]) == expected


def test_dist_outside_torchrun_is_one_line() -> None:
    from tests.cli_helpers import assert_one_line_error, run_cli

    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    run = run_cli("bench", "qwen2.5-0.5b", "--dist", "tp=2", "--seq", "256", env=env)
    assert_one_line_error(run, "torchrun")
    assert_one_line_error(run_cli("bench", "--dist", "pp=2", "--seq", "256"), "--dist")


def test_a_refusal_under_torchrun_writes_one_json_document() -> None:
    """Every worker refuses a bad --dist run; only rank 0 writes the JSON error object, so
    stdout (shared by the workers) stays one strict document."""
    proc = _run_torchrun("gpt2", "--dist", "tp=2", "--seq", "64,128", "--json")
    assert proc.returncode != 0
    document = json.loads(proc.stdout)
    assert document["error"]["exit_code"] == 2
    assert "one sequence length" in document["error"]["message"]
