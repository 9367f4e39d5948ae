"""CLI commands, one module each; every module exposes ``register(app)``.

Commands stay thin: parse options, call the domain functions, hand results to ``tfcli.render``.
Every command module imports its domain and view modules inside the command body, so that
starting one command does not pay for the others' imports; ``bench`` imports torch there too.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES = ("models", "show", "params", "flops", "kvcache", "train", "compare", "bench")


def register_all(app: typer.Typer, only: str | None = None) -> None:
    """Register every command module that exists, or only ``only`` (the command being run:
    Typer builds every registered command's options at start, ~3 ms each)."""
    for name in COMMAND_MODULES if only not in COMMAND_MODULES else (only,):
        try:
            module = importlib.import_module(f"tfcli.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"tfcli.commands.{name}":
                continue
            raise
        module.register(app)
