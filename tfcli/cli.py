"""The Typer app: thin commands, shared options, and the one error boundary.

Each command lives in ``tfcli.commands.<name>`` and registers itself on ``app``. Domain code
raises ``TfcliError``; ``main`` turns it (and click's usage errors) into one red line on
stderr and exit code 2, without a traceback unless ``--debug`` or ``TFCLI_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from tfcli import __version__
from tfcli.commands import register_all
from tfcli.errors import EXIT_BAD_INPUT, TfcliError, one_line
from tfcli.render.common import print_error

app = typer.Typer(
    name="tfcli",
    help="Transformer parameters, FLOPs and KV cache from hyperparameters, checked on hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

_DEBUG = {"on": os.environ.get("TFCLI_DEBUG", "") not in ("", "0")}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tfcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (or set TFCLI_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """tfcli: exact parameter counts, FLOPs and KV-cache sizes for transformer models."""
    if debug:
        _DEBUG["on"] = True


register_all(app)


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Click's usage errors: vendored inside typer (>= 0.29) or from click (older typer)."""
    found: list[type[Exception]] = []
    try:
        from typer._click.exceptions import UsageError as VendoredUsageError

        found.append(VendoredUsageError)
    except ImportError:
        pass
    try:
        from click.exceptions import UsageError as ClickUsageError

        found.append(ClickUsageError)
    except ImportError:
        pass
    return tuple(found)


def _abort_types() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [KeyboardInterrupt]
    abort = getattr(typer, "Abort", None)
    if isinstance(abort, type):
        found.append(abort)
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; the single place where errors become exit codes."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="tfcli")
    except TfcliError as err:
        if _DEBUG["on"]:
            raise
        print_error(err.message, hint=err.hint)
        sys.exit(err.exit_code)
    except _usage_error_types() as err:
        if _DEBUG["on"]:
            raise
        ctx = getattr(err, "ctx", None)
        command = ctx.command_path if ctx is not None else "tfcli"
        print_error(one_line(err.format_message()), hint=f"see `{command} --help`")  # type: ignore[attr-defined]
        sys.exit(EXIT_BAD_INPUT)
    except _abort_types():
        print_error("interrupted")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
