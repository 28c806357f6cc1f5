"""The ``carroyage`` command: one module per group of commands, sharing :mod:`.options`.

Every subcommand turns a :class:`CarroyageError` into one line on stderr and exit code 2; stage
messages go to stderr, results to stdout. Modules import their heavy libraries inside the
commands, so ``carroyage --help`` and a bad argument answer at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import warnings
from types import FrameType

import typer
from typer.exceptions import TyperException

from ..errors import CarroyageError, CarroyageWarning
from . import address, around, engine, households, indicators, publish  # noqa: F401  (each registers its commands)
from .options import app

__all__ = ["app", "main"]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        from ..labels import VERSION

        typer.echo(VERSION.format(version=version("carroyage")))
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", help="Show carroyage's version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """France's géographie prioritaire (QPV) from 200 m income grids."""


INTERRUPTED = "carroyage: interrupted; unfinished outputs removed"


def main() -> None:
    """Entry point: run the app, turning carroyage errors into one line and exit code 2.

    Ctrl-C and SIGTERM stop the run with one line and exit code 130; outputs are written under
    temporary names and moved into place only when complete, so a stopped run leaves none.
    """
    stopped: list[int] = []
    warnings.showwarning = _show_warning
    warnings.simplefilter("ignore")  # numerical noise of the libraries is not for users...
    warnings.simplefilter("default", CarroyageWarning)  # ...a likely typo in their input is

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)
        raise KeyboardInterrupt

    previous = {}
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        _run(stopped)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run(stopped: list[int]) -> None:
    try:
        app(standalone_mode=False)
    except TyperException as exc:  # a usage error: one line, like every other error
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)  # no command: the help was printed
        _fail(f"carroyage: error: {_usage(exc)}", 2)
    except CarroyageError as exc:
        _fail(f"carroyage: error: {exc}", 2)
    except OSError as exc:  # the file system's own refusals: permissions, full disk...
        _fail(f"carroyage: error: {exc.filename or ''}: {exc.strerror or exc}".replace(": : ", ": "), 2)
    except (KeyboardInterrupt, typer.Abort):
        _fail(INTERRUPTED, 130)
    except Exception:
        # a stop inside a library's callback (GDAL pulling cells from Python) comes back as that
        # library's own error: it is still a stop
        if stopped:
            _fail(INTERRUPTED, 130)
        raise


def _usage(exc: TyperException) -> str:
    """A usage error in one line, naming the option or argument when there is one."""
    message = " ".join(exc.format_message().split())
    param = getattr(exc, "param", None)
    names = getattr(param, "opts", None) or [getattr(param, "name", "")]
    return f"{names[0]}: {message}" if names[0] and names[0] not in message else message


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: object = None,
) -> None:
    """Warnings as one line on stderr, like errors."""
    typer.echo(f"carroyage: warning: {message}", err=True)


def _fail(line: str, code: int) -> None:
    typer.echo(line, err=True)
    sys.exit(code)
