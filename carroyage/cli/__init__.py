"""The ``carroyage`` command: one module per group of commands, sharing :mod:`.options`.

Every subcommand turns a :class:`CarroyageError` into one line on stderr and exit code 2; stage
messages go to stderr, results to stdout. Modules import their heavy libraries inside the
commands, so ``carroyage --help`` and a bad argument answer at once.
"""

from __future__ import annotations

import sys

import typer

from ..errors import CarroyageError
from . import address, around, engine, publish  # noqa: F401  (each registers its commands)
from .options import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning carroyage errors into one line and exit code 2."""
    try:
        app()
    except CarroyageError as exc:
        typer.echo(f"carroyage: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # the file system's own refusals: permissions, full disk...
        typer.echo(f"carroyage: error: {exc.filename or ''}: {exc.strerror or exc}".replace(": : ", ": "), err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("carroyage: interrupted", err=True)
        sys.exit(130)
