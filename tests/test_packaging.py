"""The wheel ships the model specs inside the package (found by importlib.resources)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.cli_helpers import REPO

hatchling = pytest.importorskip("hatchling")


def test_wheel_contains_every_spec(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (REPO / "model_specs").glob("*.yaml")}
    assert shipped
    assert {f"tfcli/model_specs/{name}" for name in shipped} <= names
