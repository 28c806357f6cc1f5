"""The ``carroyage`` command: one module per group of commands, sharing :mod:`.options`.

Every subcommand turns a :class:`CarroyageError` into one line on stderr and exit code 2; stage
messages go to stderr, results to stdout. Modules import their heavy libraries inside the
commands, so ``carroyage --help`` and a bad argument answer at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from types import FrameType

import typer

from ..errors import CarroyageError
from . import address, around, engine, indicators, publish  # noqa: F401  (each registers its commands)
from .options import app

__all__ = ["app", "main"]


INTERRUPTED = "carroyage: interrupted; unfinished outputs removed"


def main() -> None:
    """Entry point: run the app, turning carroyage errors into one line and exit code 2.

    Ctrl-C and SIGTERM stop the run with one line and exit code 130; outputs are written under
    temporary names and moved into place only when complete, so a stopped run leaves none.
    """
    stopped: list[int] = []

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
        app()
    except CarroyageError as exc:
        _fail(f"carroyage: error: {exc}", 2)
    except OSError as exc:  # the file system's own refusals: permissions, full disk...
        _fail(f"carroyage: error: {exc.filename or ''}: {exc.strerror or exc}".replace(": : ", ": "), 2)
    except KeyboardInterrupt:
        _fail(INTERRUPTED, 130)
    except Exception:
        # a stop inside a library's callback (GDAL pulling cells from Python) comes back as that
        # library's own error: it is still a stop
        if stopped:
            _fail(INTERRUPTED, 130)
        raise


def _fail(line: str, code: int) -> None:
    typer.echo(line, err=True)
    sys.exit(code)
