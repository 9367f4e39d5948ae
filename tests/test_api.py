"""The Python API (``import tfcli``): doctests, lazy imports, and errors without CLI flags."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest

import tfcli
import tfcli.api
from tests.cli_helpers import REPO
from tfcli.errors import TfcliError


@pytest.mark.parametrize("module", [tfcli, tfcli.api], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_the_five_functions_are_exposed() -> None:
    for name in ("load", "count_params", "forward_flops", "kv_cache", "fit"):
        assert callable(getattr(tfcli, name))
        assert name in tfcli.__all__


def test_import_tfcli_stays_light() -> None:
    code = (
        "import sys, tfcli; print(sorted(m for m in ('yaml', 'rich', 'typer') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_spec_object_is_accepted_and_matches_the_name() -> None:
    spec = tfcli.load("llama-3-8b")
    assert tfcli.count_params(spec).total == tfcli.count_params("llama-3-8b").total == 8_030_261_248


@pytest.mark.parametrize(
    "call",
    [
        lambda: tfcli.kv_cache("llama-3-8b", 0),
        lambda: tfcli.forward_flops("llama-3-8b", 128, batch=-1),
        lambda: tfcli.fit("llama-3-8b"),
        lambda: tfcli.fit("llama-3-8b", hardware="h100", reserve=2),
    ],
)
def test_errors_name_the_argument_not_a_cli_flag(call: object) -> None:
    with pytest.raises(TfcliError) as info:
        call()  # type: ignore[operator]
    assert "--" not in info.value.message
