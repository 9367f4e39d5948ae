"""Golden schema of each command's JSON: the set of key paths (``a.b[].c``) is pinned.

A key added, renamed or removed fails here until ``tests/golden/json_keys.json`` is updated
(run with ``TFCLI_UPDATE_GOLDEN=1``). Dict-valued maps whose keys are data (component names,
layer kinds, dtypes, field names) are recorded as ``{*}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run_cli

GOLDEN = Path(__file__).parent / "golden" / "json_keys.json"

COMMANDS: dict[str, list[str]] = {
    "models": ["models"],
    "show": ["show", "llama-3-8b"],
    "params": ["params", "mixtral-8x7b"],
    "flops": ["flops", "llama-3-8b", "--seq", "4096", "--hardware", "h100"],
    "flops-decode": ["flops", "llama-3-8b", "--mode", "decode", "--hardware", "h100"],
    "flops-sweep": ["flops", "llama-3-8b", "--seq", "1024,4096", "--hardware", "h100"],
    "kvcache": ["kvcache", "llama-3-8b", "--seq", "8192", "--hardware", "h100"],
    "kvcache-sweep": ["kvcache", "llama-3-8b", "--seq", "1024,4096", "--budget", "24GiB"],
    "compare": ["compare", "llama-3-8b", "llama-3-8b:num_kv_heads=32"],
}

DATA_KEYED = {
    "components_params", "active_components_params", "components_flops", "formulas",
    "weight_bytes", "layers_by_kind", "bytes_by_kind", "bytes_parts", "spec", "field_origins",
    "derived",
}  # fmt: skip


def key_paths(value: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        if prefix.rsplit(".", 1)[-1] in DATA_KEYED:
            return {prefix + ".{*}"}
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, prefix + "[]")
    return paths


def _documents() -> dict[str, list[str]]:
    out = {}
    for name, args in COMMANDS.items():
        run = run_cli(*args, "--json")
        assert run.code == 0, (name, run.stderr)
        out[name] = sorted(key_paths(json.loads(run.stdout)))
    return out


def test_json_keys_match_the_golden_schema() -> None:
    found = _documents()
    if os.environ.get("TFCLI_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    for name in COMMANDS:
        assert found[name] == golden[name], name


def test_one_vocabulary_across_commands() -> None:
    found = _documents()
    for name in ("models", "params", "compare"):
        paths = {p.rsplit(".", 1)[-1] for p in found[name]}
        assert {"model", "total_params", "active_params"} <= paths, name
        assert "params" not in paths and "name" not in paths, name
    for name in ("kvcache", "compare"):
        paths = {p.rsplit(".", 1)[-1] for p in found[name]}
        assert {"bytes_per_token", "total_bytes"} <= paths, name
    for name in ("flops", "kvcache"):
        paths = found[name]
        assert any("ttft" in p for p in paths) and any("tpot" in p for p in paths), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_json_is_strict(name: str) -> None:
    run = run_cli(*COMMANDS[name], "--json")
    json.loads(run.stdout, parse_constant=lambda c: pytest.fail(f"non-finite {c}"))
