"""The Typer app: thin commands, shared options, and the one error boundary.

Each command lives in ``tfcli.commands.<name>`` and registers itself on ``app``. Domain code
raises ``TfcliError``; ``main`` turns it (and click's usage errors) into one red line on
stderr and exit code 2, without a traceback unless ``--debug`` or ``TFCLI_DEBUG=1``. With
``--json`` stdout stays strict JSON then too: one object ``{"error": {"message", "hint",
"exit_code"}}``, so ``tfcli train rwkv-4-169m --json | jq`` reads a refusal, not nothing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from typing import Annotated

import typer

from tfcli import __version__
from tfcli.commands import register_all
from tfcli.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, OutputError, TfcliError, one_line
from tfcli.render.common import interrupt_reported, print_error

app = typer.Typer(
    name="tfcli",
    help="Transformer parameters, FLOPs and KV cache from hyperparameters, checked on hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Examples: tfcli params llama-3-8b · tfcli flops llama-3-8b --seq 131072 · "
    "tfcli kvcache llama-3-8b --hardware h100 · tfcli compare llama-3-8b "
    "llama-3-8b:num_kv_heads=32. Each command's --help has more.",
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


def _command_being_run(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first argument that is not a root
    option), or None: for help, completion or an unknown name every command is registered."""
    if any(key.endswith("_COMPLETE") for key in os.environ):
        return None
    for arg in argv[1:]:
        if arg in ("--debug",):
            continue
        return None if arg.startswith("-") else arg
    return None


register_all(app, only=_command_being_run(sys.argv))


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


def _ascii_fallback() -> None:
    """Streams that cannot encode Unicode (``LC_ALL=C``, ``PYTHONIOENCODING=ascii``) replace
    what they cannot write instead of raising; tfcli's own views write ASCII spellings."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        if stream is None or encoding.lower().replace("-", "").startswith("utf"):
            continue
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")


def _flush_stdout() -> None:
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as err:
        raise OutputError.from_os_error("stdout", err) from None


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush of a failed stdout (closed pipe,
    full disk) does not print 'Exception ignored' after our one-line error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _output_failed(err: OutputError) -> None:
    _silence_stdout()
    if err.errno == errno.EPIPE:  # `tfcli ... | head`: the reader left; say nothing
        sys.exit(141)
    with contextlib.suppress(OutputError):
        print_error(err.message)
    sys.exit(err.exit_code)


def _json_requested(argv: list[str] | None) -> bool:
    """True when the command line asks for ``--json`` (before a ``--`` separator)."""
    args = sys.argv[1:] if argv is None else argv
    return "--json" in args[: args.index("--")] if "--" in args else "--json" in args


def _is_secondary_rank() -> bool:
    """True in a torchrun worker other than rank 0 (``tfcli bench --dist``): its stdout is the
    same terminal or pipe as rank 0's, where only rank 0 writes the JSON document."""
    return os.environ.get("RANK", "0") != "0"


def _refuse(message: str, hint: str | None, exit_code: int, as_json: bool) -> None:
    """The one error line on stderr; under ``--json`` also the error object on stdout (rank
    0 only under torchrun: one document, not one per worker)."""
    print_error(message, hint=hint)
    if as_json and not _is_secondary_rank():
        document = {"error": {"message": message, "hint": hint, "exit_code": exit_code}}
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(json.dumps(document, allow_nan=False) + "\n")
            sys.stdout.flush()
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; the single place where errors become exit codes."""
    _ascii_fallback()
    as_json = _json_requested(argv)
    try:
        result = app(args=argv, standalone_mode=False, prog_name="tfcli")
        _flush_stdout()
    except OutputError as err:
        _output_failed(err)
    except TfcliError as err:
        if _DEBUG["on"]:
            raise
        _refuse(err.message, err.hint, err.exit_code, as_json)
    except _usage_error_types() as err:
        if _DEBUG["on"]:
            raise
        if not err.format_message().strip():  # type: ignore[attr-defined]
            sys.exit(0)  # a bare `tfcli` (or command) printed its help: nothing went wrong
        ctx = getattr(err, "ctx", None)
        command = ctx.command_path if ctx is not None else "tfcli"
        message = one_line(err.format_message())  # type: ignore[attr-defined]
        _refuse(message, f"see `{command} --help`", EXIT_BAD_INPUT, as_json)
    except _abort_types():
        print_error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as err:  # a write by click or typer (help text) to a failed stdout
        if _DEBUG["on"] or err.errno not in (errno.EPIPE, errno.ENOSPC, errno.EBADF):
            raise
        _output_failed(OutputError.from_os_error("stdout", err))
    code = result if isinstance(result, int) else 0
    if code == EXIT_INTERRUPTED and not interrupt_reported():
        # typer turns Ctrl-C into Exit(130); say so when no view has (e.g. before a sweep)
        print_error("interrupted")
    sys.exit(code)
